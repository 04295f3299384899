// Non-streaming and streaming chat completions through the official SDK:
// the streamed chunks must concatenate to the non-streamed text (same seed),
// usage must count real tokens, errors must surface as the SDK's typed errors.
import OpenAI from "openai";
import { client, check, eq, done } from "./common.mjs";

const messages = [
  { role: "system", content: "You are terse." },
  { role: "user", content: [{ type: "text", text: "Say something" }, { type: "text", text: "about tides." }] },
];
const params = { model: "tidegate/auto", messages, max_tokens: 24, seed: 1234, temperature: 0.7 };

const models = await client.models.list();
const ids = models.data.map((m) => m.id);
check("models lists tidegate/auto", ids.includes("tidegate/auto"), ids.join(","));
check("models lists the embedded model", ids.length >= 3, ids.join(","));
const embedded = ids[0];

const r = await client.chat.completions.create(params);
eq("object", "chat.completion", r.object);
check("id chatcmpl-", r.id.startsWith("chatcmpl-"), r.id);
eq("model is the embedded id", embedded, r.model);
eq("one choice", 1, r.choices.length);
eq("role", "assistant", r.choices[0].message.role);
eq("finish_reason length", "length", r.choices[0].finish_reason);
eq("completion_tokens", 24, r.usage.completion_tokens);
check("prompt_tokens > 0", r.usage.prompt_tokens > 0, String(r.usage.prompt_tokens));
eq("total_tokens", r.usage.prompt_tokens + r.usage.completion_tokens, r.usage.total_tokens);
const text = r.choices[0].message.content;
check("content non-empty", typeof text === "string" && text.length > 0);

// The raw response carries the server's request id.
const { response } = await client.chat.completions.create(params).withResponse();
check("x-request-id header", /^req_[0-9a-f]{32}$/.test(response.headers.get("x-request-id") || ""));

// Streaming with the same seed: same text, per-token chunks, usage last.
const stream = await client.chat.completions.create({
  ...params,
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = "";
let nContent = 0;
let finish = null;
let usage = null;
let first = true;
let roleOk = false;
for await (const chunk of stream) {
  if (first) {
    roleOk = chunk.choices[0]?.delta?.role === "assistant";
    first = false;
  }
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta?.content) {
    streamed += c.delta.content;
    nContent++;
  }
  if (c.finish_reason) finish = c.finish_reason;
}
check("first chunk has role", roleOk);
eq("streamed text equals non-streamed text", text, streamed);
check("several content chunks", nContent >= 2, String(nContent));
eq("stream finish_reason", "length", finish);
eq("stream usage", r.usage, usage);

// Batched with other requests, the same seed still gives the same text.
const batch = await Promise.all([
  client.chat.completions.create({ ...params, seed: 5 }),
  client.chat.completions.create(params),
  client.chat.completions.create({ ...params, seed: 6, max_tokens: 40 }),
  client.chat.completions.create({ ...params, messages: [{ role: "user", content: "other prompt" }] }),
]);
eq("same seed batched with others: same text", text, batch[1].choices[0].message.content);

// Other seeds differ (the seed really reaches the sampler).
const other = await client.chat.completions.create({ ...params, seed: 99 });
check("different seed, different text", other.choices[0].message.content !== text);

// Stop strings cut the text and end with "stop".
const cut = text.slice(4, 7);
if (cut.trim().length === 3 && !text.slice(0, 4).includes(cut)) {
  const s = await client.chat.completions.create({ ...params, stop: [cut] });
  eq("stop string cuts the text", text.slice(0, text.indexOf(cut)), s.choices[0].message.content);
  eq("stop finish_reason", "stop", s.choices[0].finish_reason);
}

// Errors arrive as the SDK's typed errors with OpenAI's error fields.
async function expectError(name, p, cls, status, code, param) {
  try {
    await client.chat.completions.create(p);
    check(name, false, "no error");
  } catch (e) {
    check(`${name}: ${cls.name}`, e instanceof cls, e.constructor.name);
    eq(`${name}: status`, status, e.status);
    eq(`${name}: code`, code, e.code);
    if (param !== undefined) eq(`${name}: param`, param, e.param);
  }
}
await expectError("unknown model", { ...params, model: "gpt-nope" }, OpenAI.NotFoundError, 404, "model_not_found", "model");
await expectError("bad temperature", { ...params, temperature: 7 }, OpenAI.BadRequestError, 400, "invalid_value", "temperature");
await expectError("cloud", { ...params, model: "tidegate/cloud" }, OpenAI.InternalServerError, 503, "cloud_unavailable");
await expectError("unsupported schema keyword", { ...params, response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "a+" } } } }, OpenAI.BadRequestError, 400, "unsupported_schema_keyword", "response_format.json_schema.schema");

done();
