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

// Responses API: the thinking is a reasoning item before the message
// (summary [], content [{type: "reasoning_text"}]), never in output_text.
const rr = await client.responses.create({ model: "tidegate/edge", input: "Hi there" });
eq("responses: output_text is the answer only", ANSWER, rr.output_text);
eq("responses: item types", ["reasoning", "message"], rr.output.map((o) => o.type));
const ri = rr.output[0];
check("responses: reasoning item id", /^rs_/.test(ri.id), ri.id);
eq("responses: reasoning content", [{ type: "reasoning_text", text: REASONING }], ri.content);
eq("responses: reasoning summary empty", [], ri.summary);
eq("responses: reasoning status", "completed", ri.status);
const got = await client.responses.retrieve(rr.id);
eq("responses: stored with its reasoning item", REASONING, got.output[0].content?.[0]?.text);

// Streaming: the reasoning item (output 0) opens, its text arrives in
// reasoning_text deltas and closes before the message item (output 1).
const rs = await client.responses.create({ model: "tidegate/edge", input: "Hi there", stream: true });
let rtext = "", rdelta = "", rdone = null, events = [], seqOk = true, lastSeq = -1, completed = null;
for await (const ev of rs) {
  events.push(ev.type);
  if (ev.sequence_number !== lastSeq + 1) seqOk = false;
  lastSeq = ev.sequence_number;
  if (ev.type === "response.output_text.delta") {
    rtext += ev.delta;
    if (ev.output_index !== 1) seqOk = false;
  }
  if (ev.type === "response.reasoning_text.delta") {
    rdelta += ev.delta;
    if (ev.output_index !== 0 || ev.content_index !== 0 || !/^rs_/.test(ev.item_id)) seqOk = false;
  }
  if (ev.type === "response.reasoning_text.done") rdone = ev.text;
  if (ev.type === "response.completed") completed = ev.response;
}
eq("responses stream: deltas are the answer only", ANSWER, rtext);
eq("responses stream: reasoning deltas", REASONING, rdelta);
eq("responses stream: reasoning_text.done", REASONING, rdone);
check("responses stream: sequence numbers and indices", seqOk, events.join(" "));
check("responses stream: reasoning came in several deltas",
  events.filter((t) => t === "response.reasoning_text.delta").length > 1);
const firstText = events.indexOf("response.output_text.delta");
const rsOrder = [
  "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
  "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
];
const at = rsOrder.map((t) => events.indexOf(t));
check("responses stream: reasoning item opens and closes before the answer",
  at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1])) && at[at.length - 1] < firstText,
  events.join(" "));
eq("responses stream: completed output", ["reasoning", "message"], completed?.output.map((o) => o.type));
eq("responses stream: completed reasoning", REASONING, completed?.output[0].content?.[0]?.text);
eq("responses stream: completed output_text", ANSWER, completed?.output[1].content?.[0]?.text);

// The output items go back as input (reasoning items are accepted and
// not rendered: the template drops past thinking anyway).
const r4 = await client.responses.create({
  model: "tidegate/edge",
  input: [{ role: "user", content: "Hi there" }, ...rr.output, { role: "user", content: "And again?" }],
});
eq("responses: output items as input", ANSWER, r4.output_text);
done();
