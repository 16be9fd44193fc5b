#!/usr/bin/env python3
"""Differential test: the machine code of scram-dh's amm_ifma (compiled from
crates/scram-dh/src/dh/ifma/kernel.rs into a shared library, see run.sh) executed under
Bochs, against a line-by-line Python port of amm_portable, plus an independent check
out == a b R^-1 (mod p), out < 2p, limbs < 2^52. Edge cases, then random operands.
Exits 1 on any mismatch, on code that does not return, or if the emulator does not
fault on EVEX code with the AVX-512 state disabled (the negative control)."""
import argparse, hashlib, os, random, re, struct, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emu import Machine, DATA, PAGE

ap = argparse.ArgumentParser()
ap.add_argument("--lib", required=True)
ap.add_argument("--modp", required=True, help="crates/scram-dh/src/dh/modp.rs (the primes)")
ap.add_argument("--cases", type=int, default=100, help="random cases per group size")
ap.add_argument("--seed", type=int, default=20261201)
args = ap.parse_args()
SO = args.lib
BASE = 0x4000_0000
BITS = 52
MASK = (1 << BITS) - 1
LANES = 8
U64 = (1 << 64) - 1
CASES = args.cases
SEED = args.seed

# ---- the primes, from modp.rs ----
modp = open(args.modp).read()
PRIMES = {}
for m in re.finditer(r'const P(\d+)_HEX: &str = concat!\((.*?)\);', modp, re.S):
    PRIMES[int(m.group(1))] = int("".join(re.findall(r'"([0-9A-Fa-f]*)"', m.group(2))), 16)
assert sorted(PRIMES) == [2048, 3072, 4096, 6144, 8192], sorted(PRIMES)
for n, p in PRIMES.items():
    assert p.bit_length() == n and p & U64 == U64 and p >> (n - 64) == U64, n
    assert pow(2, p - 1, p) == 1, n   # Fermat base 2

# ---- ELF: load PT_LOAD segments, find symbols ----
elf = open(SO, "rb").read()
phoff, = struct.unpack_from("<Q", elf, 0x20)
phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
regions = []
for i in range(phnum):
    p_type, p_flags, p_off, p_vaddr, _, p_filesz, p_memsz, _ = struct.unpack_from("<IIQQQQQQ", elf, phoff + i * phentsize)
    if p_type == 1:
        regions.append((BASE + p_vaddr, elf[p_off:p_off + p_filesz] + b"\0" * (p_memsz - p_filesz), bool(p_flags & 2)))
syms = {}
for line in subprocess.run(["nm", SO], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 3:
        syms[f[2]] = int(f[0], 16)
sizes = {}
for line in subprocess.run(["nm", "-S", SO], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4:
        sizes[f[3]] = (int(f[0], 16), int(f[1], 16))

# ---- the portable reference, line by line ----
def lo52(x, y):
    return ((x & MASK) * (y & MASK)) & U64 & MASK

def hi52(x, y):
    return (((x & MASK) * (y & MASK)) >> BITS) & U64

def normalize(limbs):
    carry = 0
    for j in range(len(limbs)):
        t = limbs[j] + carry
        assert t <= U64, "overflow in normalize"   # Rust `+` (would panic in debug)
        limbs[j] = t & MASK
        carry = t >> BITS

def amm_portable(a, b, p, k0):
    n = len(p)
    acc = [0] * n
    for bi in b[:n]:
        for j in range(n):
            acc[j] = (acc[j] + lo52(a[j], bi)) & U64
        m = (acc[0] * k0) & U64 & MASK
        t = acc[0] + lo52(p[0], m)
        assert t <= U64
        carry = t >> BITS
        for j in range(1, n):
            acc[j] = (acc[j] + lo52(p[j], m)) & U64
        acc[0:n - 1] = acc[1:n]
        acc[n - 1] = 0
        assert acc[0] + carry <= U64
        acc[0] += carry
        for j in range(n):
            acc[j] = (((acc[j] + hi52(a[j], bi)) & U64) + hi52(p[j], m)) & U64
    normalize(acc)
    return acc

def neg_inverse_52(q):
    x = 1
    for _ in range(6):
        x = (x * ((2 - q * x) & U64)) & U64
    return (-x) & U64 & MASK

def to_limbs(x, n):
    assert x < 1 << (BITS * n)
    return [(x >> (BITS * j)) & MASK for j in range(n)]

def from_limbs(l):
    return sum(v << (BITS * j) for j, v in enumerate(l))

# ---- run ----
m = Machine(regions)
for va, data, _ in regions:
    assert m.read(va, len(data)) == data
OUT, A, B, P = DATA + 0x08, DATA + 0x2010, DATA + 0x4018, DATA + 0x6020   # 8-byte aligned, not 64
rng = random.Random(SEED)
print(f"libkern.so sha256 {hashlib.sha256(elf).hexdigest()}  seed {SEED}  cases/size {CASES}")
total_fail = 0
for nbits in (2048, 3072, 4096, 6144, 8192):
    p = PRIMES[nbits]
    limbs = -(-(nbits + 2) // BITS)
    limbs = -(-limbs // LANES) * LANES
    V = limbs // LANES
    name = f"k{V}"
    R = 1 << (BITS * limbs)
    assert R > 4 * p
    pl = to_limbs(p, limbs)
    k0 = neg_inverse_52(pl[0])
    assert k0 == (-pow(p, -1, 1 << 52)) % (1 << 52)
    rinv = pow(R, -1, p)
    fn = BASE + syms[name]
    # which amm_ifma the wrapper jumps to (for the rip-range check)
    tgt = [s for s, (addr, sz) in sizes.items() if "amm_ifma" in s and
           subprocess.run(["objdump", "-d", f"--start-address={syms[name]}", f"--stop-address={syms[name]+5}", SO],
                          capture_output=True, text=True).stdout.find(f"<{s}>") >= 0]
    assert len(tgt) == 1, tgt
    lo_addr, sz = sizes[tgt[0]]
    m.write_u64s(P, pl)
    # edge cases, then random below 2p
    rmodp = R % p
    edge = [(0, 0), (2 * p - 1, 2 * p - 1), (0, 2 * p - 1), (2 * p - 1, 0), (1, 1), (2 * p - 1, 1),
            (p, p), (p - 1, p - 1), (p + 1, 2 * p - 1), (R * R % p, rmodp - 1 + (0 if rmodp & MASK else 0)),
            (R * R % p, (rmodp & ~MASK) | ((rmodp - 1) & MASK)),   # the self-test pair of ifma_usable
            (from_limbs([MASK] * (limbs - 1)) % (2 * p), 2 * p - 1)]
    cases = edge + [(rng.randrange(2 * p), rng.randrange(2 * p)) for _ in range(CASES)]
    # a few with a, b below p (the common case in pow), and with top limbs extreme
    cases += [(rng.randrange(p), rng.randrange(p)) for _ in range(CASES // 10)]
    fails = 0
    t0 = time.time()
    for ci, (a, b) in enumerate(cases):
        assert 0 <= a < 2 * p and 0 <= b < 2 * p
        al, bl = to_limbs(a, limbs), to_limbs(b, limbs)
        m.write_u64s(A, al); m.write_u64s(B, bl)
        m.write_u64s(OUT, [0xA5A5A5A5A5A5A5A5] * limbs)
        trace = [] if ci < 2 else None
        cnt = [0] if ci < 2 else None
        st, exc = m.call(fn, [OUT, A, B, P, k0], count=cnt, trace=trace)
        if not m.returned(st, exc):
            print(f"{nbits}: case {ci}: did not return: exception {exc}, rip {st.rip:#x}")
            fails += 1; break
        if trace is not None:
            inside = [r for r in trace if not (BASE + lo_addr <= r < BASE + lo_addr + sz) and r != fn]
            print(f"  {nbits}: case {ci}: {cnt[0]} instructions, rips outside {tgt[0]} (besides the wrapper jmp): {len(inside)}")
            assert not inside
        got = m.read_u64s(OUT, limbs)
        want = amm_portable(al, bl, pl, k0)
        v = from_limbs(got)
        ok = (got == want and all(x <= MASK for x in got) and v < 2 * p and v % p == a * b * rinv % p)
        if not ok:
            fails += 1
            if fails <= 3:
                print(f"MISMATCH {nbits} case {ci}: a={a:#x} b={b:#x}\n got={got}\n want={want}\n"
                      f" got==want {got == want}, v<2p {v < 2*p}, congruent {v % p == a*b*rinv % p}")
    total_fail += fails
    print(f"modp{nbits} (V={V}, N={limbs}, {name} -> {tgt[0]}): {len(cases)} cases "
          f"({len(edge)} edge + {CASES} random <2p + {CASES//10} random <p): {fails} failures, {time.time()-t0:.1f}s")

# negative control: without AVX-512 state enabled in XCR0 the EVEX code must #UD
st, exc = m.call(BASE + syms["k5"], [OUT, A, B, P, 1], xcr0=0x7)
print(f"negative control (XCR0=0x7): exception {exc} at rip {st.rip:#x} "
      f"({'#UD as expected' if exc and exc[0] == 6 else 'UNEXPECTED'})")
if not (exc and exc[0] == 6):
    total_fail += 1
print("ALL EQUAL" if total_fail == 0 else f"FAILURES: {total_fail}")
sys.exit(0 if total_fail == 0 else 1)
