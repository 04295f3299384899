// slow_client: a client that stops reading. Sends one streamed chat
// completion over a raw socket (HTTP/1.1, Connection: close), reads nothing
// until GO_FILE exists (the socket stays paused, so the kernel buffers fill
// and the server's writes queue up), then reads to the end and prints one
// JSON line: bytes, content pieces equal to PIECE, [DONE] markers, error
// events. No dependencies.
//   node slow_client.mjs HOST PORT BODY_JSON GO_FILE PIECE
import net from "node:net";
import { existsSync } from "node:fs";

const [host, port, body, goFile, piece] = process.argv.slice(2);
const sock = net.connect({ host, port: Number(port) });
sock.on("connect", () => {
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
});
sock.pause();
while (!existsSync(goFile)) await new Promise((r) => setTimeout(r, 20));
const parts = [];
sock.on("data", (d) => parts.push(d));
sock.resume();
await new Promise((r) => sock.on("close", r));
const raw = Buffer.concat(parts).toString("utf8");
const count = (s) => raw.split(s).length - 1;
console.log(JSON.stringify({
  bytes: raw.length,
  status: Number((raw.match(/^HTTP\/1\.1 (\d+)/) || [])[1] || 0),
  pieces: count(`"content":${JSON.stringify(piece)}`),
  done: count("data: [DONE]"),
  errors: count('"error":'),
}));
