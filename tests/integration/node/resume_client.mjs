// resume_client: one connection to a resumable chat completion stream,
// reported as one JSON line for the bash tests: status, x-tidegate-request-id,
// the SSE ids in order, the content text, how many [DONE] markers, the error
// event if any. No dependencies (Node's fetch).
//   node resume_client.mjs URL BODY_JSON|- [--key K] [--last-event-id N]
//        [--abort-after N [--kill PID] [--reconnect]] [--accept-sse] [--bearer T]
// BODY "-" makes it a GET (GET /v1/requests/{id} with Accept:
// text/event-stream); --abort-after N drops the connection after N content
// events (the run goes on in the gateway); with --kill PID it then SIGKILLs
// that process at once (the gateway, mid-stream: no time for the run to end);
// with --reconnect it comes straight back with Last-Event-ID (the report's
// "resumed" holds that second connection).
import { sseEvents } from "./sse_events.mjs";

const [url, body, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i++) {
  const k = rest[i].replace(/^--/, "");
  if (k === "accept-sse" || k === "reconnect") opt[k] = true;
  else opt[k] = rest[++i];
}
function headersFor(lastId) {
  const h = {};
  if (body !== "-") h["content-type"] = "application/json";
  if (opt.key) h["idempotency-key"] = opt.key;
  if (lastId !== undefined) h["last-event-id"] = String(lastId);
  if (opt["accept-sse"]) h["accept"] = "text/event-stream";
  if (opt.bearer) h["authorization"] = `Bearer ${opt.bearer}`;
  return h;
}

// One connection; abortAfter < 0: read to the end.
async function stream(lastId, abortAfter) {
  const out = { status: 0, rid: null, ids: [], text: "", n_content: 0, done: 0, error: null, cut: false, finish_reason: null };
  const ac = new AbortController();
  const headers = headersFor(lastId);
  try {
    const res = await fetch(url, body === "-" ? { headers, signal: ac.signal } : { method: "POST", headers, body, signal: ac.signal });
    out.status = res.status;
    out.rid = res.headers.get("x-tidegate-request-id");
    const ct = res.headers.get("content-type") || "";
    if (!ct.startsWith("text/event-stream")) {
      out.json = await res.json().catch(() => null);
      return out;
    }
    for await (const { id, data } of sseEvents(res.body)) {
      if (!data) continue;
      out.ids.push(id === undefined ? null : Number(id));
      if (data === "[DONE]") { out.done++; continue; }
      const j = JSON.parse(data);
      if (j.error) { out.error = j.error; continue; }
      const c = j.choices && j.choices[0];
      if (!c) continue;
      if (c.finish_reason) out.finish_reason = c.finish_reason;
      if (c.delta && c.delta.content) {
        out.text += c.delta.content;
        out.n_content++;
        if (abortAfter >= 0 && out.n_content >= abortAfter) {
          if (opt.kill) process.kill(Number(opt.kill), "SIGKILL");
          out.cut = true;
          ac.abort();
          return out;
        }
      }
    }
  } catch (e) {
    if (!out.cut) out.fetch_error = String(e);
  }
  return out;
}

const abortAfter = opt["abort-after"] !== undefined ? Number(opt["abort-after"]) : -1;
const out = await stream(opt["last-event-id"], abortAfter);
// --reconnect: straight back with the last id seen, as a client would.
if (opt.reconnect && out.cut) out.resumed = await stream(out.ids[out.ids.length - 1], -1);
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
