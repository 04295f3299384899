// sse_client: one chat completion against a gateway, reported as one JSON
// line for the bash tests: status, the x-tidegate-* headers, time to the
// first content token, the largest gap between two content tokens (and where
// it was), the text, how many [DONE] markers, an error event if any, and the
// final chunk's `tidegate` field. No dependencies (Node's fetch).
//   node sse_client.mjs URL BODY_JSON [--abort-after N]
import { sseEvents } from "./sse_events.mjs";

const [url, body, flag, flagVal] = process.argv.slice(2);
const abortAfter = flag === "--abort-after" ? Number(flagVal) : -1;
// Warm up (module loading, the first connection) so t0 measures the request.
await fetch(new URL("/healthz", url)).then((r) => r.text()).catch(() => {});
const t0 = performance.now();
const ac = new AbortController();
const out = { status: 0, headers: {}, first_token_ms: null, max_gap_ms: 0, gap_after: null, text: "", n_tokens: 0, done: 0, error: null, tidegate: null, finish_reason: null, usage: null, model: null, n_after_done: 0 };
try {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body, signal: ac.signal });
  out.status = res.status;
  for (const [k, v] of res.headers) if (k.startsWith("x-tidegate") || k === "retry-after") out.headers[k] = v;
  const ct = res.headers.get("content-type") || "";
  if (!ct.startsWith("text/event-stream")) {
    out.json = await res.json().catch(() => null);
  } else {
    let last = null;
    for await (const { data } of sseEvents(res.body)) {
      if (!data) continue;
      if (out.done) out.n_after_done++;
      if (data === "[DONE]") { out.done++; continue; }
      const j = JSON.parse(data);
      if (j.error) { out.error = j.error; continue; }
      if (j.usage) out.usage = j.usage;
      if (j.tidegate) out.tidegate = j.tidegate;
      const c = j.choices && j.choices[0];
      if (!c) continue;
      if (c.finish_reason) out.finish_reason = c.finish_reason;
      const piece = c.delta && (c.delta.content || (c.delta.tool_calls ? "[tool]" : ""));
      if (piece) {
        const now = performance.now();
        if (out.first_token_ms === null) { out.first_token_ms = now - t0; out.model = j.model; }
        if (last !== null && now - last > out.max_gap_ms) { out.max_gap_ms = now - last; out.gap_after = out.text; }
        last = now;
        out.text += piece;
        out.n_tokens++;
        if (abortAfter >= 0 && out.n_tokens >= abortAfter) { ac.abort(); break; }
      }
    }
  }
} catch (e) {
  if (e.name !== "AbortError") out.exception = String(e);
}
out.total_ms = performance.now() - t0;
for (const k of ["first_token_ms", "max_gap_ms", "total_ms"]) if (out[k] !== null) out[k] = Math.round(out[k] * 10) / 10;
console.log(JSON.stringify(out));
