// LangChain.js ChatOpenAI, default settings.
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, ToolMessage } from "@langchain/core/messages";
import { z } from "zod";
import { TEXT_URL, JSON_URL, TOOL_URL, MODEL, TEXT, OBJ, check, eq, step, done } from "./common.mjs";

const chat = (baseURL, extra = {}) => new ChatOpenAI({ model: MODEL, apiKey: "unused", configuration: { baseURL }, maxRetries: 0, ...extra });

await step("langchain invoke", async () => {
  const r = await chat(TEXT_URL).invoke("Weather in Oslo?");
  eq("langchain content", TEXT, r.content);
});

await step("langchain stream", async () => {
  let t = "";
  for await (const c of await chat(TEXT_URL).stream("Weather?")) t += c.content;
  eq("langchain streamed", TEXT, t);
});

await step("langchain Responses API invoke", async () => {
  const r = await chat(TEXT_URL, { useResponsesApi: true }).invoke("Weather?");
  const text = typeof r.content === "string" ? r.content : r.content.map((c) => c.text ?? "").join("");
  eq("langchain responses text", TEXT, text);
});

await step("langchain Responses API stream", async () => {
  let t = "";
  for await (const c of await chat(TEXT_URL, { useResponsesApi: true }).stream("Weather?"))
    t += typeof c.content === "string" ? c.content : c.content.map((x) => x.text ?? "").join("");
  eq("langchain responses streamed", TEXT, t);
});

await step("langchain withStructuredOutput", async () => {
  const s = chat(JSON_URL).withStructuredOutput(z.object({ city: z.string(), temp: z.number(), sunny: z.boolean() }), { name: "weather" });
  eq("langchain structured", OBJ, await s.invoke("Weather?"));
});

await step("langchain forced tool call", async () => {
  const m = chat(TOOL_URL).bindTools([{ type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }], { tool_choice: "required" });
  const r = await m.invoke("Weather in Oslo?");
  eq("langchain tool call", [{ name: "get_weather", args: { city: "Oslo" } }], r.tool_calls.map((t) => ({ name: t.name, args: t.args })));
});

await step("langchain tool round trip over the Responses API", async () => {
  const tools = [{ type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
  const ask = new HumanMessage("Weather in Oslo?");
  const first = await chat(TOOL_URL, { useResponsesApi: true }).bindTools(tools).invoke([ask]);
  eq("langchain responses tool call", [{ name: "get_weather", args: { city: "Oslo" } }], first.tool_calls.map((t) => ({ name: t.name, args: t.args })));
  const result = new ToolMessage({ tool_call_id: first.tool_calls[0].id, content: "21 C and sunny" });
  const second = await chat(TEXT_URL, { useResponsesApi: true }).bindTools(tools).invoke([ask, first, result]);
  const text = typeof second.content === "string" ? second.content : second.content.map((c) => c.text ?? "").join("");
  eq("langchain round trip answer", TEXT, text);
});

done();
