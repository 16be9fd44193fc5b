#!/usr/bin/env bash
# Interop test: build the server, start it on a free loopback port with a fresh
# database, and run the independent Python client (interop/spec_client.py) against it.
# Exit status is the client's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=target/interop-venv
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check cryptography

# The test suite passes the binary it built; run by hand, build one.
if [[ -n "${SCRAM_DH_BIN:-}" ]]; then
    BIN="$SCRAM_DH_BIN"
else
    cargo build -p scram-dh-cli
    BIN=target/debug/scram-dh
fi

TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN" serve --listen 127.0.0.1:0 --db "$TMP/s.db" \
    --registrations-per-sec 100 --registration-burst 100 \
    >"$TMP/stdout" 2>"$TMP/stderr" &
SERVER_PID=$!

LINE=""
for _ in $(seq 1 300); do
    # wait until the whole first line (with its newline) is written
    if [[ -s "$TMP/stdout" && "$(head -c 4096 "$TMP/stdout" | wc -l)" -ge 1 ]]; then
        LINE="$(head -n 1 "$TMP/stdout")"
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "server exited before listening; stderr:" >&2
        cat "$TMP/stderr" >&2
        exit 1
    fi
    sleep 0.1
done

re='^listening on (127\.0\.0\.1:[0-9]+) host key (SHA256:[A-Za-z0-9+/]+)$'
if [[ ! "$LINE" =~ $re ]]; then
    echo "unexpected first server line: '$LINE'" >&2
    cat "$TMP/stderr" >&2
    exit 1
fi
ADDR="${BASH_REMATCH[1]}"
FP="${BASH_REMATCH[2]}"
echo "server at $ADDR, host key $FP"

STATUS=0
"$VENV/bin/python" interop/spec_client.py --server "$ADDR" --fingerprint "$FP" || STATUS=$?
if [[ $STATUS -ne 0 ]]; then
    echo "--- server stderr (last 40 lines) ---" >&2
    tail -n 40 "$TMP/stderr" >&2 || true
fi
exit "$STATUS"
