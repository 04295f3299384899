# Sourced by integration tests: start the mock cloud with a fresh test CA.
#   start_mock_cloud DIR [extra mock args...]
# sets MOCK_PORT, MOCK_ADMIN, MOCK_PID, MOCK_URL (https://127.0.0.1:PORT/v1),
# MOCK_CA (the CA file to trust) and MOCK_DIR; returns 1 if it did not start.
#   mock_admin METHOD PATH [JSON]   calls the admin port, prints the answer
#   mock_fault SPEC [COUNT]         POST /fault {"fault":SPEC,"count":COUNT}
MOCK_CLOUD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

start_mock_cloud() {
    MOCK_DIR=$1
    shift
    "$MOCK_CLOUD_DIR/make_certs.sh" "$MOCK_DIR" >/dev/null || return 1
    rm -f "$MOCK_DIR/ports"
    node "$MOCK_CLOUD_DIR/mock_cloud.mjs" --cert "$MOCK_DIR/server.pem" --key "$MOCK_DIR/server.key" \
        --wrong-cert "$MOCK_DIR/wrong.pem" --wrong-key "$MOCK_DIR/wrong.key" \
        --port-file "$MOCK_DIR/ports" "$@" >"$MOCK_DIR/mock.log" 2>&1 &
    MOCK_PID=$!
    local i
    for i in $(seq 1 200); do
        [ -s "$MOCK_DIR/ports" ] && break
        kill -0 "$MOCK_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -s "$MOCK_DIR/ports" ]; then
        echo "mock cloud did not start:"
        cat "$MOCK_DIR/mock.log"
        return 1
    fi
    read -r MOCK_PORT MOCK_ADMIN <"$MOCK_DIR/ports"
    MOCK_URL=https://127.0.0.1:$MOCK_PORT/v1
    MOCK_CA=$MOCK_DIR/ca.pem
}

mock_admin() {
    if [ -n "${3:-}" ]; then
        curl -s --max-time 10 -X "$1" "http://127.0.0.1:$MOCK_ADMIN$2" -d "$3"
    else
        curl -s --max-time 10 -X "$1" "http://127.0.0.1:$MOCK_ADMIN$2"
    fi
}

mock_fault() {
    mock_admin POST /fault "{\"fault\":\"$1\",\"count\":${2:--1}}" >/dev/null
}
