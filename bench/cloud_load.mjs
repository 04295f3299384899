// cloud_load: our open-loop load generator for bench/cloud_overhead.sh.
//
// Open loop: request i is due at t0 + i/rate whatever happened to the ones
// before, and its latency is measured from that due time (not from when it
// was actually sent), so a slow server cannot hide queueing by slowing the
// generator down (wrk and other closed-loop tools do). Keep-alive
// connections, as many as needed. Prints one JSON line.
//
//   node cloud_load.mjs --url URL --rate R --seconds S [--ca PEM]
//        [--header 'k: v']... [--body JSON] [--closed N]
// --closed N: instead, N requests always in flight for S seconds
// (throughput: requests/s completed).
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const opt = { headers: {}, rate: 1, seconds: 5, closed: 0, warmup: 20 };
for (let i = 0; i < args.length; i++) {
  const a = args[i], v = args[i + 1];
  if (a === "--url") opt.url = new URL(v);
  else if (a === "--rate") opt.rate = Number(v);
  else if (a === "--seconds") opt.seconds = Number(v);
  else if (a === "--ca") opt.ca = readFileSync(v);
  else if (a === "--body") opt.body = v;
  else if (a === "--closed") opt.closed = Number(v);
  else if (a === "--warmup") opt.warmup = Number(v);
  else if (a === "--header") {
    const k = v.indexOf(":");
    opt.headers[v.slice(0, k).trim().toLowerCase()] = v.slice(k + 1).trim();
  } else throw new Error(`unknown argument ${a}`);
  i++;
}
if (!opt.url) throw new Error("--url is required");
const body = Buffer.from(opt.body || JSON.stringify({ model: "mock-gpt", max_tokens: 16, messages: [{ role: "user", content: "Tell me about tides" }] }));
const tls = opt.url.protocol === "https:";
const mod = tls ? https : http;
const agent = new mod.Agent({ keepAlive: true, maxSockets: 4096, ...(tls ? { ca: opt.ca } : {}) });
const reqOpts = {
  agent,
  method: "POST",
  host: opt.url.hostname,
  port: opt.url.port,
  path: opt.url.pathname,
  headers: { "content-type": "application/json", "content-length": body.length, ...opt.headers },
};

// One request; resolves with ok (2xx and a body that parses).
function one() {
  return new Promise((resolve) => {
    const req = mod.request(reqOpts, (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("end", () => {
        let ok = res.statusCode >= 200 && res.statusCode < 300;
        if (ok) try { JSON.parse(Buffer.concat(parts)); } catch { ok = false; }
        resolve(ok);
      });
      res.on("error", () => resolve(false));
    });
    req.on("error", () => resolve(false));
    req.end(body);
  });
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const r3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);

// Warm-up: open the connections, let JITs and caches settle (not measured).
for (let i = 0; i < opt.warmup; i++) await Promise.all([one(), one(), one(), one()]);

const out = { url: opt.url.href, mode: opt.closed ? "closed" : "open" };
if (opt.closed) {
  let n = 0, errors = 0;
  const t0 = performance.now(), end = t0 + opt.seconds * 1000;
  await Promise.all(Array.from({ length: opt.closed }, async () => {
    while (performance.now() < end) {
      if (await one()) n++;
      else errors++;
    }
  }));
  const s = (performance.now() - t0) / 1000;
  Object.assign(out, { concurrency: opt.closed, completed: n, errors, seconds: r3(s), rps: Math.round(n / s) });
} else {
  const total = Math.max(1, Math.round(opt.rate * opt.seconds));
  const lat = [];
  let errors = 0, sent = 0, maxLag = 0;
  const t0 = performance.now() + 5;
  await new Promise((resolveAll) => {
    let pending = total;
    const fire = (due) => {
      one().then((ok) => {
        if (ok) lat.push(performance.now() - due);
        else errors++;
        if (--pending === 0) resolveAll();
      });
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total) {
        const due = t0 + (sent * 1000) / opt.rate;
        if (due > now) break;
        maxLag = Math.max(maxLag, now - due);
        fire(due);
        sent++;
      }
      if (sent < total) {
        const next = t0 + (sent * 1000) / opt.rate - performance.now();
        // Timers are coarse: sleep only when the next one is far, else spin
        // on the event loop (setImmediate lets responses in).
        if (next > 2) setTimeout(tick, next - 1);
        else setImmediate(tick);
      }
    };
    tick();
  });
  lat.sort((a, b) => a - b);
  Object.assign(out, {
    rate: opt.rate, requests: total, ok: lat.length, errors,
    p50_ms: r3(pct(lat, 50)), p90_ms: r3(pct(lat, 90)), p99_ms: r3(pct(lat, 99)), max_ms: r3(lat[lat.length - 1] ?? null),
    send_lag_max_ms: r3(maxLag),
  });
}
agent.destroy();
console.log(JSON.stringify(out));
