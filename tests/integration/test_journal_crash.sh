#!/usr/bin/env bash
# Crash test for the journal (#9): the real gateway under concurrent load is
# killed with SIGKILL at random moments and restarted on the same journal,
# KILLS times (50 here, 300 under `scripts/test --long`). Clients keep their
# own ledger (request id, status). At the end:
#   - `journal check --strict` holds: every request has its ACCEPTED with
#     the body and exactly one terminal state (after at most one restart);
#   - every request a client saw answered 200 is COMPLETED in the journal
#     with the very body the client got;
#   - one client streams: every event it got, also of a stream a kill cut,
#     is the journal's CHUNK of that number (ids 1, 2, 3, ...), and a stream
#     that ended with [DONE] is COMPLETED with the text streamed (events are
#     durable before they are sent; a re-run continues the durable ones);
#   - every restart's recovery succeeded (the server came up each time).
# Bounded: about 1-2 minutes on 2 cores.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

KILLS=${TG_CRASH_KILLS:-$([ "${TIDEGATE_LONG:-0}" = 1 ] && echo 300 || echo 50)}
CLIENTS=6
J=$TMP/journal
mkdir -p "$TMP/ledger" "$TMP/bodies"

client() { # client N: posts until the server is gone (client K-1 streams)
    local n=$1 i=0 code rid extra="" mt kind=""
    while :; do
        i=$((i + 1))
        local b="$TMP/bodies/$n.$i" h="$TMP/ledger/$n.$i.hdr"
        mt=$((1 + i % 6))
        if [ "${n##*-}" = 1 ]; then # long streams (end-of-text banned) the kills cut
            extra=',"stream":true,"logit_bias":{"2":-100,"7":-100}' mt=$((100 + 37 * i % 200)) kind=s
        fi
        code=$(curl -sN -o "$b" -D "$h" -w '%{http_code}' --max-time 20 \
            -H 'content-type: application/json' \
            -d "{\"messages\":[{\"role\":\"user\",\"content\":\"client $n call $i\"}],\"max_tokens\":$mt,\"seed\":$i$extra}" \
            "$BASE/v1/chat/completions")
        # A response the kill cut (head seen, body not all there) is not an
        # answer the client got: recorded as cut, not as its status.
        [ $? -ne 0 ] && [ "$code" != 000 ] && code="cut$code"
        rid=$(header x-request-id "$h")
        echo "$rid $code $b $kind" >>"$TMP/ledger/$n.txt"
        rm -f "$h"
        [ "$code" = 000 ] && return 0
    done
}

started=0
for k in $(seq 1 "$KILLS"); do
    start_server "crash$k" -- --journal-dir "$J"
    started=$((started + 1))
    pids=()
    for c in $(seq 1 $CLIENTS); do client "$k-$c" & pids+=($!); done
    # A random moment 0.3-1.5 s into the load (not a synchronization).
    ms=$((300 + RANDOM % 1200))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null
    wait "${pids[@]}"
done
check "server restarted on the killed journal every time" "$KILLS" "$started"

# One more start recovers the last crash; a clean stop.
start_server final -- --journal-dir "$J"
grep -q 'journal_open' "$LOG" && ok "final start logged its journal recovery" || bad "no journal_open log"
stop_server
check "final server exits 0" 0 "$RC"

if "$TIDEGATE_BIN" journal check --strict "$J" >"$TMP/check.out" 2>&1; then
    ok "journal check --strict: $(tail -2 "$TMP/check.out" | head -1 | tr -s ' ')"
else
    bad "journal check --strict failed: $(head -20 "$TMP/check.out")"
fi

"$TIDEGATE_BIN" journal dump "$J" >"$TMP/dump.jsonl" || bad "journal dump failed"
cat "$TMP"/ledger/*.txt >"$TMP/ledger.all"
node -e '
const fs = require("fs");
const recs = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
const byId = new Map();
for (const r of recs) { if (!byId.has(r.id)) byId.set(r.id, []); byId.get(r.id).push(r); }
let ok200 = 0, bad = 0, other = 0, sEvents = 0, sDone = 0;
const fail = (rid, what) => { bad++; if (bad < 5) console.error("mismatch", rid, what); };
// A stream: every event the client got (cut by a kill or not) is the CHUNK
// of that number in the journal, numbered 1, 2, 3, ...; with [DONE] the
// request is COMPLETED with the text streamed.
function stream(rid, file) {
  const rs = byId.get(rid) || [];
  const chunks = new Map(rs.filter(r => r.type === "CHUNK").map(r => [r.payload.n, r.payload.data]));
  // Whole events only: the piece after the last blank line is a cut one
  // (no file: the kill came before any of the body).
  if (!fs.existsSync(file)) return;
  const events = fs.readFileSync(file, "utf8").split("\n\n");
  events.pop();
  let want = 1, text = "", done = false;
  for (const e of events) {
    const id = Number((e.match(/^id: (\d+)$/m) || [])[1]);
    const data = e.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
    if (id !== want++) return fail(rid, `event id ${id}, want ${want - 1}`);
    if (data === "[DONE]") { done = true; break; }
    const d = JSON.parse(data);
    if (JSON.stringify(chunks.get(id)) !== JSON.stringify(d)) return fail(rid, `event ${id} differs from its CHUNK`);
    for (const c of d.choices || []) if (c.delta && c.delta.content) text += c.delta.content;
    sEvents++;
  }
  if (!done) return;
  const fin = rs.filter(r => r.type === "COMPLETED");
  if (fin.length !== 1 || fin[0].payload.choices[0].message.content !== text) return fail(rid, "[DONE] without the streamed text COMPLETED");
  sDone++;
}
for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean)) {
  const [rid, code, file, kind] = line.split(" ");
  if (kind === "s") { if (rid) stream(rid, file); continue; }
  if (code !== "200") { other++; continue; }
  const rs = byId.get(rid) || [];
  const done = rs.filter(r => r.type === "COMPLETED");
  // A kill between the head and the body: curl reports 200 with no (or a
  // cut) body. The client did not get an answer, so nothing to compare.
  let got;
  try { got = JSON.parse(fs.readFileSync(file, "utf8")); } catch { other++; continue; }
  if (rs.length === 0 || rs[0].type !== "ACCEPTED" || done.length !== 1 ||
      JSON.stringify(done[0].payload) !== JSON.stringify(got)) {
    bad++; if (bad < 5) console.error("mismatch", rid, JSON.stringify(rs).slice(0, 300));
  } else ok200++;
}
console.log(`${ok200} ${bad} ${other} ${byId.size} ${sEvents} ${sDone}`);
' "$TMP/dump.jsonl" "$TMP/ledger.all" >"$TMP/verify.out" 2>"$TMP/verify.err"
read -r n200 nbad nother nids nsev nsdone <"$TMP/verify.out" || true
echo "ledger: ${n200:-?} answered 200, ${nother:-?} other answers (cut by the kills), ${nids:-?} ids journaled"
echo "streams: ${nsev:-?} events checked against their CHUNK records, ${nsdone:-?} streams ended with [DONE]"
check "every 200 the clients got is COMPLETED in the journal with the same body; every streamed event is its CHUNK" 0 "${nbad:-x}"
[ "${nsev:-0}" -gt 0 ] && ok "streams ran (${nsev} events)" || bad "no streamed event: $(cat "$TMP/verify.err")"
[ "${n200:-0}" -gt 0 ] && ok "load reached the engine (${n200} completions)" || bad "no request completed: $(cat "$TMP/verify.err")"
finish
