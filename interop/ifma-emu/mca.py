#!/usr/bin/env python3
"""Static cycle estimate of the AVX-512 IFMA kernel's inner loop with llvm-mca.

For each group size (the k5..k20 wrappers of src/lib.rs), finds the loop of
`amm_ifma` that holds the vpmadd52 instructions (one iteration per limb of b),
feeds its body to llvm-mca for CPU models that have AVX-512 IFMA, and prints the
cycles per iteration and per product (iterations = limbs). A model, not a
measurement: see BENCHMARKS.md for how it is used and what it leaves out."""
import argparse, re, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--lib", required=True)
ap.add_argument("--mca", default="llvm-mca")
ap.add_argument("--cpus", default="icelake-server,sapphirerapids")
args = ap.parse_args()

SIZES = {"k5": (5, 2048), "k8": (8, 3072), "k10": (10, 4096), "k15": (15, 6144), "k20": (20, 8192)}


def disasm(start=None, stop=None, symbol=None):
    cmd = ["objdump", "-d", "--no-show-raw-insn", "-M", "att"]
    if symbol:
        cmd.append(f"--disassemble={symbol}")
    if start is not None:
        cmd += [f"--start-address={start:#x}", f"--stop-address={stop:#x}"]
    out = subprocess.run(cmd + [args.lib], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
        if m:
            rows.append((int(m.group(1), 16), m.group(2).split("#")[0].strip()))
    return rows


def target_of(wrapper):
    """The wrapper is a tail call (jmp) into the monomorphised amm_ifma."""
    for _, ins in disasm(symbol=wrapper):
        m = re.match(r"jmp\s+([0-9a-f]+)\s+<(.*)>", ins)
        if m:
            return int(m.group(1), 16)
    sys.exit(f"mca: {wrapper} does not tail-call the kernel")


def main_loop(entry):
    """The backward branch whose body holds the most vpmadd52 instructions."""
    rows = disasm(entry, entry + 0x4000)
    best = None
    for i, (addr, ins) in enumerate(rows):
        if ins.startswith("ret"):
            break
        m = re.match(r"j[a-z]+\s+([0-9a-f]+)\s", ins)
        if not m or int(m.group(1), 16) >= addr:
            continue
        body = [x for a, x in rows if int(m.group(1), 16) <= a < addr]
        count = sum("vpmadd52" in x for x in body)
        if best is None or count > best[0]:
            best = (count, body)
    if best is None or best[0] == 0:
        sys.exit("mca: no loop with vpmadd52 found")
    # Branches out of the straight-line body mean nothing to llvm-mca's model.
    return best[0], [x for x in best[1] if not re.match(r"j[a-z]+\s", x)]


def mca(cpu, body):
    out = subprocess.run([args.mca, f"-mcpu={cpu}", "-iterations=500"], input="\n".join(body) + "\n",
                         capture_output=True, text=True, check=True).stdout
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1))
    rthroughput = float(re.search(r"Block RThroughput:\s+([\d.]+)", out).group(1))
    return cycles / 500, rthroughput


cpus = args.cpus.split(",")
print("| group | limbs | instructions per iteration | vpmadd52 per iteration | " +
      " | ".join(f"{c}: cycles per iteration (throughput bound) | cycles per product" for c in cpus) + " |")
print("|---|---|---|---|" + "---|---|" * len(cpus))
for name, (vectors, bits) in SIZES.items():
    madds, body = main_loop(target_of(name))
    limbs = 8 * vectors
    cells = []
    for cpu in cpus:
        per_iter, rt = mca(cpu, body)
        cells += [f"{per_iter:.1f} ({rt:.0f})", f"{per_iter * limbs:,.0f}"]
    print(f"| modp{bits} | {limbs} | {len(body)} | {madds} | " + " | ".join(cells) + " |")
