#!/usr/bin/env bash
# Proves the README quick start on a fresh Debian 12 (bookworm) machine, as a
# new user would run it: as root, no -dev packages, only the committed
# repository and the Node.js 20 that CI machines come with.
#
#   tests/fresh/fresh-machine.sh base        minbase debootstrap + Node.js + git
#   tests/fresh/fresh-machine.sh user        clone; ./scripts/quickstart (wait for
#                                            /healthz, one chat completion, stop);
#                                            then ./scripts/test
#   tests/fresh/fresh-machine.sh ci          clone; ./.ci/run only (CI's path)
#   tests/fresh/fresh-machine.sh offline     quickstart's download must fail fast on an
#                                            unresolvable, black-holed or stalling endpoint
#   tests/fresh/fresh-machine.sh nonode      no Node.js at all: install-deps brings Debian's
#                                            nodejs + npm; integration tests on Release
#   tests/fresh/fresh-machine.sh shell RUN   a shell in run RUN's root
#   tests/fresh/fresh-machine.sh clean       unmount everything, delete the runs
#
# Each run (user, ci, offline) is an overlay on the pristine base root, so it
# starts from nothing again. Needs root on a Debian host (debootstrap,
# overlayfs, chroot). The chroot shares the host's network namespace.
#
# Environment: FRESH_ROOT (default /work/fresh-root), FRESH_REPO (the
# repository to clone, default this checkout), FRESH_PORT (quickstart port,
# default 18080), FRESH_QS_TIMEOUT (seconds to wait for /healthz, default
# 3600), FRESH_PATCH (space-separated repo paths copied from FRESH_REPO's
# working tree over the clone, to try uncommitted fixes; reported loudly),
# FRESH_ENV (space-separated VAR=value added to the chroot's environment).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
FRESH_ROOT="${FRESH_ROOT:-/work/fresh-root}"
FRESH_REPO="${FRESH_REPO:-$(cd "$HERE/../.." && pwd)}"
FRESH_PORT="${FRESH_PORT:-18080}"
FRESH_QS_TIMEOUT="${FRESH_QS_TIMEOUT:-3600}"
FRESH_PATCH="${FRESH_PATCH:-}"
FRESH_ENV="${FRESH_ENV:-}"
BASE="$FRESH_ROOT/base"
SUITE=bookworm

log() { echo "[fresh $(date -u +%H:%M:%S)] $*"; }
die() { echo "[fresh] ERROR: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, mount, chroot)"

# --- mounts ---------------------------------------------------------------------
MOUNTED=()
mount_root() { # mount_root DIR: proc, sys, dev (+pts, shm) and the repo read-only
    local r=$1
    mount -t proc proc "$r/proc"
    MOUNTED+=("$r/proc")
    mount --rbind /sys "$r/sys"
    mount --make-rslave "$r/sys"
    MOUNTED+=("$r/sys")
    mount --rbind /dev "$r/dev"
    mount --make-rslave "$r/dev"
    MOUNTED+=("$r/dev")
    mkdir -p "$r/mnt/src"
    mount --bind "$FRESH_REPO" "$r/mnt/src"
    mount -o remount,bind,ro "$r/mnt/src"
    MOUNTED+=("$r/mnt/src")
}
umount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -R "${MOUNTED[$i]}" 2>/dev/null || umount -R -l "${MOUNTED[$i]}" || true
    done
    MOUNTED=()
}
# Anything left under FRESH_ROOT by an interrupted run, deepest first.
umount_stale() {
    local m
    for m in $(findmnt -rn -o TARGET | grep "^$FRESH_ROOT/" | sort -r || true); do
        umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true
    done
}
BG_PGID=""
on_exit() {
    if [ -n "$BG_PGID" ]; then kill -KILL -- "-$BG_PGID" 2>/dev/null || true; fi
    umount_all
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# in_root DIR CMD...: runs CMD in the chroot with a clean login-like
# environment (nothing from the host's environment leaks in).
in_root() {
    local r=$1
    shift
    chroot "$r" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 TERM=dumb $FRESH_ENV "$@"
}

# --- the base root ----------------------------------------------------------------
host_mirror() { # the Debian mirror the host's apt uses
    local m
    m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' |
        grep -v -- '-security' | grep '/debian/\?$' | head -1 || true)
    [ -n "$m" ] || m=$(grep -hE '^deb\s' /etc/apt/sources.list 2>/dev/null |
        awk '{print $2}' | grep -v -- '-security' | head -1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

# install_node: Node.js 20 the way the host (a CI machine) has it. Prefers
# the NodeSource apt repository; when it is unreachable, repacks the host's
# installed NodeSource package with dpkg-repack and installs that .deb
# (same files, same dependencies); copies the binary as a last resort.
install_node() {
    local how ver
    ver=$(dpkg-query -W -f='${Version}' nodejs 2>/dev/null || true)
    if [[ $ver == *nodesource* ]] && [ -f /usr/share/keyrings/nodesource.gpg ] &&
        curl -fsS --connect-timeout 5 --max-time 15 -o /dev/null \
            https://deb.nodesource.com/node_20.x/dists/nodistro/Release 2>/dev/null; then
        cp /usr/share/keyrings/nodesource.gpg "$BASE/usr/share/keyrings/"
        cat >"$BASE/etc/apt/sources.list.d/nodesource.sources" <<EOF
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/nodesource.gpg
EOF
        in_root "$BASE" apt-get update -q
        in_root "$BASE" apt-get install -y -q --no-install-recommends nodejs
        how="NodeSource apt repository"
    elif [[ $ver == *nodesource* ]]; then
        command -v dpkg-repack >/dev/null || apt-get install -y -q dpkg-repack
        local tmp
        tmp=$(mktemp -d "$BASE/tmp/node.XXXXXX")
        (cd "$tmp" && dpkg-repack nodejs >/dev/null)
        in_root "$BASE" apt-get install -y -q --no-install-recommends "/tmp/$(basename "$tmp")/$(cd "$tmp" && ls nodejs_*.deb)"
        rm -rf "$tmp"
        how="host's NodeSource package $ver, repacked with dpkg-repack (deb.nodesource.com unreachable)"
        # The host's npm may have been upgraded in place (npm install -g npm),
        # leaving the package's file list stale: take the host's npm tree.
        local hnpm
        hnpm=$(npm --version 2>/dev/null || true)
        if [ -n "$hnpm" ] && [ "$(in_root "$BASE" npm --version 2>/dev/null || true)" != "$hnpm" ]; then
            rm -rf "$BASE/usr/lib/node_modules/npm"
            cp -a /usr/lib/node_modules/npm "$BASE/usr/lib/node_modules/npm"
            how="$how; npm $hnpm copied from the host (upgraded there in place)"
        fi
    else
        command -v node >/dev/null || die "the host has no Node.js to give the fresh root"
        cp -a "$(readlink -f "$(command -v node)")" "$BASE/usr/bin/node"
        mkdir -p "$BASE/usr/lib/node_modules"
        cp -a /usr/lib/node_modules/npm "$BASE/usr/lib/node_modules/"
        ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$BASE/usr/bin/npm"
        ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$BASE/usr/bin/npx"
        how="copied the host's /usr/bin/node and /usr/lib/node_modules/npm"
    fi
    echo "$how" >"$BASE/etc/fresh-machine.node"
    log "Node.js $(in_root "$BASE" node --version): $how"
}

# network_trust: the host's own network setup, like /etc/resolv.conf. When
# the host reaches the internet through a TLS-intercepting egress proxy, its
# CA sits in /usr/local/share/ca-certificates and npm is pointed at the
# system bundle (/etc/npmrc, /usr/etc/npmrc: cafile=...); the fresh root
# gets the same, or npm fails with SELF_SIGNED_CERT_IN_CHAIN. Nothing is
# copied on a host without local CAs.
network_trust() {
    local crts=(/usr/local/share/ca-certificates/*.crt) f
    [ -e "${crts[0]}" ] || return 0
    mkdir -p "$BASE/usr/local/share/ca-certificates" "$BASE/usr/etc"
    cp "${crts[@]}" "$BASE/usr/local/share/ca-certificates/"
    for f in /etc/npmrc /usr/etc/npmrc; do
        if [ -f "$f" ] && grep -q '^cafile=' "$f"; then grep '^cafile=' "$f" >"$BASE$f"; fi
    done
    in_root "$BASE" update-ca-certificates >/dev/null
    echo "${#crts[@]} local CA certificate(s) of the host's network" >"$BASE/etc/fresh-machine.trust"
    log "network trust: copied ${crts[*]} (and npm's cafile setting)"
}

make_base() {
    if [ -f "$BASE/etc/fresh-machine.ready" ] && [ ! -f "$BASE/etc/fresh-machine.trust" ] &&
        [ -e /usr/local/share/ca-certificates ]; then
        mount_root "$BASE"
        network_trust
        umount_all
    fi
    if [ -f "$BASE/etc/fresh-machine.ready" ]; then
        log "base root ready: $BASE ($(cat "$BASE/etc/fresh-machine.node"))"
        return
    fi
    local avail
    avail=$(df -P --block-size=1G "$(dirname "$FRESH_ROOT")" | awk 'NR == 2 {print $4}')
    [ "$avail" -ge 10 ] || die "only ${avail} GB free under $(dirname "$FRESH_ROOT"); need 10"
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
    local mirror sec
    mirror=$(host_mirror)
    if [ ! -f "$BASE/etc/debian_version" ]; then
        log "debootstrap --variant=minbase $SUITE $BASE $mirror"
        mkdir -p "$BASE"
        debootstrap --variant=minbase "$SUITE" "$BASE" "$mirror" >"$FRESH_ROOT/debootstrap.log" 2>&1 ||
            die "debootstrap failed, see $FRESH_ROOT/debootstrap.log"
    fi
    # The same suites a Debian 12 install has: release, updates, security.
    sec="${mirror%/debian}/debian-security"
    [ "$sec" != "$mirror/debian-security" ] || sec=http://deb.debian.org/debian-security
    rm -f "$BASE/etc/apt/sources.list"
    cat >"$BASE/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $sec
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cp -L /etc/resolv.conf "$BASE/etc/resolv.conf"
    echo fresh-debian12 >"$BASE/etc/hostname"
    mount_root "$BASE"
    in_root "$BASE" apt-get update -q
    install_node
    network_trust
    # git: a new user cloned the repository, so git is there; nothing else is.
    in_root "$BASE" apt-get install -y -q --no-install-recommends git
    # Like Debian's cloud and container images: no package lists, no cache.
    in_root "$BASE" apt-get clean
    rm -rf "$BASE"/var/lib/apt/lists/*
    umount_all
    date -u +%FT%TZ >"$BASE/etc/fresh-machine.ready"
    log "base root ready: $BASE ($(du -sh "$BASE" | cut -f1))"
}

# --- runs ----------------------------------------------------------------------------
RUN=""
ROOTFS=""
new_run() { # new_run NAME: a fresh overlay on the base, mounted at ROOTFS
    RUN="$FRESH_ROOT/runs/$1"
    ROOTFS="$RUN/merged"
    umount_stale
    rm -rf "$RUN"
    mkdir -p "$RUN/upper" "$RUN/work" "$ROOTFS"
    mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$ROOTFS"
    MOUNTED+=("$ROOTFS")
    mount_root "$ROOTFS"
    log "run $1: fresh root $ROOTFS"
}

clone_repo() {
    local head
    in_root "$ROOTFS" git clone -q file:///mnt/src /root/tidegate
    head=$(in_root "$ROOTFS" git -C /root/tidegate log -1 --format='%h %cI %s')
    log "cloned committed HEAD of $FRESH_REPO: $head"
    [ -z "$FRESH_ENV" ] || log "EXTRA ENVIRONMENT: $FRESH_ENV"
    local f
    for f in $FRESH_PATCH; do
        cp "$FRESH_REPO/$f" "$ROOTFS/root/tidegate/$f"
        log "PATCHED (uncommitted working-tree copy): $f"
    done
}

secs() { echo $(($(date +%s) - $1)); }

run_quickstart() {
    local url="http://127.0.0.1:$FRESH_PORT" t0 pid rc=0
    if curl -s -m 2 -o /dev/null "$url/healthz"; then die "port $FRESH_PORT is already taken"; fi
    log "./scripts/quickstart with TIDEGATE_LISTEN=127.0.0.1:$FRESH_PORT (log: $RUN/quickstart.log)"
    t0=$(date +%s)
    setsid chroot "$ROOTFS" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb \
        TIDEGATE_LISTEN="127.0.0.1:$FRESH_PORT" $FRESH_ENV \
        bash -c 'cd /root/tidegate && exec ./scripts/quickstart' >"$RUN/quickstart.log" 2>&1 &
    pid=$!
    BG_PGID=$pid
    until curl -s -m 5 -o "$RUN/healthz.out" "$url/healthz"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" || rc=$?
            tail -30 "$RUN/quickstart.log"
            die "quickstart exited ($rc) before /healthz answered"
        fi
        if [ "$(secs "$t0")" -ge "$FRESH_QS_TIMEOUT" ]; then
            tail -30 "$RUN/quickstart.log"
            die "no /healthz answer after ${FRESH_QS_TIMEOUT}s"
        fi
        sleep 3
    done
    log "PASS quickstart: /healthz answered after $(secs "$t0")s: $(head -c 200 "$RUN/healthz.out")"
    if grep -q 'DEMO MODEL' "$RUN/quickstart.log"; then
        log "demo-model banner shown: $(grep -m1 'not reachable\|download of\|NO_DOWNLOAD' "$RUN/quickstart.log" || true)"
    fi
    local status
    status=$(curl -s -m 300 -o "$RUN/chat.json" -w '%{http_code}' "$url/v1/chat/completions" \
        -H 'content-type: application/json' \
        -d '{"model":"tidegate/auto","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}' || true)
    if [ "$status" = 200 ] && grep -q '"choices"' "$RUN/chat.json" && grep -q '"content"' "$RUN/chat.json"; then
        log "PASS chat completion: HTTP 200: $(head -c 400 "$RUN/chat.json")"
    else
        log "FAIL chat completion: HTTP $status: $(head -c 400 "$RUN/chat.json" 2>/dev/null)"
        QS_FAIL=1
    fi
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    BG_PGID=""
    if [ "$rc" = 0 ]; then log "PASS SIGTERM: tidegate serve exited 0"; else
        log "FAIL SIGTERM: exit status $rc"
        QS_FAIL=1
    fi
    [ "${QS_FAIL:-0}" = 0 ]
}

run_suite() { # run_suite CMD: ./scripts/test or ./.ci/run in the clone, timed
    local t0 rc=0
    log "$1 (log: $RUN/test.log)"
    t0=$(date +%s)
    in_root "$ROOTFS" bash -c "cd /root/tidegate && $1" >"$RUN/test.log" 2>&1 || rc=$?
    grep '^=== ' "$RUN/test.log" | sed 's/^/    /'
    if [ "$rc" = 0 ]; then log "PASS $1: exit 0 in $(secs "$t0")s"; else
        grep -E '^FAIL|\*\*\*Failed|Error|error:' "$RUN/test.log" | head -20 | sed 's/^/    /'
        log "FAIL $1: exit $rc in $(secs "$t0")s"
        return 1
    fi
}

# offline: quickstart's download must give up quickly when the network does
# not answer, then serve the demo model with the banner. Three endpoints,
# all local so the check does not depend on the host's network:
#   dns        an unresolvable name (.invalid)
#   blackhole  a listener whose accept queue is full: the kernel drops the
#              SYNs, so connect() hangs as with a firewalled address
#   stall      a listener that accepts and reads but never answers (a
#              half-open proxy)
run_offline() {
    local case url t0 took pid="" port=$((FRESH_PORT + 1)) rc fail=0
    for case in dns blackhole stall; do
        case $case in
            dns) url=http://huggingface.invalid ;;
            *)
                python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
mode = sys.argv[1]
s.listen(0 if mode == "blackhole" else 8)
port = s.getsockname()[1]
keep = []
if mode == "blackhole":
    for _ in range(3):  # fill the accept queue, never accept
        c = socket.socket(); c.setblocking(False)
        try: c.connect(("127.0.0.1", port))
        except BlockingIOError: pass
        keep.append(c)
print(port, flush=True)
while True:
    if mode == "stall": keep.append(s.accept()[0])
    else: time.sleep(60)' "$case" >"$RUN/$case.port" &
                pid=$!
                sleep 1
                url="http://127.0.0.1:$(cat "$RUN/$case.port")"
                ;;
        esac
        t0=$(date +%s)
        rc=0
        in_root "$ROOTFS" timeout 300 bash -c \
            "cd /root/tidegate && HF_ENDPOINT=$url TIDEGATE_LISTEN=127.0.0.1:$port ./scripts/quickstart --help" \
            >"$RUN/offline-$case.log" 2>&1 || rc=$?
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=""; fi
        took=$(secs "$t0")
        if [ "$rc" = 124 ]; then
            log "FAIL offline/$case: quickstart still downloading after 300s"
            fail=1
        elif grep -q 'DEMO MODEL' "$RUN/offline-$case.log" && [ "$took" -le 60 ]; then
            log "PASS offline/$case: gave up in ${took}s, demo banner shown: $(grep -m1 'not reachable' "$RUN/offline-$case.log")"
        else
            log "FAIL offline/$case: rc=$rc after ${took}s: $(tail -3 "$RUN/offline-$case.log")"
            fail=1
        fi
    done
    # A model already in the model directory is found (and a non-LFM2 GGUF
    # next to it skipped) without any download attempt.
    in_root "$ROOTFS" bash -c 'd=/root/models && mkdir -p $d &&
        printf "GGUF junk" >$d/a-not-lfm2.gguf &&
        cp /root/tidegate/tests/fixtures/models/lfm2-tiny-q8_0.gguf $d/b-lfm2.gguf &&
        cd /root/tidegate && HF_ENDPOINT=http://huggingface.invalid TIDEGATE_MODEL_DIR=$d \
        ./scripts/quickstart --help' >"$RUN/offline-modeldir.log" 2>&1 || true
    if grep -q 'quickstart: found /root/models/b-lfm2.gguf' "$RUN/offline-modeldir.log" &&
        ! grep -q 'downloading\|DEMO MODEL' "$RUN/offline-modeldir.log"; then
        log "PASS offline/modeldir: found /root/models/b-lfm2.gguf, skipped the non-LFM2 file, no download"
    else
        log "FAIL offline/modeldir: $(grep 'quickstart:' "$RUN/offline-modeldir.log" | head -3)"
        fail=1
    fi
    return $fail
}

cmd="${1:-}"
case "$cmd" in
    base) make_base ;;
    user)
        make_base
        new_run user
        clone_repo
        fail=0
        run_quickstart || fail=1
        run_suite ./scripts/test || fail=1
        exit $fail
        ;;
    ci)
        make_base
        new_run ci
        clone_repo
        run_suite ./.ci/run
        ;;
    offline)
        make_base
        new_run offline
        clone_repo
        # Deps and build first, so the timing below is the download alone.
        in_root "$ROOTFS" bash -c 'cd /root/tidegate && ./scripts/install-deps && ./scripts/build release' \
            >"$RUN/build.log" 2>&1 || die "install-deps/build failed: $RUN/build.log"
        run_offline
        ;;
    nonode)
        # A Debian 12 machine without any Node.js: install-deps must bring
        # one that runs the SDK tests (Debian's nodejs via node-llhttp, plus npm).
        make_base
        new_run nonode
        in_root "$ROOTFS" dpkg --purge nodejs >/dev/null 2>&1
        rm -rf "$ROOTFS/usr/lib/node_modules/npm"
        clone_repo
        t0=$(date +%s)
        rc=0
        in_root "$ROOTFS" bash -c 'cd /root/tidegate && ./scripts/install-deps && node --version &&
            npm --version && ./scripts/build release &&
            ctest --test-dir build/release -L integration --output-on-failure' \
            >"$RUN/nonode.log" 2>&1 || rc=$?
        grep -E '^v[0-9]+\.|^[0-9]+\.[0-9]+\.[0-9]+$|tests passed|Failed' "$RUN/nonode.log" | sed 's/^/    /'
        if [ "$rc" = 0 ]; then log "PASS nonode: install-deps + integration tests in $(secs "$t0")s"; else
            log "FAIL nonode: exit $rc in $(secs "$t0")s (log: $RUN/nonode.log)"
            exit 1
        fi
        ;;
    shell)
        RUN="$FRESH_ROOT/runs/${2:?run name}"
        ROOTFS="$RUN/merged"
        mkdir -p "$RUN/upper" "$RUN/work" "$ROOTFS"
        findmnt "$ROOTFS" >/dev/null || {
            mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$ROOTFS"
            MOUNTED+=("$ROOTFS")
        }
        mount_root "$ROOTFS"
        in_root "$ROOTFS" bash -l || true
        ;;
    clean)
        umount_stale
        rm -rf "$FRESH_ROOT/runs"
        log "unmounted; runs deleted (base kept: $BASE)"
        ;;
    *)
        sed -n '2,25p' "$0"
        exit 2
        ;;
esac
