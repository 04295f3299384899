#!/usr/bin/env bash
# Attack suite (issue 13): hostile clients against the real binary on
# loopback, each bound asserted. Bounded: a few hundred connections at most,
# every case ends within ~30 s; the whole script takes about a minute.
#   flood     pipelined GET /healthz, never read: peak RSS growth bounded
#   budget    global memory budget: 503 + Retry-After past it (bodies held)
#   keyless   200 keyless clients announcing 1 MiB bodies: 401 before the
#             body (no 100 Continue), closed; peak RSS growth bounded
#   slowbody  body / head trickled a byte at a time: 408 at the deadline
#   strict    RFC 9112 framing, HEAD, strict JSON: each case's status
#   admin     /metrics and /admin/* only on the admin listener, key there
#   capacity  clients at exactly max_active + queue_capacity giving up and
#             asking again: no 429; one more than capacity: one 429
# Figures (`figure NAME VALUE` lines) are what the issue's note quotes.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
ATTACK="$(dirname "$0")/attack/attack.mjs"

attack() { # attack CASE [key=value ...] against $PORT/$PID
    node "$ATTACK" "$1" "$PORT" "$PID" "${@:2}" | tee "$TMP/attack-$1.out"
    local rc=${PIPESTATUS[0]}
    CHECKS=$((CHECKS + $(grep -c '^ok\|^FAIL' "$TMP/attack-$1.out")))
    FAILS=$((FAILS + $(grep -c '^FAIL' "$TMP/attack-$1.out")))
    [ "$rc" -eq 0 ] || [ "$(grep -c '^FAIL' "$TMP/attack-$1.out")" -gt 0 ] || bad "attack $1 exited $rc"
}
sane_exit() { # after stop_server: exit 0, no sanitizer report
    check "$1: server exit 0" 0 "$RC"
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$LOG"; then bad "$1: sanitizer report"; else ok "$1: no sanitizer reports"; fi
}

# A server that keeps stalled writers for 2 minutes, so only the output
# bound (not the write timeout) can keep the flood's memory down.
start_server flood TIDEGATE_WRITE_TIMEOUT_MS=120000
attack flood conns=4 mib=10 rss_max_mib=48
stop_server
sane_exit flood

start_server budget TIDEGATE_MEMORY_BUDGET_BYTES=1MiB
attack budget admin_port="$ADMIN_PORT"
stop_server
sane_exit budget

KEY=attack-test-key
ADMIN_KEY=attack-admin-key
start_server keyless TIDEGATE_API_KEY_SHA256="$(printf %s "$KEY" | sha256sum | cut -c1-64)" \
    TIDEGATE_ADMIN_KEY_SHA256="$(printf %s "$ADMIN_KEY" | sha256sum | cut -c1-64)"
attack keyless clients=200 body_bytes=1048576 rss_max_mib=48
attack admin admin_port="$ADMIN_PORT" admin_key="$ADMIN_KEY"
stop_server
sane_exit keyless

start_server slow TIDEGATE_BODY_TIMEOUT_MS=1500 TIDEGATE_HEADER_TIMEOUT_MS=1500
attack slowbody deadline_ms=1500
attack strict
attack admin admin_port="$ADMIN_PORT"
stop_server
sane_exit slow

# An admin listener off loopback without an admin key refuses to start
# (TEST-NET address: even a broken check could not expose anything).
out=$(cd "$TMP" && timeout 20 env TIDEGATE_ADMIN_LISTEN=192.0.2.1:0 "$TIDEGATE_BIN" serve \
    --listen 127.0.0.1:0 -m "$MODEL" --threads 1 2>&1)
rc=$?
check "non-loopback admin listener without a key: refused" 1 "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo 1 || echo 0)"
grep -q "admin.listen.*admin key\|admin key.*admin.listen" <<<"$out" && ok "refusal names admin.listen and the key" ||
    bad "refusal message: $out"

# FIFOs where files are wanted: refused at once with a clear error.
mkfifo "$TMP/fifo.gguf" "$TMP/fifo.pem"
out=$(cd "$TMP" && timeout 20 "$TIDEGATE_BIN" serve --listen 127.0.0.1:0 -m "$TMP/fifo.gguf" 2>&1)
rc=$?
check "FIFO as the model: exits (not hangs), non-zero" 1 "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo 1 || echo 0)"
grep -q "FIFO" <<<"$out" && ok "FIFO model: error says FIFO" || bad "FIFO model message: $out"
out=$(cd "$TMP" && timeout 20 env TIDEGATE_TLS_CERT="$TMP/fifo.pem" TIDEGATE_TLS_KEY="$TMP/fifo.pem" \
    "$TIDEGATE_BIN" serve --listen 127.0.0.1:0 -m "$MODEL" 2>&1)
rc=$?
check "FIFO as the TLS cert: exits (not hangs), non-zero" 1 "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo 1 || echo 0)"
grep -q "FIFO" <<<"$out" && ok "FIFO cert: error says FIFO" || bad "FIFO cert message: $out"

# Capacity: NOT YET MET (issue 13 note): clients giving up and asking again
# still see some 429s, so this case runs only with TG_ATTACK_CAPACITY=1.
if [ "${TG_ATTACK_CAPACITY:-1}" = 1 ]; then
# Capacity: a model slow enough that requests are still queued when their
# clients give up (see test_metrics.sh).
"$TIDEGATE_BIN" synth-model -o "$TMP/slow.gguf" --preset 350m --layers 2 --type q4_0 --seed 3 \
    >/dev/null || { echo "synth-model failed"; exit 1; }
MODEL=$TMP/slow.gguf
start_server capacity TIDEGATE_MAX_ACTIVE=2 TIDEGATE_QUEUE_CAPACITY=4
attack capacity capacity=6 rounds=5
stop_server
sane_exit capacity
fi

grep -h '^figure' "$TMP"/attack-*.out
finish
