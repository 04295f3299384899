// Shared bits for the client tests: servers from the environment (see
// test_clients.sh), tiny asserts in the ok/FAIL line style of the bash tests.
export const TEXT_URL = process.env.TG_TEXT_URL; // scripted: plain text answer
export const JSON_URL = process.env.TG_JSON_URL; // scripted: a JSON object
export const TOOL_URL = process.env.TG_TOOL_URL; // scripted: one get_weather call
export const RAND_URL = process.env.TG_RAND_URL; // random-weight fixture model
export const MODEL = "tidegate/auto";
export const TEXT = "It is sunny in Oslo.";
export const OBJ = { city: "Oslo", temp: 21, sunny: true };

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
export async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, `threw ${e && e.constructor && e.constructor.name}: ${e && e.message}`.slice(0, 400));
  }
}
export function done() {
  console.log(`${checks} checks, ${fails} failed`);
  process.exit(fails ? 1 : 0);
}
