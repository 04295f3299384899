// Shared bits for the SDK tests: a client for TG_BASE_URL and tiny asserts
// that count checks and print one line each (same style as the bash tests).
import OpenAI from "openai";

export const baseURL = process.env.TG_BASE_URL;
if (!baseURL) throw new Error("TG_BASE_URL is not set");

export const client = new OpenAI({
  baseURL,
  apiKey: process.env.TG_API_KEY || "unused",
  maxRetries: 0,
  timeout: 60_000,
});

export { check, eq, done } from "./check.mjs";
