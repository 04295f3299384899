#!/usr/bin/env bash
# The official `openai` npm SDK (unmodified, the version package.json names)
# through the cloud route (node/cloud.mjs): a gateway with the mock cloud
# over TLS as upstream `main`; chat, streaming with usage, a 503 answered by
# the edge and a mid-stream reset continued on the edge. About 3 s.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/mock_cloud/mock_cloud.sh"
NODE_DIR=$(cd "$(dirname "$0")/node" && pwd)

# (Re)install when the installed SDK does not match package.json.
if ! (cd "$NODE_DIR" && npm ls openai >/dev/null 2>&1); then
    echo "installing the openai SDK into $NODE_DIR/node_modules"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error) || { echo "npm install failed"; exit 1; }
fi
echo "openai SDK $(node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/openai/package.json")"

start_mock_cloud "$TMP/mock" || exit 1
SERVER_PIDS+=("$MOCK_PID")
cat >"$TMP/c.yaml" <<YAML
routing:
  breaker: {failures: 1000, failure_rate_pct: 100, window: 64, min_requests: 64}
  offline_after: 1000
cloud:
  - {name: main, base_url: "$MOCK_URL", model: mock-gpt, ca_file: "$MOCK_CA"}
YAML
start_server sdkcloud -- -c "$TMP/c.yaml"

out=$(cd "$NODE_DIR" && TG_BASE_URL=$BASE/v1 MOCK_ADMIN=http://127.0.0.1:$MOCK_ADMIN \
    MOCK_REPLY="The tide turns twice a day near the harbour." node cloud.mjs 2>&1)
rc=$?
echo "$out" | sed "s/^/[cloud] /"
f=$(echo "$out" | grep -c '^FAIL')
CHECKS=$((CHECKS + $(echo "$out" | grep -c '^ok\|^FAIL')))
FAILS=$((FAILS + f))
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then bad "cloud.mjs: node exited $rc"; fi
stop_server
check "server exit 0" 0 "$RC"
for f in "$TMP"/*.log; do
    if grep -q "ERROR: \(Address\|Leak\)Sanitizer\|runtime error" "$f"; then bad "sanitizer report in $f"; fi
done
finish
