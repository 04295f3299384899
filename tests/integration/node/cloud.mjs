// The cloud route through the official `openai` SDK (unmodified): a gateway
// with a cloud upstream (the mock cloud over TLS) in front. Models list,
// chat not streamed and streamed with usage, a cloud 503 before the first
// token answered by the edge, and a connection reset in the middle of a
// stream continued on the edge: the SDK's iterator sees one stream that ends
// normally, its text starting with what the cloud sent.
//   TG_BASE_URL=http://gw/v1 MOCK_ADMIN=http://127.0.0.1:port MOCK_REPLY=... node cloud.mjs
import { client, check, eq, done } from "./common.mjs";

const admin = process.env.MOCK_ADMIN;
const reply = process.env.MOCK_REPLY;
async function fault(spec, count = 1) {
  const r = await fetch(`${admin}/fault`, { method: "POST", body: JSON.stringify({ fault: spec, count }) });
  if (!r.ok) throw new Error(`mock admin /fault: ${r.status}`);
}
const messages = [{ role: "user", content: "Tell me about tides" }];

const models = await client.models.list();
const ids = models.data.map((m) => m.id);
check("models lists the cloud model", ids.includes("mock-gpt"), ids.join(","));
check("models lists tidegate/cloud", ids.includes("tidegate/cloud"), ids.join(","));

// Not streamed, through tidegate/cloud.
const { data: r, response } = await client.chat.completions
  .create({ model: "tidegate/cloud", messages, temperature: 0.2 })
  .withResponse();
eq("content is the cloud's", reply, r.choices[0].message.content);
eq("model is the upstream's", "mock-gpt", r.model);
eq("finish_reason", "stop", r.choices[0].finish_reason);
eq("usage relayed", 9, r.usage.completion_tokens);
eq("total_tokens", r.usage.prompt_tokens + r.usage.completion_tokens, r.usage.total_tokens);
eq("route header", "cloud:main", response.headers.get("x-tidegate-route"));

// Streamed with usage, naming the cloud model.
async function collect(params) {
  const out = { text: "", n: 0, finish: null, usage: null, tidegate: null, role: null, models: new Set() };
  const { data: stream, response } = await client.chat.completions.create({ ...params, stream: true }).withResponse();
  out.route = response.headers.get("x-tidegate-route");
  out.failover = response.headers.get("x-tidegate-failover");
  for await (const chunk of stream) {
    if (chunk.usage) out.usage = chunk.usage;
    if (chunk.tidegate) out.tidegate = chunk.tidegate;
    out.models.add(chunk.model);
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta?.role && !out.role) out.role = c.delta.role;
    if (c.delta?.content) {
      out.text += c.delta.content;
      out.n++;
    }
    if (c.finish_reason) out.finish = c.finish_reason;
  }
  return out;
}
const s = await collect({ model: "mock-gpt", messages, stream_options: { include_usage: true } });
eq("stream: text", reply, s.text);
eq("stream: one chunk per word", reply.split(" ").length, s.n);
eq("stream: role first", "assistant", s.role);
eq("stream: finish_reason", "stop", s.finish);
eq("stream: usage", 9, s.usage && s.usage.completion_tokens);
eq("stream: route", "cloud:main", s.route);

// logprobs from the cloud, passed through (the mock's i-th word has logprob
// -(i+1)/10 and alternatives [word, alt1]).
const words = reply.match(/\S+\s*/g);
const lpWant = words.map((w, i) => ({ token: w, logprob: -(i + 1) / 10, top: [w, "alt1"] }));
const lpGot = (arr) => (arr || []).map((e) => ({ token: e.token, logprob: e.logprob, top: (e.top_logprobs || []).map((t) => t.token) }));
const lr = await client.chat.completions.create({ model: "tidegate/cloud", messages, logprobs: true, top_logprobs: 2 });
eq("logprobs (not streamed): the cloud's entries", lpWant, lpGot(lr.choices[0].logprobs && lr.choices[0].logprobs.content));
const ls = await client.chat.completions.create({ model: "mock-gpt", messages, logprobs: true, top_logprobs: 2, stream: true });
const lpChunks = [];
let lpAligned = true;
for await (const chunk of ls) {
  const c = chunk.choices[0];
  const e = c && c.logprobs && c.logprobs.content;
  if (e) lpChunks.push(...e);
  if (c && c.delta && c.delta.content && !(e && e.length === 1 && e[0].token === c.delta.content)) lpAligned = false;
}
eq("logprobs (streamed): the cloud's entries", lpWant, lpGot(lpChunks));
check("logprobs (streamed): each on its word's chunk", lpAligned);
const nolp = await client.chat.completions.create({ model: "tidegate/cloud", messages });
eq("no logprobs unless asked", null, nolp.choices[0].logprobs ?? null);

// A 503 before the first token: the edge answers, the SDK sees a 200.
await fault("status=503");
const f = await collect({ model: "tidegate/cloud", messages, max_tokens: 6, stream_options: { include_usage: true } });
eq("503: route engine", "engine", f.route);
check("503: failover header", /^cloud:main->engine; cause=5xx; ms=\d+/.test(f.failover || ""), f.failover);
check("503: the edge's text", f.text.length > 0, JSON.stringify(f.text));
eq("503: finish_reason", "length", f.finish);

// A reset after two words: continued on the edge, one stream to the SDK.
await fault("reset_after=2");
const m = await collect({ model: "tidegate/cloud", messages, max_tokens: 12, stream_options: { include_usage: true } });
eq("mid-stream: route is who began", "cloud:main", m.route);
check("mid-stream: cloud text, then edge text", m.text.startsWith("The tide ") && m.text.length > "The tide ".length, JSON.stringify(m.text));
check("mid-stream: a finish_reason", m.finish === "stop" || m.finish === "length", String(m.finish));
eq("mid-stream: tidegate.failover.cause", "reset", m.tidegate && m.tidegate.failover && m.tidegate.failover.cause);
eq("mid-stream: tidegate.failover.to", "engine", m.tidegate && m.tidegate.failover && m.tidegate.failover.to);
check("mid-stream: usage reported", m.usage && m.usage.completion_tokens >= m.n, JSON.stringify(m.usage));
check("mid-stream: usage counts both parts", m.usage && m.usage.completion_tokens > 2, JSON.stringify(m.usage));
// The engine's prompt held the answer so far; the usage must not count it as
// prompt: the same conversation answered by the edge alone has that prompt.
eq("mid-stream: prompt_tokens is the conversation's", f.usage && f.usage.prompt_tokens, m.usage && m.usage.prompt_tokens);
eq("mid-stream: total_tokens", m.usage && m.usage.prompt_tokens + m.usage.completion_tokens, m.usage && m.usage.total_tokens);

done();
