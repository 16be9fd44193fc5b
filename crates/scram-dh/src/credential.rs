//! What a client keeps after registration or provisioning: the credential file
//! (SPEC 3b's bundle) and its JSON format. The key schedule is in [`crate::keys`].

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::hostkey::Fingerprint;
#[doc(no_inline)]
pub use crate::keys::{
    ClientConfig, ClientKeys, DEFAULT_MAX_ITERATIONS, MIN_ITERATIONS, draw_labels, salted_password,
};
use crate::record::Labels;
use crate::secret::{ClientKey, Password, ServerKey};

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
/// Serialises to JSON with binary fields in base64 (the keys through a
/// constant-time base64 codec). It is secret: write it with mode 0600. `Debug`
/// omits the keys and password.
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
    /// Saved before the server confirmed the registration (before R3 was sent, SPEC
    /// 7): the keys are right if the server committed the record, which R4 or a
    /// first successful login confirms. Absent from the file when false, so files
    /// written before this field existed still parse.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub unconfirmed: bool,
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
            .field("unconfirmed", &self.unconfirmed)
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

/// The long-term keys go through `base64ct` (constant-time, finding F7), into and
/// out of fixed zeroizing buffers.
mod b64_secret {
    use base64ct::{Base64, Encoding as _};
    use zeroize::Zeroizing;

    use super::*;

    pub(super) trait Secret32: Sized {
        fn bytes(&self) -> &[u8; 32];
        fn make(b: &[u8; 32]) -> Self;
    }
    impl Secret32 for ClientKey {
        fn bytes(&self) -> &[u8; 32] {
            self.expose()
        }
        fn make(b: &[u8; 32]) -> Self {
            Self::from_bytes(*b)
        }
    }
    impl Secret32 for ServerKey {
        fn bytes(&self) -> &[u8; 32] {
            self.expose()
        }
        fn make(b: &[u8; 32]) -> Self {
            Self::from_bytes(*b)
        }
    }
    pub(super) fn serialize<T: Secret32, S: Serializer>(
        v: &T,
        s: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        let mut buf = Zeroizing::new([0u8; 44]);
        let text = Base64::encode(v.bytes(), buf.as_mut()).map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }
    pub(super) fn deserialize<'de, T: Secret32, D: Deserializer<'de>>(
        d: D,
    ) -> core::result::Result<T, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let mut buf = Zeroizing::new([0u8; 32]);
        let n = Base64::decode(text.as_bytes(), buf.as_mut())
            .map_err(|_| serde::de::Error::custom("key must be 32 bytes of padded base64"))?
            .len();
        if n != 32 {
            return Err(serde::de::Error::custom("key must be 32 bytes of padded base64"));
        }
        Ok(T::make(&buf))
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::secret::SaltedPassword;

    fn sample() -> ClientCredential {
        let keys = ClientKeys::rfc(&SaltedPassword::from_bytes([3; 32]));
        ClientCredential {
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
            unconfirmed: false,
        }
    }

    #[test]
    fn credential_json_round_trip_and_debug() {
        let c = sample();
        let j = c.to_json();
        assert_eq!(ClientCredential::from_json(&j).unwrap(), c);
        assert!(!format!("{c:?}").contains("pw-canary"));
        assert!(ClientCredential::from_json(&j.replace("scram-dh-credential/1", "x")).is_err());
    }

    #[test]
    fn unconfirmed_flag_is_optional_and_round_trips() {
        let c = sample();
        let j = c.to_json();
        assert!(!j.contains("unconfirmed"), "false is not written: {j}");
        let provisional = ClientCredential { unconfirmed: true, ..c.clone() };
        let jp = provisional.to_json();
        assert!(jp.contains("\"unconfirmed\": true"));
        assert!(ClientCredential::from_json(&jp).unwrap().unconfirmed);
        // A file written before the field existed (no such key) parses as confirmed.
        assert!(!ClientCredential::from_json(&j).unwrap().unconfirmed);
    }

    #[test]
    fn secret_keys_use_strict_base64() {
        let c = sample();
        let j = c.to_json();
        let key = STANDARD.encode(c.client_key.expose());
        assert!(j.contains(&key), "same encoding as standard padded base64");
        // Missing padding, a short key and a long key are refused.
        for bad in
            [key.trim_end_matches('=').to_owned(), STANDARD.encode([0u8; 31]), STANDARD.encode([0u8; 33])]
        {
            let text = j.replace(&key, &bad);
            assert!(ClientCredential::from_json(&text).is_err(), "{bad}");
        }
    }
}
