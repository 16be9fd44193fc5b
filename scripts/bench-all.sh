#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one session, so each target is a ratio measured in
# the same minutes (these machines drift by 25-30% from one hour to the next):
#
#   scripts/bench-all.sh [OUT_DIR]          (default target/bench-all/<timestamp>)
#
# 1. the machine (CPU, cores, kernel, rustc, OpenSSL, the modexp engine in use);
# 2. `openssl speed ffdh6144 ffdh8192`, before and after the criterion runs;
# 3. criterion: dh (every group), protocol, primitives, stores; on a CPU with AVX-512
#    IFMA the modp groups again with SCRAM_DH_MODEXP=crypto-bigint (baseline
#    "crypto-bigint"), so both engines are compared in one session; on a CPU without it,
#    interop/ifma-emu/mca.sh's static llvm-mca estimate of the IFMA kernel instead;
# 4. scripts/bench-load.sh: the load generator against real servers (null protocol,
#    TCP logins on memory and SQLite, HTTP signed/unsigned, gateway/direct, half-open
#    memory, latency at half saturation);
# 5. OUT_DIR/summary.md: the tables and each target marked met or missed.
#
# Takes about 15 minutes on 2 cores. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "bench-all.sh needs jq (apt-get install jq)" >&2; exit 1; }
out=${1:-target/bench-all/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export CARGO_TERM_COLOR=never

say() { printf '\n== %s\n' "$*" >&2; }

ifma=no
if grep -qw avx512ifma /proc/cpuinfo; then ifma=yes; fi

say "machine"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '))"
  echo "cores: $(nproc)"
  echo "flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(adx|bmi2|sha_ni|avx2|avx512f|avx512ifma)$' | tr '\n' ' ')"
  echo "avx512ifma: $ifma"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "openssl: $(openssl version)"
} | tee "$out/machine.txt"

openssl_speed() {
  # "6144 bits ffdh   0.0039s    254.0" -> seconds per derive
  openssl speed -seconds 5 ffdh6144 ffdh8192 2>/dev/null | awk '/bits ffdh/ {print $1, $4}' | tr -d s
}

say "openssl speed (before)"
openssl_speed | tee "$out/openssl-before.txt"

say "criterion (release build first)"
cargo bench -p scram-dh --bench dh --no-run -q
# Each engine's run under its own baseline name: criterion's "new" holds whichever ran
# last, and the summary once read the crypto-bigint run's figures as the IFMA engine's.
cargo bench -p scram-dh --bench dh -- --save-baseline auto 2>&1 | tee "$out/criterion-dh.txt" | grep -E 'engine|time:' >&2 || true
if [ "$ifma" = yes ]; then
  SCRAM_DH_MODEXP=crypto-bigint cargo bench -p scram-dh --bench dh -- --save-baseline crypto-bigint 'modp' \
    2>&1 | tee "$out/criterion-dh-crypto-bigint.txt" | grep -E 'engine|time:' >&2 || true
fi
if [ "$ifma" = no ]; then
  say "IFMA kernel: static llvm-mca estimate (this CPU cannot run it)"
  interop/ifma-emu/mca.sh 2>&1 | tee "$out/ifma-mca.md" >&2 ||
    echo "no llvm-mca estimate: interop/ifma-emu/mca.sh needs llvm-mca and objdump" >&2
fi
cargo bench -p scram-dh --bench protocol 2>&1 | tee "$out/criterion-protocol.txt" | grep -E 'time:' >&2 || true
cargo bench -p scram-dh --bench primitives 2>&1 | tee "$out/criterion-primitives.txt" | grep -E 'time:' >&2 || true
cargo bench -p scram-dh-store --bench stores 2>&1 | tee "$out/criterion-stores.txt" | grep -E 'time:' >&2 || true

say "openssl speed (after)"
openssl_speed | tee "$out/openssl-after.txt"

say "load generator"
cargo build --release -q -p scram-dh-cli
BIN="$PWD/target/release/scram-dh" scripts/bench-load.sh 5 8 2>&1 | tee "$out/load.txt"

say "summary"
python3 - "$out" "$ifma" <<'EOF' | tee "$out/summary.md"
import json, os, sys, glob

out, ifma = sys.argv[1], sys.argv[2] == "yes"
crit = "target/criterion"

def est(path, baseline="new"):
    f = os.path.join(crit, path, baseline, "estimates.json")
    try:
        with open(f) as fh:
            return json.load(fh)["median"]["point_estimate"] / 1e9  # seconds
    except OSError:
        return None

def speed(name):
    vals = {}
    for f in ("openssl-before.txt", "openssl-after.txt"):
        with open(os.path.join(out, f)) as fh:
            for line in fh:
                bits, secs = line.split()
                vals.setdefault(bits, []).append(float(secs))
    return vals.get(name, [])

def us(s):
    return "-" if s is None else (f"{s*1e6:.1f} µs" if s < 1e-3 else f"{s*1e3:.2f} ms")

o6144, o8192 = speed("6144"), speed("8192")
print("## DH per group (criterion medians)\n")
print("| group | keygen | validate | Legendre | shared secret | server registration DH |" + (" same, crypto-bigint |" if ifma else ""))
print("|---|---|---|---|---|---|" + ("---|" if ifma else ""))
for g in ["modp2048", "modp3072", "modp4096", "modp6144", "modp8192", "x25519"]:
    row = [us(est(f"{g}/{b}", "auto")) for b in ["keygen", "validate_public_key", "legendre_check", "shared_secret", "server_registration_dh"]]
    extra = [us(est(f"{g}/server_registration_dh", "crypto-bigint"))] if ifma else []
    print(f"| {g} | " + " | ".join(row + extra) + " |")
print()
print(f"`openssl speed ffdh6144`: {', '.join(us(v) for v in o6144)} per derive (before, after); ffdh8192: {', '.join(us(v) for v in o8192)}.\n")

def verdict(ok):
    return "**met**" if ok else "**missed**"

print("## Targets measured here\n")
print("| target | figure | verdict |")
print("|---|---|---|")
reg = est("modp6144/server_registration_dh", "auto")
if reg and o6144:
    ref = max(o6144)
    r = reg / ref
    print(f"| modp6144 server registration step <= 0.75x one `openssl speed ffdh6144` derive | {us(reg)} / {us(ref)} = {r:.2f}x | {verdict(r <= 0.75)} |")
reg8 = est("modp8192/server_registration_dh", "auto")
if reg8 and o8192:
    print(f"| (reported) modp8192 server registration step vs ffdh8192 derive | {us(reg8)} / {us(max(o8192))} = {reg8/max(o8192):.2f}x | - |")
auth = est("auth/full_in_process_no_channel")
if auth:
    print(f"| one full in-process authentication <= 5 µs | {us(auth)} | {verdict(auth <= 5e-6)} |")
leg = est("modp6144/legendre_check", "auto")
if leg:
    print(f"| modp6144 Legendre check <= 40 µs | {us(leg)} | {verdict(leg <= 40e-6)} |")
print()
print("## The load generator (scripts/bench-load.sh, one run)\n")
print("```")
with open(os.path.join(out, "load.txt")) as fh:
    print(fh.read().strip())
print("```")
EOF
printf '\nresults in %s\n' "$out" >&2
