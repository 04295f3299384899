// stream_gaps: C concurrent streamed chat completions of N tokens each
// (greedy, end-of-text banned so each runs N tokens), R rounds; prints one
// JSON line: the gap between successive content events as the client sees
// them (p50, p99, mean, ms) and the aggregate tokens/s. Used by
// bench/stream_durable.sh.
//   node stream_gaps.mjs URL C N R
import { sseEvents } from "../tests/integration/node/sse_events.mjs";

const [url, c, n, r] = process.argv.slice(2);
const C = Number(c), N = Number(n), R = Number(r);
const body = JSON.stringify({
  messages: [{ role: "user", content: "Tell a long story." }], max_tokens: N, temperature: 0,
  logit_bias: { 2: -100, 7: -100 }, stream: true,
});
async function one(gaps) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  let last = null, tokens = 0;
  for await (const { raw } of sseEvents(res.body)) {
    if (!raw.includes('"content":"') || raw.includes('"role"')) continue;
    const now = performance.now();
    if (last !== null) gaps.push(now - last);
    last = now;
    tokens++;
  }
  return tokens;
}
await fetch(new URL("/healthz", url)).then((x) => x.text());
const gaps = [];
let tokens = 0;
const t0 = performance.now();
for (let k = 0; k < R; k++) {
  const got = await Promise.all(Array.from({ length: C }, () => one(gaps)));
  tokens += got.reduce((a, b) => a + b, 0);
}
const secs = (performance.now() - t0) / 1000;
gaps.sort((a, b) => a - b);
const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
console.log(JSON.stringify({ streams: C, tokens_each: N, rounds: R, gap_p50_ms: +q(0.5).toFixed(3), gap_p99_ms: +q(0.99).toFixed(3), gap_mean_ms: +mean.toFixed(3), tokens_per_s: +(tokens / secs).toFixed(0) }));
