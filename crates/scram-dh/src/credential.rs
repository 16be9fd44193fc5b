//! What a client keeps after registration or provisioning, and the key schedule
//! shared by every path: `ClientKey = HMAC(SaltedPassword, client_label)`,
//! `ServerKey = HMAC(SaltedPassword, server_label)`, `StoredKey = SHA-256(ClientKey)`.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::crypto::{hi, hmac, sha256};
use crate::error::{Error, Result};
use crate::hostkey::Fingerprint;
use crate::record::{Labels, RFC_CLIENT_LABEL, RFC_SERVER_LABEL, Record};
use crate::secret::{ClientKey, Password, SaltedPassword, ServerKey, StoredKey};

/// The smallest iteration count anyone accepts (RFC 7677, SPEC 2).
pub const MIN_ITERATIONS: u32 = 4096;

/// The client's default ceiling on a server-chosen iteration count: a hostile
/// server must not make the client spin (about 0.1 s of PBKDF2 here).
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;

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
/// # Errors
/// [`Error::InvalidMessage`] when the password is not valid under SASLprep.
pub fn salted_password(password: &Password, salt: &[u8], ic: u32) -> Result<SaltedPassword> {
    let prepped = stringprep::saslprep(password.expose())
        .map_err(|_| Error::invalid("password is not valid under SASLprep (RFC 4013)"))?;
    let prepped = zeroize::Zeroizing::new(prepped.into_owned());
    Ok(hi(prepped.as_bytes(), salt, ic))
}

/// The two labels of a new record (SPEC 3a step 4): 32 random bytes each, or RFC
/// 5802's `"Client Key"` / `"Server Key"`.
pub fn draw_labels<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    labels: Labels,
) -> (zeroize::Zeroizing<Vec<u8>>, zeroize::Zeroizing<Vec<u8>>) {
    match labels {
        Labels::Rfc => (
            zeroize::Zeroizing::new(RFC_CLIENT_LABEL.to_vec()),
            zeroize::Zeroizing::new(RFC_SERVER_LABEL.to_vec()),
        ),
        Labels::Random => {
            let mut c = zeroize::Zeroizing::new(vec![0u8; 32]);
            let mut s = zeroize::Zeroizing::new(vec![0u8; 32]);
            rng.fill_bytes(&mut c);
            rng.fill_bytes(&mut s);
            (c, s)
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

    /// Keys for a new record of kind `labels`, drawing random labels when asked.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        salted_password: &SaltedPassword,
        labels: Labels,
    ) -> Self {
        let (client_label, server_label) = draw_labels(rng, labels);
        Self::derive(salted_password, &client_label, &server_label)
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

/// What a client logs in with.
#[derive(Clone, Debug)]
pub enum ClientSecret {
    /// ClientKey and ServerKey from a registration or a provisioning bundle; no
    /// PBKDF2 at login.
    Keys(ClientKeys),
    /// The password itself: works only with records using RFC labels, as any
    /// standard SCRAM client does.
    Password(Password),
}

/// A client's saved credential (the "credential file" / provisioning bundle, SPEC 3b).
///
/// Serialises to JSON with binary fields in base64. It is secret: write it with
/// mode 0600. `Debug` omits the keys and password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredential {
    /// Format tag, always `"scram-dh-credential/1"`.
    pub format: String,
    /// SASLprep-normalised username.
    pub username: String,
    /// The user's salt.
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    /// Iteration count.
    pub ic: u32,
    /// Key-derivation kind.
    pub labels: Labels,
    /// ClientKey.
    #[serde(with = "b64_secret")]
    pub client_key: ClientKey,
    /// ServerKey.
    #[serde(with = "b64_secret")]
    pub server_key: ServerKey,
    /// The server's address, when known (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's host key fingerprint, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<Fingerprint>,
    /// The password: only in bundles with RFC labels (so standard clients can use it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_password")]
    pub password: Option<Password>,
}

/// The credential file format tag.
pub const CREDENTIAL_FORMAT: &str = "scram-dh-credential/1";

impl ClientCredential {
    /// The keys as a login secret.
    #[must_use]
    pub fn secret(&self) -> ClientSecret {
        ClientSecret::Keys(ClientKeys {
            client_key: self.client_key.clone(),
            server_key: self.server_key.clone(),
        })
    }

    /// Parses a credential file.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when it is not a v1 credential.
    pub fn from_json(text: &str) -> Result<Self> {
        let c: Self =
            serde_json::from_str(text).map_err(|e| Error::invalid(format!("credential file: {e}")))?;
        if c.format != CREDENTIAL_FORMAT {
            return Err(Error::invalid("credential file: unknown format"));
        }
        Ok(c)
    }

    /// Serialises to pretty JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredential")
            .field("username", &self.username)
            .field("ic", &self.ic)
            .field("labels", &self.labels)
            .field("server", &self.server)
            .field("host_key", &self.host_key)
            .finish_non_exhaustive()
    }
}

mod b64 {
    use super::*;
    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> core::result::Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

mod b64_secret {
    use super::*;
    pub(super) trait Secret32: Sized {
        fn bytes(&self) -> &[u8; 32];
        fn make(b: [u8; 32]) -> Self;
    }
    impl Secret32 for ClientKey {
        fn bytes(&self) -> &[u8; 32] {
            self.expose()
        }
        fn make(b: [u8; 32]) -> Self {
            Self::from_bytes(b)
        }
    }
    impl Secret32 for ServerKey {
        fn bytes(&self) -> &[u8; 32] {
            self.expose()
        }
        fn make(b: [u8; 32]) -> Self {
            Self::from_bytes(b)
        }
    }
    pub(super) fn serialize<T: Secret32, S: Serializer>(
        v: &T,
        s: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        let text = zeroize::Zeroizing::new(STANDARD.encode(v.bytes()));
        s.serialize_str(&text)
    }
    pub(super) fn deserialize<'de, T: Secret32, D: Deserializer<'de>>(
        d: D,
    ) -> core::result::Result<T, D::Error> {
        let s = zeroize::Zeroizing::new(String::deserialize(d)?);
        let v = zeroize::Zeroizing::new(STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)?);
        let arr: [u8; 32] =
            v.as_slice().try_into().map_err(|_| serde::de::Error::custom("key must be 32 bytes"))?;
        Ok(T::make(arr))
    }
}

mod opt_password {
    use super::*;
    pub(super) fn serialize<S: Serializer>(
        v: &Option<Password>,
        s: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        match v {
            Some(p) => s.serialize_str(p.expose()),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> core::result::Result<Option<Password>, D::Error> {
        Ok(Some(Password::new(String::deserialize(d)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ic_bounds() {
        let c = ClientConfig { max_iterations: 10_000 };
        assert!(c.check_ic(4096).is_ok());
        assert!(c.check_ic(10_000).is_ok());
        assert!(matches!(c.check_ic(4095), Err(Error::IterationCount { .. })));
        assert!(matches!(c.check_ic(1), Err(Error::IterationCount { .. })));
        assert!(matches!(c.check_ic(10_001), Err(Error::IterationCount { .. })));
    }

    #[test]
    fn credential_json_round_trip_and_debug() {
        let keys = ClientKeys::rfc(&SaltedPassword::from_bytes([3; 32]));
        let c = ClientCredential {
            format: CREDENTIAL_FORMAT.into(),
            username: "u".into(),
            salt: vec![1; 32],
            ic: 4096,
            labels: Labels::Rfc,
            client_key: keys.client_key.clone(),
            server_key: keys.server_key.clone(),
            server: Some("127.0.0.1:1".into()),
            host_key: None,
            password: Some(Password::new("pw-canary")),
        };
        let j = c.to_json();
        assert_eq!(ClientCredential::from_json(&j).unwrap(), c);
        assert!(!format!("{c:?}").contains("pw-canary"));
        assert!(ClientCredential::from_json(&j.replace("scram-dh-credential/1", "x")).is_err());
    }
}
