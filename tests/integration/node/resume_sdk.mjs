// resume_sdk: a resumable stream through the official `openai` SDK, the way
// README tells its users: the SDK hides the SSE id lines, but event k has id
// k, so the Last-Event-ID to send is the number of chunks received. Streams
// an answer whole, then again with an Idempotency-Key, drops it after 15
// chunks and resumes with the same call plus Last-Event-ID; prints one JSON
// line {whole, resumed, chunks_before, usage}.
//   node resume_sdk.mjs BASE_URL IDEMPOTENCY_KEY API_KEY
import OpenAI from "openai";

const [base, key, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const params = {
  model: "tidegate/auto", messages: [{ role: "user", content: "sdk resume" }], max_tokens: 600,
  temperature: 0, logit_bias: { 2: -100, 7: -100 }, stream: true, stream_options: { include_usage: true },
};
const text = (c) => (c.choices[0] && c.choices[0].delta.content) || "";

let whole = "";
for await (const c of await client.chat.completions.create(params)) whole += text(c);

let first = "", n = 0;
const s1 = await client.chat.completions.create(params, { headers: { "Idempotency-Key": key } });
for await (const c of s1) {
  first += text(c);
  if (++n === 15) break; // leaving the loop closes the connection
}
let rest = "", usage = null;
const s2 = await client.chat.completions.create(params, { headers: { "Idempotency-Key": key, "Last-Event-ID": String(n) } });
for await (const c of s2) {
  rest += text(c);
  if (c.usage) usage = c.usage;
}
console.log(JSON.stringify({ whole, resumed: first + rest, chunks_before: n, usage }));
