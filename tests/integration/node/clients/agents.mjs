// OpenAI Agents SDK: its default model provider (OpenAIProvider, Responses
// API) given an OpenAI client for Tidegate, one Runner per server (the
// provider caches its client); tracing off (no network).
import { Agent, Runner, OpenAIProvider, tool, setTracingDisabled } from "@openai/agents";
import OpenAI from "openai";
import { z } from "zod";
import { TEXT_URL, JSON_URL, TOOL_URL, MODEL, TEXT, OBJ, check, eq, step, done } from "./common.mjs";

setTracingDisabled(true);
const runner = (baseURL) =>
  new Runner({ modelProvider: new OpenAIProvider({ openAIClient: new OpenAI({ baseURL, apiKey: "unused" }) }) });

await step("agents run", async () => {
  const r = await runner(TEXT_URL).run(new Agent({ name: "w", instructions: "Answer briefly.", model: MODEL }), "Weather in Oslo?");
  eq("agents finalOutput", TEXT, r.finalOutput);
});

await step("agents streamed run", async () => {
  const r = await runner(TEXT_URL).run(new Agent({ name: "w", model: MODEL }), "Weather?", { stream: true });
  let t = "";
  for await (const chunk of r.toTextStream()) t += chunk;
  await r.completed;
  eq("agents streamed text", TEXT, t);
});

await step("agents outputType", async () => {
  const r = await runner(JSON_URL).run(new Agent({ name: "w", model: MODEL, outputType: z.object({ city: z.string(), temp: z.number(), sunny: z.boolean() }) }), "Weather?");
  eq("agents structured finalOutput", OBJ, r.finalOutput);
});

await step("agents forced tool call", async () => {
  let ran = null;
  const getWeather = tool({ name: "get_weather", description: "Weather for a city", parameters: z.object({ city: z.string() }), execute: async ({ city }) => { ran = city; return "sunny, 21C"; } });
  const agent = new Agent({ name: "w", model: MODEL, tools: [getWeather], modelSettings: { toolChoice: "required" }, toolUseBehavior: "stop_on_first_tool" });
  const r = await runner(TOOL_URL).run(agent, "Weather in Oslo?");
  eq("agents tool ran with", "Oslo", ran);
  eq("agents output is the tool's", "sunny, 21C", r.finalOutput);
});

done();
