// steady_load: keeps C streamed chat completions in flight against a gateway
// until a stop file appears, and records every request as one JSON line
// (start and end in ms since the start, status, route, failover header, the
// number of [DONE] markers, an error event, the final chunk's `tidegate`
// field, an exception). The netns offline test reads the lines to show that
// no request failed while the link went down and up. No dependencies.
//   node steady_load.mjs URL BODY_JSON OUT_JSONL STOP_FILE [CONCURRENCY]
import { appendFileSync, existsSync } from "node:fs";
import { sseEvents } from "./sse_events.mjs";

const [url, body, outFile, stopFile, conc = "2"] = process.argv.slice(2);
const t0 = performance.now();
const ms = () => Math.round((performance.now() - t0) * 10) / 10;

async function one() {
  const r = { start_ms: ms(), status: 0, route: null, failover: null, reason: null, done: 0, error: null, tidegate: null, text: "", exception: null };
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(30000) });
    r.status = res.status;
    r.route = res.headers.get("x-tidegate-route");
    r.failover = res.headers.get("x-tidegate-failover");
    r.reason = res.headers.get("x-tidegate-reason");
    for await (const { data } of sseEvents(res.body)) {
      if (!data) continue;
      if (data === "[DONE]") { r.done++; continue; }
      const j = JSON.parse(data);
      if (j.error) { r.error = j.error; continue; }
      if (j.tidegate) r.tidegate = j.tidegate;
      const c = j.choices && j.choices[0];
      if (c && c.delta && c.delta.content) r.text += c.delta.content;
    }
  } catch (e) {
    r.exception = String(e);
  }
  r.end_ms = ms();
  appendFileSync(outFile, JSON.stringify(r) + "\n");
}

async function worker() {
  while (!existsSync(stopFile)) await one();
}
await Promise.all(Array.from({ length: Number(conc) }, worker));
