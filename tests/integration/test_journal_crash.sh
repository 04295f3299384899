#!/usr/bin/env bash
# Crash test for the journal (#9): the real gateway under concurrent load is
# killed with SIGKILL at random moments and restarted on the same journal,
# KILLS times (50 here, 300 under `scripts/test --long`). Clients keep their
# own ledger (request id, status). At the end:
#   - `journal check --strict` holds: every request has its ACCEPTED with
#     the body and exactly one terminal state (after at most one restart);
#   - every request a client saw answered 200 is COMPLETED in the journal
#     with the very body the client got;
#   - every restart's recovery succeeded (the server came up each time).
# Bounded: about 1-2 minutes on 2 cores.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

KILLS=${TG_CRASH_KILLS:-$([ "${TIDEGATE_LONG:-0}" = 1 ] && echo 300 || echo 50)}
CLIENTS=6
J=$TMP/journal
mkdir -p "$TMP/ledger" "$TMP/bodies"

client() { # client N: posts until the server is gone
    local n=$1 i=0 code rid
    while :; do
        i=$((i + 1))
        local b="$TMP/bodies/$n.$i" h="$TMP/ledger/$n.$i.hdr"
        code=$(curl -s -o "$b" -D "$h" -w '%{http_code}' --max-time 20 \
            -H 'content-type: application/json' \
            -d "{\"messages\":[{\"role\":\"user\",\"content\":\"client $n call $i\"}],\"max_tokens\":$((1 + i % 6)),\"seed\":$i}" \
            "$BASE/v1/chat/completions")
        # A response the kill cut (head seen, body not all there) is not an
        # answer the client got: recorded as cut, not as its status.
        [ $? -ne 0 ] && [ "$code" != 000 ] && code="cut$code"
        rid=$(header x-request-id "$h")
        echo "$rid $code $b" >>"$TMP/ledger/$n.txt"
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
let ok200 = 0, bad = 0, other = 0;
for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean)) {
  const [rid, code, file] = line.split(" ");
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
console.log(`${ok200} ${bad} ${other} ${byId.size}`);
' "$TMP/dump.jsonl" "$TMP/ledger.all" >"$TMP/verify.out" 2>"$TMP/verify.err"
read -r n200 nbad nother nids <"$TMP/verify.out" || true
echo "ledger: ${n200:-?} answered 200, ${nother:-?} other answers (cut by the kills), ${nids:-?} ids journaled"
check "every 200 the clients got is COMPLETED in the journal with the same body" 0 "${nbad:-x}"
[ "${n200:-0}" -gt 0 ] && ok "load reached the engine (${n200} completions)" || bad "no request completed: $(cat "$TMP/verify.err")"
finish
