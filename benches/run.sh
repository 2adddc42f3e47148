#!/usr/bin/env bash
# One command for tether's benchmarks (issue 5; see BENCHMARKS.md):
#   benches/run.sh [--quick] [more loadgen run options, e.g. --scenarios me,revoke]
# Builds the release binaries, starts tether on a temporary SQLite file with
# in-process sessions, two tether instances sharing Redis and one database
# (for cross-instance revocation), and the bare echo server; runs the load
# generator against them; writes benches/results/<time>.json; and stops
# everything it started (and deletes its Redis keys) on exit.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT=$PWD

MODE=()
if [[ ${1-} == --quick ]]; then
    MODE=(--quick)
    shift
fi
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
PORT_BASE=${BENCH_PORT_BASE:-18080}
PREFIX="tether-bench:$$:"
ADMIN_PASSWORD="bench-admin-$$-$RANDOM$RANDOM"
SESSION_KEY=$(head -c 64 /dev/urandom | base64 -w0)
WORK=$(mktemp -d /tmp/tether-bench.XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if command -v redis-cli >/dev/null; then
        redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" |
            xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Every process may have at most 20,000 files open here; use all of them.
ulimit -n "$(ulimit -Hn)"

echo "=== build (release)"
cargo build --release --locked -p tether -p loadgen
BIN=$ROOT/target/release

wait_http() { # URL
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -fs "$1" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "error: $1 did not answer; logs in $WORK" >&2
    tail -n 20 "$WORK"/*.log >&2 || true
    exit 1
}

start_tether() { # LABEL PORT DB [REDIS_URL]
    local label=$1 port=$2 db=$3 redis=${4-}
    # Run from $WORK so no .env of the repository is read.
    (
        cd "$WORK"
        exec env TETHER_BIND="127.0.0.1:$port" DATABASE_URL="sqlite://$WORK/$db" \
            ${redis:+REDIS_URL="$redis"} TETHER_REDIS_PREFIX="$PREFIX" \
            TETHER_SESSION_KEY="$SESSION_KEY" TETHER_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
            TETHER_LOGIN_MAX_FAILURES=1000 TETHER_LOGIN_MAX_FAILURES_PER_IP=1000000 \
            TETHER_WS_MAX_PER_SESSION=100000 TETHER_WS_MAX_PER_USER=1000000 \
            TETHER_WS_MESSAGES_PER_SEC=1000000 TETHER_WS_MESSAGE_BURST=1000000 RUST_LOG=warn \
            "$BIN/tether" serve
    ) >"$WORK/$label.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/healthz"
}

MEM_PORT=$((PORT_BASE + 1)) REDIS_PORT=$((PORT_BASE + 2)) REDIS2_PORT=$((PORT_BASE + 3))
ECHO_PORT=$((PORT_BASE + 10))

echo "=== start servers (logs in $WORK)"
start_tether mem "$MEM_PORT" mem.db
MEM_PID=${PIDS[-1]}
start_tether redis "$REDIS_PORT" shared.db "$REDIS_URL"
REDIS_PID=${PIDS[-1]}
start_tether redis2 "$REDIS2_PORT" shared.db "$REDIS_URL"
REDIS2_PID=${PIDS[-1]}
"$BIN/loadgen" echo-server --bind "127.0.0.1:$ECHO_PORT" >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
ECHO_PID=$!
for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ECHO_PORT") 2>/dev/null && break
    sleep 0.1
done

mkdir -p benches/results
OUT=benches/results/$(date -u +%Y%m%dT%H%M%SZ).json
echo "=== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/loadgen" run "${MODE[@]}" \
    --mem "http://127.0.0.1:$MEM_PORT" --mem-pid "$MEM_PID" \
    --redis "http://127.0.0.1:$REDIS_PORT" --redis-pid "$REDIS_PID" \
    --redis2 "http://127.0.0.1:$REDIS2_PORT" --redis2-pid "$REDIS2_PID" \
    --echo "http://127.0.0.1:$ECHO_PORT" --echo-pid "$ECHO_PID" \
    --admin-password "$ADMIN_PASSWORD" \
    --redis-url "$REDIS_URL" --redis-prefix "$PREFIX" \
    --out "$OUT" "$@"
