#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test in the workspace
# (unit, integration, end-to-end through the real binary, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests that need programs from outside install them first, each only when
# missing (scripts/peers.sh; apt-get update runs once, only if something is missing):
# tcpdump for the packet-capture test (crates/scram-dh-cli/tests/capture.rs), and the
# standard-SCRAM peers for crates/scram-dh-cli/tests/std_interop.rs (gsasl, socat,
# PostgreSQL 15, scramp and requests-scram in target/peers-venv, npm gel in
# interop/node), redis-server for the Redis store tests, and nginx for the
# multi-node deployment (scripts/cluster.sh, tests/multinode.rs). Those tests fail,
# never skip, without them.
./scripts/peers.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The AVX-512 IFMA kernel's machine code under the Bochs emulator, so it is tested on
# CPUs without IFMA too (bochscpu-python from PyPI in target/ifma-emu/venv).
interop/ifma-emu/run.sh 100
cargo test --workspace --locked --no-fail-fast
# Information, not a test (it never fails the run): the CPU, OpenSSL's ffdh6144 derive,
# and the modp registration DH step on each modexp engine this CPU runs.
./scripts/machine-info.sh
