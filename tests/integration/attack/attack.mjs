// Attack driver for tests/integration/test_attack.sh: hostile clients
// against a running `tidegate serve` on loopback, with bounds asserted.
// Plain Node (no npm packages): raw sockets, so nothing is normalized away.
//
//   node attack.mjs CASE PORT PID [key=value ...]
//
// Every case prints `ok ...` / `FAIL ...` lines like the bash tests, then
// `figure NAME VALUE` lines the report quotes, and exits 1 on any FAIL.
// Counts and times are bounded: each case ends within ~30 s.
import net from "node:net";
import fs from "node:fs";

const [kase, portS, pidS, ...rest] = process.argv.slice(2);
const PORT = Number(portS);
const PID = Number(pidS);
const opt = Object.fromEntries(rest.map((a) => a.split("=", 2)));
const num = (k, d) => (opt[k] !== undefined ? Number(opt[k]) : d);

let checks = 0,
  fails = 0;
function check(name, cond, detail = "") {
  checks++;
  if (cond) console.log(`ok   ${name}`);
  else {
    fails++;
    console.log(`FAIL ${name}${detail ? ": " + detail : ""}`);
  }
}
const eq = (name, want, got) => check(name, want === got, `want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
const figure = (name, value) => console.log(`figure ${name} ${value}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// /proc/PID/status fields in KiB: VmRSS now, VmHWM the peak so far (the
// kernel keeps the peak, so no sampling can miss it).
function procKiB(field) {
  const m = fs.readFileSync(`/proc/${PID}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return m ? Number(m[1]) : NaN;
}

// One raw exchange: sends `data`, collects everything until the server
// closes or `ms` pass. Resolves {text, buf, closed, ms}.
function raw(data, { ms = 5000, port = PORT } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks = [];
    const s = net.connect(port, "127.0.0.1");
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const buf = Buffer.concat(chunks);
      resolve({ buf, text: buf.toString("latin1"), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), ms);
    s.on("connect", () => s.write(data));
    s.on("data", (d) => chunks.push(d));
    s.on("end", () => finish(true));
    s.on("close", () => finish(true));
    s.on("error", () => finish(true));
  });
}
const statusOf = (text) => {
  const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
  return m ? Number(m[1]) : 0;
};
// The last response's body (after the last blank line of a head).
function bodyOf(buf) {
  const t = buf.toString("latin1");
  const i = t.lastIndexOf("\r\n\r\n");
  return i < 0 ? Buffer.alloc(0) : buf.subarray(i + 4);
}

// A client that pipelines `payload` and never reads: written in 64 KiB
// pieces so what the kernel took can be counted (s.taken).
function pipeliner(payload) {
  const s = net.connect(PORT, "127.0.0.1");
  s.on("error", () => {});
  s.pause(); // never read: responses pile up on the server's side
  s.taken = 0;
  let off = 0;
  const pump = () => {
    while (off < payload.length && !s.destroyed) {
      const piece = payload.subarray(off, off + (64 << 10));
      off += piece.length;
      const more = s.write(piece, (err) => {
        if (!err) s.taken += piece.length;
      });
      if (!more) return s.once("drain", pump);
    }
  };
  s.on("connect", pump);
  return s;
}

// A GET that should always work: the loop is alive and not starved.
async function healthy(label) {
  const r = await raw("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", { ms: 5000 });
  eq(`${label}: /healthz still answers`, 200, statusOf(r.text));
}

// ---------------------------------------------------------------- flood --
// Clients pipeline MB of `GET /healthz` and never read a byte. The server
// must stop reading them once their unsent output passes the per-connection
// limit, so its memory stays flat however much they send.
async function flood() {
  const conns = num("conns", 4);
  const mib = num("mib", 10);
  const rssMax = num("rss_max_mib", 48);
  const one = Buffer.from("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
  const payload = Buffer.alloc(Math.floor((mib << 20) / one.length) * one.length);
  for (let o = 0; o < payload.length; o += one.length) one.copy(payload, o);
  await healthy("before");
  const base = procKiB("VmRSS");
  const socks = [];
  for (let i = 0; i < conns; i++) socks.push(pipeliner(payload));
  // Wait until the server stops taking bytes (or took everything), at most
  // 20 s: progress is what the kernel accepted from each client.
  const sent = () => socks.reduce((a, s) => a + s.taken, 0);
  let last = -1,
    still = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 20000) {
    await sleep(250);
    const now = sent();
    still = now === last ? still + 1 : 0;
    last = now;
    if (still >= 6 || now >= conns * payload.length) break;
  }
  const accepted = sent();
  await healthy("during flood");
  const hwm = procKiB("VmHWM");
  const grew = (hwm - base) / 1024;
  figure("flood_clients", conns);
  figure("flood_sent_mib_per_client", mib);
  figure("flood_taken_mib_total", (accepted / 1048576).toFixed(1));
  figure("flood_rss_growth_mib", grew.toFixed(1));
  check(`flood: server stopped reading (${(accepted / 1048576).toFixed(1)} of ${conns * mib} MiB taken)`,
    accepted < conns * payload.length);
  check(`flood: peak RSS growth ${grew.toFixed(1)} MiB < ${rssMax} MiB`, grew < rssMax);
  for (const s of socks) s.destroy();
  await healthy("after flood");
}

// --------------------------------------------------------------- budget --
// With a small global budget (1 MiB), two clients hold half-sent bodies of
// 400 KiB each; a third request that would push past the budget is refused
// with 503 + Retry-After before its body is read, instead of the process
// growing. The admin listener's gauge tells when the bodies are held.
async function budget() {
  const aport = num("admin_port", 0);
  const hold = 400 << 10;
  const holders = [];
  for (let i = 0; i < 2; i++) {
    const s = net.connect(PORT, "127.0.0.1");
    s.on("error", () => {});
    s.on("connect", () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${hold + 10000}\r\n\r\n`);
      s.write(Buffer.alloc(hold, 0x20));
    });
    holders.push(s);
  }
  let held = 0;
  for (let i = 0; i < 100 && held < 2 * hold; i++) {
    const m = (await raw("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", { port: aport })).text.match(/^tidegate_http_buffered_bytes (\d+)/m);
    held = m ? Number(m[1]) : 0;
    if (held < 2 * hold) await sleep(100);
  }
  figure("budget_held_bytes", held);
  check(`budget: the server holds the two partial bodies (${held} bytes)`, held >= 2 * hold);
  const probe = `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${300 << 10}\r\nConnection: close\r\n\r\n`;
  const r = await raw(probe, { ms: 10000 });
  eq("budget: a request past the memory budget gets 503", 503, statusOf(r.text));
  check("budget: 503 carries Retry-After", /\r\nretry-after: \d+/i.test(r.text), r.text.slice(0, 300));
  check("budget: 503 is OpenAI error JSON", /"code":"memory_budget_exceeded"/.test(r.text), r.text.slice(0, 300));
  for (const s of holders) s.destroy();
  // Once the holders are gone the budget is free again (bounded poll).
  const body = '{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}';
  const req = `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
  let ok = 0;
  for (let i = 0; i < 50 && ok !== 200; i++) {
    ok = statusOf((await raw(req, { ms: 10000 })).text);
    if (ok !== 200) await sleep(100);
  }
  eq("budget: served again once the holders left", 200, ok);
}

// -------------------------------------------------------------- keyless --
// 200 clients without a key announce large bodies. Each must get 401 right
// after its headers (before any 100 Continue, before the body is read) and
// be closed; the server's memory must not hold their bodies.
async function keyless() {
  const n = num("clients", 200);
  const len = num("body_bytes", 1 << 20);
  const rssMax = num("rss_max_mib", 48);
  await healthy("before");
  const base = procKiB("VmRSS");
  const chunk = Buffer.alloc(64 << 10, 0x61);
  const one = (i) =>
    new Promise((resolve) => {
      const expect = i % 2 === 0;
      const s = net.connect(PORT, "127.0.0.1");
      let got = "",
        sent = 0,
        closed = false,
        answered = false;
      const timer = setTimeout(() => s.destroy(), 15000);
      const pump = () => {
        // Body bytes go out until the answer arrives (a real attacker would
        // not wait for 100 Continue either).
        while (!expect && !answered && !closed && sent < len) {
          sent += chunk.length;
          if (!s.write(chunk)) return s.once("drain", pump);
        }
      };
      s.on("connect", () => {
        s.write(
          `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${len}\r\n${expect ? "Expect: 100-continue\r\n" : ""}\r\n`,
        );
        pump();
      });
      s.on("data", (d) => {
        got += d.toString("latin1");
        answered = true;
      });
      const end = () => {
        if (closed) return;
        closed = true;
        clearTimeout(timer);
        resolve({ status: statusOf(got), cont: /^HTTP\/1\.1 100/.test(got), sent, closedByServer: true, got });
      };
      s.on("end", end);
      s.on("close", end);
      s.on("error", end);
    });
  const res = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  const n401 = res.filter((r) => r.status === 401).length;
  const n100 = res.filter((r) => r.cont).length;
  const hwm = procKiB("VmHWM");
  const grew = (hwm - base) / 1024;
  const sentMiB = res.reduce((a, r) => a + r.sent, 0) / 1048576;
  eq(`keyless: all ${n} clients got 401`, n, n401);
  eq("keyless: no 100 Continue sent to a keyless client", 0, n100);
  check("keyless: 401 says WWW-Authenticate: Bearer", res.every((r) => /\r\nwww-authenticate: bearer/i.test(r.got)));
  check("keyless: connection closed after the 401", res.every((r) => /\r\nconnection: close/i.test(r.got)));
  figure("keyless_clients", n);
  figure("keyless_declared_body_mib_each", (len / 1048576).toFixed(1));
  figure("keyless_body_mib_pushed_total", sentMiB.toFixed(1));
  figure("keyless_rss_growth_mib", grew.toFixed(1));
  check(`keyless: peak RSS growth ${grew.toFixed(1)} MiB < ${rssMax} MiB`, grew < rssMax);
  await healthy("after keyless");
}

// ------------------------------------------------------------- slowbody --
// A body (and a head) trickled one byte at a time: the timeout is a
// deadline for the whole body (head), not a silence timer.
function trickle(prefix, drip, deadlineMs) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(PORT, "127.0.0.1");
    let got = "",
      iv = null,
      done = false;
    const end = () => {
      if (done) return;
      done = true;
      clearInterval(iv);
      clearTimeout(cap);
      s.destroy();
      resolve({ status: statusOf(got), ms: Date.now() - t0, got });
    };
    const cap = setTimeout(end, deadlineMs * 4 + 5000);
    s.on("connect", () => {
      s.write(prefix);
      iv = setInterval(() => s.write(drip), 100);
    });
    s.on("data", (d) => (got += d.toString("latin1")));
    s.on("end", end);
    s.on("close", end);
    s.on("error", end);
  });
}
async function slowbody() {
  const dl = num("deadline_ms", 1500);
  const b = await trickle(
    "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    " ",
    dl,
  );
  eq("slow body: 408", 408, b.status);
  figure("slowbody_deadline_ms", dl);
  figure("slowbody_closed_after_ms", b.ms);
  check(`slow body: closed at its deadline (${b.ms} ms, deadline ${dl} ms)`, b.ms >= dl - 100 && b.ms < dl * 2 + 1000);
  const h = await trickle("GET /healthz HTTP/1.1\r\n", "X", dl);
  eq("slow head: 408", 408, h.status);
  figure("slowhead_closed_after_ms", h.ms);
  check(`slow head: closed at its deadline (${h.ms} ms)`, h.ms >= dl - 100 && h.ms < dl * 2 + 1000);
  await healthy("after slow clients");
}

// --------------------------------------------------------------- strict --
async function strict() {
  const get = (extra, path = "/healthz", method = "GET", ver = "1.1") =>
    raw(`${method} ${path} HTTP/${ver}\r\n${extra}Connection: close\r\n\r\n`);
  const cases = [
    ["obs-fold continuation line", "Host: t\r\nX-A: a\r\n b\r\n", 400],
    ["folded Content-Length", "Host: t\r\nContent-Length:\r\n 0\r\n", 400],
    ["HTTP/1.1 without Host", "", 400],
    ["HTTP/1.1 with two Host", "Host: a\r\nHost: b\r\n", 400],
    ["Content-Length with Transfer-Encoding", "Host: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n", 400],
    ["two different Content-Length", "Host: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n", 400],
    ["well-formed GET", "Host: t\r\n", 200],
  ];
  for (const [name, extra, want] of cases) eq(`${name}: status`, want, statusOf((await get(extra)).text));
  eq("HTTP/1.0 without Host: status", 200, statusOf((await get("", "/healthz", "GET", "1.0")).text));
  for (const p of ["/healthz", "/readyz", "/v1/models"]) {
    const r = await get("Host: t\r\n", p, "HEAD");
    eq(`HEAD ${p}: status`, 200, statusOf(r.text));
    eq(`HEAD ${p}: no body`, 0, bodyOf(r.buf).length);
    check(`HEAD ${p}: content-length of the GET`, /\r\ncontent-length: [1-9]/i.test(r.text));
  }
  // JSON bodies: each refused with 400 naming the field (or invalid_json).
  const post = (body) =>
    raw(
      Buffer.concat([
        Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
        body,
      ]),
    );
  const msg = (content) => Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), content, Buffer.from('"}]}')]);
  const J = [
    ["single quotes", Buffer.from("{'messages':[]}"), "invalid_json", null],
    ["raw control character", msg(Buffer.from("a\tb")), "invalid_json", null],
    ["NaN", Buffer.from('{"messages":[{"role":"user","content":"x"}],"temperature":NaN}'), "invalid_json", null],
    ["overlong UTF-8", msg(Buffer.from([0xc0, 0xaf])), "invalid_utf8", "messages[0].content"],
    ["surrogate UTF-8", msg(Buffer.from([0xed, 0xa0, 0x80])), "invalid_utf8", "messages[0].content"],
    ["lone surrogate escape", msg(Buffer.from("\\ud800")), "invalid_utf8", "messages[0].content"],
    ["not UTF-8 at all", msg(Buffer.from([0xff, 0xfe])), "invalid_utf8", "messages[0].content"],
    ["duplicate key", Buffer.from('{"messages":[{"role":"user","role":"system","content":"x"}]}'), "duplicate_key", "messages[0].role"],
  ];
  for (const [name, body, code, param] of J) {
    const r = await post(body);
    eq(`JSON ${name}: status`, 400, statusOf(r.text));
    let j = null;
    try {
      j = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bodyOf(r.buf)));
    } catch (e) {}
    eq(`JSON ${name}: error.code`, code, j?.error?.code);
    if (param) eq(`JSON ${name}: error.param`, param, j?.error?.param);
  }
  // Error JSON that echoes the request stays valid UTF-8.
  const r = await raw(Buffer.concat([Buffer.from("GET /x"), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")]));
  eq("invalid UTF-8 in the path: 404", 404, statusOf(r.text));
  let valid = false;
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bodyOf(r.buf)));
    valid = true;
  } catch (e) {}
  check("invalid UTF-8 in the path: error JSON is valid UTF-8 JSON", valid, bodyOf(r.buf).toString("latin1"));
}

// --------------------------------------------------------------- admin --
async function admin() {
  const aport = num("admin_port", 0);
  const key = opt.admin_key;
  const get = (path, port, hdr = "") => raw(`GET ${path} HTTP/1.1\r\nHost: t\r\n${hdr}Connection: close\r\n\r\n`, { port });
  for (const p of ["/metrics", "/admin/state", "/admin/anything"])
    eq(`API port never serves ${p}`, 404, statusOf((await get(p, PORT)).text));
  eq("admin port does not serve the API (/v1/models)", 404, statusOf((await get("/v1/models", aport)).text));
  if (key) {
    eq("admin port without the admin key: 401", 401, statusOf((await get("/metrics", aport)).text));
    eq("admin port with a wrong key: 401", 401, statusOf((await get("/metrics", aport, "Authorization: Bearer nope\r\n")).text));
    eq("admin port with the admin key: /metrics 200", 200, statusOf((await get("/metrics", aport, `Authorization: Bearer ${key}\r\n`)).text));
  } else {
    eq("admin port: /metrics 200", 200, statusOf((await get("/metrics", aport)).text));
  }
  eq("admin port answers /healthz", 200, statusOf((await get("/healthz", aport)).text));
}

// ------------------------------------------------------------- capacity --
// Clients exactly filling max_active + queue_capacity give up on their
// requests and ask again at once: the places their canceled jobs held must
// be free for them, so no 429 ever; one client more than capacity does get
// 429 (the limit is real).
function chat(port, { abortAfterMs = 0, maxTokens = 64 } = {}) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ messages: [{ role: "user", content: "hello there" }], max_tokens: maxTokens, stream: true });
    const s = net.connect(port, "127.0.0.1");
    let got = "",
      done = false,
      timer = null;
    const end = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(statusOf(got));
    };
    s.on("connect", () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      if (abortAfterMs) timer = setTimeout(end, abortAfterMs);
      else timer = setTimeout(end, 60000);
    });
    s.on("data", (d) => {
      got += d.toString("latin1");
      // A refusal is final at once; an accepted stream runs until closed.
      if (statusOf(got) >= 400 && /\r\n\r\n/.test(got)) end();
    });
    s.on("end", end);
    s.on("close", end);
    s.on("error", end);
  });
}
async function capacity() {
  const cap = num("capacity", 6);
  const rounds = num("rounds", 5);
  let n429 = 0,
    total = 0;
  const client = async () => {
    for (let r = 0; r < rounds; r++) {
      const st = await chat(PORT, { abortAfterMs: 150 + 37 * r, maxTokens: 400 });
      total++;
      if (st === 429) n429++;
    }
  };
  await Promise.all(Array.from({ length: cap }, client));
  figure("capacity_clients", cap);
  figure("capacity_requests", total);
  figure("capacity_429", n429);
  eq(`capacity: ${total} give-up-and-retry requests at capacity, no 429`, 0, n429);
  // Exactly at capacity, concurrently, to the end: all 200.
  const full = await Promise.all(Array.from({ length: cap }, () => chat(PORT, { maxTokens: 8 })));
  eq(`capacity: ${cap} concurrent requests all 200`, cap, full.filter((s) => s === 200).length);
  // One more than capacity while all are busy: exactly the extra one is 429.
  const over = await Promise.all(Array.from({ length: cap + 1 }, () => chat(PORT, { abortAfterMs: 4000, maxTokens: 400 })));
  eq(`capacity: ${cap + 1} concurrent requests, one 429`, 1, over.filter((s) => s === 429).length);
}

const cases = { flood, budget, keyless, slowbody, strict, admin, capacity };
if (!cases[kase]) {
  console.log(`unknown case ${kase}; one of ${Object.keys(cases).join(" ")}`);
  process.exit(2);
}
await cases[kase]();
console.log(`${kase}: ${checks} checks, ${fails} failed`);
process.exit(fails ? 1 : 0);
