//! RFC 3526 MODP groups (generator 2) over crypto-bigint fixed-size integers.
//!
//! One generic implementation, [`Modp<L>`], instantiated once per group as a `static`.
//! Each group lazily builds (once, through [`OnceLock`]) its Montgomery parameters and,
//! separately, the fixed-base comb table used for key generation, so a process that never
//! generates a modp8192 key never pays for that table.

use std::sync::OnceLock;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{CtEq, Odd, U256, Uint};
use zeroize::{Zeroize, Zeroizing};

use super::DhError;
use super::ifma::{self, Comb52, Radix52};
use super::jacobi;

/// Width in bits of the comb windows used for `2^x`.
///
/// Measured on the 2-vCPU EPYC development machine, modp6144, 256-bit exponent, best of
/// 40 (test `comb_window_timings`): w=5 (52 windows x 32 entries, 1.2 MiB table): 613 µs;
/// w=6 (43 x 64, 2.0 MiB): 530 µs; w=7 (37 x 128, 3.5 MiB): 492 µs. Window 7 is the
/// fastest: the 6 multiplications it saves over w=6 (~11.5 µs each) outweigh its longer
/// constant-time scans (59 µs against 35 µs in total). The price is memory and a longer
/// one-time build: 3.5 MiB and ~56 ms for modp6144 (4.6 MiB for modp8192).
pub(crate) const COMB_WINDOW: usize = 7;

/// Bits in a private FFDH exponent (SPEC section 2: 128-bit security).
pub(crate) const EXPONENT_BITS: usize = 256;

/// RFC 3526 2048-bit MODP prime (section 3).
const P2048_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// RFC 3526 3072-bit MODP prime (section 4).
const P3072_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// RFC 3526 4096-bit MODP prime (section 5).
const P4096_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
);

/// RFC 3526 6144-bit MODP prime (section 6).
const P6144_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DCC4024FFFFFFFFFFFFFFFF",
);

/// RFC 3526 8192-bit MODP prime (section 7).
const P8192_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4",
    "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED",
    "2576F6936BA424663AAB639C5AE4F5683423B4742BF1C978238F16CBE39D652D",
    "E3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B",
    "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A6",
    "6D2A13F83F44F82DDF310EE074AB6A364597E899A0255DC164F31CC50846851D",
    "F9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92",
    "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA",
    "9E3050E2765694DFC81F56E880B96E7160C980DD98EDD3DFFFFFFFFFFFFFFFFF",
);

/// A MODP group of `L` limbs: the prime and its lazily built tables.
pub(crate) struct Modp<const L: usize> {
    /// The safe prime `p = 2q + 1`.
    p: Odd<Uint<L>>,
    /// Montgomery parameters for `p`, built on first use.
    params: OnceLock<FixedMontyParams<L>>,
    /// Fixed-base comb table for the generator 2, built on first key generation.
    comb: OnceLock<Comb<L, COMB_WINDOW>>,
    /// Radix-2^52 form of `p` for the IFMA backend, built on first use.
    radix52: OnceLock<Option<Radix52>>,
    /// The IFMA backend's comb table for the generator, built on first key generation.
    comb52: OnceLock<Comb52>,
}

/// RFC 3526 group 14 (2048 bits).
pub(crate) static MODP2048: Modp<{ crypto_bigint::U2048::LIMBS }> = Modp::new(P2048_HEX);
/// RFC 3526 group 15 (3072 bits).
pub(crate) static MODP3072: Modp<{ crypto_bigint::U3072::LIMBS }> = Modp::new(P3072_HEX);
/// RFC 3526 group 16 (4096 bits).
pub(crate) static MODP4096: Modp<{ crypto_bigint::U4096::LIMBS }> = Modp::new(P4096_HEX);
/// RFC 3526 group 17 (6144 bits).
pub(crate) static MODP6144: Modp<{ crypto_bigint::U6144::LIMBS }> = Modp::new(P6144_HEX);
/// RFC 3526 group 18 (8192 bits).
pub(crate) static MODP8192: Modp<{ crypto_bigint::U8192::LIMBS }> = Modp::new(P8192_HEX);

impl<const L: usize> Modp<L> {
    /// Byte length of the modulus (and of every encoded key or shared secret).
    pub(crate) const BYTES: usize = Uint::<L>::BYTES;

    /// Const constructor; `hex` must be the odd modulus with exactly `2 * BYTES` digits
    /// (checked at compile time, since every caller is a `static`).
    const fn new(hex: &str) -> Self {
        Self {
            p: Odd::<Uint<L>>::from_be_hex(hex),
            params: OnceLock::new(),
            comb: OnceLock::new(),
            radix52: OnceLock::new(),
            comb52: OnceLock::new(),
        }
    }

    /// The modulus.
    pub(crate) fn p(&self) -> &Uint<L> {
        self.p.as_ref()
    }

    /// The modulus as crypto-bigint's odd type (for the radix-52 tests).
    #[cfg(test)]
    pub(crate) fn p_odd(&self) -> &Odd<Uint<L>> {
        &self.p
    }

    /// The IFMA backend for this group, if the process uses it and it passed its
    /// self-test here (see [`ifma::engine`]).
    fn ifma(&self) -> Option<(&Radix52, ifma::IfmaToken)> {
        let ifma::Engine::Ifma(token) = ifma::engine() else { return None };
        let r = self.radix52()?;
        r.ifma_usable(token).then_some((r, token))
    }

    /// The prime in radix 2^52 (built once, on first use; shared with the
    /// process-wide self-test of [`ifma::engine`], which uses MODP2048's).
    pub(crate) fn radix52(&self) -> Option<&Radix52> {
        self.radix52.get_or_init(|| Radix52::new(&self.p)).as_ref()
    }

    /// Montgomery parameters (computed once).
    fn params(&self) -> &FixedMontyParams<L> {
        self.params.get_or_init(|| FixedMontyParams::new_vartime(self.p))
    }

    /// The comb table for `2^x` (built once, on first use).
    fn comb(&self) -> &Comb<L, COMB_WINDOW> {
        self.comb.get_or_init(|| Comb::new(self.params()))
    }

    /// Decodes a big-endian integer of exactly [`Self::BYTES`] bytes.
    fn decode(bytes: &[u8]) -> Result<Uint<L>, DhError> {
        if bytes.len() != Self::BYTES {
            return Err(DhError::WrongLength);
        }
        // Length checked above, so `from_be_slice` cannot fail.
        Ok(Uint::from_be_slice(bytes))
    }

    /// Encodes `x` big-endian, left-padded to [`Self::BYTES`], into a zeroizing buffer.
    fn encode(x: &Uint<L>) -> Zeroizing<Vec<u8>> {
        let mut enc = x.to_be_bytes();
        let out = Zeroizing::new(enc.as_ref().to_vec());
        enc.zeroize();
        out
    }

    /// Decodes a public value and checks `2 <= y <= p - 2` (variable time: it is public).
    fn decode_in_range(&self, bytes: &[u8]) -> Result<Uint<L>, DhError> {
        let y = Self::decode(bytes)?;
        let two = Uint::<L>::from_u8(2);
        let p_minus_2 = self.p().wrapping_sub(&two);
        if y.cmp_vartime(&two).is_lt() || y.cmp_vartime(&p_minus_2).is_gt() {
            return Err(DhError::OutOfRange);
        }
        Ok(y)
    }

    /// Full validation of a peer public key: exact length, `2 <= y <= p - 2` and
    /// `(y | p) = 1` (for a safe prime: membership of the order-`q` subgroup).
    pub(crate) fn validate(&self, bytes: &[u8]) -> Result<(), DhError> {
        self.decode_in_range(bytes)?;
        if self.legendre_is_one(bytes) { Ok(()) } else { Err(DhError::NotInSubgroup) }
    }

    /// The Legendre symbol check alone, on the big-endian bytes of a candidate.
    fn legendre_is_one(&self, bytes: &[u8]) -> bool {
        let p = self.p().to_be_bytes();
        jacobi::jacobi_be_vartime(bytes, p.as_ref()) == Some(1)
    }

    /// Range check, then the Legendre symbol alone (for benchmarks).
    pub(crate) fn legendre_check(&self, bytes: &[u8]) -> Result<bool, DhError> {
        self.decode_in_range(bytes)?;
        Ok(self.legendre_is_one(bytes))
    }

    /// The original design's check: `y^((p-1)/2) mod p == 1` by full exponentiation.
    /// Only the length and `y < p` are checked first.
    pub(crate) fn naive_subgroup_check(&self, bytes: &[u8]) -> Result<bool, DhError> {
        let y = Self::decode(bytes)?;
        if y.cmp_vartime(self.p()).is_ge() {
            return Err(DhError::OutOfRange);
        }
        let q = self.p().shr_vartime(1);
        let r = FixedMontyForm::new(&y, self.params()).pow_vartime(&q).retrieve();
        Ok(r == Uint::ONE)
    }

    /// Public key `2^x mod p` for the secret big-endian exponent `x` (constant time).
    pub(crate) fn public_key(&self, exponent: &[u8; 32]) -> Zeroizing<Vec<u8>> {
        let mut y = if let Some((r, token)) = self.ifma() {
            let comb = self.comb52.get_or_init(|| r.comb(Some(token)));
            r.comb_pow(comb, Some(token), exponent)
        } else {
            self.comb().pow(exponent, self.params())
        };
        let out = Self::encode(&y);
        y.zeroize();
        out
    }

    /// Shared secret `peer^x mod p`, encoded like a public key (constant time in `x`).
    ///
    /// `peer` must already be validated. Rejects `Z` in `{0, 1, p - 1}`.
    pub(crate) fn shared_secret(
        &self,
        peer: &[u8],
        exponent: &[u8; 32],
    ) -> Result<Zeroizing<Vec<u8>>, DhError> {
        let y = Self::decode(peer)?;
        let mut z = if let Some((r, token)) = self.ifma() {
            r.pow(Some(token), &y, exponent)
        } else {
            let params = self.params();
            let mut x = U256::from_be_slice(exponent);
            let mut zm = FixedMontyForm::new(&y, params).pow(&x);
            x.zeroize();
            let z = zm.retrieve();
            zm.zeroize();
            z
        };
        let p_minus_1 = self.p().wrapping_sub(&Uint::ONE);
        let degenerate = z.ct_eq(&Uint::<L>::ZERO) | z.ct_eq(&Uint::<L>::ONE) | z.ct_eq(&p_minus_1);
        let out = Self::encode(&z);
        z.zeroize();
        if degenerate.to_bool() {
            return Err(DhError::Degenerate);
        }
        Ok(out)
    }
}

/// Number of `W`-bit windows covering a [`EXPONENT_BITS`]-bit exponent.
const fn windows(w: usize) -> usize {
    EXPONENT_BITS.div_ceil(w)
}

/// Constant-time fixed-base comb for `2^x`, `x` a 256-bit exponent.
///
/// The exponent is cut into `W`-bit digits `c_j`; row `j` of the table holds
/// `T[j][c] = 2^(c * 2^(W j))` in Montgomery form for every `c < 2^W`, so
/// `2^x = prod_j T[j][c_j]`: one multiplication per window and no squarings. Every lookup
/// reads all `2^W` entries of its row and keeps the wanted one with a mask, so neither the
/// memory access pattern nor any branch depends on the secret digits.
pub(crate) struct Comb<const L: usize, const W: usize> {
    /// `windows(W)` rows of `2^W` entries, row-major, Montgomery form.
    table: Vec<Uint<L>>,
}

impl<const L: usize, const W: usize> Comb<L, W> {
    const ENTRIES: usize = 1 << W;
    const WINDOWS: usize = windows(W);

    /// Builds the table: `windows(W) * 2^W` Montgomery multiplications.
    pub(crate) fn new(params: &FixedMontyParams<L>) -> Self {
        let mut table = Vec::with_capacity(Self::WINDOWS * Self::ENTRIES);
        // base = 2^(2^(W j)) for the current row j.
        let mut base = FixedMontyForm::new(&Uint::<L>::from_u8(2), params);
        for _ in 0..Self::WINDOWS {
            let mut e = FixedMontyForm::one(params);
            for _ in 0..Self::ENTRIES {
                table.push(e.to_montgomery());
                e = e.mul(&base);
            }
            // After 2^W multiplications e = base^(2^W): the next row's base.
            base = e;
        }
        Self { table }
    }

    /// `2^x mod p` in normal form, for the big-endian 256-bit exponent `x`. Constant time.
    pub(crate) fn pow(&self, exponent: &[u8; 32], params: &FixedMontyParams<L>) -> Uint<L> {
        let x = Zeroizing::new(le_words(exponent));
        let mut selected = Uint::<L>::ZERO;
        let mut acc = FixedMontyForm::one(params);
        for (j, row) in self.table.chunks_exact(Self::ENTRIES).enumerate() {
            let mut digit = window_digit(&x, j * W, W);
            ct_lookup(&mut selected, row, digit);
            digit.zeroize();
            let mut t = FixedMontyForm::from_montgomery(selected, params);
            acc = if j == 0 { t } else { acc.mul(&t) };
            t.zeroize();
        }
        let y = acc.retrieve();
        acc.zeroize();
        selected.zeroize();
        y
    }
}

/// The 256-bit big-endian exponent as four little-endian 64-bit words.
pub(crate) fn le_words(be: &[u8; 32]) -> [u64; 4] {
    let mut w = [0u64; 4];
    for (k, chunk) in be.rchunks_exact(8).enumerate() {
        w[k] = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    }
    w
}

/// Bits `[start, start + width)` of `x` (little-endian words), `width < 64`.
///
/// Positions are public; only the extracted value is secret.
pub(crate) fn window_digit(x: &[u64; 4], start: usize, width: usize) -> u64 {
    let (word, bit) = (start / 64, start % 64);
    let lo = x.get(word).copied().unwrap_or(0) >> bit;
    let hi = if bit + width > 64 { x.get(word + 1).copied().unwrap_or(0) << (64 - bit) } else { 0 };
    (lo | hi) & ((1u64 << width) - 1)
}

/// Constant-time table lookup: `out = row[index]`, reading every entry.
///
/// Each entry is merged under a mask that is all ones for the wanted index and zero
/// otherwise; the mask is computed arithmetically and passed through `black_box` so the
/// compiler cannot turn it back into a branch.
fn ct_lookup<const L: usize>(out: &mut Uint<L>, row: &[Uint<L>], index: u64) {
    *out = Uint::ZERO;
    for (k, entry) in (0u64..).zip(row) {
        let diff = k ^ index;
        // (diff | -diff) has its top bit set iff diff != 0, so this is 0 - 1 = all ones
        // when k == index and 1 - 1 = 0 otherwise.
        let mask = core::hint::black_box(((diff | diff.wrapping_neg()) >> 63).wrapping_sub(1));
        for (o, e) in out.as_mut_words().iter_mut().zip(entry.as_words()) {
            *o |= mask as crypto_bigint::Word & *e;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn time_window<const W: usize>(m: &Modp<{ crypto_bigint::U6144::LIMBS }>) {
        let params = m.params();
        let t = std::time::Instant::now();
        let comb = Comb::<{ crypto_bigint::U6144::LIMBS }, W>::new(params);
        let build = t.elapsed();
        let mut e = [0x5au8; 32];
        let mut best = std::time::Duration::MAX;
        for round in 0..40u8 {
            e[0] = round;
            let t = std::time::Instant::now();
            let y = comb.pow(&e, params);
            best = best.min(t.elapsed());
            std::hint::black_box(y);
        }
        let mut sel = Uint::ZERO;
        let mut bestl = std::time::Duration::MAX;
        for round in 0..20u64 {
            let t = std::time::Instant::now();
            for (j, row) in comb.table.chunks_exact(1 << W).enumerate() {
                ct_lookup(&mut sel, row, (round + j as u64) % (1 << W));
                std::hint::black_box(&sel);
            }
            bestl = bestl.min(t.elapsed());
        }
        let a = FixedMontyForm::new(&Uint::from_u8(3), params);
        let t = std::time::Instant::now();
        let mut x = a;
        for _ in 0..100 {
            x = x.mul(&a);
        }
        std::hint::black_box(x);
        println!(
            "w={W}: keygen {best:?} (build {build:?}, {} entries), lookups alone {bestl:?}, one mul {:?}",
            comb.table.len(),
            t.elapsed() / 100
        );
    }

    /// Run with `--ignored --nocapture` to compare comb window sizes (modp6144).
    #[test]
    #[ignore = "timing; run with --ignored --nocapture"]
    fn comb_window_timings() {
        for _ in 0..2 {
            time_window::<5>(&MODP6144);
            time_window::<6>(&MODP6144);
            time_window::<7>(&MODP6144);
        }
    }
}
