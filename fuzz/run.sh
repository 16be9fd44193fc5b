#!/usr/bin/env bash
# Fuzzes one target with libFuzzer on nightly, then merges what found new coverage
# into the committed corpus.
#
#   fuzz/run.sh <target> [seconds]      e.g. fuzz/run.sh server_state_machine 180
#
# With cargo-fuzz installed this is `cargo +nightly fuzz run <target>`; without it,
# the same instrumentation flags are passed by hand (no sanitizer: the core forbids
# unsafe code). New inputs go to a scratch directory first; only those that add
# coverage are merged into fuzz/corpus/<target>/. A crash lands in
# fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/ and the stable
# replay test (crates/scram-dh/tests/fuzz_replay.rs) runs it from then on.
set -euo pipefail

target=${1:?usage: fuzz/run.sh <target> [seconds]}
seconds=${2:-60}
fuzz=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$fuzz/target}
triple=$(rustc -vV | sed -n 's/^host: //p')

export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
(cd "$fuzz" && cargo +nightly build --release --target "$triple" --bin "$target" -j "${JOBS:-1}")
bin=$CARGO_TARGET_DIR/$triple/release/$target

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$fuzz/corpus/$target" "$fuzz/regressions/$target" "$fuzz/artifacts/$target"
max_len=4096
[ "$target" = server_state_machine ] && max_len=512
"$bin" "$scratch" "$fuzz/corpus/$target" "$fuzz/regressions/$target" \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$fuzz/artifacts/$target/" -print_final_stats=1 2>&1 | tail -n 30
"$bin" -merge=1 "$fuzz/corpus/$target" "$scratch" 2>&1 | tail -n 3
