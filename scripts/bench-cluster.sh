#!/usr/bin/env bash
# Throughput of HTTP logins through nginx with 1 node and with 2 nodes, on PostgreSQL
# and Redis (scripts/cluster.sh), plus one node straight (no nginx) for comparison.
# The figures in BENCHMARKS.md ("Several nodes behind nginx") come from this script.
#   scripts/bench-cluster.sh [SECONDS] [CONCURRENCY...]     (default: 8 s; 8 and 32)
# The bench is one client address, so the nodes' per-peer DH and handshake limits and
# the per-user HTTP session cap are lifted (they would rightly throttle it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-8}"
shift || true
CONC=("${@:-8 32}")
# shellcheck disable=SC2206
CONC=(${CONC[*]})
BIN="$ROOT/target/release/scram-dh"
(cd "$ROOT" && cargo build --release -p scram-dh-cli)
export SCRAM_DH_BIN="$BIN"
export SCRAM_DH_NODE_ARGS="--dh-per-sec 1e9 --dh-burst 1e9 --max-handshakes-per-peer 1024 \
--max-connections-per-peer 4096 --http-max-sessions 1000000 --http-max-sessions-per-user 1000000"
DIR="$(mktemp -d)"
chmod 755 "$DIR" # PostgreSQL runs as postgres when this runs as root
trap 'bash "$ROOT/scripts/cluster.sh" down "$DIR/c" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
for nodes in 1 2; do
    NODES=$nodes bash "$ROOT/scripts/cluster.sh" up "$DIR/c" >/dev/null
    # shellcheck disable=SC1091
    . "$DIR/c/env"
    for c in "${CONC[@]}"; do
        echo -n "$nodes node(s) via nginx: "
        "$BIN" bench --http "$LB_URL" --concurrency "$c" --duration "$SECS" | head -2 | paste -sd " "
    done
    echo -n "$nodes node(s), node 1 direct: "
    "$BIN" bench --http "http://$NODE1_HTTP" --concurrency "${CONC[0]}" --duration "$SECS" | head -2 | paste -sd " "
    bash "$ROOT/scripts/cluster.sh" down "$DIR/c" >/dev/null
    rm -rf "$DIR/c"
done
