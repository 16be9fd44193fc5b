//! The key schedule shared by every path (SPEC 3a step 4, SPEC 4):
//! `SaltedPassword = Hi(SASLprep(password), salt, ic)`,
//! `ClientKey = HMAC(SaltedPassword, client_label)`,
//! `ServerKey = HMAC(SaltedPassword, server_label)`, `StoredKey = SHA-256(ClientKey)`;
//! the labels those keys are derived with; and the iteration-count bounds.

use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::crypto::{hi, hkdf_expand, hmac, sha256};
use crate::error::{Error, Result};
use crate::record::{Labels, RFC_CLIENT_LABEL, RFC_SERVER_LABEL, Record};
use crate::secret::{ClientKey, Password, SaltedPassword, ServerKey, StoredKey};

/// The smallest iteration count anyone accepts (RFC 7677, SPEC 2).
pub const MIN_ITERATIONS: u32 = 4096;

/// The client's default ceiling on a server-chosen iteration count: a hostile
/// server must not make the client spin (about 0.1 s of PBKDF2 here).
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

/// HKDF info of the derived `random` labels (SPEC 7).
pub(crate) const INFO_LABELS: &[u8] = b"scram-dh/1 labels";

/// Client-side settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Refuse iteration counts above this.
    pub max_iterations: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self { max_iterations: DEFAULT_MAX_ITERATIONS }
    }
}

impl ClientConfig {
    /// Checks a server-chosen count against `4096..=max_iterations`.
    ///
    /// # Errors
    /// [`Error::IterationCount`] when outside.
    pub fn check_ic(&self, ic: u32) -> Result<()> {
        if ic < MIN_ITERATIONS || ic > self.max_iterations {
            return Err(Error::IterationCount { ic, min: MIN_ITERATIONS, max: self.max_iterations });
        }
        Ok(())
    }
}

/// `SaltedPassword = Hi(SASLprep(password), salt, ic)`.
///
/// A password that SASLprep refuses (a prohibited or unassigned character, a
/// bidi violation) is used as its raw UTF-8 bytes, as PostgreSQL does, so a
/// record made here for such a password also works with `psql` and libpq.
///
/// ```
/// use scram_dh::Password;
/// use scram_dh::keys::salted_password;
/// // RFC 4013: the soft hyphen maps to nothing, so both give the same key.
/// let a = salted_password(&Password::new("I\u{00AD}X"), b"salt", 4096)?;
/// let b = salted_password(&Password::new("IX"), b"salt", 4096)?;
/// assert_eq!(a, b);
/// // U+0007 is prohibited: the raw bytes are used.
/// assert!(salted_password(&Password::new("bell\u{0007}"), b"salt", 4096).is_ok());
/// # Ok::<(), scram_dh::Error>(())
/// ```
///
/// # Errors
/// None today; the `Result` is kept for callers written against the earlier,
/// refusing version.
pub fn salted_password(password: &Password, salt: &[u8], ic: u32) -> Result<SaltedPassword> {
    let prepared = prepare_password(password);
    Ok(hi(&prepared, salt, ic))
}

/// The bytes PBKDF2 runs over: `SASLprep(password)`, or the password's raw UTF-8
/// bytes when SASLprep refuses it (PostgreSQL's rule).
#[must_use]
pub(crate) fn prepare_password(password: &Password) -> Zeroizing<Vec<u8>> {
    match stringprep::saslprep(password.expose()) {
        Ok(prepped) => Zeroizing::new(prepped.into_owned().into_bytes()),
        Err(_) => Zeroizing::new(password.expose().as_bytes().to_vec()),
    }
}

/// The two labels a record's keys are derived with. Wiped on drop, never printed.
#[derive(Clone)]
pub struct KeyLabels {
    client: Zeroizing<Vec<u8>>,
    server: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for KeyLabels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyLabels(..)")
    }
}

impl KeyLabels {
    /// RFC 5802's `"Client Key"` / `"Server Key"`.
    #[must_use]
    pub fn rfc() -> Self {
        Self {
            client: Zeroizing::new(RFC_CLIENT_LABEL.to_vec()),
            server: Zeroizing::new(RFC_SERVER_LABEL.to_vec()),
        }
    }

    /// The labels of an in-band registration (SPEC 7): the RFC strings, or for
    /// `random` `HKDF-Expand(PRK, "scram-dh/1 labels", 64)` split 32/32, with
    /// `PRK = HKDF-Extract(salt = h, IKM = Z)`.
    #[must_use]
    pub(crate) fn registration(labels: Labels, h: &[u8; 32], z: &[u8]) -> Self {
        match labels {
            Labels::Rfc => Self::rfc(),
            Labels::Random => {
                let mut okm = Zeroizing::new([0u8; 64]);
                hkdf_expand(h, z, INFO_LABELS, okm.as_mut());
                Self {
                    client: Zeroizing::new(okm[..32].to_vec()),
                    server: Zeroizing::new(okm[32..].to_vec()),
                }
            }
        }
    }

    /// Wraps two labels received or decoded elsewhere.
    #[must_use]
    pub fn from_parts(client: Zeroizing<Vec<u8>>, server: Zeroizing<Vec<u8>>) -> Self {
        Self { client, server }
    }

    /// The client label.
    #[must_use]
    pub fn client_label(&self) -> &[u8] {
        &self.client
    }

    /// The server label.
    #[must_use]
    pub fn server_label(&self) -> &[u8] {
        &self.server
    }
}

impl ConstantTimeEq for KeyLabels {
    /// Both labels equal, in constant time (lengths are not secret).
    fn ct_eq(&self, other: &Self) -> Choice {
        self.client.as_slice().ct_eq(other.client.as_slice())
            & self.server.as_slice().ct_eq(other.server.as_slice())
    }
}

/// The two labels of a record made outside an in-band registration (provisioning,
/// password change): 32 random bytes each, or RFC 5802's `"Client Key"` /
/// `"Server Key"`.
pub fn draw_labels<R: rand_core::CryptoRng + ?Sized>(rng: &mut R, labels: Labels) -> KeyLabels {
    match labels {
        Labels::Rfc => KeyLabels::rfc(),
        Labels::Random => {
            let mut c = Zeroizing::new(vec![0u8; 32]);
            let mut s = Zeroizing::new(vec![0u8; 32]);
            rng.fill_bytes(&mut c);
            rng.fill_bytes(&mut s);
            KeyLabels { client: c, server: s }
        }
    }
}

/// The client's two long-term keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKeys {
    /// ClientKey.
    pub client_key: ClientKey,
    /// ServerKey.
    pub server_key: ServerKey,
}

impl ClientKeys {
    /// Derives the keys from a salted password and two labels.
    #[must_use]
    pub fn derive(salted_password: &SaltedPassword, client_label: &[u8], server_label: &[u8]) -> Self {
        Self {
            client_key: ClientKey::from_bytes(hmac(salted_password.expose(), &[client_label])),
            server_key: ServerKey::from_bytes(hmac(salted_password.expose(), &[server_label])),
        }
    }

    /// Derives the keys from a salted password and a label pair.
    #[must_use]
    pub fn with_labels(salted_password: &SaltedPassword, labels: &KeyLabels) -> Self {
        Self::derive(salted_password, labels.client_label(), labels.server_label())
    }

    /// Keys for a new record of kind `labels`, drawing random labels when asked
    /// (provisioning and password changes; in-band registration derives them).
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        salted_password: &SaltedPassword,
        labels: Labels,
    ) -> Self {
        Self::with_labels(salted_password, &draw_labels(rng, labels))
    }

    /// The RFC 5802 keys of a salted password.
    #[must_use]
    pub fn rfc(salted_password: &SaltedPassword) -> Self {
        Self::derive(salted_password, RFC_CLIENT_LABEL, RFC_SERVER_LABEL)
    }

    /// `StoredKey = SHA-256(ClientKey)`.
    #[must_use]
    pub fn stored_key(&self) -> StoredKey {
        StoredKey::from_bytes(sha256(self.client_key.expose()))
    }

    /// The server's record for these keys.
    #[must_use]
    pub fn record(&self, username: &str, salt: &[u8], ic: u32, created: u64, labels: Labels) -> Record {
        Record {
            username: username.to_owned(),
            salt: salt.to_vec(),
            ic,
            stored_key: self.stored_key(),
            server_key: self.server_key.clone(),
            created,
            labels,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_that_fails_saslprep_uses_raw_bytes() {
        for pw in ["bell\u{0007}", "\u{0627}1", "a\u{0000}b", "\u{e000}private"] {
            assert!(stringprep::saslprep(pw).is_err(), "{pw:?} should fail SASLprep");
            let got = salted_password(&Password::new(pw), b"salt", 4096).unwrap();
            assert_eq!(got, hi(pw.as_bytes(), b"salt", 4096), "{pw:?}");
        }
        // Mapped, not refused: U+00A0 becomes a space, U+00AD nothing.
        let nbsp = salted_password(&Password::new("a\u{00A0}b"), b"s", 4096).unwrap();
        assert_eq!(nbsp, hi(b"a b", b"s", 4096));
        let shy = salted_password(&Password::new("I\u{00AD}X"), b"s", 4096).unwrap();
        assert_eq!(shy, hi(b"IX", b"s", 4096));
    }

    #[test]
    fn ic_bounds() {
        let c = ClientConfig { max_iterations: 10_000 };
        assert!(c.check_ic(4096).is_ok());
        assert!(c.check_ic(10_000).is_ok());
        assert!(matches!(c.check_ic(4095), Err(Error::IterationCount { .. })));
        assert!(matches!(c.check_ic(1), Err(Error::IterationCount { .. })));
        assert!(matches!(c.check_ic(10_001), Err(Error::IterationCount { .. })));
    }

    /// SPEC 7: the `random` labels are `HKDF-Expand(HKDF-Extract(h, Z), "scram-dh/1
    /// labels", 64)`, checked against the hkdf crate called directly.
    #[test]
    fn derived_labels_are_hkdf_expand_64() {
        let h = [7u8; 32];
        let z = [9u8; 256];
        let labels = KeyLabels::registration(Labels::Random, &h, &z);
        let mut want = [0u8; 64];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&h), &z).expand(b"scram-dh/1 labels", &mut want).unwrap();
        assert_eq!(labels.client_label(), &want[..32]);
        assert_eq!(labels.server_label(), &want[32..]);
        // The same value interop/spec_client.py's hkdf_expand computes for these inputs.
        let hex: String = labels.client_label().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "7f3c03f7020e8ab191173a1636f98b9b91ef723d58254c6527ab559c0a92aa3d");
        let rfc = KeyLabels::registration(Labels::Rfc, &h, &z);
        assert_eq!(rfc.client_label(), RFC_CLIENT_LABEL);
        assert_eq!(rfc.server_label(), RFC_SERVER_LABEL);
        assert!(bool::from(labels.ct_eq(&labels.clone())));
        assert!(!bool::from(labels.ct_eq(&rfc)));
        assert_eq!(format!("{labels:?}"), "KeyLabels(..)");
    }
}
