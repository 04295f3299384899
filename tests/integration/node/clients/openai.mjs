// The official openai SDK, default settings (Responses API, as its README's
// first example), against Tidegate.
import OpenAI from "openai";
import { zodTextFormat } from "openai/helpers/zod";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { z } from "zod";
import { TEXT_URL, JSON_URL, TOOL_URL, RAND_URL, MODEL, TEXT, OBJ, check, eq, step, done } from "./common.mjs";

const mk = (baseURL) => new OpenAI({ baseURL, apiKey: "unused" });

await step("openai responses.create", async () => {
  const r = await mk(TEXT_URL).responses.create({ model: MODEL, input: "Weather in Oslo?" });
  eq("openai responses output_text", TEXT, r.output_text);
  eq("openai responses status", "completed", r.status);
  check("openai responses id", r.id.startsWith("resp_"), r.id);
  check("openai responses usage", r.usage.output_tokens > 0 && r.usage.input_tokens > 0);
  // Stored: retrievable, then a follow-up on top of it.
  const g = await mk(TEXT_URL).responses.retrieve(r.id);
  eq("openai responses.retrieve", TEXT, g.output_text);
  const f = await mk(TEXT_URL).responses.create({ model: MODEL, input: "and tomorrow?", previous_response_id: r.id });
  check("openai previous_response_id: more input tokens", f.usage.input_tokens > r.usage.input_tokens, `${f.usage.input_tokens} vs ${r.usage.input_tokens}`);
  const d = await mk(TEXT_URL).responses.delete(r.id);
  check("openai responses.delete", d === undefined || d === null || d.deleted === true || typeof d === "object");
});

await step("openai responses stream", async () => {
  const s = await mk(TEXT_URL).responses.create({ model: MODEL, input: "Weather?", stream: true });
  let text = "", types = [];
  for await (const ev of s) {
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
  }
  eq("openai stream text", TEXT, text);
  eq("openai stream first/last", ["response.created", "response.completed"], [types[0], types.at(-1)]);
  check("openai stream has output_item.added", types.includes("response.output_item.added"));
});

await step("openai structured output (responses.parse)", async () => {
  const Weather = z.object({ city: z.string(), temp: z.number(), sunny: z.boolean() });
  const r = await mk(JSON_URL).responses.parse({ model: MODEL, input: "Weather?", text: { format: zodTextFormat(Weather, "weather") } });
  eq("openai output_parsed", OBJ, r.output_parsed);
  const c = await mk(JSON_URL).chat.completions.parse({
    model: MODEL,
    messages: [{ role: "user", content: "Weather?" }],
    response_format: { type: "json_schema", json_schema: { name: "w", strict: true, schema: { type: "object", properties: { city: { type: "string" }, temp: { type: "number" }, sunny: { type: "boolean" } }, required: ["city", "temp", "sunny"], additionalProperties: false } } },
  });
  eq("openai chat.completions.parse parsed", OBJ, c.choices[0].message.parsed);
});

const tools = [{ type: "function", name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false }, strict: true }];

await step("openai forced tool call + round trip", async () => {
  const r = await mk(TOOL_URL).responses.create({ model: MODEL, input: "Weather in Oslo?", tools, tool_choice: "required", parallel_tool_calls: false });
  const calls = r.output.filter((o) => o.type === "function_call");
  eq("openai forced: one call", 1, calls.length);
  eq("openai forced: name", "get_weather", calls[0].name);
  eq("openai forced: args", { city: "Oslo" }, JSON.parse(calls[0].arguments));
  // Round trip: the call and its output go back; the answering model replies.
  const r2 = await mk(TEXT_URL).responses.create({
    model: MODEL,
    tools,
    input: [{ role: "user", content: "Weather in Oslo?" }, calls[0], { type: "function_call_output", call_id: calls[0].call_id, output: "sunny, 21C" }],
  });
  eq("openai round trip answer", TEXT, r2.output_text);
  // Streamed function call events.
  const s = await mk(TOOL_URL).responses.create({ model: MODEL, input: "Weather?", tools, tool_choice: { type: "function", name: "get_weather" }, stream: true });
  let args = "";
  for await (const ev of s) if (ev.type === "response.function_call_arguments.delta") args += ev.delta;
  eq("openai streamed call args", { city: "Oslo" }, JSON.parse(args));
});

await step("openai logprobs vs engine logits", async () => {
  const r = await mk(RAND_URL).chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 4 });
  const lp = r.choices[0].logprobs.content;
  eq("openai logprobs entries", r.usage.completion_tokens, lp.length);
  // The engine's own logits for the first step, from the CLI.
  const bin = process.env.TIDEGATE_BIN, model = process.env.TG_RAND_MODEL, tmp = process.env.TG_TMP;
  fs.writeFileSync(`${tmp}/lp.txt`, "<|startoftext|><|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n");
  const ids = JSON.parse(execFileSync(bin, ["engine", "tokenize", "-m", model, "--text-file", `${tmp}/lp.txt`]).toString());
  execFileSync(bin, ["engine", "logits", "-m", model, "--tokens", ids.join(","), "--prefill", String(ids.length), "--rows", String(ids.length - 1), "--out", `${tmp}/lp.f32`]);
  const buf = fs.readFileSync(`${tmp}/lp.f32`);
  const row = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  let mx = -Infinity;
  for (const v of row) mx = Math.max(mx, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - mx);
  const sorted = Array.from(row, (v) => v - mx - Math.log(s)).sort((a, b) => b - a);
  check("openai sampled logprob is the engine's", sorted.some((v) => Math.abs(v - lp[0].logprob) < 1e-3), `${lp[0].logprob}`);
  check("openai top_logprobs are the engine's", lp[0].top_logprobs.every((t, i) => Math.abs(t.logprob - sorted[i]) < 1e-3), JSON.stringify(lp[0].top_logprobs.map((t) => t.logprob)));
});

done();
