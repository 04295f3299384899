// The tiny assert helpers every Node test shares: each check prints one
// `ok`/`FAIL` line (the style of the bash tests) and done() exits non-zero
// when any failed, after a count the test scripts grep for.
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
// Runs one async step; a throw is a failed check, not a crashed test.
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
