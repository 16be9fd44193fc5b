#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test in the workspace
# (unit, integration, end-to-end through the real binary, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
