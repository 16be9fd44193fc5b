//! Variable-time Jacobi symbol for public multi-limb integers.
//!
//! Used to check that a peer's FFDH public key `y` lies in the prime-order subgroup of a
//! safe-prime group: for `p = 2q + 1` that subgroup is exactly the quadratic residues, so
//! the check is the Legendre symbol `(y | p) = 1`. Everything here is public data, so the
//! code is free to branch on it.
//!
//! # Algorithm
//!
//! A Bernstein–Yang style "divsteps" iteration on a pair `(f, g)` with `f` odd, in the
//! variant that keeps both numbers non-negative:
//!
//! * `g` even: `g <- g / 2`, `delta <- delta + 1`;
//! * `g` odd and `delta > 0`: swap `f` and `g`, `delta <- -delta`, then as below;
//! * `g` odd: `g <- (g + f) / 2`, `delta <- delta + 1`.
//!
//! Every decision depends only on the low bits of `f` and `g`, so 62 steps are run on the
//! low 64-bit words alone while a 2x2 transition matrix with non-negative entries is
//! accumulated; the matrix is then applied once to the full numbers. After `k` steps
//! every row of that matrix sums to at most `2^k`, so `k = 62` keeps the entries in a
//! `u64`, and the low `64 - k` bits of the words stay exact, which leaves the 3 low bits
//! of `f` known at every step of the batch.
//!
//! The symbol is tracked from those exact low bits:
//! * halving `g` flips the sign iff `f mod 8` is 3 or 5 (`(2 | f) = -1`);
//! * swapping flips it iff `f = g = 3 (mod 4)` (quadratic reciprocity);
//! * `(g + f | f) = (g | f)`.
//!
//! Runs of steps are taken several at a time: trailing zeros of `g` are removed with one
//! shift, and while `delta` guarantees that no swap can happen, `n` steps of "add `f` if
//! odd, halve" become `g <- g + w*f` with `w < 2^n` chosen to make the sum divisible by
//! `2^n` (`w = -g/f mod 2^n`), which is exactly what the single steps would produce.
//!
//! Correctness never depends on the swap policy (any swap of two odd numbers is a valid
//! reciprocity step); `delta` only steers the process towards shrinking the larger number.
//! Both numbers stay positive (every batch matrix is non-singular with non-negative
//! entries) and `max(f, g)` never grows, so the loop terminates.
//!
//! The working length shrinks as the numbers do; once both fit in one word a plain binary
//! algorithm finishes. An iteration bound guards the loop: if it is ever hit, the simple
//! exact binary algorithm ([`jacobi_binary`]) answers instead; the tests check that this
//! never happens.
//!
//! Cost on the development machine (2-vCPU EPYC, Zen 5 class): about 62 µs for a 6144-bit
//! `(y | p)`, ~3.0 batches of 62 steps per 64-bit word of input; roughly 45% of the time
//! is the 62-step inner loop (latency bound), 55% applying the matrices to the numbers.

use core::sync::atomic::{AtomicU64, Ordering};

/// Steps per batch: the low word of `g` is exact for `64 - k` bits after `k` steps and
/// the last step of a batch still needs `f mod 8`.
const BATCH: u32 = 62;

/// Largest operand handled by the fast path, in 64-bit words (8192 bits).
const MAX_WORDS: usize = 128;

/// Batches allowed per 64-bit word of input before giving up on the fast path.
///
/// Measured on random 2048-, 6144- and 8192-bit inputs (2000 samples each, modulus with the
/// top bit set) the loop needs 3.0 batches per word on average and never more than 3.11;
/// twice that is a wide margin while still bounding the work. If the bound is hit, the
/// binary fallback costs about 1 ms for 6144 bits.
const BATCHES_PER_WORD: usize = 6;

/// How often the fast path hit its iteration bound and fell back (process-wide).
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// Number of times [`jacobi_vartime`] fell back to the binary algorithm in this process.
#[cfg(test)]
pub(crate) fn fallbacks() -> u64 {
    FALLBACKS.load(Ordering::Relaxed)
}

/// The iteration bound for an input of `words` 64-bit words.
fn max_batches(words: usize) -> usize {
    BATCHES_PER_WORD * words + 8
}

/// Longest run of steps collapsed into one `g += w*f` (bounded by the cheap inverse below).
const MAX_JUMP: i64 = 6;

/// Transition matrix of one batch: `2^62 * (f', g') = (u*f + v*g, q*f + r*g)`.
#[derive(Clone, Copy, Debug)]
struct Matrix {
    u: u64,
    v: u64,
    q: u64,
    r: u64,
}

/// Runs [`BATCH`] divsteps on the low words `f` (odd) and `g`.
///
/// Updates `delta` and the sign bit `jac` (bit 0 set = negated) and returns the matrix.
#[inline]
fn divsteps(delta: &mut i64, mut f: u64, mut g: u64, jac: &mut u64) -> Matrix {
    let (mut u, mut v, mut q, mut r) = (1u64, 0u64, 0u64, 1u64);
    let mut d = *delta;
    let mut j = *jac;
    let mut rem = BATCH;
    loop {
        // Halve g as often as it is even, at most `rem` times: the sentinel bit makes
        // `zeros <= rem`, and `rem <= 62` keeps the shift in range.
        let zeros = (g | (1u64 << rem)).trailing_zeros();
        g >>= zeros;
        u <<= zeros;
        v <<= zeros;
        rem -= zeros;
        d += i64::from(zeros);
        // One sign flip per halving when f = 3 or 5 (mod 8), i.e. bit 1 xor bit 2 of f.
        j ^= u64::from(zeros) & ((f >> 1) ^ (f >> 2));
        if rem == 0 {
            break;
        }
        // g is odd here.
        if d > 0 {
            // Reciprocity: flip iff f = g = 3 (mod 4), i.e. bit 1 set in both.
            j ^= (f & g) >> 1;
            core::mem::swap(&mut f, &mut g);
            core::mem::swap(&mut u, &mut q);
            core::mem::swap(&mut v, &mut r);
            d = -d;
        }
        // Now d <= 0, so the next `1 - d` steps cannot swap: that many "add f if odd, then
        // halve" steps collapse into g += w*f with w < 2^limit chosen to make the sum
        // divisible by 2^limit; the halvings happen at the top of the loop.
        // `1 - d` is in [1, MAX_JUMP] after the `min`, so the cast is lossless.
        let limit = ((1 - d).min(MAX_JUMP) as u32).min(rem);
        let mask = (1u64 << limit) - 1;
        // f^-1 mod 2^6: f*f = 1 (mod 8), and one Newton step doubles the 3 correct bits.
        let f_inv = f.wrapping_mul(2u64.wrapping_sub(f.wrapping_mul(f)));
        let w = g.wrapping_mul(f_inv).wrapping_neg() & mask;
        g = g.wrapping_add(w.wrapping_mul(f));
        // Row sums stay below 2^(steps done + limit) <= 2^62: no overflow.
        q = q.wrapping_add(w.wrapping_mul(u));
        r = r.wrapping_add(w.wrapping_mul(v));
    }
    *delta = d;
    *jac = j;
    Matrix { u, v, q, r }
}

/// Replaces `(f, g)` by `((u*f + v*g) / 2^62, (q*f + r*g) / 2^62)`, in place.
///
/// The divisions are exact and the results fit (row sums are at most 2^62, so each
/// result is at most `max(f, g)`).
#[inline]
fn apply(m: Matrix, f: &mut [u64], g: &mut [u64]) {
    let len = f.len().min(g.len());
    let (f, g) = (&mut f[..len], &mut g[..len]);
    let (Some(&f0), Some(&g0)) = (f.first(), g.first()) else {
        return;
    };
    let (u, v, q, r) = (u128::from(m.u), u128::from(m.v), u128::from(m.q), u128::from(m.r));
    // u*x + v*y <= (u + v) * (2^64 - 1) < 2^126, so adding a 64-bit carry cannot overflow.
    let mut cf = u * u128::from(f0) + v * u128::from(g0);
    let mut cg = q * u128::from(f0) + r * u128::from(g0);
    let mut pf = cf as u64;
    let mut pg = cg as u64;
    for i in 1..len {
        let (fi, gi) = (u128::from(f[i]), u128::from(g[i]));
        cf = u * fi + v * gi + (cf >> 64);
        cg = q * fi + r * gi + (cg >> 64);
        let (tf, tg) = (cf as u64, cg as u64);
        f[i - 1] = (pf >> BATCH) | (tf << (64 - BATCH));
        g[i - 1] = (pg >> BATCH) | (tg << (64 - BATCH));
        pf = tf;
        pg = tg;
    }
    f[len - 1] = (pf >> BATCH) | (((cf >> 64) as u64) << (64 - BATCH));
    g[len - 1] = (pg >> BATCH) | (((cg >> 64) as u64) << (64 - BATCH));
}

/// Jacobi symbol of single words, `n` odd; `neg` is the sign bit accumulated so far.
fn jacobi_u64(mut a: u64, mut n: u64, mut neg: u64) -> i8 {
    loop {
        if a == 0 {
            return if n == 1 { sign(neg) } else { 0 };
        }
        let z = a.trailing_zeros();
        a >>= z;
        neg ^= u64::from(z) & ((n >> 1) ^ (n >> 2));
        if a < n {
            neg ^= (a & n) >> 1;
            core::mem::swap(&mut a, &mut n);
        }
        a -= n;
    }
}

fn sign(neg: u64) -> i8 {
    if neg & 1 == 0 { 1 } else { -1 }
}

/// Jacobi symbol `(a | n)` for little-endian 64-bit words, `n` odd; variable time.
///
/// Returns `None` if `n` is even or zero. `a` may be larger than `n`; both are
/// zero-extended to a common length.
pub(crate) fn jacobi_vartime(a: &[u64], n: &[u64]) -> Option<i8> {
    if n.first().is_none_or(|w| w & 1 == 0) {
        return None;
    }
    let len = a.len().max(n.len());
    if len > MAX_WORDS {
        return jacobi_binary(a, n);
    }
    match jacobi_divsteps(a, n, max_batches(len)) {
        Some(symbol) => Some(symbol),
        None => {
            FALLBACKS.fetch_add(1, Ordering::Relaxed);
            jacobi_binary(a, n)
        }
    }
}

/// The divsteps algorithm; `None` if `batches` batches were not enough.
///
/// Requires `n` odd and both inputs at most [`MAX_WORDS`] long.
fn jacobi_divsteps(a: &[u64], n: &[u64], batches: usize) -> Option<i8> {
    let len = a.len().max(n.len());
    if len > MAX_WORDS || n.first().is_none_or(|w| w & 1 == 0) {
        return None;
    }
    if a.iter().all(|&w| w == 0) {
        // (0 | n) is 1 for n = 1 and 0 otherwise.
        let one = n[0] == 1 && n[1..].iter().all(|&w| w == 0);
        return Some(i8::from(one));
    }
    let mut f = [0u64; MAX_WORDS];
    let mut g = [0u64; MAX_WORDS];
    f[..n.len()].copy_from_slice(n);
    g[..a.len()].copy_from_slice(a);
    let mut len = len;
    let mut delta: i64 = 1;
    let mut jac: u64 = 0;
    for _ in 0..batches {
        while len > 1 && f[len - 1] == 0 && g[len - 1] == 0 {
            len -= 1;
        }
        if len == 1 {
            return Some(jacobi_u64(g[0], f[0], jac));
        }
        let m = divsteps(&mut delta, f[0], g[0], &mut jac);
        apply(m, &mut f[..len], &mut g[..len]);
        if f[0] == g[0] && f[..len] == g[..len] {
            // The only fixed point: f = g = gcd(a, n) > 1 (len > 1), so the symbol is 0.
            return Some(0);
        }
    }
    None
}

/// Little-endian 64-bit words of a big-endian byte string (zero-extended); `None` if it
/// needs more than `MAX_WORDS` words.
fn words_from_be(bytes: &[u8]) -> Option<([u64; MAX_WORDS], usize)> {
    let len = bytes.len().div_ceil(8);
    if len > MAX_WORDS {
        return None;
    }
    let mut words = [0u64; MAX_WORDS];
    for (w, chunk) in words.iter_mut().zip(bytes.rchunks(8)) {
        *w = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    }
    Some((words, len))
}

/// Jacobi symbol `(a | n)` of big-endian byte strings, `n` odd; variable time.
///
/// Returns `None` if `n` is even, zero, or longer than 8192 bits.
pub(crate) fn jacobi_be_vartime(a: &[u8], n: &[u8]) -> Option<i8> {
    let (aw, alen) = words_from_be(a)?;
    let (nw, nlen) = words_from_be(n)?;
    jacobi_vartime(&aw[..alen], &nw[..nlen])
}

/// Simple exact binary Jacobi algorithm over little-endian words; `n` must be odd.
///
/// Slow (quadratic in bits with a large constant) but obviously correct: the reference
/// for tests and the fallback of [`jacobi_vartime`].
pub(crate) fn jacobi_binary(a: &[u64], n: &[u64]) -> Option<i8> {
    if n.first().is_none_or(|w| w & 1 == 0) {
        return None;
    }
    let len = a.len().max(n.len());
    let mut x = vec![0u64; len];
    let mut m = vec![0u64; len];
    x[..a.len()].copy_from_slice(a);
    m[..n.len()].copy_from_slice(n);
    let mut neg = 0u64;
    loop {
        if x.iter().all(|&w| w == 0) {
            let one = m[0] == 1 && m[1..].iter().all(|&w| w == 0);
            return Some(if one { sign(neg) } else { 0 });
        }
        let z = trailing_zeros(&x);
        shr(&mut x, z);
        neg ^= u64::from(z) & ((m[0] >> 1) ^ (m[0] >> 2));
        if less(&x, &m) {
            neg ^= (x[0] & m[0]) >> 1;
            core::mem::swap(&mut x, &mut m);
        }
        sub_assign(&mut x, &m);
    }
}

fn trailing_zeros(x: &[u64]) -> u32 {
    let mut z = 0;
    for &w in x {
        if w != 0 {
            return z + w.trailing_zeros();
        }
        z += 64;
    }
    z
}

fn shr(x: &mut [u64], z: u32) {
    let words = (z / 64) as usize;
    let bits = z % 64;
    let len = x.len();
    for i in 0..len {
        let lo = x.get(i + words).copied().unwrap_or(0);
        let hi = x.get(i + words + 1).copied().unwrap_or(0);
        x[i] = if bits == 0 { lo } else { (lo >> bits) | (hi << (64 - bits)) };
    }
}

fn less(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

fn sub_assign(a: &mut [u64], b: &[u64]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        *x = d2;
        borrow = b1 || b2;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::dh::modp;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    /// Textbook algorithm on u128 (with `%`), an independent reference for small values.
    fn small_jacobi(mut a: u128, mut n: u128) -> i8 {
        assert!(n % 2 == 1);
        a %= n;
        let mut t = 1i8;
        while a != 0 {
            while a.is_multiple_of(2) {
                a /= 2;
                if n % 8 == 3 || n % 8 == 5 {
                    t = -t;
                }
            }
            core::mem::swap(&mut a, &mut n);
            if a % 4 == 3 && n % 4 == 3 {
                t = -t;
            }
            a %= n;
        }
        if n == 1 { t } else { 0 }
    }

    fn words(bytes: &[u8]) -> Vec<u64> {
        let (w, len) = words_from_be(bytes).unwrap();
        w[..len].to_vec()
    }

    /// The five RFC 3526 moduli as little-endian words.
    fn moduli() -> Vec<Vec<u64>> {
        vec![
            words(modp::MODP2048.p().to_be_bytes().as_ref()),
            words(modp::MODP3072.p().to_be_bytes().as_ref()),
            words(modp::MODP4096.p().to_be_bytes().as_ref()),
            words(modp::MODP6144.p().to_be_bytes().as_ref()),
            words(modp::MODP8192.p().to_be_bytes().as_ref()),
        ]
    }

    fn random_below_top_bit(rng: &mut ChaCha20Rng, len: usize) -> Vec<u64> {
        let mut a: Vec<u64> = (0..len).map(|_| rng.next_u64()).collect();
        a[len - 1] >>= 1;
        a
    }

    #[test]
    fn small_values_match_textbook() {
        for n in (1u64..400).step_by(2) {
            for a in 0u64..400 {
                let want = small_jacobi(u128::from(a), u128::from(n));
                assert_eq!(jacobi_binary(&[a], &[n]), Some(want), "binary a={a} n={n}");
                assert_eq!(jacobi_vartime(&[a], &[n]), Some(want), "fast a={a} n={n}");
                let (a3, n3) = ([a, 0, 0], [n, 0, 0]);
                assert_eq!(jacobi_vartime(&a3, &n3), Some(want), "3 words a={a} n={n}");
            }
        }
    }

    #[test]
    fn two_word_values_match_textbook() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..20_000 {
            let n = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) | 1;
            let a = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) % n;
            let want = small_jacobi(a, n);
            let aw = [a as u64, (a >> 64) as u64];
            let nw = [n as u64, (n >> 64) as u64];
            assert_eq!(jacobi_binary(&aw, &nw), Some(want));
            assert_eq!(jacobi_vartime(&aw, &nw), Some(want));
        }
    }

    #[test]
    fn even_or_empty_modulus_rejected() {
        assert_eq!(jacobi_vartime(&[3], &[4]), None);
        assert_eq!(jacobi_binary(&[3], &[4]), None);
        assert_eq!(jacobi_vartime(&[3], &[]), None);
        assert_eq!(jacobi_be_vartime(&[3], &[]), None);
        assert_eq!(jacobi_be_vartime(&[3], &[1, 0]), None);
        assert_eq!(jacobi_be_vartime(&[1], &[0x01, 0x01]), Some(1));
    }

    #[test]
    fn random_multiword_agree_with_binary() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for len in [2usize, 3, 5, 8, 17, 32, 48, 96, 128] {
            for _ in 0..60 {
                let mut n: Vec<u64> = (0..len).map(|_| rng.next_u64()).collect();
                n[0] |= 1;
                let mut a: Vec<u64> = (0..len).map(|_| rng.next_u64()).collect();
                // Shorten some inputs to exercise uneven lengths (and a > n).
                if rng.next_u32() % 3 == 0 {
                    let cut = (rng.next_u32() as usize) % len;
                    a.iter_mut().skip(cut).for_each(|w| *w = 0);
                }
                if rng.next_u32() % 3 == 0 {
                    let cut = 1 + (rng.next_u32() as usize) % len;
                    n.iter_mut().skip(cut).for_each(|w| *w = 0);
                }
                assert_eq!(jacobi_vartime(&a, &n), jacobi_binary(&a, &n), "len={len}");
            }
        }
        assert_eq!(fallbacks(), 0);
    }

    #[test]
    fn group_moduli_special_values() {
        for p in moduli() {
            let len = p.len();
            let mut pm1 = p.clone();
            pm1[0] -= 1;
            let mut pm2 = p.clone();
            pm2[0] -= 2;
            let mut one = vec![0u64; len];
            one[0] = 1;
            let mut two = vec![0u64; len];
            two[0] = 2;
            // p + 1 (the low word of p is all ones, so the carry propagates).
            let mut big = p.clone();
            big.push(0);
            for w in big.iter_mut() {
                let (v, carry) = w.overflowing_add(1);
                *w = v;
                if !carry {
                    break;
                }
            }
            let mut p_longer = p.clone();
            p_longer.push(0);
            let cases: [(&str, Vec<u64>, i8); 8] = [
                ("0", vec![0u64; len], 0),
                ("1", one, 1),
                ("2", two, 1),    // p = 7 (mod 8)
                ("p-1", pm1, -1), // p = 3 (mod 4)
                ("p-2", pm2, -1),
                ("p", p.clone(), 0),
                ("p+1", big, 1),
                ("p (longer)", p_longer, 0),
            ];
            for (what, a, want) in cases {
                assert_eq!(jacobi_vartime(&a, &p), Some(want), "{} bits: {what}", 64 * len);
                assert_eq!(jacobi_binary(&a, &p), Some(want), "{} bits: {what}", 64 * len);
            }
        }
        assert_eq!(fallbacks(), 0);
    }

    #[test]
    fn group_moduli_random_agree_with_binary() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        for p in moduli() {
            for _ in 0..300 {
                let a = random_below_top_bit(&mut rng, p.len());
                assert_eq!(jacobi_vartime(&a, &p), jacobi_binary(&a, &p));
            }
            // Small and sparse values: no structure shared with p.
            for k in 0..64 {
                let mut a = vec![0u64; p.len()];
                a[k % p.len()] = rng.next_u64() >> (k % 63);
                a[0] |= 1 << (k % 64);
                assert_eq!(jacobi_vartime(&a, &p), jacobi_binary(&a, &p));
            }
        }
        assert_eq!(fallbacks(), 0);
    }

    /// The iteration bound is far from what random inputs need.
    #[test]
    fn batch_counts_are_well_below_the_bound() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        for p in moduli() {
            let len = p.len();
            let mut worst = 0;
            for _ in 0..40 {
                let a = random_below_top_bit(&mut rng, len);
                let want = jacobi_binary(&a, &p);
                let needed = (1..=max_batches(len))
                    .find(|&b| jacobi_divsteps(&a, &p, b).is_some())
                    .unwrap_or(usize::MAX);
                assert_eq!(jacobi_divsteps(&a, &p, needed), want);
                worst = worst.max(needed);
            }
            assert!(worst * 10 <= max_batches(len) * 6, "{len} words: {worst} batches");
        }
    }

    #[test]
    fn fallback_path_gives_the_same_answer() {
        let mut rng = ChaCha20Rng::seed_from_u64(14);
        let p = &moduli()[0];
        for _ in 0..20 {
            let a = random_below_top_bit(&mut rng, p.len());
            // A bound of 3 batches is always too small for 2048 bits.
            assert_eq!(jacobi_divsteps(&a, p, 3), None);
            assert_eq!(jacobi_vartime(&a, p), jacobi_binary(&a, p));
        }
        // Operands beyond the fast path's size go to the binary algorithm directly.
        let mut n = vec![0u64; MAX_WORDS + 1];
        n[0] = 7;
        n[MAX_WORDS] = 1;
        let a = vec![5u64];
        assert_eq!(jacobi_vartime(&a, &n), jacobi_binary(&a, &n));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn prop_group_moduli(idx in 0usize..5, seed in any::<u64>(), shift in 0u32..64) {
            let p = &moduli()[idx];
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut a = random_below_top_bit(&mut rng, p.len());
            // Vary the size of a as well.
            let top = p.len() - 1 - (shift as usize % p.len());
            a.iter_mut().skip(top + 1).for_each(|w| *w = 0);
            prop_assert_eq!(jacobi_vartime(&a, p), jacobi_binary(&a, p));
        }

        #[test]
        fn prop_random_odd_moduli(len in 1usize..40, seed in any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut n: Vec<u64> = (0..len).map(|_| rng.next_u64()).collect();
            n[0] |= 1;
            let a: Vec<u64> = (0..len).map(|_| rng.next_u64()).collect();
            prop_assert_eq!(jacobi_vartime(&a, &n), jacobi_binary(&a, &n));
        }

        #[test]
        fn prop_bytes_interface(a in proptest::collection::vec(any::<u8>(), 0..80),
                                n in proptest::collection::vec(any::<u8>(), 1..80)) {
            let mut n = n;
            if let Some(last) = n.last_mut() {
                *last |= 1;
            }
            prop_assert_eq!(jacobi_be_vartime(&a, &n), jacobi_binary(&words(&a), &words(&n)));
        }
    }

    /// Run with `--ignored --nocapture`: timing of the 6144-bit symbol.
    #[test]
    #[ignore = "timing; run with --ignored --nocapture"]
    fn time_6144() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let p = &moduli()[3];
        let inputs: Vec<Vec<u64>> = (0..200).map(|_| random_below_top_bit(&mut rng, p.len())).collect();
        let mut best = std::time::Duration::MAX;
        for _ in 0..10 {
            let t = std::time::Instant::now();
            for a in &inputs {
                std::hint::black_box(jacobi_vartime(a, p));
            }
            best = best.min(t.elapsed() / 200);
        }
        let t = std::time::Instant::now();
        for a in &inputs[..10] {
            std::hint::black_box(jacobi_binary(a, p));
        }
        println!("jacobi 6144: {best:?} per call; binary fallback {:?}", t.elapsed() / 10);
    }
}
