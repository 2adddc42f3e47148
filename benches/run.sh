#!/usr/bin/env bash
# One command for tether's benchmarks (issue 5; see BENCHMARKS.md):
#   benches/run.sh [--quick] [--topology cluster|sentinel] [more loadgen run
#                  options, e.g. --scenarios me,revoke]
# Builds the release binaries, starts tether on a temporary SQLite file with
# in-process sessions, two tether instances sharing Redis and one database
# (for cross-instance revocation), and the bare echo server; runs the load
# generator against them; writes benches/results/<time>.json; and stops
# everything it started (and deletes its Redis keys) on exit.
# --topology also starts a Redis Cluster or Sentinel set with
# .ci/redis-topologies (unless one is up already) and two more tether
# instances on it, labelled `cluster`/`cluster2` or `sentinel`/`sentinel2`
# (issue 14); the `failover` scenario kills its primaries.
# BENCH_TETHER_BIN=PATH runs that tether binary instead of building one
# (an A/B of two commits, see BENCHMARKS.md "Ninth run").
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
ROOT=$PWD

MODE=()
TOPOLOGY=
while (($#)); do
    case $1 in
    --quick) MODE+=(--quick) ;;
    --topology)
        TOPOLOGY=${2-}
        [[ $TOPOLOGY == cluster || $TOPOLOGY == sentinel ]] ||
            { echo "error: --topology takes cluster or sentinel" >&2; exit 2; }
        shift
        ;;
    *) break ;;
    esac
    shift
done
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
PORT_BASE=${BENCH_PORT_BASE:-18080}
PREFIX="tether-bench:$$:"
ADMIN_PASSWORD="bench-admin-$$-$RANDOM$RANDOM"
SESSION_KEY=$(head -c 64 /dev/urandom | base64 -w0)
WORK=$(mktemp -d /tmp/tether-bench.XXXXXX)
PIDS=()
TOPOLOGIES=$ROOT/.ci/redis-topologies
TOPOLOGY_STARTED=

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
    if [[ -n $TOPOLOGY_STARTED ]]; then
        "$TOPOLOGIES" down "$TOPOLOGY" || true
    elif [[ -n $TOPOLOGY ]]; then
        # Someone else's topology: delete only this run's keys, on each
        # node that holds some (replicas refuse the DEL, which is fine).
        local port
        for port in $(topology_data_ports); do
            redis-cli -p "$port" --scan --pattern "${PREFIX}*" 2>/dev/null |
                xargs -r -n 500 redis-cli -p "$port" del >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Every process may have at most 20,000 files open here; use all of them.
ulimit -n "$(ulimit -Hn)"

# The data nodes' ports, as .ci/redis-topologies fixes them.
topology_data_ports() {
    case $TOPOLOGY in
    cluster) echo 7101 7102 7103 7104 7105 7106 ;;
    sentinel) echo 7201 7202 ;;
    esac
}

echo "=== build (release)"
BIN=$ROOT/target/release
TETHER=${BENCH_TETHER_BIN:-$BIN/tether}
if [[ -n ${BENCH_TETHER_BIN-} ]]; then
    cargo build --release --locked -p loadgen
else
    cargo build --release --locked -p tether -p loadgen
fi

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
            "$TETHER" serve
    ) >"$WORK/$label.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/healthz"
}

MEM_PORT=$((PORT_BASE + 1)) REDIS_PORT=$((PORT_BASE + 2)) REDIS2_PORT=$((PORT_BASE + 3))
TOPO_PORT=$((PORT_BASE + 4)) TOPO2_PORT=$((PORT_BASE + 5))
ECHO_PORT=$((PORT_BASE + 10))

TOPO_ARGS=()
if [[ -n $TOPOLOGY ]]; then
    echo "=== Redis $TOPOLOGY (.ci/redis-topologies)"
    # Taken down on exit only if this run brought it up.
    if [[ ! -d ${TETHER_TOPOLOGY_DIR:-${TMPDIR:-/tmp}/tether-redis-$TOPOLOGY} ]]; then
        TOPOLOGY_STARTED=1
    fi
    TOPO_URL=$("$TOPOLOGIES" up "$TOPOLOGY" | sed -n 's/^TETHER_TEST_REDIS_[A-Z]*_URL=//p')
    [[ -n $TOPO_URL ]] || { echo "error: no $TOPOLOGY URL from $TOPOLOGIES" >&2; exit 1; }
fi

echo "=== start servers (logs in $WORK)"
start_tether mem "$MEM_PORT" mem.db
MEM_PID=${PIDS[-1]}
start_tether redis "$REDIS_PORT" shared.db "$REDIS_URL"
REDIS_PID=${PIDS[-1]}
start_tether redis2 "$REDIS2_PORT" shared.db "$REDIS_URL"
REDIS2_PID=${PIDS[-1]}
if [[ -n $TOPOLOGY ]]; then
    start_tether "$TOPOLOGY" "$TOPO_PORT" topology.db "$TOPO_URL"
    TOPO_PID=${PIDS[-1]}
    start_tether "${TOPOLOGY}2" "$TOPO2_PORT" topology.db "$TOPO_URL"
    TOPO_ARGS=(--topology "$TOPOLOGY" --topology-url "$TOPO_URL" --topology-script "$TOPOLOGIES"
        --topo "http://127.0.0.1:$TOPO_PORT" --topo-pid "$TOPO_PID"
        --topo2 "http://127.0.0.1:$TOPO2_PORT" --topo2-pid "${PIDS[-1]}")
fi
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
    --redis-url "$REDIS_URL" --redis-prefix "$PREFIX" "${TOPO_ARGS[@]}" \
    --out "$OUT" "$@"
