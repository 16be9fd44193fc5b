//! Ephemeral Diffie-Hellman: RFC 3526 MODP groups (generator 2) and X25519 (RFC 7748).
//!
//! * FFDH private exponents are 256 random bits (SPEC section 2). `2^x` uses a
//!   constant-time fixed-base comb table built once per group on first use; `y^x` uses
//!   crypto-bigint's constant-time exponentiation with a 256-bit exponent.
//! * A peer's FFDH public key is accepted only if `2 <= y <= p - 2` and `y` lies in the
//!   prime-order subgroup; for these safe primes that is the Legendre symbol `(y | p) = 1`,
//!   computed in variable time (the key is public) by a fast binary Jacobi algorithm.
//! * X25519 uses `x25519_dalek::x25519`; an all-zero shared secret is rejected.
//! * Keys and shared secrets are encoded as SPEC section 7 says: FFDH big-endian,
//!   left-padded to the modulus length; X25519 as its 32 bytes.
//!
//! Secrets (exponents, scalars, shared secrets) live in zeroizing containers and are
//! wiped on drop.

use core::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

// The workspace's only `unsafe` code: the AVX-512 IFMA Montgomery loop (see its docs).
#[allow(unsafe_code)]
mod ifma;
mod jacobi;
mod modp;
mod x25519;

/// Calls `$body` with `$m` bound to the group's `&'static Modp<L>` (one monomorphised
/// copy per FFDH group), or evaluates `$x` for X25519.
macro_rules! dispatch {
    ($group:expr, |$m:ident| $body:expr, x25519 => $x:expr) => {
        match $group {
            Group::Modp2048 => {
                let $m = &modp::MODP2048;
                $body
            }
            Group::Modp3072 => {
                let $m = &modp::MODP3072;
                $body
            }
            Group::Modp4096 => {
                let $m = &modp::MODP4096;
                $body
            }
            Group::Modp6144 => {
                let $m = &modp::MODP6144;
                $body
            }
            Group::Modp8192 => {
                let $m = &modp::MODP8192;
                $body
            }
            Group::X25519 => $x,
        }
    };
}

/// Which modular exponentiation the MODP groups use in this process:
/// `"avx512-ifma"` (radix-2^52 Montgomery multiplication on AVX-512 IFMA, when the CPU
/// has it) or `"crypto-bigint"` (everywhere else, or when the environment variable
/// `SCRAM_DH_MODEXP=crypto-bigint` asks for it). Decided once per process; servers log
/// it at startup and the benchmarks report it.
///
/// ```
/// let engine = scram_dh::dh::modexp_engine();
/// assert!(engine == "avx512-ifma" || engine == "crypto-bigint");
/// ```
#[must_use]
pub fn modexp_engine() -> &'static str {
    ifma::engine().name()
}

/// A Diffie-Hellman group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Group {
    /// RFC 3526 2048-bit MODP group, generator 2.
    Modp2048,
    /// RFC 3526 3072-bit MODP group, generator 2.
    Modp3072,
    /// RFC 3526 4096-bit MODP group, generator 2.
    Modp4096,
    /// RFC 3526 6144-bit MODP group, generator 2 (the default, as the original design).
    #[default]
    Modp6144,
    /// RFC 3526 8192-bit MODP group, generator 2.
    Modp8192,
    /// X25519 (RFC 7748).
    X25519,
}

impl Group {
    /// Every supported group.
    pub const ALL: [Group; 6] =
        [Group::Modp2048, Group::Modp3072, Group::Modp4096, Group::Modp6144, Group::Modp8192, Group::X25519];

    /// The wire name: `modp2048` ... `modp8192`, `x25519`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Group::Modp2048 => "modp2048",
            Group::Modp3072 => "modp3072",
            Group::Modp4096 => "modp4096",
            Group::Modp6144 => "modp6144",
            Group::Modp8192 => "modp8192",
            Group::X25519 => "x25519",
        }
    }

    /// Parses a wire name; exact and lowercase only.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == name)
    }

    /// Length in bytes of a public key (and of the shared secret): the modulus length for
    /// FFDH (256, 384, 512, 768, 1024), 32 for X25519.
    #[must_use]
    pub fn public_key_len(self) -> usize {
        dispatch!(self, |m| modp_bytes(m), x25519 => x25519::LEN)
    }

    /// The FFDH modulus `p`, big-endian ([`Group::public_key_len`] bytes); `None` for
    /// X25519.
    #[must_use]
    pub fn modulus_bytes(self) -> Option<Vec<u8>> {
        dispatch!(self, |m| Some(m.p().to_be_bytes().as_ref().to_vec()), x25519 => None)
    }

    /// Generates an ephemeral key pair: a 256-bit FFDH exponent or a 32-byte X25519
    /// scalar from `rng`, and its public key.
    ///
    /// The first FFDH key of a group in a process also builds that group's comb table
    /// (tens of milliseconds, a few MiB); call it once at start-up to keep that off the
    /// first request.
    #[must_use]
    pub fn generate<R: CryptoRng + ?Sized>(self, rng: &mut R) -> EphemeralSecret {
        // Fill the secret in place, so no other copy of it is left behind.
        let mut secret = EphemeralSecret {
            group: self,
            scalar: [0u8; 32],
            public: PublicKey { group: self, bytes: Vec::new() },
        };
        loop {
            rng.fill_bytes(&mut secret.scalar);
            // An all-zero exponent would give the public key 1 (probability 2^-256).
            if !bool::from(secret.scalar.ct_eq(&[0u8; 32])) {
                break;
            }
        }
        let bytes = dispatch!(self, |m| m.public_key(&secret.scalar),
            x25519 => Zeroizing::new(x25519::public_key(&secret.scalar).to_vec()));
        secret.public.bytes = bytes.to_vec();
        secret
    }
}

/// `Modp::<L>::BYTES` through a reference, for use inside [`dispatch!`].
fn modp_bytes<const L: usize>(_: &modp::Modp<L>) -> usize {
    modp::Modp::<L>::BYTES
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a public key or a key exchange was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DhError {
    /// The encoded key does not have the group's exact length.
    #[error("public key has the wrong length for its group")]
    WrongLength,
    /// An FFDH public key outside `2 <= y <= p - 2`.
    #[error("public key is out of range (2 <= y <= p - 2 required)")]
    OutOfRange,
    /// An FFDH public key outside the prime-order subgroup (Legendre symbol not 1).
    #[error("public key is not in the prime-order subgroup")]
    NotInSubgroup,
    /// The shared secret is degenerate (FFDH: 0, 1 or p - 1; X25519: all zero).
    #[error("degenerate shared secret")]
    Degenerate,
    /// The peer's key belongs to another group (or the operation needs an FFDH group).
    #[error("public key belongs to a different group")]
    GroupMismatch,
}

/// A validated peer (or own) public key, fixed-length big-endian (FFDH) / 32 bytes (X25519).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    group: Group,
    bytes: Vec<u8>,
}

impl PublicKey {
    /// Validates and wraps an encoded public key.
    ///
    /// Checks the exact length; for FFDH also `2 <= y <= p - 2` and the Legendre symbol
    /// `(y | p) = 1` (membership of the prime-order subgroup). X25519: length only (an
    /// unsafe point shows up as an all-zero shared secret, rejected by
    /// [`EphemeralSecret::diffie_hellman`]).
    ///
    /// # Errors
    ///
    /// [`DhError::WrongLength`], [`DhError::OutOfRange`] or [`DhError::NotInSubgroup`].
    pub fn from_bytes(group: Group, bytes: &[u8]) -> Result<PublicKey, DhError> {
        dispatch!(group, |m| m.validate(bytes)?, x25519 => {
            if bytes.len() != x25519::LEN {
                return Err(DhError::WrongLength);
            }
        });
        Ok(PublicKey { group, bytes: bytes.to_vec() })
    }

    /// The key's group.
    #[must_use]
    pub fn group(&self) -> Group {
        self.group
    }

    /// The encoded key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Prefix<'a>(&'a [u8]);
        impl fmt::Debug for Prefix<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0.iter().take(8) {
                    write!(f, "{b:02x}")?;
                }
                if self.0.len() > 8 {
                    f.write_str("..")?;
                }
                Ok(())
            }
        }
        f.debug_struct("PublicKey").field("group", &self.group).field("bytes", &Prefix(&self.bytes)).finish()
    }
}

/// Ephemeral private key with its public key; wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct EphemeralSecret {
    #[zeroize(skip)]
    group: Group,
    /// FFDH: the 256-bit exponent, big-endian. X25519: the scalar (clamped when used).
    scalar: [u8; 32],
    #[zeroize(skip)]
    public: PublicKey,
}

impl EphemeralSecret {
    /// The key's group.
    #[must_use]
    pub fn group(&self) -> Group {
        self.group
    }

    /// Own public key, to send to the peer.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Computes the shared secret with a validated peer key, consuming the secret.
    ///
    /// Rejects a peer key of another group ([`DhError::GroupMismatch`]) and a degenerate
    /// shared secret ([`DhError::Degenerate`]: FFDH `Z <= 1` or `Z = p - 1`; X25519 all
    /// zero, checked in constant time).
    ///
    /// # Errors
    ///
    /// [`DhError::GroupMismatch`] or [`DhError::Degenerate`].
    pub fn diffie_hellman(self, peer: &PublicKey) -> Result<SharedSecret, DhError> {
        if peer.group != self.group {
            return Err(DhError::GroupMismatch);
        }
        let z = dispatch!(self.group, |m| m.shared_secret(&peer.bytes, &self.scalar)?,
            x25519 => x25519::shared_secret(&self.scalar, &peer.bytes)?);
        Ok(SharedSecret { bytes: z })
    }
}

impl fmt::Debug for EphemeralSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralSecret").field("group", &self.group).finish_non_exhaustive()
    }
}

/// The shared secret `Z`, encoded as the public keys are (FFDH big-endian left-padded to
/// the modulus length, X25519 32 bytes); wiped on drop, redacted in `Debug`.
pub struct SharedSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl ZeroizeOnDrop for SharedSecret {}

impl SharedSecret {
    /// The encoded shared secret.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Rebuilds a shared secret from its encoding (for instance server session state kept
    /// in an external store). Checks the length only; `None` if it is not
    /// [`Group::public_key_len`].
    #[must_use]
    pub fn from_bytes(group: Group, bytes: &[u8]) -> Option<SharedSecret> {
        (bytes.len() == group.public_key_len())
            .then(|| SharedSecret { bytes: Zeroizing::new(bytes.to_vec()) })
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret { .. }")
    }
}

/// For benchmarks and tests: the original design's subgroup check
/// `y^((p-1)/2) mod p == 1`, by full exponentiation.
///
/// Checks only the length and `y < p` first. FFDH groups only.
///
/// # Errors
///
/// [`DhError::WrongLength`], [`DhError::OutOfRange`] (`y >= p`), or
/// [`DhError::GroupMismatch`] for X25519.
#[doc(hidden)]
pub fn naive_subgroup_check(group: Group, bytes: &[u8]) -> Result<bool, DhError> {
    dispatch!(group, |m| m.naive_subgroup_check(bytes), x25519 => Err(DhError::GroupMismatch))
}

/// For benchmarks: the Legendre symbol check alone, after the length and range checks;
/// `Ok(true)` iff `(y | p) = 1`. FFDH groups only.
///
/// # Errors
///
/// [`DhError::WrongLength`], [`DhError::OutOfRange`], or [`DhError::GroupMismatch`] for
/// X25519.
#[doc(hidden)]
pub fn legendre_check(group: Group, bytes: &[u8]) -> Result<bool, DhError> {
    dispatch!(group, |m| m.legendre_check(bytes), x25519 => Err(DhError::GroupMismatch))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
    use crypto_bigint::{Odd, U256, Uint};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Infallible, Rng, SeedableRng, TryCryptoRng, TryRng};

    const FFDH: [Group; 5] =
        [Group::Modp2048, Group::Modp3072, Group::Modp4096, Group::Modp6144, Group::Modp8192];

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The modulus of an FFDH group, big-endian.
    fn p_bytes(group: Group) -> Vec<u8> {
        dispatch!(group, |m| m.p().to_be_bytes().as_ref().to_vec(), x25519 => unreachable!())
    }

    /// `p - k` (k small), big-endian, same length.
    fn p_minus(group: Group, k: u8) -> Vec<u8> {
        let mut b = p_bytes(group);
        let mut borrow = u16::from(k);
        for byte in b.iter_mut().rev() {
            let v = i32::from(*byte) - i32::from(borrow);
            *byte = v.rem_euclid(256) as u8;
            borrow = u16::from(v < 0);
        }
        b
    }

    /// Miller-Rabin with fixed small prime bases.
    fn is_probable_prime<const L: usize>(n: &Uint<L>) -> bool {
        let odd = Odd::new(*n).into_option().expect("odd");
        let params = FixedMontyParams::new_vartime(odd);
        let n_minus_1 = n.wrapping_sub(&Uint::ONE);
        let s = n_minus_1.trailing_zeros_vartime();
        let d = n_minus_1.shr_vartime(s);
        let one = FixedMontyForm::one(&params);
        let minus_one = FixedMontyForm::new(&n_minus_1, &params);
        'bases: for a in [2u8, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
            let mut x = FixedMontyForm::new(&Uint::from_u8(a), &params).pow_vartime(&d);
            if x == one || x == minus_one {
                continue;
            }
            for _ in 1..s {
                x = x.square();
                if x == minus_one {
                    continue 'bases;
                }
            }
            return false;
        }
        true
    }

    fn check_prime_structure<const L: usize>(m: &modp::Modp<L>, bits: u32) {
        let p = m.p();
        assert_eq!(p.bits_vartime(), bits);
        let words = p.to_le_bytes();
        let le = words.as_ref();
        assert!(le[le.len() - 8..].iter().all(|&b| b == 0xff), "top 64 bits all ones");
        assert!(le[..8].iter().all(|&b| b == 0xff), "bottom 64 bits all ones");
        assert_eq!(le[0] & 7, 7, "p = 7 (mod 8): 2 is a QR, g = 2 generates the q-subgroup");
        assert!(is_probable_prime(p), "p prime");
        let q = p.shr_vartime(1);
        assert!(is_probable_prime(&q), "(p-1)/2 prime");
    }

    #[test]
    fn rfc3526_primes_are_safe_primes() {
        check_prime_structure(&modp::MODP2048, 2048);
        check_prime_structure(&modp::MODP3072, 3072);
        check_prime_structure(&modp::MODP4096, 4096);
        check_prime_structure(&modp::MODP6144, 6144);
        check_prime_structure(&modp::MODP8192, 8192);
    }

    #[test]
    fn rfc3526_6144_matches_seed() {
        // The prime quoted by the original design (seeds/004), first and last words.
        let p = p_bytes(Group::Modp6144);
        assert_eq!(&p[..12], &hex("FFFFFFFFFFFFFFFFC90FDAA2")[..]);
        assert_eq!(&p[p.len() - 12..], &hex("6DCC4024FFFFFFFFFFFFFFFF")[..]);
    }

    #[test]
    fn names_and_lengths() {
        let lens = [256, 384, 512, 768, 1024, 32];
        for (g, len) in Group::ALL.into_iter().zip(lens) {
            assert_eq!(Group::from_name(g.name()), Some(g));
            assert_eq!(g.to_string(), g.name());
            assert_eq!(g.public_key_len(), len);
        }
        assert_eq!(Group::default(), Group::Modp6144);
        assert_eq!(Group::from_name("MODP2048"), None);
        assert_eq!(Group::from_name("modp1536"), None);
        assert_eq!(Group::from_name(""), None);
    }

    /// An RNG that hands out fixed bytes (to inject known private keys).
    struct FixedRng(Vec<u8>);
    impl TryRng for FixedRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            unimplemented!()
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            unimplemented!()
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            let rest = self.0.split_off(dst.len());
            dst.copy_from_slice(&self.0);
            self.0 = rest;
            Ok(())
        }
    }
    impl TryCryptoRng for FixedRng {}

    #[test]
    fn rfc7748_x25519_vector() {
        // RFC 7748 section 6.1.
        let alice_sk = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
        let alice_pk = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
        let bob_sk = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
        let bob_pk = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        let alice = Group::X25519.generate(&mut FixedRng(hex(alice_sk)));
        let bob = Group::X25519.generate(&mut FixedRng(hex(bob_sk)));
        assert_eq!(alice.public_key().as_bytes(), &hex(alice_pk)[..]);
        assert_eq!(bob.public_key().as_bytes(), &hex(bob_pk)[..]);
        let to_bob = PublicKey::from_bytes(Group::X25519, &hex(bob_pk)).unwrap();
        let to_alice = PublicKey::from_bytes(Group::X25519, &hex(alice_pk)).unwrap();
        assert_eq!(alice.diffie_hellman(&to_bob).unwrap().as_bytes(), &hex(shared)[..]);
        assert_eq!(bob.diffie_hellman(&to_alice).unwrap().as_bytes(), &hex(shared)[..]);
    }

    #[test]
    fn agreement_in_every_group() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5c7a_0d11);
        for g in Group::ALL {
            for _ in 0..2 {
                let a = g.generate(&mut rng);
                let b = g.generate(&mut rng);
                assert_eq!(a.group(), g);
                assert_eq!(a.public_key().group(), g);
                assert_eq!(a.public_key().as_bytes().len(), g.public_key_len());
                // Own keys pass the full peer validation.
                let pa = PublicKey::from_bytes(g, a.public_key().as_bytes()).unwrap();
                let pb = PublicKey::from_bytes(g, b.public_key().as_bytes()).unwrap();
                assert_eq!(&pa, a.public_key());
                let za = a.diffie_hellman(&pb).unwrap();
                let zb = b.diffie_hellman(&pa).unwrap();
                assert_eq!(za.as_bytes(), zb.as_bytes());
                assert_eq!(za.as_bytes().len(), g.public_key_len());
                assert!(za.as_bytes().iter().any(|&x| x != 0));
            }
        }
    }

    /// The comb gives the same 2^x as crypto-bigint's own exponentiation, including the
    /// edge exponents that exercise the first and the partial last window.
    fn check_comb<const L: usize>(m: &modp::Modp<L>, rng: &mut ChaCha20Rng) {
        let params = FixedMontyParams::new_vartime(Odd::new(*m.p()).into_option().unwrap());
        let two = FixedMontyForm::new(&Uint::<L>::from_u8(2), &params);
        let mut exps: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32]];
        let mut one = [0u8; 32];
        one[31] = 1;
        exps.push(one);
        for bit in [5usize, 6, 7, 63, 64, 127, 251, 252, 255] {
            let mut e = [0u8; 32];
            e[31 - bit / 8] = 1 << (bit % 8);
            exps.push(e);
        }
        for _ in 0..6 {
            let mut e = [0u8; 32];
            rng.fill_bytes(&mut e);
            exps.push(e);
        }
        for e in exps {
            let want = two.pow_vartime(&U256::from_be_slice(&e)).retrieve();
            let got = m.public_key(&e);
            assert_eq!(&got[..], want.to_be_bytes().as_ref(), "exponent {e:02x?}");
        }
    }

    #[test]
    fn comb_matches_plain_exponentiation() {
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        check_comb(&modp::MODP2048, &mut rng);
        check_comb(&modp::MODP3072, &mut rng);
        check_comb(&modp::MODP4096, &mut rng);
        check_comb(&modp::MODP6144, &mut rng);
        check_comb(&modp::MODP8192, &mut rng);
    }

    #[test]
    fn ffdh_public_key_rejections() {
        for g in FFDH {
            let len = g.public_key_len();
            let mut one = vec![0u8; len];
            one[len - 1] = 1;
            let mut two = vec![0u8; len];
            two[len - 1] = 2;
            let cases: [(&str, Vec<u8>, DhError); 8] = [
                ("zero", vec![0u8; len], DhError::OutOfRange),
                ("one", one, DhError::OutOfRange),
                ("p-1", p_minus(g, 1), DhError::OutOfRange),
                ("p", p_bytes(g), DhError::OutOfRange),
                ("all ff (> p)", vec![0xff; len], DhError::OutOfRange),
                // (-2 | p) = (-1 | p)(2 | p) = -1 for p = 7 (mod 8).
                ("p-2", p_minus(g, 2), DhError::NotInSubgroup),
                ("short", vec![0x42; len - 1], DhError::WrongLength),
                ("long", vec![0x42; len + 1], DhError::WrongLength),
            ];
            for (what, bytes, want) in cases {
                assert_eq!(PublicKey::from_bytes(g, &bytes), Err(want), "{g} {what}");
            }
            assert!(PublicKey::from_bytes(g, &[]).is_err());
            // 2 is a residue and in range: accepted.
            assert!(PublicKey::from_bytes(g, &two).is_ok(), "{g} two");
            // The smallest non-residue is rejected, and the original check agrees.
            let small = (3u8..)
                .find(|&k| {
                    let mut b = vec![0u8; len];
                    b[len - 1] = k;
                    !legendre_check(g, &b).unwrap()
                })
                .unwrap();
            let mut b = vec![0u8; len];
            b[len - 1] = small;
            assert_eq!(PublicKey::from_bytes(g, &b), Err(DhError::NotInSubgroup));
            assert_eq!(naive_subgroup_check(g, &b), Ok(false), "{g} non-residue {small}");
        }
    }

    #[test]
    fn x25519_rejections() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        assert_eq!(PublicKey::from_bytes(Group::X25519, &[9; 31]), Err(DhError::WrongLength));
        assert_eq!(PublicKey::from_bytes(Group::X25519, &[9; 33]), Err(DhError::WrongLength));
        // Low-order points: 0, 1 and the two points of order 8; all give Z = 0.
        let low_order = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        ];
        for point in low_order {
            let peer = PublicKey::from_bytes(Group::X25519, &hex(point)).unwrap();
            let sk = Group::X25519.generate(&mut rng);
            assert_eq!(sk.diffie_hellman(&peer).unwrap_err(), DhError::Degenerate, "{point}");
        }
    }

    #[test]
    fn group_mismatch() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let a = Group::Modp2048.generate(&mut rng);
        let b = Group::Modp3072.generate(&mut rng);
        let x = Group::X25519.generate(&mut rng);
        let pb = b.public_key().clone();
        let px = x.public_key().clone();
        assert_eq!(a.diffie_hellman(&pb).unwrap_err(), DhError::GroupMismatch);
        assert_eq!(x.diffie_hellman(&pb).unwrap_err(), DhError::GroupMismatch);
        assert_eq!(b.diffie_hellman(&px).unwrap_err(), DhError::GroupMismatch);
        // A key of one group is the wrong length in another.
        assert_eq!(PublicKey::from_bytes(Group::Modp2048, pb.as_bytes()), Err(DhError::WrongLength));
        assert_eq!(naive_subgroup_check(Group::X25519, &[0; 32]), Err(DhError::GroupMismatch));
        assert_eq!(legendre_check(Group::X25519, &[0; 32]), Err(DhError::GroupMismatch));
    }

    /// `y = r^2 mod p` (a residue) and `p - y` (a non-residue, as p = 3 mod 4).
    fn residue_pair<const L: usize>(m: &modp::Modp<L>, rng: &mut ChaCha20Rng) -> (Vec<u8>, Vec<u8>) {
        let params = FixedMontyParams::new_vartime(Odd::new(*m.p()).into_option().unwrap());
        let mut r = vec![0u8; modp::Modp::<L>::BYTES];
        rng.fill_bytes(&mut r);
        r[0] &= 0x7f;
        let y = FixedMontyForm::new(&Uint::<L>::from_be_slice(&r), &params).square().retrieve();
        let ny = m.p().wrapping_sub(&y);
        (y.to_be_bytes().as_ref().to_vec(), ny.to_be_bytes().as_ref().to_vec())
    }

    fn check_naive_agrees<const L: usize>(m: &modp::Modp<L>, g: Group, n: usize, rng: &mut ChaCha20Rng) {
        for _ in 0..n {
            let (res, non) = residue_pair(m, rng);
            assert_eq!(naive_subgroup_check(g, &res), Ok(true));
            assert_eq!(legendre_check(g, &res), Ok(true));
            assert_eq!(naive_subgroup_check(g, &non), Ok(false));
            assert_eq!(legendre_check(g, &non), Ok(false));
            assert_eq!(PublicKey::from_bytes(g, &non), Err(DhError::NotInSubgroup));
            // And a random value with no structure.
            let mut y = vec![0u8; modp::Modp::<L>::BYTES];
            rng.fill_bytes(&mut y);
            y[0] &= 0x7f;
            assert_eq!(naive_subgroup_check(g, &y), legendre_check(g, &y));
        }
    }

    #[test]
    fn naive_check_agrees_with_legendre() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        check_naive_agrees(&modp::MODP2048, Group::Modp2048, 6, &mut rng);
        check_naive_agrees(&modp::MODP3072, Group::Modp3072, 3, &mut rng);
        check_naive_agrees(&modp::MODP4096, Group::Modp4096, 2, &mut rng);
        check_naive_agrees(&modp::MODP6144, Group::Modp6144, 1, &mut rng);
        check_naive_agrees(&modp::MODP8192, Group::Modp8192, 1, &mut rng);
    }

    #[test]
    fn many_constructed_residues_and_non_residues() {
        fn run<const L: usize>(m: &modp::Modp<L>, g: Group, rng: &mut ChaCha20Rng) {
            for _ in 0..1500 {
                let (res, non) = residue_pair(m, rng);
                assert_eq!(legendre_check(g, &res), Ok(true));
                assert_eq!(legendre_check(g, &non), Ok(false));
            }
        }
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        run(&modp::MODP2048, Group::Modp2048, &mut rng);
        run(&modp::MODP3072, Group::Modp3072, &mut rng);
        run(&modp::MODP4096, Group::Modp4096, &mut rng);
        run(&modp::MODP6144, Group::Modp6144, &mut rng);
        run(&modp::MODP8192, Group::Modp8192, &mut rng);
        assert_eq!(jacobi::fallbacks(), 0);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let a = Group::X25519.generate(&mut rng);
        let b = Group::X25519.generate(&mut rng);
        let dbg = format!("{a:?}");
        assert_eq!(dbg, "EphemeralSecret { group: X25519, .. }");
        let pk = format!("{:?}", a.public_key());
        assert!(pk.starts_with("PublicKey { group: X25519, bytes: "), "{pk}");
        let z = a.diffie_hellman(b.public_key()).unwrap();
        assert_eq!(format!("{z:?}"), "SharedSecret { .. }");
    }

    #[test]
    fn modulus_bytes_and_shared_secret_round_trip() {
        for g in FFDH {
            let p = g.modulus_bytes().unwrap();
            assert_eq!(p.len(), g.public_key_len());
            assert_eq!(p, p_bytes(g));
        }
        assert_eq!(Group::X25519.modulus_bytes(), None);
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let a = Group::Modp2048.generate(&mut rng);
        let b = Group::Modp2048.generate(&mut rng);
        let z = a.diffie_hellman(b.public_key()).unwrap();
        let back = SharedSecret::from_bytes(Group::Modp2048, z.as_bytes()).unwrap();
        assert_eq!(back.as_bytes(), z.as_bytes());
        assert!(SharedSecret::from_bytes(Group::Modp3072, z.as_bytes()).is_none());
        assert!(SharedSecret::from_bytes(Group::X25519, &[1; 31]).is_none());
    }

    #[test]
    fn error_texts() {
        for e in [
            DhError::WrongLength,
            DhError::OutOfRange,
            DhError::NotInSubgroup,
            DhError::Degenerate,
            DhError::GroupMismatch,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }
}
