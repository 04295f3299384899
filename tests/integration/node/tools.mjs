// Tool-call round trip through the official SDK against scripted models:
// TG_BASE_URL serves a model whose output is a tool call, TG_BASE_URL2 one
// whose output is a plain answer. The client sends tools, gets tool_calls
// (non-streaming and streaming), runs the tool, sends the result back with
// the assistant turn, and gets the final answer.
import OpenAI from "openai";
import { client, check, eq, done } from "./common.mjs";

const answerClient = new OpenAI({ baseURL: process.env.TG_BASE_URL2, apiKey: "unused", maxRetries: 0 });

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather for a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string" }, days: { type: "integer" } },
        required: ["city"],
      },
    },
  },
];
const messages = [{ role: "user", content: "What is the weather in Oslo?" }];

// 1. The model asks for the tool.
const r1 = await client.chat.completions.create({ model: "tidegate/edge", messages, tools });
const m1 = r1.choices[0].message;
eq("finish_reason tool_calls", "tool_calls", r1.choices[0].finish_reason);
eq("one tool call", 1, m1.tool_calls?.length);
const call = m1.tool_calls[0];
eq("call type", "function", call.type);
eq("call name", "get_weather", call.function.name);
eq("call arguments", { city: "Oslo", days: 2 }, JSON.parse(call.function.arguments));
check("call id", typeof call.id === "string" && call.id.startsWith("call_"), call.id);
check("content empty", m1.content === null || m1.content === "", JSON.stringify(m1.content));

// 1b. Same through a stream: tool_calls arrive as deltas, never as text.
const stream = await client.chat.completions.create({ model: "tidegate/edge", messages, tools, stream: true });
let text = "";
const calls = {};
let finish = null;
for await (const chunk of stream) {
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta?.content) text += c.delta.content;
  for (const tc of c.delta?.tool_calls || []) {
    const t = (calls[tc.index] ||= { name: "", arguments: "" });
    if (tc.function?.name) t.name += tc.function.name;
    if (tc.function?.arguments) t.arguments += tc.function.arguments;
  }
  if (c.finish_reason) finish = c.finish_reason;
}
eq("stream: no text leaked", "", text);
eq("stream: finish_reason", "tool_calls", finish);
eq("stream: call name", "get_weather", calls[0]?.name);
eq("stream: call arguments", { city: "Oslo", days: 2 }, JSON.parse(calls[0]?.arguments || "null"));

// 1c. The SDK's own stream helper assembles the same message.
const runner = client.chat.completions.stream({ model: "tidegate/edge", messages, tools });
const final = await runner.finalChatCompletion();
eq("stream helper: tool call", "get_weather", final.choices[0].message.tool_calls?.[0]?.function?.name);

// 2. Run the tool and send the result back with the assistant turn.
const args = JSON.parse(call.function.arguments);
const result = JSON.stringify({ city: args.city, forecast: "sunny", days: args.days });
const history = [...messages, m1, { role: "tool", tool_call_id: call.id, content: result }];
const r2 = await answerClient.chat.completions.create({ model: "tidegate/auto", messages: history, tools });
eq("final answer", "It is sunny in Oslo.", r2.choices[0].message.content);
eq("final finish_reason", "stop", r2.choices[0].finish_reason);
check("final has no tool_calls", !r2.choices[0].message.tool_calls);
check("history made a longer prompt", r2.usage.prompt_tokens > r1.usage.prompt_tokens,
  `${r2.usage.prompt_tokens} vs ${r1.usage.prompt_tokens}`);

// tool_choice "none" hides the tools: the same server then answers without
// parsing a call (the scripted text comes back as content).
const r3 = await client.chat.completions.create({ model: "tidegate/edge", messages, tools, tool_choice: "none" });
check("tool_choice none: no tool_calls", !r3.choices[0].message.tool_calls);

// Text before a call: streamed as content, the call still comes as tool_calls.
if (process.env.TG_BASE_URL3) {
  const mixed = new OpenAI({ baseURL: process.env.TG_BASE_URL3, apiKey: "unused", maxRetries: 0 });
  const r = await mixed.chat.completions.create({ messages, tools });
  eq("mixed: content before the call", "Let me check.", r.choices[0].message.content);
  eq("mixed: call", "get_weather", r.choices[0].message.tool_calls?.[0]?.function?.name);
  eq("mixed: finish_reason", "tool_calls", r.choices[0].finish_reason);
  const st = await mixed.chat.completions.create({ messages, tools, stream: true });
  let t = "", name = "", n = 0, fin = null;
  for await (const chunk of st) {
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta?.content) { t += c.delta.content; n++; }
    for (const tc of c.delta?.tool_calls || []) name += tc.function?.name || "";
    if (c.finish_reason) fin = c.finish_reason;
  }
  eq("mixed stream: text", "Let me check.", t);
  check("mixed stream: text came in several chunks", n >= 2, String(n));
  eq("mixed stream: call", "get_weather", name);
  eq("mixed stream: finish_reason", "tool_calls", fin);
  // Without tools the same output is plain text, markers included.
  const plain = await mixed.chat.completions.create({ messages });
  check("no tools: the call stays text", plain.choices[0].message.content.includes("get_weather("));
  check("no tools: no tool_calls", !plain.choices[0].message.tool_calls);
}

done();
