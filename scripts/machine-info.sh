#!/usr/bin/env bash
# Information, not a test: what this machine is, and a quick measure of the modp
# registration DH step on it, printed at the end of scripts/test.sh.
#
# Why: issue 10's DH target depends on the AVX-512 IFMA engine, which the project's
# VM cannot run, while the CI machine has reported `modexp="avx512-ifma"` in its
# server logs. So every run prints, in its last lines:
#   - the CPU model and the flags the engines care about;
#   - OpenSSL's own `openssl speed ffdh6144` derive time, in the same minute;
#   - crates/scram-dh/examples/dh_step.rs (built by `cargo test`, optimised by
#     [profile.test]) on the engine the CPU picks, and, on an IFMA CPU, again with
#     SCRAM_DH_MODEXP=crypto-bigint, and the ratios.
# Criterion (scripts/bench-all.sh) stays the reference for BENCHMARKS.md; these are
# 40-sample medians on a shared machine. Nothing here fails the suite: a step that
# cannot run says so in one line.
#
#   scripts/machine-info.sh [SAMPLES]     (default 40)
set -uo pipefail
cd "$(dirname "$0")/.."
samples="${1:-40}"
bin=target/debug/examples/dh_step

echo "== machine info (information only, not a test) =="
echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //') ($(nproc) CPUs)"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(adx|bmi2|sha_ni|avx2|avx512f|avx512ifma|avx512vl)$' | tr '\n' ' ')"
ifma=no
if grep -qw avx512ifma /proc/cpuinfo; then ifma=yes; fi
if [ ! -x "$bin" ]; then
    echo "machine-info: $bin is missing (cargo test builds it); no DH figures"
    exit 0
fi

derive_ms=""
if command -v openssl >/dev/null; then
    # "6144 bits ffdh   0.0029s    343.8": from the last field, derives per second.
    derive_ms=$(openssl speed -seconds 2 ffdh6144 2>/dev/null \
        | awk '$1 == "6144" && $3 == "ffdh" && $NF + 0 > 0 {printf "%.2f", 1000 / $NF; exit}')
    if [ -n "$derive_ms" ]; then echo "openssl speed ffdh6144: ${derive_ms} ms per derive ($(openssl version))"; fi
fi
[ -n "$derive_ms" ] || echo "machine-info: no OpenSSL ffdh6144 figure"

step() { # engine override or empty
    if [ -n "$1" ]; then SCRAM_DH_MODEXP="$1" "$bin" "$samples"; else "$bin" "$samples"; fi
}
auto=$(step "" 2>&1) || { echo "machine-info: dh_step failed: $auto"; exit 0; }
echo "$auto"
portable=""
if [ "$ifma" = yes ]; then
    portable=$(step crypto-bigint 2>&1) || { echo "machine-info: dh_step (crypto-bigint) failed: $portable"; exit 0; }
    echo "$portable"
fi
# The modp6144 step against OpenSSL's derive, and the engines against each other.
python3 - "$derive_ms" "$auto" "$portable" <<'EOF'
import re, sys
derive, auto, portable = sys.argv[1], sys.argv[2], sys.argv[3]
def us(text, group):
    m = re.search(rf"dh_step {group} engine=(\S+) .*registration_dh_us=([\d.]+)", text)
    return (m.group(1), float(m.group(2))) if m else (None, None)
engine, a = us(auto, "modp6144")
_, p = us(portable, "modp6144")
if a is not None and derive:
    print(f"modp6144 registration step / OpenSSL derive: {a / 1000:.2f} / {float(derive):.2f} ms = {a / 1000 / float(derive):.2f}x ({engine})")
if a is not None and p is not None:
    print(f"modp6144 step, crypto-bigint / {engine}: {p / a:.2f}x")
EOF
exit 0
