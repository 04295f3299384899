#!/usr/bin/env node
// mock_cloud: an OpenAI-compatible chat-completions server over TLS for
// Tidegate's tests, with faults on demand. Written on Node's own `https`
// module, independently of the gateway's HTTP server. See README.md beside
// this file for the interface; run with --help for the flags.
import https from "node:https";
import http from "node:http";
import http2 from "node:http2";
import fs from "node:fs";
import { once } from "node:events";
import crypto from "node:crypto";

const USAGE = `usage: node mock_cloud.mjs --cert PEM --key PEM [options]
  --cert PEM, --key PEM   the server certificate chain and key (required)
  --wrong-cert PEM, --wrong-key PEM
                          a certificate the client does not trust (fault wrong_cert)
  --host ADDR             address for both listeners (default 127.0.0.1)
  --port N                TLS port (default 0 = ephemeral)
  --admin-port N          plain-HTTP admin port (default 0 = ephemeral)
  --reply TEXT            default answer text
  --http2                 offer HTTP/2 by ALPN (HTTP/1.1 still accepted)
  --port-file FILE        also write "port admin_port" to FILE once listening
Prints one line "mock_cloud listening port=N admin_port=M" once both listen.`;

function parseArgs(argv) {
  const o = { host: "127.0.0.1", port: 0, adminPort: 0, reply: "The tide turns twice a day near the harbour." };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--cert": o.cert = v(); break;
      case "--key": o.key = v(); break;
      case "--wrong-cert": o.wrongCert = v(); break;
      case "--wrong-key": o.wrongKey = v(); break;
      case "--host": o.host = v(); break;
      case "--port": o.port = Number(v()); break;
      case "--admin-port": o.adminPort = Number(v()); break;
      case "--reply": o.reply = v(); break;
      case "--port-file": o.portFile = v(); break;
      case "--http2": o.http2 = true; break;
      case "-h": case "--help": console.log(USAGE); process.exit(0);
      default: throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  if (!o.cert || !o.key) throw new Error(`--cert and --key are required\n${USAGE}`);
  return o;
}

// A fault spec: "status=503;retry_after=2;delay_first_ms=300" (see README).
export function parseFault(spec) {
  const f = {};
  if (!spec) return f;
  for (const part of String(spec).split(/[;,]/)) {
    const p = part.trim();
    if (!p || p === "none") continue;
    const eq = p.indexOf("=");
    const k = eq < 0 ? p : p.slice(0, eq).trim();
    const v = eq < 0 ? "1" : p.slice(eq + 1).trim();
    const num = Number(v);
    f[k] = Number.isFinite(num) && v !== "" ? num : v;
  }
  return f;
}

const opts = parseArgs(process.argv.slice(2));
const mainCtx = { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) };
const wrongCtx = opts.wrongCert ? { cert: fs.readFileSync(opts.wrongCert), key: fs.readFileSync(opts.wrongKey) } : null;

// Run-time state, changed through the admin port.
const state = {
  fault: {},        // applies to every request (until changed) ...
  faultCount: -1,   // ... or to the next N requests (-1 = no limit)
  reply: opts.reply,
  requests: [],     // what was received (see README)
  refused: false,
  wrongCert: false,
};
const sockets = new Set();

let nextId = 1;
function record(req, bodyText) {
  let body = null;
  try { body = JSON.parse(bodyText); } catch { body = null; }
  const r = {
    n: nextId++,
    method: req.method,
    path: req.url,
    headers: req.headers,
    http_version: req.httpVersion,
    body,
    body_raw: body === null ? bodyText : undefined,
    received_at_ms: Date.now(),
    completed: false,
    client_closed: false,
  };
  state.requests.push(r);
  if (state.requests.length > 1000) state.requests.shift();
  return r;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (!ms) return resolve();
    const t = setTimeout(resolve, ms);
    signal.onabort = () => { clearTimeout(t); resolve(); };
  });
}

// The words of the answer, each one chunk (with its trailing space).
function pieces(text) {
  return text.match(/\S+\s*/g) || [text];
}

function takeFault(req) {
  let f = parseFault(req.headers["x-mock-fault"]);
  if (Object.keys(f).length === 0 && state.faultCount !== 0) {
    f = { ...state.fault };
    if (state.faultCount > 0) state.faultCount--;
  }
  return f;
}

async function chat(req, res, bodyText) {
  const rec = record(req, bodyText);
  const f = takeFault(req);
  const ac = new AbortController();
  res.on("close", () => {
    if (!rec.completed) rec.client_closed = true;
    ac.abort();
  });
  const body = rec.body;
  if (!body || !Array.isArray(body.messages)) {
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "body must be JSON with messages", type: "invalid_request_error", param: "messages", code: null } }));
    rec.completed = true;
    return;
  }
  if (f.refuse || f.reset_before) { // per request: drop the connection without answering
    // HTTP/2: drop the whole session (a refused stream would be retried).
    if (req.stream) req.stream.session.destroy();
    else req.socket.destroy();
    return;
  }
  if (f.hang) return; // never answer (the client's timeout must act)
  await sleep(f.delay_first_ms, ac.signal);
  if (ac.signal.aborted) return;
  if (f.status) {
    const h = { "content-type": "application/json" };
    if (f.retry_after !== undefined) h["retry-after"] = String(f.retry_after);
    res.writeHead(f.status, h);
    res.end(JSON.stringify({ error: { message: `mock fault: status ${f.status}`, type: f.status === 429 ? "rate_limit_error" : "server_error", param: null, code: null } }));
    rec.completed = true;
    return;
  }
  const model = body.model || "mock-model";
  const id = "chatcmpl-mock" + rec.n;
  const created = Math.floor(Date.now() / 1000);
  const text = f.long ? "tide ".repeat(f.long) : typeof f.reply === "string" ? f.reply : req.headers["x-mock-reply"] || state.reply;
  const words = pieces(text);
  const maxTok = body.max_completion_tokens || body.max_tokens || 0;
  const out = maxTok > 0 ? words.slice(0, maxTok) : words;
  const finish = maxTok > 0 && maxTok < words.length ? "length" : "stop";
  const promptTokens = JSON.stringify(body.messages).length >> 2;
  const usage = { prompt_tokens: promptTokens, completion_tokens: out.length, total_tokens: promptTokens + out.length };
  const tool = f.tool ? { name: "get_weather", args: ['{"city":', '"Oslo",', '"days":2}'] } : null;
  // logprobs: one entry per word, logprob -(i+1)/10, top_logprobs alternatives
  // (the word, then "alt<k>") as many as asked: a test can check each value.
  const lpEntry = (w, i) => {
    const lp = -(i + 1) / 10;
    const top = [];
    for (let k = 0; k < (body.top_logprobs || 0); k++) {
      const t = k === 0 ? w : `alt${k}`;
      top.push({ token: t, logprob: lp - k, bytes: [...Buffer.from(t)] });
    }
    return { token: w, logprob: lp, bytes: [...Buffer.from(w)], top_logprobs: top };
  };
  const logprobs = body.logprobs && !tool ? { content: out.map(lpEntry), refusal: null } : null;

  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    const message = { role: "assistant", content: tool ? null : out.join("") };
    if (tool) message.tool_calls = [{ id: "call_mock1", type: "function", function: { name: tool.name, arguments: tool.args.join("") } }];
    res.end(JSON.stringify({ id, object: "chat.completion", created, model, choices: [{ index: 0, message, logprobs, finish_reason: tool ? "tool_calls" : finish }], usage }));
    rec.completed = true;
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const send = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const chunk = (delta, finish_reason = null, lp = null) => ({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, logprobs: lp, finish_reason }] });
  let sent = 0; // content/tool chunks written
  const cut = async () => {
    if (f.reset_after !== undefined && sent >= f.reset_after) {
      // Let the bytes already written leave, then reset the connection.
      await sleep(20, ac.signal);
      // A TLS socket cannot send a TCP RST from Node; destroying it without
      // close_notify is what the client sees of a cut link (EOF mid-body).
      if (req.stream) req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else req.socket.destroy();
      return true;
    }
    if (f.malformed !== undefined && sent >= (f.malformed === 1 ? 1 : f.malformed)) {
      res.write("data: {\"id\": \"broken\", \"choices\": [ {\"delta\": \n\n");
      await sleep(20, ac.signal);
      res.end();
      return true;
    }
    return false;
  };
  send(chunk({ role: "assistant", content: "" }));
  const steps = tool
    ? tool.args.map((a, i) => ({ tool_calls: [i === 0 ? { index: 0, id: "call_mock1", type: "function", function: { name: tool.name, arguments: a } } : { index: 0, function: { arguments: a } }] }))
    : out.map((w) => ({ content: w }));
  for (const [i, d] of steps.entries()) {
    if (ac.signal.aborted) return;
    if (await cut()) return;
    if (sent > 0) await sleep(f.delay_chunk_ms, ac.signal);
    if (ac.signal.aborted) return;
    const more = send(chunk(d, null, logprobs ? { content: [logprobs.content[i]], refusal: null } : null));
    sent++;
    rec.chunks_written = sent;
    // A long answer honours TCP flow control (waits for drain), so a test
    // sees whether the client (the gateway) stopped reading.
    if (f.long && !more) await new Promise((r) => { res.once("drain", r); res.once("close", r); });
  }
  if (await cut()) return;
  send(chunk({}, tool ? "tool_calls" : finish));
  if (body.stream_options && body.stream_options.include_usage) send({ id, object: "chat.completion.chunk", created, model, choices: [], usage });
  res.write("data: [DONE]\n\n");
  rec.completed = true;
  res.end();
}

function models(res) {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ object: "list", data: [{ id: "mock-model", object: "model", created: 0, owned_by: "mock" }] }));
}

// Connections by whether a request is in flight on them, so that a fault
// change can start clients on fresh connections (a reused connection that
// dies before any answer is silently retried by libcurl, hiding the fault)
// without cutting requests in flight (a "hang" must stay hung until the
// client's own timeout acts). Keys: TLS sockets (HTTP/1.1), h2 sessions.
const busy = new WeakMap();
const tlsConns = new Set();
function track(c) {
  tlsConns.add(c);
  c.on("close", () => tlsConns.delete(c));
}
function dropIdle() {
  for (const c of tlsConns) if (!(busy.get(c) > 0)) c.destroy();
}

const onRequest = (req, res) => {
  const conn = req.stream ? req.stream.session : req.socket;
  busy.set(conn, (busy.get(conn) || 0) + 1);
  res.on("close", () => busy.set(conn, busy.get(conn) - 1));
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", () => {
    const text = Buffer.concat(parts).toString("utf8");
    if (req.method === "POST" && req.url.replace(/\?.*/, "") === "/v1/chat/completions") chat(req, res, text);
    else if (req.method === "GET" && req.url === "/v1/models") models(res);
    else {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error", param: null, code: null } }));
    }
  });
};
const server = opts.http2
  ? http2.createSecureServer({ ...mainCtx, allowHTTP1: true }, onRequest)
  : https.createServer({ ...mainCtx, keepAlive: true }, onRequest);
server.keepAliveTimeout = 30000;
server.on("connection", (s) => {
  sockets.add(s);
  s.on("close", () => sockets.delete(s));
});
server.on("secureConnection", (s) => { if (s.alpnProtocol !== "h2") track(s); });
if (opts.http2) server.on("session", track);
server.on("tlsClientError", () => {}); // a client refusing our certificate is a test case

async function listenMain(port) {
  server.listen(port, opts.host);
  await once(server, "listening");
}

// Refuse: stop listening (connections are refused by the kernel) and drop
// every open connection; un-refuse listens again on the same port.
async function setRefused(on) {
  if (on === state.refused) return;
  state.refused = on;
  if (on) {
    const closed = new Promise((r) => server.close(r));
    for (const s of sockets) s.destroy();
    await closed;
  } else {
    await listenMain(mainPort);
  }
}

function setWrongCert(on) {
  // Only a change of certificate drops connections: a /fault call that
  // leaves it alone must not cut requests in flight (a "hang" would turn
  // into a reset when the next fault is set).
  if (on === state.wrongCert) return;
  if (on && !wrongCtx) throw new Error("start the mock with --wrong-cert/--wrong-key");
  state.wrongCert = on;
  server.setSecureContext(on ? wrongCtx : mainCtx);
  // New ticket keys: a client resuming an old TLS session would skip the
  // certificate and never see the fault.
  server.setTicketKeys(crypto.randomBytes(48));
  for (const s of sockets) s.destroy(); // new connections get the new certificate
}

function adminJSON(res, status, obj) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(obj));
}

const admin = http.createServer((req, res) => {
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", async () => {
    let body = {};
    try { body = parts.length ? JSON.parse(Buffer.concat(parts).toString("utf8")) : {}; } catch {
      return adminJSON(res, 400, { error: "body is not JSON" });
    }
    try {
      if (req.method === "GET" && req.url === "/requests") return adminJSON(res, 200, state.requests);
      if (req.method === "POST" && req.url === "/fault") {
        const f = parseFault(body.fault);
        await setRefused(!!f.refuse);
        setWrongCert(!!f.wrong_cert);
        delete f.refuse;
        delete f.wrong_cert;
        state.fault = f;
        state.faultCount = body.count === undefined ? -1 : Number(body.count);
        dropIdle();
        return adminJSON(res, 200, { fault: state.fault, count: state.faultCount, refused: state.refused, wrong_cert: state.wrongCert });
      }
      if (req.method === "POST" && req.url === "/reply") {
        state.reply = String(body.reply ?? opts.reply);
        return adminJSON(res, 200, { reply: state.reply });
      }
      if (req.method === "POST" && req.url === "/reset") {
        await setRefused(false);
        setWrongCert(false);
        state.fault = {};
        state.faultCount = -1;
        state.requests = [];
        state.reply = opts.reply;
        return adminJSON(res, 200, { ok: true });
      }
      if (req.method === "GET" && req.url === "/state") return adminJSON(res, 200, { fault: state.fault, count: state.faultCount, refused: state.refused, wrong_cert: state.wrongCert, open_connections: sockets.size, requests: state.requests.length });
      adminJSON(res, 404, { error: "unknown admin call" });
    } catch (e) {
      adminJSON(res, 400, { error: String(e.message || e) });
    }
  });
});

await listenMain(opts.port);
const mainPort = server.address().port;
admin.listen(opts.adminPort, opts.host);
await once(admin, "listening");
const adminPort = admin.address().port;
if (opts.portFile) fs.writeFileSync(opts.portFile, `${mainPort} ${adminPort}\n`);
console.log(`mock_cloud listening port=${mainPort} admin_port=${adminPort}`);
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
