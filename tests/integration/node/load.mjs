// Load client: N_IDLE keep-alive connections that each make one request and
// then sit idle, plus N_STREAMS concurrent streaming chat completions. At the
// end every idle connection must still be open and answer a second request.
// Prints one JSON summary line; exits non-zero on any error.
import net from "node:net";
import OpenAI from "openai";

const base = new URL(process.env.TG_BASE_URL);
const nIdle = Number(process.env.N_IDLE || 500);
const nStreams = Number(process.env.N_STREAMS || 32);
const maxTokens = Number(process.env.MAX_TOKENS || 32);
const errors = [];

// One HTTP/1.1 GET on a raw socket; resolves with the status line's code.
function get(sock, path) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (d) => {
      buf += d.toString("latin1");
      const head = buf.indexOf("\r\n\r\n");
      if (head < 0) return;
      const m = /content-length: *(\d+)/i.exec(buf.slice(0, head));
      if (m && buf.length < head + 4 + Number(m[1])) return;
      sock.off("data", onData);
      resolve(Number(buf.split(" ")[1]));
    };
    sock.on("data", onData);
    sock.once("error", reject);
    sock.write(`GET ${path} HTTP/1.1\r\nHost: ${base.host}\r\nConnection: keep-alive\r\n\r\n`);
  });
}

function connect() {
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(base.port), base.hostname, () => resolve(s));
    s.once("error", reject);
  });
}

const t0 = Date.now();
const idle = [];
for (let i = 0; i < nIdle; i += 50) {
  const batch = await Promise.all(Array.from({ length: Math.min(50, nIdle - i) }, () => connect()));
  const codes = await Promise.all(batch.map((s) => get(s, "/healthz")));
  codes.forEach((c) => c !== 200 && errors.push(`idle first request ${c}`));
  idle.push(...batch);
}
let closedEarly = 0;
for (const s of idle) s.on("close", () => closedEarly++);

const client = new OpenAI({ baseURL: base.href, apiKey: "unused", maxRetries: 0, timeout: 300_000 });
let tokens = 0;
const ttfts = [];
async function oneStream(i) {
  const start = Date.now();
  let first = 0, text = "", finish = null, usage = null;
  const stream = await client.chat.completions.create({
    messages: [{ role: "user", content: `request ${i}: tell me about tides` }],
    max_tokens: maxTokens,
    seed: i,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (c?.delta?.content) {
      if (!first) first = Date.now() - start;
      text += c.delta.content;
    }
    if (c?.finish_reason) finish = c.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  if (finish !== "length" && finish !== "stop") errors.push(`stream ${i} finish ${finish}`);
  if (!usage || usage.completion_tokens < 1) errors.push(`stream ${i} usage ${JSON.stringify(usage)}`);
  else tokens += usage.completion_tokens;
  ttfts.push(first);
}
const results = await Promise.allSettled(Array.from({ length: nStreams }, (_, i) => oneStream(i)));
results.forEach((r, i) => r.status === "rejected" && errors.push(`stream ${i}: ${r.reason}`));
const streamMs = Date.now() - t0;

// The idle connections are still there and still work.
const again = await Promise.allSettled(idle.map((s) => get(s, "/healthz")));
const okAgain = again.filter((r) => r.status === "fulfilled" && r.value === 200).length;
if (okAgain !== nIdle) errors.push(`only ${okAgain}/${nIdle} idle connections answered again`);
if (closedEarly) errors.push(`${closedEarly} idle connections closed early`);
for (const s of idle) s.destroy();

ttfts.sort((a, b) => a - b);
console.log(JSON.stringify({
  idle: nIdle, streams: nStreams, completion_tokens: tokens, ms: streamMs,
  ttft_p50_ms: ttfts[Math.floor(ttfts.length / 2)] ?? null, ttft_max_ms: ttfts[ttfts.length - 1] ?? null,
  idle_ok_after: okAgain, errors: errors.slice(0, 10), n_errors: errors.length,
}));
process.exit(errors.length ? 1 : 0);
