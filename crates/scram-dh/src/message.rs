//! Wire messages, version 1 (SPEC 7): one JSON object per message with a `"type"`
//! and exactly the listed fields. Parsing is strict: an unknown, missing, duplicate,
//! `null` or mistyped field, trailing data, or a non-canonical base64 string is
//! [`crate::Error::InvalidMessage`].

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

fn parse_json<'a, T: Deserialize<'a> + TypeFirst<'a> + Canonical>(text: &'a str) -> Result<T> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(Error::invalid("message exceeds 16 KiB"));
    }
    // The authentication messages exactly as our own writer prints them (no
    // whitespace, fields in SPEC order, no escapes) are read by a plain scan;
    // everything else, valid or not, goes on to serde below.
    if let Some(msg) = T::canonical(text) {
        return Ok(msg);
    }
    // Messages put `"type"` first (ours always do): read the tag, then the fields
    // straight into the variant's struct, instead of serde's internally tagged path,
    // which buffers every field as `Content` first. Anything else (tag not first,
    // and every malformed message) takes the general path, which so also produces
    // every error text.
    if let Ok(msg) = parse_type_first(text) {
        return Ok(msg);
    }
    serde_json::from_str(text).map_err(|e| {
        // serde_json's text names the field and position, never a value's content
        // beyond what the peer itself sent; keep it short.
        Error::InvalidMessage(truncate_chars(&e.to_string(), 200).to_owned())
    })
}

/// A message enum whose hottest variants (A1..A4) can be read without serde when
/// the text is exactly what [`JsonWriter`] writes for them. `None` declines: the
/// text may still be valid (whitespace, another field order, escapes, another
/// variant) or not, and the serde paths then decide. Whatever this accepts, the
/// derived parser accepts with the same value (the tests hold it to that).
trait Canonical: Sized {
    fn canonical(text: &str) -> Option<Self>;
}

/// A cursor over canonical message text.
struct Canon<'a>(&'a str);

impl<'a> Canon<'a> {
    /// Consumes exactly `lit`.
    fn lit(&mut self, lit: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(lit)?;
        Some(())
    }

    /// Consumes `lit` if it comes next.
    fn maybe(&mut self, lit: &str) -> bool {
        self.lit(lit).is_some()
    }

    /// A JSON string without escapes or control characters (the only strings that
    /// stand for their own bytes); `None` for any other string or token.
    fn str(&mut self) -> Option<&'a str> {
        let body = self.0.strip_prefix('"')?;
        let bytes = body.as_bytes();
        let special = |b: u8| (b == b'"') | (b == b'\\') | (b < 0x20);
        // Sixteen bytes at a time, without a branch inside a block (it vectorises),
        // past the plain part; then byte by byte to the first special one.
        let mut from = 0;
        for block in bytes.chunks_exact(16) {
            if block.iter().fold(false, |any, &b| any | special(b)) {
                break;
            }
            from += 16;
        }
        let end = from + bytes[from..].iter().position(|&b| special(b))?;
        // The byte at `end` is ASCII, so both cuts are on character boundaries.
        let (value, rest) = body.split_at(end);
        self.0 = rest.strip_prefix('"')?;
        Some(value)
    }

    /// A string holding padded standard base64, decoded as the serde path does.
    fn b64(&mut self) -> Option<Base64> {
        STANDARD.decode(self.str()?).ok().map(Base64)
    }

    /// A JSON integer that fits a u32, in canonical form (no sign, fraction,
    /// exponent or leading zero: serde_json refuses leading zeros and treats the
    /// other forms as another type).
    fn u32(&mut self) -> Option<u32> {
        let digits = self.0.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 10 || (digits > 1 && self.0.starts_with('0')) {
            return None;
        }
        let (number, rest) = self.0.split_at(digits);
        if rest.starts_with(['.', 'e', 'E']) {
            return None;
        }
        let value = number.parse().ok()?;
        self.0 = rest;
        Some(value)
    }

    /// The closing brace, and nothing after it.
    fn end(self) -> Option<()> {
        (self.0 == "}").then_some(())
    }
}

impl Canonical for ClientMessage {
    fn canonical(text: &str) -> Option<Self> {
        let mut c = Canon(text);
        if c.maybe(r#"{"type":"auth_pairing","username":"#) {
            let username = c.str()?.to_owned();
            c.lit(r#","client_nonce":"#)?;
            let client_nonce = c.str()?.to_owned();
            let (group, public_key) = if c.maybe(r#","group":"#) {
                let group = c.str()?.to_owned();
                c.lit(r#","public_key":"#)?;
                (Some(group), Some(c.b64()?))
            } else {
                (None, None)
            };
            c.end()?;
            Some(Self::AuthPairing(AuthPairing { username, client_nonce, group, public_key }))
        } else if c.maybe(r#"{"type":"auth_client_proof_generation","client_proof":"#) {
            let client_proof = c.b64()?;
            c.lit(r#","nonce":"#)?;
            let nonce = c.str()?.to_owned();
            c.end()?;
            Some(Self::AuthClientProofGeneration(AuthClientProof { client_proof, nonce }))
        } else {
            None
        }
    }
}

impl Canonical for ServerMessage {
    fn canonical(text: &str) -> Option<Self> {
        let mut c = Canon(text);
        if c.maybe(r#"{"type":"auth_pairing","salt":"#) {
            let salt = c.b64()?;
            c.lit(r#","ic":"#)?;
            let ic = c.u32()?;
            c.lit(r#","nonce":"#)?;
            let nonce = c.str()?.to_owned();
            let public_key = if c.maybe(r#","public_key":"#) { Some(c.b64()?) } else { None };
            c.end()?;
            Some(Self::AuthPairing(AuthPairingReply { salt, ic, nonce, public_key }))
        } else if c.maybe(r#"{"type":"auth_proof","server_signature":"#) {
            let server_signature = c.b64()?;
            let session_id = if c.maybe(r#","session_id":"#) { Some(c.str()?.to_owned()) } else { None };
            c.end()?;
            Some(Self::AuthProof(AuthProof { server_signature, session_id }))
        } else {
            None
        }
    }
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

/// A message enum whose variants can be read after their tag (see [`parse_json`]):
/// what the derived, internally tagged `Deserialize` accepts with `"type"` as the
/// first key, and nothing else.
trait TypeFirst<'de>: Sized {
    /// Reads the variant named `tag` from the rest of the object.
    fn variant<A: serde::de::MapAccess<'de>>(tag: &str, map: A) -> core::result::Result<Self, A::Error>;
}

/// `{"type": <tag>, <fields of the variant>}`: the first key must be `type`.
fn parse_type_first<'de, T: TypeFirst<'de>>(text: &'de str) -> serde_json::Result<T> {
    use serde::de::{Error as _, MapAccess, Visitor};
    struct TagFirst<T>(core::marker::PhantomData<T>);
    impl<'de, T: TypeFirst<'de>> Visitor<'de> for TagFirst<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a message object with its type first")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<T, A::Error> {
            let Some(Key(key)) = map.next_key::<Key<'de>>()? else {
                return Err(A::Error::custom("missing type"));
            };
            if key != "type" {
                return Err(A::Error::custom("type is not the first field"));
            }
            let Key(tag) = map.next_value::<Key<'de>>()?;
            T::variant(tag, map)
        }
    }
    /// A borrowed string, as keys and tags are when they hold no escapes (otherwise
    /// the general path reads them).
    struct Key<'de>(&'de str);
    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
            <&'de str>::deserialize(d).map(Key)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let msg = serde::Deserializer::deserialize_map(&mut de, TagFirst(core::marker::PhantomData))?;
    de.end()?;
    Ok(msg)
}

/// Implements [`TypeFirst`] for a message enum of newtype variants over structs.
macro_rules! type_first {
    ($enum:ident { $($tag:literal => $variant:ident($ty:ty)),+ $(,)? }) => {
        impl<'de> TypeFirst<'de> for $enum {
            fn variant<A: serde::de::MapAccess<'de>>(
                tag: &str,
                map: A,
            ) -> core::result::Result<Self, A::Error> {
                let rest = serde::de::value::MapAccessDeserializer::new(map);
                match tag {
                    $($tag => <$ty>::deserialize(rest).map(Self::$variant),)+
                    _ => Err(<A::Error as serde::de::Error>::custom("unknown type")),
                }
            }
        }
    };
}

type_first!(ClientMessage {
    "registration_pairing" => RegistrationPairing(RegistrationPairing),
    "registration_send_password" => RegistrationSendPassword(RegistrationSendPassword),
    "auth_pairing" => AuthPairing(AuthPairing),
    "auth_client_proof_generation" => AuthClientProofGeneration(AuthClientProof),
});

type_first!(ServerMessage {
    "registration_pairing" => RegistrationPairing(RegistrationPairingReply),
    "registration_keys_generation" => RegistrationKeysGeneration(RegistrationKeysGeneration),
    "auth_pairing" => AuthPairing(AuthPairingReply),
    "auth_proof" => AuthProof(AuthProof),
    "error" => Error(ErrorMessage),
});

/// Writes message JSON by hand, byte for byte what `serde_json::to_string` of the
/// derived `Serialize` gives (fields in declaration order, absent options skipped,
/// serde_json's string escapes), without its per-byte escape scan of base64 and
/// hex text or the intermediate base64 `String`s.
struct JsonWriter(String);

impl JsonWriter {
    /// `capacity` covers the fields; the `{"type":"…"` head and the closing brace
    /// are added here (the A3 estimate once left out the 28-byte type name, and
    /// every A3 text was reallocated once).
    fn new(type_name: &str, capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity + 16 + type_name.len());
        out.push_str(r#"{"type":""#);
        out.push_str(type_name);
        out.push('"');
        Self(out)
    }

    fn key(&mut self, key: &str) {
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_json_str(&mut self.0, value);
        self
    }

    fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    fn b64(mut self, key: &str, value: &Base64) -> Self {
        self.key(key);
        // The base64 alphabet and padding need no JSON escapes.
        self.0.push('"');
        push_base64(&mut self.0, &value.0);
        self.0.push('"');
        self
    }

    fn opt_b64(self, key: &str, value: Option<&Base64>) -> Self {
        match value {
            Some(v) => self.b64(key, v),
            None => self,
        }
    }

    fn u32(mut self, key: &str, value: u32) -> Self {
        use core::fmt::Write as _;
        self.key(key);
        // Writing to a String cannot fail.
        let _ = write!(self.0, "{value}");
        self
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Appends `value` as a JSON string with serde_json's escapes: `\"`, `\\`, the
/// short forms `\b \t \n \f \r`, and `\u00xx` for the other control characters.
fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    // Almost every string (hex nonces, names) needs no escape: one branch-free pass
    // over the bytes (it vectorises) decides.
    let plain = !value.bytes().fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if plain {
        out.push_str(value);
        out.push('"');
        return;
    }
    let mut rest = value;
    while let Some(i) = rest.bytes().position(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(&rest[..i]);
        let b = rest.as_bytes()[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        // The byte found is ASCII, so i + 1 is a character boundary.
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// Appends the padded standard base64 of `bytes` (what `STANDARD.encode_string`
/// appends), through a stack buffer: `encode_string` goes through base64's chunked
/// encoder and a sink per chunk, a large share of the cost for our short fields.
pub(crate) fn push_base64(out: &mut String, bytes: &[u8]) {
    // 384 input bytes (a multiple of 3, so only the last chunk is padded) make 512.
    let mut buf = [0u8; 512];
    for chunk in bytes.chunks(384) {
        // The buffer is large enough for any chunk, so encoding never fails; the
        // output is ASCII, so neither does the conversion.
        if let Ok(text) = STANDARD.encode_slice(chunk, &mut buf).map(|n| core::str::from_utf8(&buf[..n])) {
            out.push_str(text.unwrap_or_default());
        }
    }
}

fn b64_len(b: &Base64) -> usize {
    4 * b.0.len().div_ceil(3) + 8
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
        let w = |cap| JsonWriter::new(self.type_name(), cap);
        match self {
            Self::RegistrationPairing(m) => w(b64_len(&m.public_key) + m.username.len() + 160)
                .str("username", &m.username)
                .str("group", &m.group)
                .b64("public_key", &m.public_key)
                .str("client_nonce", &m.client_nonce)
                .str("labels", &m.labels)
                .finish(),
            Self::RegistrationSendPassword(m) => w(b64_len(&m.secret_key) + m.nonce.len() + 40)
                .b64("secret_key", &m.secret_key)
                .str("nonce", &m.nonce)
                .finish(),
            Self::AuthPairing(m) => w(m.username.len() + m.client_nonce.len() + 160)
                .str("username", &m.username)
                .str("client_nonce", &m.client_nonce)
                .opt_str("group", m.group.as_deref())
                .opt_b64("public_key", m.public_key.as_ref())
                .finish(),
            Self::AuthClientProofGeneration(m) => w(b64_len(&m.client_proof) + m.nonce.len() + 40)
                .b64("client_proof", &m.client_proof)
                .str("nonce", &m.nonce)
                .finish(),
        }
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
        let w = |cap| JsonWriter::new(self.type_name(), cap);
        match self {
            Self::RegistrationPairing(m) => w(b64_len(&m.salt)
                + b64_len(&m.public_key)
                + b64_len(&m.host_key)
                + b64_len(&m.signature)
                + m.nonce.len()
                + 100)
            .b64("salt", &m.salt)
            .u32("ic", m.ic)
            .b64("public_key", &m.public_key)
            .str("nonce", &m.nonce)
            .b64("host_key", &m.host_key)
            .b64("signature", &m.signature)
            .finish(),
            Self::RegistrationKeysGeneration(m) => {
                w(b64_len(&m.secret_client_key) + b64_len(&m.secret_server_key) + m.nonce.len() + 80)
                    .b64("secret_client_key", &m.secret_client_key)
                    .b64("secret_server_key", &m.secret_server_key)
                    .str("nonce", &m.nonce)
                    .finish()
            }
            Self::AuthPairing(m) => {
                w(b64_len(&m.salt) + m.nonce.len() + m.public_key.as_ref().map_or(0, b64_len) + 60)
                    .b64("salt", &m.salt)
                    .u32("ic", m.ic)
                    .str("nonce", &m.nonce)
                    .opt_b64("public_key", m.public_key.as_ref())
                    .finish()
            }
            Self::AuthProof(m) => {
                w(b64_len(&m.server_signature) + m.session_id.as_ref().map_or(0, String::len) + 60)
                    .b64("server_signature", &m.server_signature)
                    .opt_str("session_id", m.session_id.as_deref())
                    .finish()
            }
            // Rare, and its code's spelling is serde's: the derived path.
            Self::Error(_) => to_json(self),
        }
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

    /// Strings that exercise every escape rule: control characters (short and
    /// `\u00xx` forms), quote, backslash, DEL (not escaped), non-ASCII, U+2028.
    fn tricky_strings() -> Vec<String> {
        let mut v: Vec<String> = (0u8..0x20).map(|b| format!("a{}b", char::from(b))).collect();
        v.extend(
            [
                "",
                "alice",
                "\"",
                "\\",
                "x\"y\\z",
                "\u{7f}",
                "é",
                "\u{2028}",
                "🦀",
                "=,",
                "a\u{0}\u{1f}\n\"\\é",
            ]
            .map(String::from),
        );
        v
    }

    fn sample_messages() -> (Vec<ClientMessage>, Vec<ServerMessage>) {
        let b = |n: usize| Base64((0..n).map(|i| (i * 37 + n) as u8).collect());
        let mut client = Vec::new();
        let mut server = Vec::new();
        for (i, t) in tricky_strings().into_iter().enumerate() {
            let opt = |x: String| if i % 2 == 0 { Some(x) } else { None };
            client.push(ClientMessage::RegistrationPairing(RegistrationPairing {
                username: t.clone(),
                group: t.clone(),
                public_key: b(i * 7),
                client_nonce: t.clone(),
                labels: t.clone(),
            }));
            client.push(ClientMessage::RegistrationSendPassword(RegistrationSendPassword {
                secret_key: b(i),
                nonce: t.clone(),
            }));
            client.push(ClientMessage::AuthPairing(AuthPairing {
                username: t.clone(),
                client_nonce: t.clone(),
                group: opt(t.clone()),
                public_key: (i % 3 == 0).then(|| b(i + 1)),
            }));
            client.push(ClientMessage::AuthClientProofGeneration(AuthClientProof {
                client_proof: b(32 + i % 3),
                nonce: t.clone(),
            }));
            server.push(ServerMessage::RegistrationPairing(RegistrationPairingReply {
                salt: b(i),
                ic: [0, 1, 4096, u32::MAX][i % 4],
                public_key: b(i * 11),
                nonce: t.clone(),
                host_key: b(32),
                signature: b(64),
            }));
            server.push(ServerMessage::RegistrationKeysGeneration(RegistrationKeysGeneration {
                secret_client_key: b(i + 2),
                secret_server_key: b(i + 5),
                nonce: t.clone(),
            }));
            server.push(ServerMessage::AuthPairing(AuthPairingReply {
                salt: b(i + 1),
                ic: [4096, 9, 100_000, 1_000_000_007][i % 4],
                nonce: t.clone(),
                public_key: (i % 3 == 1).then(|| b(i * 5)),
            }));
            server.push(ServerMessage::AuthProof(AuthProof {
                server_signature: b(32),
                session_id: opt(t.clone()),
            }));
            server.push(ServerMessage::Error(ErrorMessage { code: ErrorCode::Busy, message: t }));
        }
        (client, server)
    }

    #[test]
    fn push_base64_is_encode_string() {
        for n in (0..20).chain([383, 384, 385, 767, 768, 769, 1024, 2000]) {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 131 + 7) as u8).collect();
            let mut ours = String::from("x");
            push_base64(&mut ours, &bytes);
            let mut theirs = String::from("x");
            STANDARD.encode_string(&bytes, &mut theirs);
            assert_eq!(ours, theirs, "{n} bytes");
        }
    }

    /// The capacity estimates hold for the usual A1..A4 (64-hex nonces, 32-byte
    /// values): each text is written into its first allocation.
    #[test]
    fn usual_auth_messages_fit_their_estimate() {
        let nonce = format!("{}-{}", "a".repeat(64), "b".repeat(64));
        let b = |n: usize| Base64(vec![7; n]);
        let texts = [
            ClientMessage::AuthPairing(AuthPairing {
                username: "alice".into(),
                client_nonce: "a".repeat(64),
                group: None,
                public_key: None,
            })
            .to_json(),
            ClientMessage::AuthClientProofGeneration(AuthClientProof {
                client_proof: b(32),
                nonce: nonce.clone(),
            })
            .to_json(),
            ServerMessage::AuthPairing(AuthPairingReply { salt: b(32), ic: 4096, nonce, public_key: None })
                .to_json(),
            ServerMessage::AuthProof(AuthProof { server_signature: b(32), session_id: None }).to_json(),
        ];
        for t in &texts {
            // The estimates leave under 150 bytes of slack; a String that outgrew its
            // estimate would have doubled it (the A3 text had 474 for 241 bytes).
            assert!(t.capacity() <= t.len() + 150, "{} of {}: {t}", t.capacity(), t.len());
        }
    }

    #[test]
    fn hand_written_json_is_serde_json_byte_for_byte() {
        let (client, server) = sample_messages();
        for m in &client {
            assert_eq!(m.to_json(), serde_json::to_string(m).unwrap());
        }
        for m in &server {
            assert_eq!(m.to_json(), serde_json::to_string(m).unwrap());
        }
    }

    /// Variations of a message text: every single-byte deletion, the type moved
    /// last or repeated, a field repeated, whitespace and escapes, junk appended.
    fn mutations(text: &str) -> Vec<String> {
        let mut v = vec![text.to_owned()];
        for i in 0..text.len() {
            if text.is_char_boundary(i) && text.is_char_boundary(i + 1) {
                v.push(format!("{}{}", &text[..i], &text[i + 1..]));
                v.push(format!("{} {}", &text[..i], &text[i..]));
            }
        }
        if let Some((ty, fields)) =
            text.strip_prefix('{').and_then(|rest| rest.find(',').map(|c| rest.split_at(c)))
        {
            v.push(format!("{{{},{ty}}}", &fields[1..fields.len() - 1]));
            v.push(format!("{{{ty},{ty}{fields}"));
            v.push(format!("{{{ty}{fields}").replace("\"type\"", "\"\\u0074ype\""));
            v.push(format!("{{{ty},\"x\":1{fields}"));
            v.push(format!("{{ {ty} , {}", &fields[1..]));
            v.push(format!("{{{ty}{}", fields.replacen(",", ",\"nonce\":\"x\",", 1)));
        }
        v.push(format!("{text} "));
        v.push(format!("{text}x"));
        v.push(text.replace(":\"", ":null,\"q\":\""));
        v
    }

    fn agree<'a, T>(text: &'a str) -> bool
    where
        T: Deserialize<'a> + TypeFirst<'a> + PartialEq + fmt::Debug,
    {
        let fast = parse_type_first::<T>(text).ok();
        let derived = serde_json::from_str::<T>(text).ok();
        // The fast path may decline (the derived path then answers), never disagree.
        assert!(fast.is_none() || fast == derived, "{text}: {fast:?} vs {derived:?}");
        fast.is_some()
    }

    fn agree_canonical<'a, T>(text: &'a str) -> bool
    where
        T: Deserialize<'a> + Canonical + PartialEq + fmt::Debug,
    {
        let fast = T::canonical(text);
        let derived = serde_json::from_str::<T>(text).ok();
        // The scan may decline (serde then answers), never disagree.
        assert!(fast.is_none() || fast == derived, "{text}: {fast:?} vs {derived:?}");
        fast.is_some()
    }

    /// Our own A1..A4 without escapes take the scan; every mutation of any
    /// message is declined or read exactly as the derived parser reads it.
    #[test]
    fn canonical_scan_agrees_with_the_derived_parser() {
        let (client, server) = sample_messages();
        let mut taken = 0;
        for m in &client {
            let text = m.to_json();
            // An A1 with only one of group and public_key is left to serde (and refused
            // later by the server step).
            let hot = match m {
                ClientMessage::AuthPairing(a) => a.group.is_some() == a.public_key.is_some(),
                ClientMessage::AuthClientProofGeneration(_) => true,
                _ => false,
            };
            let unescaped = hot && !text.contains('\\');
            assert_eq!(agree_canonical::<ClientMessage>(&text), unescaped, "{text}");
            taken += usize::from(unescaped);
            for t in mutations(&text) {
                agree_canonical::<ClientMessage>(&t);
                agree_canonical::<ServerMessage>(&t);
            }
        }
        for m in &server {
            let text = m.to_json();
            let hot = matches!(m, ServerMessage::AuthPairing(_) | ServerMessage::AuthProof(_));
            let unescaped = hot && !text.contains('\\');
            assert_eq!(agree_canonical::<ServerMessage>(&text), unescaped, "{text}");
            taken += usize::from(unescaped);
            for t in mutations(&text) {
                agree_canonical::<ClientMessage>(&t);
                agree_canonical::<ServerMessage>(&t);
            }
        }
        assert!(taken >= 30, "{taken}");
        // Numbers the scan must leave to serde (which refuses them or reads them as
        // another type), and strings it must leave because they hold escapes.
        for ic in ["04096", "4096.0", "4096e0", "4096E0", "-1", "4294967296", "99999999999", "", "\"4096\""] {
            let t = format!(r#"{{"type":"auth_pairing","salt":"AAEC","ic":{ic},"nonce":"n"}}"#);
            assert!(!agree_canonical::<ServerMessage>(&t), "{t}");
        }
        for ic in ["0", "4096", "4294967295"] {
            let t = format!(r#"{{"type":"auth_pairing","salt":"AAEC","ic":{ic},"nonce":"n"}}"#);
            assert!(agree_canonical::<ServerMessage>(&t), "{t}");
        }
        let escaped = r#"{"type":"auth_client_proof_generation","client_proof":"AAEC","nonce":"a\u0062"}"#;
        assert!(!agree_canonical::<ClientMessage>(escaped));
        assert!(ClientMessage::from_json(escaped).unwrap().to_json().contains(r#""nonce":"ab""#));
        // Only one of group and public_key, or null: serde's answer, not the scan's.
        for tail in
            [r#","group":"x25519"}"#, r#","public_key":"AAEC"}"#, r#","group":null,"public_key":"AAEC"}"#]
        {
            let t = format!(r#"{{"type":"auth_pairing","username":"u","client_nonce":"n"{tail}"#);
            assert!(!agree_canonical::<ClientMessage>(&t), "{t}");
        }
    }

    proptest::proptest! {
        /// Any text at all: the scan declines or agrees with the derived parser.
        #[test]
        fn canonical_scan_never_disagrees(
            fields in proptest::collection::vec("[a-z_\":,{}0-9A-Za-z+/=\\ .-]{0,12}", 0..8),
            prefix in 0usize..4,
        ) {
            let heads = [
                r#"{"type":"auth_pairing","username":"#,
                r#"{"type":"auth_client_proof_generation","client_proof":"#,
                r#"{"type":"auth_pairing","salt":"#,
                r#"{"type":"auth_proof","server_signature":"#,
            ];
            let text = format!("{}{}", heads[prefix], fields.concat());
            agree_canonical::<ClientMessage>(&text);
            agree_canonical::<ServerMessage>(&text);
        }
    }

    #[test]
    fn type_first_parsing_agrees_with_the_derived_parser() {
        let (client, server) = sample_messages();
        for m in &client {
            let text = m.to_json();
            assert!(agree::<ClientMessage>(&text), "our own output takes the fast path: {text}");
            assert_eq!(&ClientMessage::from_json(&text).unwrap(), m);
            for t in mutations(&text) {
                agree::<ClientMessage>(&t);
                agree::<ServerMessage>(&t);
            }
        }
        for m in &server {
            let text = m.to_json();
            assert!(agree::<ServerMessage>(&text), "our own output takes the fast path: {text}");
            assert_eq!(&ServerMessage::from_json(&text).unwrap(), m);
            for t in mutations(&text) {
                agree::<ClientMessage>(&t);
                agree::<ServerMessage>(&t);
            }
        }
        // Type not first: declined by the fast path, accepted by the derived one.
        let late = r#"{"secret_key":"AAEC","nonce":"x","type":"registration_send_password"}"#;
        assert!(!agree::<ClientMessage>(late));
        assert!(ClientMessage::from_json(late).is_ok());
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
