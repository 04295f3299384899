// LFM2.5 reasoning through the official SDK against a scripted LFM2.5 model
// (TG_BASE_URL) that thinks, then answers: the reasoning arrives as
// reasoning_content (message field, or delta field while streaming), never
// in content; include_reasoning: false drops it; a past assistant turn's
// <think> block is stripped from the prompt by the template.
import { client, check, eq, done } from "./common.mjs";

const REASONING = "The user greets me. A short friendly reply fits.";
const ANSWER = "Hello! Nice to meet you.";
const messages = [{ role: "user", content: "Hi there" }];

// Non-streaming.
const r = await client.chat.completions.create({ model: "tidegate/edge", messages });
const m = r.choices[0].message;
eq("content is the answer only", ANSWER, m.content);
eq("reasoning_content", REASONING, m.reasoning_content);
eq("finish_reason stop", "stop", r.choices[0].finish_reason);
check("usage counts the thinking tokens", r.usage.completion_tokens > 10, JSON.stringify(r.usage));

// Streaming: reasoning deltas first, then content deltas; never mixed.
const stream = await client.chat.completions.create({ model: "tidegate/edge", messages, stream: true });
let reasoning = "", content = "", order = [], mixed = false, finish = null;
for await (const chunk of stream) {
  const c = chunk.choices[0];
  if (!c) continue;
  const d = c.delta || {};
  if (d.reasoning_content) { reasoning += d.reasoning_content; order.push("r"); }
  if (d.content) { content += d.content; order.push("c"); }
  if (d.reasoning_content && d.content) mixed = true;
  if (c.finish_reason) finish = c.finish_reason;
}
eq("stream reasoning_content", REASONING, reasoning);
eq("stream content", ANSWER, content);
check("stream: no chunk carries both", !mixed);
const firstC = order.indexOf("c");
check("stream: all reasoning before the answer", firstC > 0 && !order.slice(firstC).includes("r"), order.join(""));
check("stream: reasoning came in several deltas", order.filter((x) => x === "r").length > 1, order.join(""));
eq("stream finish_reason", "stop", finish);

// include_reasoning: false drops it, streamed and not.
const r2 = await client.chat.completions.create({ model: "tidegate/edge", messages, include_reasoning: false });
eq("dropped: content", ANSWER, r2.choices[0].message.content);
eq("dropped: no reasoning_content", undefined, r2.choices[0].message.reasoning_content);
const s2 = await client.chat.completions.create({ model: "tidegate/edge", messages, stream: true, include_reasoning: false });
let c2 = "", any = false;
for await (const chunk of s2) {
  const d = chunk.choices[0]?.delta || {};
  if (d.content) c2 += d.content;
  if (d.reasoning_content !== undefined) any = true;
}
eq("dropped stream: content", ANSWER, c2);
check("dropped stream: no reasoning deltas", !any);

// A bad value is a 400 naming the field.
try {
  await client.chat.completions.create({ model: "tidegate/edge", messages, include_reasoning: "no" });
  check("include_reasoning type checked", false, "no error");
} catch (e) {
  eq("include_reasoning: 400", 400, e.status);
  check("include_reasoning: param", e.param === "include_reasoning" || /include_reasoning/.test(e.message), e.message);
}

// Multi-turn: the previous answer is sent back with its thinking; the
// template strips it, so the conversation still works.
const r3 = await client.chat.completions.create({
  model: "tidegate/edge",
  messages: [
    ...messages,
    { role: "assistant", content: `<think>\n${REASONING}\n</think>\n\n${ANSWER}` },
    { role: "user", content: "And again?" },
  ],
});
eq("second turn: content", ANSWER, r3.choices[0].message.content);
eq("second turn: reasoning", REASONING, r3.choices[0].message.reasoning_content);

// Responses API: the thinking stays out of the output text, streamed and
// not (reasoning items are not built yet).
const rr = await client.responses.create({ model: "tidegate/edge", input: "Hi there" });
eq("responses: output_text is the answer only", ANSWER, rr.output_text);
const rs = await client.responses.create({ model: "tidegate/edge", input: "Hi there", stream: true });
let rtext = "";
for await (const ev of rs) if (ev.type === "response.output_text.delta") rtext += ev.delta;
eq("responses stream: deltas are the answer only", ANSWER, rtext);
done();
