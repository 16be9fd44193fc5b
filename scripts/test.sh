#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test in the workspace
# (unit, integration, end-to-end through the real binary, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# The packet-capture test (crates/scram-dh-cli/tests/capture.rs) needs tcpdump;
# it fails, never skips, without it.
if ! command -v tcpdump >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update
    $sudo apt-get install -y tcpdump
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
