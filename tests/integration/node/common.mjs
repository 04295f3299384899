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

let checks = 0;
let fails = 0;
export function check(name, cond, detail = "") {
  checks++;
  if (cond) console.log(`ok   ${name}`);
  else {
    fails++;
    console.log(`FAIL ${name}${detail ? ": " + detail : ""}`);
  }
}
export function eq(name, want, got) {
  const w = JSON.stringify(want), g = JSON.stringify(got);
  check(name, w === g, `want ${w}, got ${g}`);
}
export function done() {
  console.log(`${checks} checks, ${fails} failed`);
  process.exit(fails ? 1 : 0);
}
