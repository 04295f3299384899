// Vercel AI SDK with @ai-sdk/openai, default settings: provider(model) is
// the Responses API.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, generateObject, tool, Output } from "ai";
import { z } from "zod";
import { TEXT_URL, JSON_URL, TOOL_URL, MODEL, TEXT, OBJ, check, eq, step, done } from "./common.mjs";

const p = (baseURL) => createOpenAI({ baseURL, apiKey: "unused" });

await step("ai generateText", async () => {
  const r = await generateText({ model: p(TEXT_URL)(MODEL), prompt: "Weather in Oslo?" });
  eq("ai generateText text", TEXT, r.text);
  check("ai usage", (r.usage.outputTokens ?? r.usage.completionTokens) > 0, JSON.stringify(r.usage));
});

await step("ai streamText", async () => {
  const r = streamText({ model: p(TEXT_URL)(MODEL), prompt: "Weather?" });
  let t = "";
  for await (const d of r.textStream) t += d;
  eq("ai streamText text", TEXT, t);
});

await step("ai generateObject", async () => {
  const r = await generateObject({ model: p(JSON_URL)(MODEL), schema: z.object({ city: z.string(), temp: z.number(), sunny: z.boolean() }), prompt: "Weather?" });
  eq("ai generateObject object", OBJ, r.object);
  // The helper the SDK now recommends: generateText with an output setting.
  const t = await generateText({ model: p(JSON_URL)(MODEL), output: Output.object({ schema: z.object({ city: z.string(), temp: z.number(), sunny: z.boolean() }) }), prompt: "Weather?" });
  eq("ai Output.object", OBJ, t.output ?? t.experimental_output);
});

await step("ai forced tool call + round trip", async () => {
  let ran = null;
  const tools = { get_weather: tool({ description: "Weather for a city", inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => { ran = city; return "sunny, 21C"; } }) };
  const r = await generateText({ model: p(TOOL_URL)(MODEL), tools, toolChoice: "required", prompt: "Weather in Oslo?" });
  eq("ai tool called with", "Oslo", ran);
  eq("ai tool call name", "get_weather", r.toolCalls[0]?.toolName);
  // Round trip: the tool result goes back to an answering model.
  const r2 = await generateText({ model: p(TEXT_URL)(MODEL), tools, messages: [{ role: "user", content: "Weather in Oslo?" }, ...r.response.messages] });
  eq("ai round trip answer", TEXT, r2.text);
});

done();
