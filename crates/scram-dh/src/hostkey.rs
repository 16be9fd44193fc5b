//! The server's long-term Ed25519 host key, which signs each registration transcript
//! so a man in the middle cannot take the salted password (SPEC 3a, "MITM").

use core::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::sha256;
use crate::error::{Error, Result};

/// The server's signing key. Zeroized on drop; `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct HostKey(SigningKey);

impl HostKey {
    /// Generates a new host key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self(SigningKey::from_bytes(&seed))
    }

    /// Restores a host key from its 32-byte seed.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for saving the key to a 0600 file.
    #[must_use]
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half sent in R2 as `host_key`.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The fingerprint clients pin.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key())
    }

    /// Signs the transcript hash `h`.
    #[must_use]
    pub fn sign(&self, h: &[u8; 32]) -> [u8; 64] {
        self.0.sign(h).to_bytes()
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({})", self.fingerprint())
    }
}

/// Verifies a host key signature over `h` (strict Ed25519: no malleable or small-order keys).
///
/// # Errors
/// [`Error::BadHostSignature`] when the key is not a valid point or the signature fails.
pub fn verify(host_key: &[u8; 32], h: &[u8; 32], signature: &[u8; 64]) -> Result<()> {
    let key = VerifyingKey::from_bytes(host_key).map_err(|_| Error::BadHostSignature)?;
    if key.is_weak() {
        return Err(Error::BadHostSignature);
    }
    key.verify_strict(h, &Signature::from_bytes(signature)).map_err(|_| Error::BadHostSignature)
}

/// A host key fingerprint, `SHA256:<unpadded base64 of SHA-256(host_key)>` as OpenSSH shows them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a 32-byte Ed25519 public key.
    #[must_use]
    pub fn of(host_key: &[u8; 32]) -> Self {
        Self(sha256(host_key))
    }

    /// Compares in constant time.
    #[must_use]
    pub fn matches(&self, other: &Fingerprint) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let b64 =
            s.strip_prefix("SHA256:").ok_or_else(|| Error::invalid("fingerprint must start with SHA256:"))?;
        let bytes =
            STANDARD_NO_PAD.decode(b64).map_err(|_| Error::invalid("fingerprint is not unpadded base64"))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::invalid("fingerprint must hold 32 bytes"))?;
        Ok(Self(arr))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_fingerprint() {
        let key = HostKey::from_seed(&[9; 32]);
        let h = [1u8; 32];
        let sig = key.sign(&h);
        assert!(verify(&key.public_key(), &h, &sig).is_ok());
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(verify(&key.public_key(), &h, &bad).is_err());
        assert!(verify(&key.public_key(), &[2; 32], &sig).is_err());
        let fp = key.fingerprint();
        let text = fp.to_string();
        assert!(text.starts_with("SHA256:") && text.len() == 7 + 43);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
        assert!(format!("{key:?}").contains("SHA256:"));
        assert!("MD5:abc".parse::<Fingerprint>().is_err());
    }
}
