//! The kernel of the radix-2^52 arithmetic: one almost-Montgomery multiplication, as
//! plain Rust ([`amm_portable`]) and on AVX-512 IFMA ([`amm_ifma`]).
//!
//! This file depends on nothing but `core`, so the emulation harness in
//! `interop/ifma-emu` compiles exactly this text into a library and runs the machine
//! code of [`amm_ifma`] under an x86 emulator with AVX-512 (Bochs), on any CPU. See the
//! parent module for the algorithm.

/// Limb width.
pub(crate) const BITS: usize = 52;
/// The low 52 bits.
pub(crate) const MASK: u64 = (1 << BITS) - 1;
/// Limbs per vector.
pub(crate) const LANES: usize = 8;

/// Propagates the carries of unnormalised lanes (each below `2^63`) so every limb is
/// below `2^52`. The value must fit the limbs (it does: it is below `2p < R`).
pub(crate) fn normalize(limbs: &mut [u64]) {
    let mut carry = 0u64;
    for limb in limbs.iter_mut() {
        let t = *limb + carry;
        *limb = t & MASK;
        carry = t >> BITS;
    }
}

/// Low 52 bits of the 104-bit product of the low 52 bits of `x` and `y` (`vpmadd52luq`).
pub(crate) fn lo52(x: u64, y: u64) -> u64 {
    ((u128::from(x & MASK) * u128::from(y & MASK)) as u64) & MASK
}

/// High 52 bits of the same product (`vpmadd52huq`).
pub(crate) fn hi52(x: u64, y: u64) -> u64 {
    ((u128::from(x & MASK) * u128::from(y & MASK)) >> BITS) as u64
}

/// The almost-Montgomery multiplication on plain `u64` lanes: `out = a b / R mod p`,
/// below `2p` for `a, b < 2p`. All slices have the same length (a multiple of 8).
///
/// This is the specification [`amm_ifma`] follows step for step.
pub(crate) fn amm_portable(out: &mut [u64], a: &[u64], b: &[u64], p: &[u64], k0: u64) {
    let n = p.len();
    // `out` is the accumulator (it must not alias `a` or `b`: the borrows say so).
    let acc = out;
    acc.fill(0);
    for &bi in b.iter().take(n) {
        // acc += lo(a * b_i)
        for (t, &aj) in acc.iter_mut().zip(a) {
            *t = t.wrapping_add(lo52(aj, bi));
        }
        let m = acc[0].wrapping_mul(k0) & MASK;
        // Lane 0 plus lo(m p_0) is a multiple of 2^52: only its carry moves on.
        let carry = (acc[0] + lo52(p[0], m)) >> BITS;
        for (t, &pj) in acc.iter_mut().zip(p).skip(1) {
            *t = t.wrapping_add(lo52(pj, m));
        }
        // Divide by 2^52: every lane moves down one.
        acc.copy_within(1.., 0);
        acc[n - 1] = 0;
        acc[0] += carry;
        // The high halves belong one lane up, which is now the same index.
        for ((t, &aj), &pj) in acc.iter_mut().zip(a).zip(p) {
            *t = t.wrapping_add(hi52(aj, bi)).wrapping_add(hi52(pj, m));
        }
    }
    normalize(acc);
}

/// [`amm_portable`] on AVX-512: `V` vectors of 8 lanes (`N = 8 V` limbs).
///
/// # Safety
/// The CPU must support `avx512f` and `avx512ifma`.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) unsafe fn amm_ifma<const V: usize, const N: usize>(
    out: &mut [u64; N],
    a: &[u64; N],
    b: &[u64; N],
    p: &[u64; N],
    k0: u64,
) {
    use core::arch::x86_64::{
        _mm_cvtsi64_si128, _mm_cvtsi128_si64, _mm512_add_epi64, _mm512_alignr_epi64, _mm512_castsi512_si128,
        _mm512_loadu_epi64, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_set1_epi64,
        _mm512_setzero_si512, _mm512_storeu_epi64, _mm512_zextsi128_si512,
    };
    let mut av = [_mm512_setzero_si512(); V];
    let mut pv = [_mm512_setzero_si512(); V];
    for (k, (va, vp)) in av.iter_mut().zip(pv.iter_mut()).enumerate() {
        let (ca, cp): (&[u64], &[u64]) = (&a[k * LANES..(k + 1) * LANES], &p[k * LANES..(k + 1) * LANES]);
        // SAFETY: `ca` and `cp` are 8 initialised u64 each (64 readable bytes); the
        // loads are unaligned.
        unsafe {
            *va = _mm512_loadu_epi64(ca.as_ptr().cast::<i64>());
            *vp = _mm512_loadu_epi64(cp.as_ptr().cast::<i64>());
        }
    }
    let p0 = p[0];
    let mut acc = [_mm512_setzero_si512(); V];
    for &bi in b {
        let bv = _mm512_set1_epi64(bi as i64);
        for k in 0..V {
            acc[k] = _mm512_madd52lo_epu64(acc[k], av[k], bv);
        }
        // Lane 0 after adding lo(a_0 b_i); m from its low 52 bits.
        let lane0 = _mm_cvtsi128_si64(_mm512_castsi512_si128(acc[0])) as u64;
        let m = lane0.wrapping_mul(k0) & MASK;
        let carry = (lane0 + lo52(p0, m)) >> BITS;
        let mv = _mm512_set1_epi64(m as i64);
        for k in 0..V {
            acc[k] = _mm512_madd52lo_epu64(acc[k], pv[k], mv);
        }
        // Shift down one lane: lanes 1..8 of acc[k], then lane 0 of acc[k + 1].
        for k in 0..V - 1 {
            acc[k] = _mm512_alignr_epi64::<1>(acc[k + 1], acc[k]);
        }
        acc[V - 1] = _mm512_alignr_epi64::<1>(_mm512_setzero_si512(), acc[V - 1]);
        acc[0] = _mm512_add_epi64(acc[0], _mm512_zextsi128_si512(_mm_cvtsi64_si128(carry as i64)));
        for k in 0..V {
            acc[k] = _mm512_madd52hi_epu64(acc[k], av[k], bv);
            acc[k] = _mm512_madd52hi_epu64(acc[k], pv[k], mv);
        }
    }
    for k in 0..V {
        let chunk: &mut [u64] = &mut out[k * LANES..(k + 1) * LANES];
        // SAFETY: `chunk` is 8 u64 (64 writable bytes); the store is unaligned.
        unsafe { _mm512_storeu_epi64(chunk.as_mut_ptr().cast::<i64>(), acc[k]) };
    }
    normalize(out);
}
