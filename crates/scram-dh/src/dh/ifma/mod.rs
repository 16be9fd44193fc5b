//! Radix-2^52 Montgomery arithmetic for the MODP groups, with an AVX-512 IFMA backend.
//!
//! This is the only module of the workspace allowed `unsafe` code, and only for two
//! things: calling the `#[target_feature]` function `kernel::amm_ifma` once the CPU has
//! been seen to support it, and the unaligned vector loads and stores inside it (in
//! `kernel.rs`). Every `unsafe` block carries a `SAFETY` comment.
//!
//! # The arithmetic
//!
//! A residue mod the `n`-bit prime `p` is held as `8 V` limbs of 52 bits (little endian,
//! each limb in a `u64`), so `R = 2^(52 * 8 V) > 4 p`. [`Radix52::mul`] is the *almost
//! Montgomery multiplication* `a b / R mod p` of Gueron and Krasnov: for inputs below
//! `2p` it returns a result below `2p`, so no conditional subtraction is needed between
//! steps; one constant-time subtraction at the end gives the canonical value.
//!
//! Word-serial over `b`, vectorised over `a` and `p`: for each limb `b_i`, add the low 52
//! bits of every `a_j b_i` into lane `j` of the accumulator, derive `m = acc_0 k0 mod 2^52`
//! (`k0 = -p^-1 mod 2^52`), add the low halves of `m p_j`, shift the whole accumulator
//! down one lane (dividing by `2^52`: lane 0 is then a multiple of `2^52` and only its
//! carry moves on), and add the high halves of both products, which belong one lane up.
//! Lanes are not normalised inside the loop: a lane gains at most four 52-bit terms per
//! step, so after at most 160 steps (modp8192) it stays below `2^62`. One carry pass at
//! the end normalises the limbs.
//!
//! Two implementations of that loop share one specification:
//! * [`amm_portable`](kernel::amm_portable): plain Rust on `u64` lanes, exactly the instruction semantics of
//!   `vpmadd52luq` / `vpmadd52huq` / `valignq`. It runs everywhere (and under Miri), is
//!   the reference the differential tests hold the vector code to, and is slower than
//!   crypto-bigint: without IFMA the groups keep using crypto-bigint.
//! * [`amm_ifma`](kernel::amm_ifma): the same steps on `__m512i` vectors, monomorphised per group size.
//!
//! On top of it: a fixed 5-bit-window exponentiation for `y^x` ([`Radix52::pow`]) and a
//! fixed-base comb for `2^x` ([`Radix52::comb_pow`]), both over 256-bit exponents.
//!
//! Every operation is constant time: no branch and no memory address depends on a
//! secret, and the instructions used have data-independent latency.
//!
//! # Choosing the backend
//!
//! [`engine`] picks IFMA when the CPU reports `avx512f` and `avx512ifma` and one product
//! mod the 2048-bit prime agrees with the portable loop, unless the environment variable
//! `SCRAM_DH_MODEXP=crypto-bigint` says otherwise (an operator's switch, and the
//! benchmarks' way to compare both in one run). Each group repeats that self-test with
//! its own prime before it first uses the vector code; a backend that disagrees is never
//! used, and `dh::modexp_engine()` says so.

use std::sync::OnceLock;

mod kernel;
#[cfg(all(target_arch = "x86_64", not(miri)))]
use kernel::amm_ifma;
use kernel::{BITS, LANES, MASK, amm_portable};

use crypto_bigint::{NonZero, Odd, Uint};
use zeroize::{Zeroize, Zeroizing};

/// Which modular exponentiation the MODP groups use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    /// crypto-bigint's constant-time Montgomery arithmetic (64-bit limbs).
    CryptoBigint,
    /// crypto-bigint, because the CPU has IFMA but [`amm_ifma`](kernel::amm_ifma) failed its self-test.
    CryptoBigintAfterFailedSelfTest,
    /// Radix-2^52 arithmetic on AVX-512 IFMA ([`amm_ifma`](kernel::amm_ifma)).
    Ifma(IfmaToken),
}

impl Engine {
    /// A short name for logs and benchmark reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::CryptoBigint => "crypto-bigint",
            Engine::CryptoBigintAfterFailedSelfTest => "crypto-bigint (avx512-ifma failed its self-test)",
            Engine::Ifma(_) => "avx512-ifma",
        }
    }
}

/// Proof that the running CPU executes AVX-512F and AVX-512 IFMA instructions.
///
/// Only [`detect_ifma`] builds one, after asking the CPU; holding one is what makes the
/// call into [`amm_ifma`](kernel::amm_ifma) sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IfmaToken(());

/// The CPU's answer, asked once.
fn detect_ifma() -> Option<IfmaToken> {
    static DETECTED: OnceLock<Option<IfmaToken>> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512ifma")
            {
                return Some(IfmaToken(()));
            }
        }
        None
    })
}

/// The engine for this process: IFMA when the CPU has it and a product mod the
/// 2048-bit prime agrees with the portable loop, unless `SCRAM_DH_MODEXP=crypto-bigint`.
/// Decided once.
pub(crate) fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    *ENGINE.get_or_init(|| {
        let forced = std::env::var("SCRAM_DH_MODEXP").ok();
        match (forced.as_deref(), detect_ifma()) {
            (Some("crypto-bigint"), _) | (_, None) => Engine::CryptoBigint,
            (_, Some(token)) => {
                // MODP2048's own table, so its per-group self-test is this one.
                let passes = super::modp::MODP2048.radix52().is_some_and(|r| r.ifma_usable(token));
                if passes { Engine::Ifma(token) } else { Engine::CryptoBigintAfterFailedSelfTest }
            }
        }
    })
}

/// A MODP prime prepared for radix-2^52 almost-Montgomery arithmetic.
pub(crate) struct Radix52 {
    /// Vectors of [`LANES`] limbs per residue.
    vectors: usize,
    /// The prime, `8 * vectors` limbs.
    p: Vec<u64>,
    /// `-p^-1 mod 2^52`.
    k0: u64,
    /// `R mod p` (Montgomery one), limbs.
    one: Vec<u64>,
    /// `R^2 mod p`, limbs: multiplying by it enters Montgomery form.
    rr: Vec<u64>,
    /// Whether [`amm_ifma`](kernel::amm_ifma) agreed with [`amm_portable`](kernel::amm_portable) on this prime (checked once).
    ifma_ok: OnceLock<bool>,
}

impl Radix52 {
    /// Prepares the odd modulus `p` (public; variable time is fine); `None` below 3.
    /// Sizes without a monomorphised IFMA loop (all but 5, 8, 10, 15 and 20 vectors:
    /// the five RFC 3526 groups) run on the portable loop only.
    pub(crate) fn new<const L: usize>(p: &Odd<Uint<L>>) -> Option<Radix52> {
        let bits = p.as_ref().bits_vartime() as usize;
        // R = 2^(52 * limbs) must exceed 4p: two spare bits.
        let limbs = (bits + 2).div_ceil(BITS).next_multiple_of(LANES);
        let vectors = limbs / LANES;
        if bits < 3 {
            return None;
        }
        let p_limbs = to_limbs(p.as_ref().as_words(), limbs);
        let k0 = neg_inverse_52(p_limbs[0]);
        // R mod p and R^2 mod p by doubling (public, once per group).
        let modulus = NonZero::new(*p.as_ref()).into_option()?;
        let mut x = Uint::<L>::ONE;
        for _ in 0..BITS * limbs {
            x = x.double_mod(&modulus);
        }
        let one = to_limbs(x.as_words(), limbs);
        for _ in 0..BITS * limbs {
            x = x.double_mod(&modulus);
        }
        let rr = to_limbs(x.as_words(), limbs);
        Some(Radix52 { vectors, p: p_limbs, k0, one, rr, ifma_ok: OnceLock::new() })
    }

    /// Limbs per residue.
    pub(crate) fn limbs(&self) -> usize {
        self.vectors * LANES
    }

    /// Whether the IFMA backend can be used for this prime: the CPU has it and one
    /// multiplication of fixed operands agrees with the portable loop.
    pub(crate) fn ifma_usable(&self, token: IfmaToken) -> bool {
        *self.ifma_ok.get_or_init(|| {
            let limbs = self.limbs();
            // Operands below 2p with every limb in use: R^2 mod p and R mod p - 1.
            let a = self.rr.clone();
            let mut b = self.one.clone();
            b[0] = b[0].wrapping_sub(1) & MASK;
            let mut want = vec![0; limbs];
            let mut got = vec![0; limbs];
            amm_portable(&mut want, &a, &b, &self.p, self.k0);
            let ran = ifma_mul(token, self.vectors, &mut got, &a, &b, &self.p, self.k0);
            ran && want == got
        })
    }

    /// `out = a b / R mod p` (almost: below `2p` for inputs below `2p`), on the given
    /// backend (`None`: the portable loop).
    fn mul(&self, ifma: Option<IfmaToken>, out: &mut [u64], a: &[u64], b: &[u64]) {
        if let Some(token) = ifma
            && ifma_mul(token, self.vectors, out, a, b, &self.p, self.k0)
        {
            return;
        }
        amm_portable(out, a, b, &self.p, self.k0);
    }

    /// `base^x mod p` for the big-endian 256-bit exponent `x` and `base < p` given as
    /// little-endian 64-bit words; the result as words (fully reduced). Constant time in
    /// `x` and `base`: a fixed 5-bit window, every table entry read at every lookup.
    pub(crate) fn pow<const L: usize>(
        &self,
        ifma: Option<IfmaToken>,
        base: &Uint<L>,
        exponent: &[u8; 32],
    ) -> Uint<L> {
        const W: usize = 5;
        const ENTRIES: usize = 1 << W;
        let n = self.limbs();
        let x = Zeroizing::new(super::modp::le_words(exponent));
        let mut b = Zeroizing::new(to_limbs(base.as_words(), n));
        // table[k] = base^k in Montgomery form: one, base R, then one product each.
        let mut table = Zeroizing::new(vec![0u64; ENTRIES * n]);
        table[..n].copy_from_slice(&self.one);
        self.mul(ifma, &mut table[n..2 * n], &b, &self.rr);
        b.zeroize();
        for k in 2..ENTRIES {
            let (done, todo) = table.split_at_mut(k * n);
            self.mul(ifma, &mut todo[..n], &done[(k - 1) * n..], &done[n..2 * n]);
        }
        let mut acc = Zeroizing::new(vec![0u64; n]);
        let mut tmp = Zeroizing::new(vec![0u64; n]);
        let mut selected = Zeroizing::new(vec![0u64; n]);
        let windows = super::modp::EXPONENT_BITS.div_ceil(W);
        for j in (0..windows).rev() {
            let mut digit = super::modp::window_digit(&x, j * W, W);
            ct_select(&mut selected, &table, n, digit);
            digit.zeroize();
            if j + 1 == windows {
                acc.copy_from_slice(&selected);
                continue;
            }
            for _ in 0..W {
                self.mul(ifma, &mut tmp, &acc, &acc);
                core::mem::swap(&mut acc, &mut tmp);
            }
            self.mul(ifma, &mut tmp, &acc, &selected);
            core::mem::swap(&mut acc, &mut tmp);
        }
        let out = self.leave(ifma, &acc);
        table.zeroize();
        out
    }
}

/// Window width of the radix-2^52 fixed-base comb for `2^x`: 52 rows of 32 entries
/// (1.6 MiB for modp6144). With multiplications this cheap the scan of the table costs
/// about as much as the 52 products; wider rows would double the scan to save 9.
const COMB52_WINDOW: usize = 5;

/// The fixed-base comb for `2^x` in radix-2^52 Montgomery form: row `j` holds
/// `2^(c 2^(5 j))` for every 5-bit digit `c` (the same scheme as the crypto-bigint comb
/// in `modp`, one multiplication per window and no squarings).
pub(crate) struct Comb52 {
    /// Rows of 32 entries of `limbs` limbs, row-major.
    table: Vec<u64>,
}

impl Radix52 {
    /// Builds the comb table for the generator 2: `52 * 32` products.
    pub(crate) fn comb(&self, ifma: Option<IfmaToken>) -> Comb52 {
        let n = self.limbs();
        let entries = 1 << COMB52_WINDOW;
        let rows = super::modp::EXPONENT_BITS.div_ceil(COMB52_WINDOW);
        let mut table = vec![0u64; rows * entries * n];
        // base = 2^(2^(5 j)) in Montgomery form for row j.
        let mut two = vec![0u64; n];
        two[0] = 2;
        let mut base = vec![0u64; n];
        self.mul(ifma, &mut base, &two, &self.rr);
        let mut next = vec![0u64; n];
        for row in table.chunks_exact_mut(entries * n) {
            row[..n].copy_from_slice(&self.one);
            for c in 1..entries {
                let (done, todo) = row.split_at_mut(c * n);
                self.mul(ifma, &mut todo[..n], &done[(c - 1) * n..], &base);
            }
            // base^(2^5) = base^31 * base: the next row's base.
            self.mul(ifma, &mut next, &row[(entries - 1) * n..], &base);
            core::mem::swap(&mut base, &mut next);
        }
        Comb52 { table }
    }

    /// `2^x mod p` for the big-endian 256-bit exponent `x`, from `comb`; constant time
    /// (every entry of a row is read at its lookup).
    pub(crate) fn comb_pow<const L: usize>(
        &self,
        comb: &Comb52,
        ifma: Option<IfmaToken>,
        exponent: &[u8; 32],
    ) -> Uint<L> {
        let n = self.limbs();
        let entries = 1 << COMB52_WINDOW;
        let x = Zeroizing::new(super::modp::le_words(exponent));
        let mut acc = Zeroizing::new(vec![0u64; n]);
        let mut tmp = Zeroizing::new(vec![0u64; n]);
        let mut selected = Zeroizing::new(vec![0u64; n]);
        for (j, row) in comb.table.chunks_exact(entries * n).enumerate() {
            let mut digit = super::modp::window_digit(&x, j * COMB52_WINDOW, COMB52_WINDOW);
            ct_select(&mut selected, row, n, digit);
            digit.zeroize();
            if j == 0 {
                acc.copy_from_slice(&selected);
            } else {
                self.mul(ifma, &mut tmp, &acc, &selected);
                core::mem::swap(&mut acc, &mut tmp);
            }
        }
        self.leave(ifma, &acc)
    }

    /// From Montgomery form to the canonical value: multiply by 1 (the result is at
    /// most `p`), subtract `p` once if needed, convert to words.
    fn leave<const L: usize>(&self, ifma: Option<IfmaToken>, x: &[u64]) -> Uint<L> {
        let n = self.limbs();
        let mut unit = vec![0u64; n];
        unit[0] = 1;
        let mut out = Zeroizing::new(vec![0u64; n]);
        self.mul(ifma, &mut out, x, &unit);
        reduce_once(&mut out, &self.p);
        from_limbs::<L>(&out)
    }
}

/// `-q^-1 mod 2^52` for odd `q` (Newton iteration; public).
fn neg_inverse_52(q: u64) -> u64 {
    // x = q^-1 mod 2^k doubles k each step: 1 bit (q odd) -> 64 bits after 6 steps.
    let mut x: u64 = 1;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(q.wrapping_mul(x)));
    }
    x.wrapping_neg() & MASK
}

/// Little-endian 64-bit words to `limbs` 52-bit limbs (zero-extended).
fn to_limbs(words: &[u64], limbs: usize) -> Vec<u64> {
    (0..limbs)
        .map(|j| {
            let (w, s) = (j * BITS / 64, j * BITS % 64);
            let lo = words.get(w).copied().unwrap_or(0) >> s;
            let hi = if s + BITS > 64 { words.get(w + 1).copied().unwrap_or(0) << (64 - s) } else { 0 };
            (lo | hi) & MASK
        })
        .collect()
}

/// Normalised 52-bit limbs (value below `2^(64 L)`) back to a `Uint`.
fn from_limbs<const L: usize>(limbs: &[u64]) -> Uint<L> {
    let mut words = [0u64; L];
    for (j, &limb) in limbs.iter().enumerate() {
        let (w, s) = (j * BITS / 64, j * BITS % 64);
        if let Some(word) = words.get_mut(w) {
            *word |= limb << s;
        }
        if s + BITS > 64
            && let Some(word) = words.get_mut(w + 1)
        {
            *word |= limb >> (64 - s);
        }
    }
    let out = Uint::from_words(words);
    words.zeroize();
    out
}

/// `x = x - p` if `x >= p`, else unchanged; constant time (normalised limbs).
fn reduce_once(x: &mut [u64], p: &[u64]) {
    let mut diff = Zeroizing::new(vec![0u64; x.len()]);
    let mut borrow = 0u64;
    for ((d, &xi), &pi) in diff.iter_mut().zip(x.iter()).zip(p) {
        let t = xi.wrapping_sub(pi).wrapping_sub(borrow);
        *d = t & MASK;
        borrow = t >> 63;
    }
    // borrow = 1: x < p, keep x. All ones when x >= p.
    let keep_diff = borrow.wrapping_sub(1);
    for (xi, &d) in x.iter_mut().zip(diff.iter()) {
        *xi = (d & keep_diff) | (*xi & !keep_diff);
    }
}

/// `out = table[index]` (entries of `n` limbs), reading every entry; constant time.
fn ct_select(out: &mut [u64], table: &[u64], n: usize, index: u64) {
    out.fill(0);
    for (k, entry) in (0u64..).zip(table.chunks_exact(n)) {
        let diff = k ^ index;
        // All ones when k == index, zero otherwise (as in the comb's lookup).
        let mask = core::hint::black_box(((diff | diff.wrapping_neg()) >> 63).wrapping_sub(1));
        for (o, &e) in out.iter_mut().zip(entry) {
            *o |= mask & e;
        }
    }
}

/// Runs [`amm_ifma`](kernel::amm_ifma) for `vectors` vectors if that size has a monomorphised loop and the
/// slices have its length; `false` (nothing written) otherwise.
fn ifma_mul(
    token: IfmaToken,
    vectors: usize,
    out: &mut [u64],
    a: &[u64],
    b: &[u64],
    p: &[u64],
    k0: u64,
) -> bool {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        let _ = token;
        macro_rules! sized {
            ($($v:literal),*) => {
                match vectors {
                    $($v => {
                        let (Ok(out), Ok(a), Ok(b), Ok(p)) = (
                            <&mut [u64; $v * LANES]>::try_from(out),
                            <&[u64; $v * LANES]>::try_from(a),
                            <&[u64; $v * LANES]>::try_from(b),
                            <&[u64; $v * LANES]>::try_from(p),
                        ) else {
                            return false;
                        };
                        // SAFETY: an `IfmaToken` exists only after `detect_ifma` saw the
                        // CPU report both `avx512f` and `avx512ifma`, the features
                        // `amm_ifma` is compiled for.
                        unsafe { amm_ifma::<$v, { $v * LANES }>(out, a, b, p, k0) };
                        true
                    })*
                    _ => false,
                }
            };
        }
        sized!(5, 8, 10, 15, 20)
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        let _ = (token, vectors, out, a, b, p, k0);
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
    use crypto_bigint::{U256, U2048, U6144, U8192};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};

    use super::super::modp;
    use super::*;

    fn random_below<const L: usize>(p: &Uint<L>, rng: &mut ChaCha20Rng) -> Uint<L> {
        let mut words = [0u64; L];
        for w in &mut words {
            *w = rng.next_u64();
        }
        let x = Uint::from_words(words);
        let m = NonZero::new(*p).unwrap();
        x.rem_vartime(&m)
    }

    /// The reference: crypto-bigint's `base^x mod p`.
    fn reference<const L: usize>(p: &Odd<Uint<L>>, base: &Uint<L>, x: &[u8; 32]) -> Uint<L> {
        let params = FixedMontyParams::new_vartime(*p);
        FixedMontyForm::new(base, &params).pow(&U256::from_be_slice(x)).retrieve()
    }

    fn check_pow<const L: usize>(p: &Odd<Uint<L>>, rounds: usize, ifma: Option<IfmaToken>) {
        let r = Radix52::new(p).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(52 + L as u64);
        let pm1 = p.as_ref().wrapping_sub(&Uint::ONE);
        for round in 0..rounds {
            let base = match round {
                0 => Uint::from_u8(2),
                1 => pm1,
                2 => Uint::ONE,
                _ => random_below(p.as_ref(), &mut rng),
            };
            let mut x = [0u8; 32];
            rng.fill_bytes(&mut x);
            match round {
                3 => x = [0xff; 32],
                4 => x = [0; 32],
                5 => {
                    x = {
                        let mut e = [0; 32];
                        e[31] = 1;
                        e
                    }
                }
                _ => {}
            }
            assert_eq!(r.pow(ifma, &base, &x), reference(p, &base, &x), "round {round}, L = {L}");
        }
    }

    /// A random odd modulus of at most 500 bits (two vectors of limbs, 4p < R).
    fn random_odd_500(rng: &mut ChaCha20Rng) -> Odd<crypto_bigint::U512> {
        use crypto_bigint::U512;
        let mut words = [0u64; U512::LIMBS];
        for w in &mut words {
            *w = rng.next_u64();
        }
        words[0] |= 1;
        words[U512::LIMBS - 1] >>= 12;
        Odd::new(U512::from_words(words)).unwrap()
    }

    /// The kernel on a 500-bit odd modulus (two vectors), small enough for Miri:
    /// `out R = a b (mod p)`, `out < 2p`, every limb below `2^52`.
    #[test]
    fn small_modulus_products() {
        use crypto_bigint::{U512, U1024, U2048};
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let p = random_odd_500(&mut rng);
        let r = Radix52::new(&p).unwrap();
        let n = r.limbs();
        let wide = |x: &[u64]| {
            let mut w = [0u64; U2048::LIMBS];
            w[..U512::LIMBS].copy_from_slice(from_limbs::<{ U512::LIMBS }>(x).as_words());
            U2048::from_words(w)
        };
        let p_wide = NonZero::new(wide(&r.p)).unwrap();
        for _ in 0..4 {
            let (a, b) = (random_below(p.as_ref(), &mut rng), random_below(p.as_ref(), &mut rng));
            let (la, lb) = (to_limbs(a.as_words(), n), to_limbs(b.as_words(), n));
            let mut out = vec![0; n];
            amm_portable(&mut out, &la, &lb, &r.p, r.k0);
            assert!(out.iter().all(|&l| l <= MASK));
            let out_r = wide(&out).shl_vartime((BITS * n) as u32).rem_vartime(&p_wide);
            let ab: U1024 = a.concatenating_mul(&b);
            let mut abw = [0u64; U2048::LIMBS];
            abw[..U1024::LIMBS].copy_from_slice(ab.as_words());
            assert_eq!(out_r, U2048::from_words(abw).rem_vartime(&p_wide));
            let two_p = wide(&r.p).shl_vartime(1);
            assert!(wide(&out) < two_p);
        }
    }

    /// Exponentiation and comb on the 500-bit modulus against crypto-bigint.
    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri; runs natively")]
    fn small_modulus_pow_and_comb() {
        use crypto_bigint::U512;
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..2 {
            let p = random_odd_500(&mut rng);
            let r = Radix52::new(&p).unwrap();
            assert_eq!(r.limbs(), 16);
            check_pow(&p, 2, None);
            let comb = r.comb(None);
            let mut x = [0u8; 32];
            rng.fill_bytes(&mut x);
            assert_eq!(r.comb_pow::<{ U512::LIMBS }>(&comb, None, &x), reference(&p, &U512::from_u8(2), &x));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri; runs natively")]
    fn neg_inverse() {
        for q in [1u64, 3, 5, 0xf_ffff_ffff_ffff, 0x1234_5678_9abc_def1] {
            assert_eq!(q.wrapping_mul(neg_inverse_52(q)).wrapping_add(1) & MASK, 0, "{q:#x}");
        }
        // RFC 3526 primes end in 64 one bits: -p^-1 = 1.
        let r = Radix52::new(modp::MODP6144.p_odd()).unwrap();
        assert_eq!(r.k0, 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri; runs natively")]
    fn limb_conversions_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..50 {
            let x = random_below(modp::MODP6144.p(), &mut rng);
            let limbs = to_limbs(x.as_words(), 120);
            assert!(limbs.iter().all(|&l| l <= MASK));
            assert_eq!(from_limbs::<{ U6144::LIMBS }>(&limbs), x);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri; runs natively")]
    fn layout_per_group() {
        let sizes = [
            Radix52::new(modp::MODP2048.p_odd()).unwrap().limbs(),
            Radix52::new(modp::MODP3072.p_odd()).unwrap().limbs(),
            Radix52::new(modp::MODP4096.p_odd()).unwrap().limbs(),
            Radix52::new(modp::MODP6144.p_odd()).unwrap().limbs(),
            Radix52::new(modp::MODP8192.p_odd()).unwrap().limbs(),
        ];
        assert_eq!(sizes, [40, 64, 80, 120, 160]);
    }

    /// One almost-Montgomery product against `a b R^-1 mod p` from crypto-bigint, with
    /// operands up to `2p - 1` (the loop's input contract) and results below `2p`.
    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri; runs natively")]
    fn portable_mul_matches_crypto_bigint() {
        let p = *modp::MODP2048.p_odd();
        let r = Radix52::new(&p).unwrap();
        let n = r.limbs();
        let params = FixedMontyParams::new_vartime(p);
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let r_mod_p = from_limbs::<{ U2048::LIMBS }>(&r.one);
        for round in 0..200 {
            let (a, b) = (random_below(p.as_ref(), &mut rng), random_below(p.as_ref(), &mut rng));
            // Lift some operands to a + p (still below 2p < R).
            let lift = |x: &Uint<{ U2048::LIMBS }>, on: bool| {
                let mut l = to_limbs(x.as_words(), n);
                if on {
                    let mut carry = 0;
                    for (li, &pi) in l.iter_mut().zip(&r.p) {
                        let t = *li + pi + carry;
                        *li = t & MASK;
                        carry = t >> BITS;
                    }
                    assert_eq!(carry, 0);
                }
                l
            };
            let (la, lb) = (lift(&a, round % 2 == 1), lift(&b, round % 3 == 1));
            let mut out = vec![0; n];
            amm_portable(&mut out, &la, &lb, &r.p, r.k0);
            assert!(out.iter().all(|&l| l <= MASK));
            let mut reduced = out.clone();
            reduce_once(&mut reduced, &r.p);
            assert_eq!(
                reduced,
                {
                    let mut x = reduced.clone();
                    reduce_once(&mut x, &r.p);
                    x
                },
                "result below 2p"
            );
            // Expected: a b / R mod p = (a / R)(b / R) R with crypto-bigint's own R'.
            // Compare via a * b * R^-1: (a b) mod p then divided by R mod p.
            let ab = FixedMontyForm::new(&a, &params).mul(&FixedMontyForm::new(&b, &params));
            let rinv = FixedMontyForm::new(&r_mod_p, &params).invert().unwrap();
            let want = ab.mul(&rinv).retrieve();
            assert_eq!(from_limbs::<{ U2048::LIMBS }>(&reduced), want, "round {round}");
        }
    }

    fn check_comb<const L: usize>(p: &Odd<Uint<L>>, rounds: usize, ifma: Option<IfmaToken>) {
        let r = Radix52::new(p).unwrap();
        let comb = r.comb(ifma);
        let mut rng = ChaCha20Rng::seed_from_u64(5 + L as u64);
        for round in 0..rounds {
            let mut x = [0u8; 32];
            rng.fill_bytes(&mut x);
            match round {
                0 => x = [0xff; 32],
                1 => x = [0; 32],
                _ => {}
            }
            let want = reference(p, &Uint::from_u8(2), &x);
            assert_eq!(r.comb_pow::<L>(&comb, ifma, &x), want, "round {round}, L = {L}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri; runs natively")]
    fn portable_comb_matches_crypto_bigint() {
        check_comb(modp::MODP2048.p_odd(), 20, None);
        check_comb(modp::MODP6144.p_odd(), 4, None);
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri; runs natively")]
    fn portable_pow_matches_crypto_bigint() {
        check_pow(modp::MODP2048.p_odd(), 12, None);
        check_pow(modp::MODP3072.p_odd(), 6, None);
        check_pow(modp::MODP4096.p_odd(), 6, None);
        check_pow(modp::MODP6144.p_odd(), 6, None);
        check_pow(modp::MODP8192.p_odd(), 6, None);
    }

    /// The vector backend against crypto-bigint on this CPU. Without AVX-512 IFMA there
    /// is nothing to run, and the DH code never takes that path (`engine()` is
    /// crypto-bigint): the test says so on stderr.
    #[test]
    fn ifma_pow_matches_crypto_bigint_when_the_cpu_has_it() {
        let Some(token) = detect_ifma() else {
            eprintln!("this CPU has no AVX-512 IFMA: only the portable loop was checked");
            assert_eq!(engine(), Engine::CryptoBigint);
            return;
        };
        if std::env::var("SCRAM_DH_MODEXP").is_err() {
            assert_eq!(engine(), Engine::Ifma(token), "the self-test passed, so the groups use IFMA");
        }
        assert!(Radix52::new(modp::MODP2048.p_odd()).unwrap().ifma_usable(token));
        assert!(Radix52::new(modp::MODP6144.p_odd()).unwrap().ifma_usable(token));
        check_pow(modp::MODP2048.p_odd(), 40, Some(token));
        check_pow(modp::MODP3072.p_odd(), 20, Some(token));
        check_pow(modp::MODP4096.p_odd(), 20, Some(token));
        check_pow(modp::MODP6144.p_odd(), 20, Some(token));
        check_pow(modp::MODP8192.p_odd(), 20, Some(token));
        check_comb(modp::MODP2048.p_odd(), 20, Some(token));
        check_comb(modp::MODP6144.p_odd(), 20, Some(token));
        check_comb(modp::MODP8192.p_odd(), 20, Some(token));
        // Single products, random operands below 2p, against the portable loop.
        let p = *modp::MODP8192.p_odd();
        let r = Radix52::new(&p).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        for _ in 0..500 {
            let a = to_limbs(random_below::<{ U8192::LIMBS }>(p.as_ref(), &mut rng).as_words(), 160);
            let b = to_limbs(random_below::<{ U8192::LIMBS }>(p.as_ref(), &mut rng).as_words(), 160);
            let (mut want, mut got) = (vec![0; 160], vec![0; 160]);
            amm_portable(&mut want, &a, &b, &r.p, r.k0);
            assert!(ifma_mul(token, 20, &mut got, &a, &b, &r.p, r.k0));
            assert_eq!(want, got);
        }
    }
}
