//! Thin wrappers over the RustCrypto primitives the protocol uses (SPEC 2).

use chacha20poly1305::aead::{Aead, AeadInOut, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::{SaltedPassword, SymmetricKey};

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA-256 over the concatenation of `parts`.
#[must_use]
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hmac_into(key, parts, &mut out);
    out
}

/// HMAC-SHA-256 of a secret value, written straight into a zeroizing buffer (no
/// copy of it is left behind: finding F6).
#[must_use]
pub fn hmac_secret(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    hmac_into(key, parts, &mut out);
    out
}

/// HMAC-SHA-256 over the concatenation of `parts`, into `out`.
#[allow(clippy::expect_used)]
pub fn hmac_into(key: &[u8], parts: &[&[u8]], out: &mut [u8; 32]) {
    // Invariant, not input validation: HMAC (RFC 2104) accepts keys of every length.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    hmac::digest::FixedOutput::finalize_into(mac, out.into());
}

/// An HMAC-SHA-256 key with its padded blocks already absorbed: each
/// [`mac`](Self::mac) skips the two compressions of the key setup. The state is
/// wiped on drop (the `hmac` crate's `zeroize` feature).
#[derive(Clone)]
pub struct HmacKey(HmacSha256);

impl HmacKey {
    /// Absorbs `key`.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn new(key: &[u8]) -> Self {
        // Invariant, not input validation: HMAC (RFC 2104) accepts keys of every length.
        Self(HmacSha256::new_from_slice(key).expect("HMAC accepts any key length"))
    }

    /// HMAC-SHA-256 over the concatenation of `parts`: the same value as [`hmac()`].
    #[must_use]
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        let mut out = [0u8; 32];
        hmac::digest::FixedOutput::finalize_into(mac, (&mut out).into());
        out
    }
}

impl core::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

/// RFC 5802 `Hi(str, salt, i)`: PBKDF2-HMAC-SHA-256 with a 32-byte output.
#[must_use]
pub fn hi(normalized_password: &[u8], salt: &[u8], ic: u32) -> SaltedPassword {
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(normalized_password, salt, ic, out.as_mut());
    SaltedPassword::from_bytes(*out)
}

/// HKDF-SHA-256 extract (`salt`, `ikm`) then expand (`info`) into `out`, which
/// must be at most 8160 bytes (ours are 32 or 64).
#[allow(clippy::expect_used)]
pub fn hkdf_expand(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), ikm);
    // Invariant: every caller asks for far less than HKDF-SHA-256's 8160-byte output
    // limit. Never fall back to a default key.
    hk.expand(info, out).expect("HKDF output length is within the limit");
}

/// HKDF-SHA-256 extract then expand into one 32-byte key.
#[must_use]
pub fn hkdf_key(salt: &[u8], ikm: &[u8], info: &[u8]) -> SymmetricKey {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf_expand(salt, ikm, info, out.as_mut());
    SymmetricKey::from_bytes(*out)
}

/// Two directional keys from one extract: `(info_c2s, info_s2c)`.
#[must_use]
pub fn hkdf_pair(salt: &[u8], ikm: &[u8], info_c2s: &[u8], info_s2c: &[u8]) -> (SymmetricKey, SymmetricKey) {
    (hkdf_key(salt, ikm, info_c2s), hkdf_key(salt, ikm, info_s2c))
}

/// The SPEC's AEAD nonce `n(i)`: four zero bytes, then `i` as u64 big-endian.
#[must_use]
pub fn aead_nonce(i: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&i.to_be_bytes());
    n
}

/// The cipher for `key`, built from a reference: no by-value copy of the key is
/// left on the stack, and the cipher's own copy is wiped on drop (the crate's
/// `zeroize` feature).
fn cipher(key: &SymmetricKey) -> ChaCha20Poly1305 {
    let key: &Key = key.expose().into();
    ChaCha20Poly1305::new(key)
}

/// ChaCha20-Poly1305 seal: ciphertext with the 16-byte tag appended.
///
/// # Errors
/// [`Error::ServerError`] if the AEAD refuses (only for inputs over 256 GiB, which
/// the framing rules out: an invariant, never an empty ciphertext).
pub fn seal(key: &SymmetricKey, seq: u64, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce = Nonce::from(aead_nonce(seq));
    cipher(key)
        .encrypt(&nonce, Payload { msg: plaintext, aad })
        .map_err(|_| Error::ServerError("AEAD encryption failed".into()))
}

/// ChaCha20-Poly1305 open. `None` when the tag does not verify.
#[must_use]
pub fn open(key: &SymmetricKey, seq: u64, aad: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = Nonce::from(aead_nonce(seq));
    cipher(key).decrypt(&nonce, Payload { msg: ciphertext, aad }).ok().map(Zeroizing::new)
}

/// Length of the random XChaCha20-Poly1305 nonce in front of a sealed blob.
pub const XNONCE_LEN: usize = 24;

/// XChaCha20-Poly1305 seal under a long-lived key with a random 24-byte nonce
/// (random nonces are safe at this size): `nonce || ciphertext || tag`.
///
/// # Errors
/// [`Error::ServerError`] if the AEAD refuses (an invariant, as for [`seal`]).
pub fn seal_random<R: rand_core::CryptoRng + ?Sized>(
    key: &[u8; 32],
    rng: &mut R,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    seal_random_into(key, rng, aad, plaintext, &mut out)?;
    Ok(out)
}

/// [`seal_random`], appending `nonce || ciphertext || tag` to `out` (after whatever
/// it holds) in one buffer: the plaintext is copied in and encrypted in place. The
/// room is reserved before the copy, so no reallocation leaves plaintext behind; on
/// failure `out` is wiped back to its old length.
///
/// # Errors
/// [`Error::ServerError`] if the AEAD refuses (an invariant, as for [`seal`]).
pub fn seal_random_into<R: rand_core::CryptoRng + ?Sized>(
    key: &[u8; 32],
    rng: &mut R,
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    out.reserve_exact(XNONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&[0u8; XNONCE_LEN]);
    out.extend_from_slice(plaintext);
    seal_random_in_place(key, rng, aad, out, start)
}

/// [`seal_random_into`] for a plaintext already in `out`: `out[start..start + 24]`
/// is room for the nonce (its bytes are overwritten) and the plaintext is
/// `out[start + 24..]`. They become `nonce || ciphertext || tag` in place, so a
/// caller that writes its plaintext straight into a buffer it has reserved
/// (`TAG_LEN` bytes of room left at the end) leaves no copy of it anywhere. On
/// failure `out` is wiped back to `start`.
///
/// # Errors
/// [`Error::ServerError`] if `out` is shorter than `start + 24` or the AEAD
/// refuses (an invariant, as for [`seal`]).
pub fn seal_random_in_place<R: rand_core::CryptoRng + ?Sized>(
    key: &[u8; 32],
    rng: &mut R,
    aad: &[u8],
    out: &mut Vec<u8>,
    start: usize,
) -> Result<()> {
    use zeroize::Zeroize as _;
    let body = start.saturating_add(XNONCE_LEN);
    if out.len() < body {
        return Err(Error::ServerError("no room for the AEAD nonce".into()));
    }
    let mut nonce = [0u8; XNONCE_LEN];
    rng.fill_bytes(&mut nonce);
    out[start..body].copy_from_slice(&nonce);
    let key: &Key = key.into();
    let sealed = XChaCha20Poly1305::new(key).encrypt_inout_detached(
        &XNonce::from(nonce),
        aad,
        (&mut out[body..]).into(),
    );
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(())
        }
        Err(_) => {
            out[start..].zeroize();
            out.truncate(start);
            Err(Error::ServerError("AEAD encryption failed".into()))
        }
    }
}

/// Length of the Poly1305 tag at the end of a sealed blob.
pub const TAG_LEN: usize = 16;

/// Opens what [`seal_random`] made. `None` when it is too short or the tag does
/// not verify (tampered, another key, other associated data).
#[must_use]
pub fn open_random(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    open_random_owned(key, aad, Zeroizing::new(sealed.to_vec()), 0)
}

/// [`open_random`] on a buffer we own, whose sealed part starts at `skip`: decrypts
/// in place and returns the plaintext in the same allocation (the bytes before it
/// are moved out; the buffer is wiped on drop either way).
#[must_use]
pub fn open_random_owned(
    key: &[u8; 32],
    aad: &[u8],
    mut blob: Zeroizing<Vec<u8>>,
    skip: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let sealed = blob.get_mut(skip..)?;
    if sealed.len() < XNONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = sealed.split_at_mut(XNONCE_LEN);
    let nonce: [u8; XNONCE_LEN] = (&*nonce).try_into().ok()?;
    let (ct, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let tag: [u8; TAG_LEN] = (&*tag).try_into().ok()?;
    let key: &Key = key.into();
    XChaCha20Poly1305::new(key)
        .decrypt_inout_detached(&XNonce::from(nonce), aad, ct.into(), &tag.into())
        .ok()?;
    let end = blob.len() - TAG_LEN;
    blob.truncate(end);
    blob.drain(..skip + XNONCE_LEN);
    Some(blob)
}

/// Appends `lp(x)`: a 4-byte big-endian length, then `x` (SPEC 7).
pub fn put_lp(out: &mut Vec<u8>, x: &[u8]) {
    // Every field we frame is far below 4 GiB (messages are capped at 16 KiB).
    let len = u32::try_from(x.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(x);
}

/// XOR of two 32-byte strings.
#[must_use]
pub fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = SymmetricKey::from_bytes([7; 32]);
        let ct = seal(&key, 3, b"aad", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + 16);
        assert_eq!(open(&key, 3, b"aad", &ct).as_deref().map(Vec::as_slice), Some(&b"hello"[..]));
        assert!(open(&key, 4, b"aad", &ct).is_none(), "wrong sequence number");
        assert!(open(&key, 3, b"aae", &ct).is_none(), "wrong aad");
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(open(&key, 3, b"aad", &bad).is_none(), "tampered ciphertext");
    }

    #[test]
    fn random_nonce_seal_round_trip_and_tamper() {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let key = [8u8; 32];
        let a = seal_random(&key, &mut rng, b"k1", b"state").unwrap();
        let b = seal_random(&key, &mut rng, b"k1", b"state").unwrap();
        assert_eq!(a.len(), XNONCE_LEN + 5 + 16);
        assert_ne!(a, b, "fresh nonce each time");
        assert_eq!(open_random(&key, b"k1", &a).as_deref().map(Vec::as_slice), Some(&b"state"[..]));
        assert!(open_random(&key, b"k2", &a).is_none(), "other associated data");
        assert!(open_random(&[9u8; 32], b"k1", &a).is_none(), "other key");
        let mut bad = a.clone();
        bad[XNONCE_LEN + 1] ^= 1;
        assert!(open_random(&key, b"k1", &bad).is_none(), "tampered");
        assert!(open_random(&key, b"k1", &a[..10]).is_none(), "truncated");
        assert!(open_random(&key, b"k1", &a[..XNONCE_LEN + TAG_LEN - 1]).is_none(), "truncated");
        // Sealing after a prefix, opening past it, in place.
        let mut buf = b"prefix".to_vec();
        seal_random_into(&key, &mut rng, b"k1", b"state", &mut buf).unwrap();
        assert_eq!(&buf[..6], b"prefix");
        assert_eq!(buf.len(), 6 + a.len());
        let opened = open_random_owned(&key, b"k1", Zeroizing::new(buf.clone()), 6).unwrap();
        assert_eq!(opened.as_slice(), b"state");
        assert!(open_random_owned(&key, b"k1", Zeroizing::new(buf.clone()), 5).is_none(), "misaligned");
        assert!(open_random_owned(&key, b"k1", Zeroizing::new(buf.clone()), 7).is_none(), "misaligned");
        assert!(open_random_owned(&key, b"k1", Zeroizing::new(buf.clone()), 100).is_none(), "past end");
        // In place: the same layout as a copy-in seal, opened by the same function.
        let mut buf = b"hdr".to_vec();
        buf.extend_from_slice(&[0xee; XNONCE_LEN]);
        buf.extend_from_slice(b"state");
        seal_random_in_place(&key, &mut rng, b"k1", &mut buf, 3).unwrap();
        assert_eq!((&buf[..3], buf.len()), (&b"hdr"[..], 3 + a.len()));
        assert_ne!(&buf[3..3 + XNONCE_LEN], &[0xee; XNONCE_LEN], "a fresh nonce");
        let opened = open_random_owned(&key, b"k1", Zeroizing::new(buf.clone()), 3).unwrap();
        assert_eq!(opened.as_slice(), b"state");
        let mut short = vec![0u8; XNONCE_LEN + 2];
        assert!(seal_random_in_place(&key, &mut rng, b"k1", &mut short, 3).is_err(), "no room for the nonce");
        let empty = seal_random(&key, &mut rng, b"", b"").unwrap();
        assert_eq!(open_random(&key, b"", &empty).unwrap().len(), 0);
    }

    #[test]
    fn keyed_hmac_matches_one_shot() {
        for key_len in [0usize, 1, 32, 64, 65, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| i as u8).collect();
            let k = HmacKey::new(&key);
            for parts in [&[][..], &[&b"abc"[..]][..], &[&b"ab"[..], &b""[..], &[7u8; 100][..]][..]] {
                assert_eq!(k.mac(parts), hmac(&key, parts));
            }
        }
    }

    proptest::proptest! {
        /// The absorbed key gives what the `hmac` crate gives from scratch, for
        /// random keys of every length class (short, block-sized, hashed-down long
        /// keys) and messages split anywhere.
        #[test]
        fn keyed_hmac_matches_hmac_crate(
            key in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            msg in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            cut in 0usize..600,
        ) {
            let cut = cut.min(msg.len());
            let mut want = HmacSha256::new_from_slice(&key).unwrap();
            want.update(&msg);
            let want: [u8; 32] = want.finalize().into_bytes().into();
            let k = HmacKey::new(&key);
            proptest::prop_assert_eq!(k.mac(&[&msg]), want);
            proptest::prop_assert_eq!(k.mac(&[&msg[..cut], &msg[cut..]]), want);
            // The state is reusable: a second MAC under the same key is the same.
            proptest::prop_assert_eq!(k.clone().mac(&[&msg]), want);
        }
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(aead_nonce(0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn lp_layout() {
        let mut v = Vec::new();
        put_lp(&mut v, b"ab");
        assert_eq!(v, [0, 0, 0, 2, b'a', b'b']);
    }
}
