// sseEvents: the events of a text/event-stream response body, in order, as
// { id, data, raw }: id the event's `id:` field (undefined without one),
// data its `data:` lines joined with "\n" ("" without any), raw its text.
// One reader for every Node test and bench that reads our streams.
export async function* sseEvents(body) {
  const dec = new TextDecoder();
  let buf = "";
  for await (const part of body) {
    buf += dec.decode(part, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const raw = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const lines = raw.split("\n");
      const id = lines.filter((l) => l.startsWith("id: ")).map((l) => l.slice(4))[0];
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      yield { id, data, raw };
    }
  }
}
