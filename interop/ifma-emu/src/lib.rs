//! C-ABI wrappers around the AVX-512 IFMA kernel of scram-dh, one per group size, for
//! `run.py` to call under the Bochs emulator. The kernel is not copied: `#[path]`
//! compiles the very file the library uses.
#![allow(dead_code, unsafe_code, missing_docs)]

#[path = "../../../crates/scram-dh/src/dh/ifma/kernel.rs"]
mod kernel;

use kernel::{LANES, amm_ifma};

macro_rules! wrap {
    ($name:ident, $v:literal) => {
        /// `out = a b / R mod p` for `8 * V` limbs.
        ///
        /// # Safety
        /// Each pointer addresses `8 * V` u64 (`out` writable, not overlapping the
        /// others); the CPU must support avx512f and avx512ifma.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(out: *mut u64, a: *const u64, b: *const u64, p: *const u64, k0: u64) {
            // SAFETY: the caller's contract above.
            unsafe {
                let out = &mut *out.cast::<[u64; $v * LANES]>();
                let a = &*a.cast::<[u64; $v * LANES]>();
                let b = &*b.cast::<[u64; $v * LANES]>();
                let p = &*p.cast::<[u64; $v * LANES]>();
                amm_ifma::<$v, { $v * LANES }>(out, a, b, p, k0);
            }
        }
    };
}
wrap!(k5, 5);
wrap!(k8, 8);
wrap!(k10, 10);
wrap!(k15, 15);
wrap!(k20, 20);
