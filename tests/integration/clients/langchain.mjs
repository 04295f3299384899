// LangChain.js ChatOpenAI, default settings.
import { ChatOpenAI } from "@langchain/openai";
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

await step("langchain withStructuredOutput", async () => {
  const s = chat(JSON_URL).withStructuredOutput(z.object({ city: z.string(), temp: z.number(), sunny: z.boolean() }), { name: "weather" });
  eq("langchain structured", OBJ, await s.invoke("Weather?"));
});

await step("langchain forced tool call", async () => {
  const m = chat(TOOL_URL).bindTools([{ type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }], { tool_choice: "required" });
  const r = await m.invoke("Weather in Oslo?");
  eq("langchain tool call", [{ name: "get_weather", args: { city: "Oslo" } }], r.tool_calls.map((t) => ({ name: t.name, args: t.args })));
});

done();
