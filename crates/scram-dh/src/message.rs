//! Wire messages, version 1 (SPEC 7): one JSON object per message with a `"type"`
//! and exactly the listed fields. Parsing is strict: an unknown, missing, duplicate,
//! `null` or mistyped field, trailing data, or a non-canonical base64 string is
//! [`Error::InvalidMessage`](crate::Error::InvalidMessage).

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorCode, Result};

/// The most bytes one handshake message may take (SPEC 7, TCP framing).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// A binary field: standard-alphabet, padded base64 on the wire.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Base64(pub Vec<u8>);

impl Base64 {
    /// The decoded bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The decoded bytes as a fixed-size array.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] naming `field` when the length differs.
    pub fn array<const N: usize>(&self, field: &str) -> Result<[u8; N]> {
        self.0.as_slice().try_into().map_err(|_| Error::invalid(format!("{field} must be {N} bytes")))
    }
}

impl fmt::Debug for Base64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Base64 {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&[u8]> for Base64 {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl Serialize for Base64 {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Base64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a padded standard base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> core::result::Result<Base64, E> {
                // The STANDARD engine requires canonical padding and zero trailing bits.
                STANDARD.decode(v).map(Base64).map_err(|_| E::custom("invalid base64"))
            }
        }
        d.deserialize_str(V)
    }
}

/// `Option` that must be absent rather than `null` when not given.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> core::result::Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// R1: `registration_pairing`, client to server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationPairing {
    /// SASLprep-normalised username.
    pub username: String,
    /// DH group name.
    pub group: String,
    /// Client DH public key.
    pub public_key: Base64,
    /// 64 lowercase hex characters.
    pub client_nonce: String,
    /// `"random"` or `"rfc"`.
    pub labels: String,
}

/// R2: `registration_pairing`, server to client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationPairingReply {
    /// 32-byte salt.
    pub salt: Base64,
    /// Iteration count.
    pub ic: u32,
    /// Server DH public key.
    pub public_key: Base64,
    /// Combined nonce.
    pub nonce: String,
    /// Server Ed25519 host key (32 bytes).
    pub host_key: Base64,
    /// Ed25519 signature over the transcript hash (64 bytes).
    pub signature: Base64,
}

/// R3: `registration_send_password`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSendPassword {
    /// AEAD-encrypted SaltedPassword (48 bytes).
    pub secret_key: Base64,
    /// Combined nonce.
    pub nonce: String,
}

/// R4: `registration_keys_generation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationKeysGeneration {
    /// AEAD-encrypted client label.
    pub secret_client_key: Base64,
    /// AEAD-encrypted server label.
    pub secret_server_key: Base64,
    /// Combined nonce.
    pub nonce: String,
}

/// A1: `auth_pairing`, client to server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPairing {
    /// SASLprep-normalised username.
    pub username: String,
    /// 64 lowercase hex characters.
    pub client_nonce: String,
    /// DH group, when a channel is wanted (with `public_key`).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Client DH public key, when a channel is wanted (with `group`).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub public_key: Option<Base64>,
}

/// A2: `auth_pairing`, server to client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPairingReply {
    /// The user's salt (or a deterministic mock for an unknown user).
    pub salt: Base64,
    /// Iteration count.
    pub ic: u32,
    /// Combined nonce.
    pub nonce: String,
    /// Server DH public key, iff A1 carried one.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub public_key: Option<Base64>,
}

/// A3: `auth_client_proof_generation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthClientProof {
    /// ClientProof (32 bytes).
    pub client_proof: Base64,
    /// Combined nonce.
    pub nonce: String,
}

/// A4: `auth_proof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthProof {
    /// ServerSignature (32 bytes).
    pub server_signature: Base64,
    /// HTTP front only: the session to name in later requests.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// `error`: the handshake is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorMessage {
    /// One of the closed set.
    pub code: ErrorCode,
    /// Text for humans; never contains secrets.
    pub message: String,
}

impl From<&Error> for ErrorMessage {
    fn from(e: &Error) -> Self {
        let code = e.code();
        // Internal detail (store paths, backend errors) stays in the server's log.
        let message =
            if code == ErrorCode::ServerError { "internal server error".to_owned() } else { e.to_string() };
        Self { code, message }
    }
}

/// Every message a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ClientMessage {
    RegistrationPairing(RegistrationPairing),
    RegistrationSendPassword(RegistrationSendPassword),
    AuthPairing(AuthPairing),
    AuthClientProofGeneration(AuthClientProof),
}

/// Every message a server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ServerMessage {
    RegistrationPairing(RegistrationPairingReply),
    RegistrationKeysGeneration(RegistrationKeysGeneration),
    AuthPairing(AuthPairingReply),
    AuthProof(AuthProof),
    Error(ErrorMessage),
}

fn parse_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(Error::invalid("message exceeds 16 KiB"));
    }
    serde_json::from_str(text).map_err(|e| {
        // serde_json's text names the field and position, never a value's content
        // beyond what the peer itself sent; keep it short.
        Error::InvalidMessage(truncate_chars(&e.to_string(), 200).to_owned())
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
#[must_use]
pub fn truncate_chars(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let cut = (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    &s[..cut]
}

fn to_json<T: Serialize>(msg: &T) -> String {
    // Serialising these types cannot fail: no maps with non-string keys, no floats.
    serde_json::to_string(msg).unwrap_or_default()
}

impl ClientMessage {
    /// Parses one client message.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] for anything not exactly a v1 client message.
    pub fn from_json(text: &str) -> Result<Self> {
        parse_json(text)
    }

    /// The JSON text, fields in SPEC order.
    #[must_use]
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// The message's `type` name.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RegistrationPairing(_) => "registration_pairing",
            Self::RegistrationSendPassword(_) => "registration_send_password",
            Self::AuthPairing(_) => "auth_pairing",
            Self::AuthClientProofGeneration(_) => "auth_client_proof_generation",
        }
    }
}

impl ServerMessage {
    /// Parses one server message.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] for anything not exactly a v1 server message.
    pub fn from_json(text: &str) -> Result<Self> {
        parse_json(text)
    }

    /// The JSON text, fields in SPEC order.
    #[must_use]
    pub fn to_json(&self) -> String {
        to_json(self)
    }

    /// An error message for `e`.
    #[must_use]
    pub fn error(e: &Error) -> Self {
        Self::Error(ErrorMessage::from(e))
    }

    /// The message's `type` name.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RegistrationPairing(_) => "registration_pairing",
            Self::RegistrationKeysGeneration(_) => "registration_keys_generation",
            Self::AuthPairing(_) => "auth_pairing",
            Self::AuthProof(_) => "auth_proof",
            Self::Error(_) => "error",
        }
    }
}

macro_rules! expect_variant {
    ($fn:ident, $variant:ident, $ty:ty) => {
        impl ServerMessage {
            /// Unwraps the expected reply; a server `error` becomes [`Error::Peer`],
            /// anything else [`Error::InvalidMessage`].
            ///
            /// # Errors
            /// As described.
            pub fn $fn(self) -> Result<$ty> {
                match self {
                    Self::$variant(m) => Ok(m),
                    Self::Error(ErrorMessage { code, message }) => Err(Error::Peer { code, message }),
                    other => Err(Error::invalid(format!(
                        "expected {}, got {}",
                        stringify!($variant),
                        other.type_name()
                    ))),
                }
            }
        }
    };
}

expect_variant!(into_registration_pairing, RegistrationPairing, RegistrationPairingReply);
expect_variant!(into_registration_keys, RegistrationKeysGeneration, RegistrationKeysGeneration);
expect_variant!(into_auth_pairing, AuthPairing, AuthPairingReply);
expect_variant!(into_auth_proof, AuthProof, AuthProof);

#[cfg(test)]
mod tests {
    use super::*;

    const R3: &str = r#"{"type":"registration_send_password","secret_key":"AAEC","nonce":"x"}"#;

    #[test]
    fn exact_round_trip() {
        let m = ClientMessage::from_json(R3).unwrap();
        assert_eq!(m.to_json(), R3);
    }

    #[test]
    fn strictness() {
        let cases = [
            // extra field
            r#"{"type":"registration_send_password","secret_key":"AAEC","nonce":"x","x":1}"#,
            // missing field
            r#"{"type":"registration_send_password","secret_key":"AAEC"}"#,
            // duplicate field
            r#"{"type":"registration_send_password","secret_key":"AAEC","secret_key":"AAEC","nonce":"x"}"#,
            // mistyped
            r#"{"type":"registration_send_password","secret_key":5,"nonce":"x"}"#,
            // unpadded base64
            r#"{"type":"registration_send_password","secret_key":"AAE","nonce":"x"}"#,
            // non-canonical trailing bits
            r#"{"type":"registration_send_password","secret_key":"AAF=","nonce":"x"}"#,
            // url-safe alphabet
            r#"{"type":"registration_send_password","secret_key":"-_8=","nonce":"x"}"#,
            // unknown type
            r#"{"type":"nope","nonce":"x"}"#,
            // no type
            r#"{"secret_key":"AAEC","nonce":"x"}"#,
            // trailing data
            r#"{"type":"registration_send_password","secret_key":"AAEC","nonce":"x"} {}"#,
            // not an object
            r#"[1,2]"#,
            // null optional
            r#"{"type":"auth_pairing","username":"u","client_nonce":"n","group":null}"#,
            // server message type from a client
            r#"{"type":"auth_proof","server_signature":"AAEC"}"#,
        ];
        for c in cases {
            assert!(matches!(ClientMessage::from_json(c), Err(Error::InvalidMessage(_))), "accepted: {c}");
        }
        let big = format!(
            r#"{{"type":"registration_send_password","secret_key":"{}","nonce":"x"}}"#,
            "A".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(ClientMessage::from_json(&big).is_err());
    }

    // Found by cargo-fuzz: serde_json's error quotes the input, and cutting that text
    // at byte 200 landed inside a multi-byte character.
    #[test]
    fn long_errors_with_multibyte_text_do_not_panic() {
        let input = format!("\"{}\"", "\u{0177}A5".repeat(80));
        assert!(matches!(ClientMessage::from_json(&input), Err(Error::InvalidMessage(_))));
        for n in 0..8 {
            let input = format!(
                r#"{{"type":"auth_pairing","username":{},"client_nonce":"{}é"}}"#,
                "1".repeat(n),
                "é".repeat(150)
            );
            let _ = ClientMessage::from_json(&input);
        }
        assert_eq!(truncate_chars("aé", 2), "a");
        assert_eq!(truncate_chars("aé", 3), "aé");
    }

    #[test]
    fn ic_must_be_u32_integer() {
        for ic in ["4096.0", "-1", "4294967296", "\"4096\""] {
            let t = format!(r#"{{"type":"auth_pairing","salt":"AAEC","ic":{ic},"nonce":"n"}}"#);
            assert!(ServerMessage::from_json(&t).is_err(), "{t}");
        }
    }

    #[test]
    fn optional_fields_absent_not_serialised() {
        let m = ClientMessage::AuthPairing(AuthPairing {
            username: "u".into(),
            client_nonce: "n".into(),
            group: None,
            public_key: None,
        });
        assert_eq!(m.to_json(), r#"{"type":"auth_pairing","username":"u","client_nonce":"n"}"#);
    }

    #[test]
    fn error_message_shape_and_peer_error() {
        let m = ServerMessage::error(&Error::UsernameTaken);
        let j = m.to_json();
        assert!(j.starts_with(r#"{"type":"error","code":"username_taken","message":""#), "{j}");
        let back = ServerMessage::from_json(&j).unwrap();
        assert!(matches!(back.into_auth_proof(), Err(Error::Peer { code: ErrorCode::UsernameTaken, .. })));
        assert!(ServerMessage::from_json(r#"{"type":"error","code":"made_up","message":""}"#).is_err());
        let internal = ServerMessage::error(&Error::Store("db at /secret/path down".into()));
        assert!(!internal.to_json().contains("/secret/path"));
    }
}
