#!/usr/bin/env bash
# Runs the AVX-512 IFMA kernel's machine code under Bochs (PyPI bochscpu-python) and
# holds it to the portable kernel and to a b R^-1 mod p, for every MODP group size:
#
#   interop/ifma-emu/run.sh [CASES_PER_SIZE]      (default 100; about 30 s)
#
# So the vector code is tested on every CPU, not only on those with IFMA (where the
# crate's own differential tests also run it natively). Fails loudly if anything it
# needs is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cases=${1:-100}
work="$root/target/ifma-emu"
mkdir -p "$work"

for tool in gcc nm objdump python3; do
  command -v "$tool" >/dev/null || { echo "ifma-emu: $tool is missing" >&2; exit 1; }
done

venv="$work/venv"
if ! "$venv/bin/python" -c 'import bochscpu' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'bochscpu-python==0.4.0'
fi

# The wheel is built against glibc 2.38 and uses two C23 aliases older glibcs (Debian
# 12 has 2.36) lack; a two-function preload maps them to their C99 names.
shim="$work/libglibc238-shim.so"
if [ ! -f "$shim" ] || [ "$here/glibc238-shim.c" -nt "$shim" ]; then
  gcc -shared -fPIC -O2 -o "$shim" "$here/glibc238-shim.c"
fi

# The kernel library, with the workspace's own .cargo/config.toml flags.
(cd "$here" && CARGO_TARGET_DIR="$work/target" cargo build --release --quiet)
lib="$work/target/release/libifma_emu_kernel.so"

LD_PRELOAD="$shim" "$venv/bin/python" "$here/run.py" --lib "$lib" \
  --modp "$root/crates/scram-dh/src/dh/modp.rs" --cases "$cases"
