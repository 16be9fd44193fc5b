//! Thin wrappers over the RustCrypto primitives the protocol uses (SPEC 2).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::{SaltedPassword, SymmetricKey};

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// HMAC-SHA-256 over the concatenation of `parts`.
#[must_use]
#[allow(clippy::expect_used)]
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // Invariant, not input validation: HMAC (RFC 2104) accepts keys of every length.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// RFC 5802 `Hi(str, salt, i)`: PBKDF2-HMAC-SHA-256 with a 32-byte output.
#[must_use]
pub fn hi(normalized_password: &[u8], salt: &[u8], ic: u32) -> SaltedPassword {
    let mut out = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(normalized_password, salt, ic, out.as_mut());
    SaltedPassword::from_bytes(*out)
}

/// HKDF-SHA-256 extract then expand into one 32-byte key.
#[must_use]
#[allow(clippy::expect_used)]
pub fn hkdf_key(salt: &[u8], ikm: &[u8], info: &[u8]) -> SymmetricKey {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    // Invariant: 32 bytes is far below HKDF-SHA-256's 8160-byte output limit. Never fall
    // back to a default key.
    hk.expand(info, out.as_mut()).expect("32-byte HKDF output is within the limit");
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

/// ChaCha20-Poly1305 seal: ciphertext with the 16-byte tag appended.
#[must_use]
pub fn seal(key: &SymmetricKey, seq: u64, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(&Key::from(*key.expose()));
    let nonce = Nonce::from(aead_nonce(seq));
    // Encryption fails only for inputs over 256 GiB; ours are bounded by the framing.
    cipher.encrypt(&nonce, Payload { msg: plaintext, aad }).unwrap_or_default()
}

/// ChaCha20-Poly1305 open. `None` when the tag does not verify.
#[must_use]
pub fn open(key: &SymmetricKey, seq: u64, aad: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = ChaCha20Poly1305::new(&Key::from(*key.expose()));
    let nonce = Nonce::from(aead_nonce(seq));
    cipher.decrypt(&nonce, Payload { msg: ciphertext, aad }).ok().map(Zeroizing::new)
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
        let ct = seal(&key, 3, b"aad", b"hello");
        assert_eq!(ct.len(), 5 + 16);
        assert_eq!(open(&key, 3, b"aad", &ct).as_deref().map(Vec::as_slice), Some(&b"hello"[..]));
        assert!(open(&key, 4, b"aad", &ct).is_none(), "wrong sequence number");
        assert!(open(&key, 3, b"aae", &ct).is_none(), "wrong aad");
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(open(&key, 3, b"aad", &bad).is_none(), "tampered ciphertext");
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
