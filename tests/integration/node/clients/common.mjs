// Shared bits for the client tests: servers from the environment (see
// test_clients.sh), tiny asserts in the ok/FAIL line style of the bash tests.
export const TEXT_URL = process.env.TG_TEXT_URL; // scripted: plain text answer
export const JSON_URL = process.env.TG_JSON_URL; // scripted: a JSON object
export const TOOL_URL = process.env.TG_TOOL_URL; // scripted: one get_weather call
export const RAND_URL = process.env.TG_RAND_URL; // random-weight fixture model
export const MODEL = "tidegate/auto";
export const TEXT = "It is sunny in Oslo.";
export const OBJ = { city: "Oslo", temp: 21, sunny: true };

// check.mjs is node/check.mjs, copied beside this file by test_clients.sh.
export { check, eq, step, done } from "./check.mjs";
