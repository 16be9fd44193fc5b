#!/usr/bin/env bash
# Static cycle estimate of the AVX-512 IFMA kernel with llvm-mca (Debian: apt-get
# install llvm), on CPU models that have IFMA, for every MODP group size:
#
#   interop/ifma-emu/mca.sh [CPU,CPU...]     (default icelake-server,sapphirerapids)
#
# A model of the loop's machine code, not a measurement; BENCHMARKS.md says how it is
# used. Not part of the test suite.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work="$root/target/ifma-emu"
mca=$(command -v llvm-mca || ls /usr/bin/llvm-mca-* 2>/dev/null | sort -V | tail -1 || true)
[ -n "$mca" ] || { echo "ifma-emu: llvm-mca is missing (apt-get install llvm)" >&2; exit 1; }
command -v objdump >/dev/null || { echo "ifma-emu: objdump is missing (apt-get install binutils)" >&2; exit 1; }
(cd "$here" && CARGO_TARGET_DIR="$work/target" cargo build --release --quiet)
echo "$("$mca" --version | grep -m1 -i version)"
python3 "$here/mca.py" --lib "$work/target/release/libifma_emu_kernel.so" --mca "$mca" \
  --cpus "${1:-icelake-server,sapphirerapids}"
