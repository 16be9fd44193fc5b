//! The closed set of error codes sent to a peer (SPEC 6) and the crate's error type.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::dh::DhError;

/// An error code as it travels on the wire in `{"type":"error","code":...}`.
///
/// The set is closed: a peer that sends any other code is itself sending an
/// invalid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed, oversized, mistyped, or a field missing or extra.
    InvalidMessage,
    /// Well formed, but asks for something this server does not do (a group, a label kind).
    Unsupported,
    /// The combined nonce does not match the session's.
    NonceMismatch,
    /// No live handshake for this nonce and phase (never started, expired or consumed).
    UnknownSession,
    /// A pairing reused a client nonce that is still live.
    NonceReused,
    /// A DH public key failed validation.
    InvalidPublicKey,
    /// Registration for a username that exists; records are never overwritten.
    UsernameTaken,
    /// Authentication failed; unknown users and wrong proofs look the same.
    AuthenticationFailed,
    /// The server is at a capacity or rate limit; try again later.
    Busy,
    /// The server failed internally (a store is down); nothing was changed.
    ServerError,
}

impl ErrorCode {
    /// The code's wire spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidMessage => "invalid_message",
            Self::Unsupported => "unsupported",
            Self::NonceMismatch => "nonce_mismatch",
            Self::UnknownSession => "unknown_session",
            Self::NonceReused => "nonce_reused",
            Self::InvalidPublicKey => "invalid_public_key",
            Self::UsernameTaken => "username_taken",
            Self::AuthenticationFailed => "authentication_failed",
            Self::Busy => "busy",
            Self::ServerError => "server_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the protocol core, on either side.
///
/// [`Error::code`] maps each variant to the [`ErrorCode`] a server sends. Messages
/// never contain secret material: no password, key, proof or shared secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message did not parse or broke a rule of SPEC section 7.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The peer asked for something not supported here.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The combined nonce was altered, swapped or belongs to another handshake.
    #[error("nonce does not match the handshake")]
    NonceMismatch,
    /// No live session for this phase and client nonce.
    #[error("no live handshake for this nonce (expired, consumed or never started)")]
    UnknownSession,
    /// A pairing reused a live client nonce.
    #[error("client nonce is already in use")]
    NonceReused,
    /// A Diffie-Hellman public key or shared secret was rejected.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(#[from] DhError),
    /// The username is registered already.
    #[error("username is already registered")]
    UsernameTaken,
    /// The proof did not verify (or the user does not exist: the two are not told apart).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A capacity or rate limit was hit.
    #[error("server busy, try again later")]
    Busy,
    /// A store or other internal component failed.
    #[error("server error: {0}")]
    ServerError(String),
    /// Client side: the server's host key is not the pinned one.
    #[error(
        "host key mismatch: expected {expected}, server presented {presented}; \
         someone may be intercepting the connection, or the server's key changed"
    )]
    HostKeyMismatch {
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint the server presented.
        presented: String,
    },
    /// Client side: the host key signature over the transcript did not verify.
    #[error("host key signature does not verify")]
    BadHostSignature,
    /// Client side: the server's iteration count is below 4096 or above the client's ceiling.
    #[error("iteration count {ic} outside the accepted range {min}..={max}")]
    IterationCount {
        /// What the server sent.
        ic: u32,
        /// The protocol minimum.
        min: u32,
        /// The client's ceiling.
        max: u32,
    },
    /// An AEAD-protected field failed authentication (tampered or wrong key).
    #[error("encrypted field failed authentication: {0}")]
    Decryption(&'static str),
    /// Client side: the server signature did not verify; the server did not prove it knows the record.
    #[error("server signature does not verify: the server did not prove knowledge of the credential")]
    ServerSignature,
    /// Client side: the server answered with an error message.
    #[error("server refused: {code}: {message}")]
    Peer {
        /// The code the server sent.
        code: ErrorCode,
        /// Its human-readable text.
        message: String,
    },
    /// A credential or session store failed.
    #[error("store error: {0}")]
    Store(String),
    /// Standard SCRAM: a message carried a mandatory extension (`m=`), which this
    /// implementation does not support (RFC 5802 section 7, `extensions-not-supported`).
    #[error("mandatory SCRAM extension (m=) not supported")]
    ExtensionsNotSupported,
    /// Standard SCRAM: the username (or authzid) is not a valid `saslname`, or not
    /// valid under SASLprep (`invalid-username-encoding`).
    #[error("invalid username encoding: {0}")]
    InvalidUsernameEncoding(String),
    /// Standard SCRAM: the client-final `c=` does not match the gs2 header and the
    /// connection's channel binding (`channel-bindings-dont-match`).
    #[error("channel bindings do not match")]
    ChannelBindingsDontMatch,
    /// Standard SCRAM: the client sent `y` (it believes the server lacks channel
    /// binding) on a connection where the server offers SCRAM-SHA-256-PLUS: a
    /// downgrade (RFC 5802 section 6, `server-does-support-channel-binding`).
    #[error("client sent gs2 flag y but the server offers channel binding here (possible downgrade)")]
    ChannelBindingDowngrade,
    /// Standard SCRAM: the client asked for channel binding on a connection that
    /// has none (`channel-binding-not-supported`).
    #[error("channel binding is not supported on this connection")]
    ChannelBindingNotSupported,
    /// Standard SCRAM: the client asked for a channel-binding type other than
    /// `tls-exporter` (`unsupported-channel-binding-type`).
    #[error("unsupported channel binding type {0:?}")]
    UnsupportedChannelBindingType(String),
    /// Standard SCRAM, server side: the record has random labels, so no password
    /// can log in with standard SCRAM (answered `e=invalid-proof`, like any failure).
    #[error("record has random labels (keys, not a password): standard SCRAM cannot log in")]
    RandomLabelsRecord,
    /// Standard SCRAM, client side: the server answered `e=<value>`.
    #[error("server refused: e={value}")]
    ScramRefused {
        /// The server-error-value as sent (truncated to 256 bytes).
        value: String,
    },
}

impl Error {
    /// The code a server sends for this error.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidMessage(_) | Self::Decryption(_) => ErrorCode::InvalidMessage,
            Self::Unsupported(_) => ErrorCode::Unsupported,
            Self::NonceMismatch => ErrorCode::NonceMismatch,
            Self::UnknownSession => ErrorCode::UnknownSession,
            Self::NonceReused => ErrorCode::NonceReused,
            Self::InvalidPublicKey(_) => ErrorCode::InvalidPublicKey,
            Self::UsernameTaken => ErrorCode::UsernameTaken,
            Self::AuthenticationFailed
            | Self::ServerSignature
            | Self::ChannelBindingsDontMatch
            | Self::ChannelBindingDowngrade
            | Self::RandomLabelsRecord => ErrorCode::AuthenticationFailed,
            Self::InvalidUsernameEncoding(_) => ErrorCode::InvalidMessage,
            Self::ExtensionsNotSupported
            | Self::ChannelBindingNotSupported
            | Self::UnsupportedChannelBindingType(_) => ErrorCode::Unsupported,
            Self::ScramRefused { value } => scram_refused_code(value),
            Self::Busy => ErrorCode::Busy,
            Self::Peer { code, .. } => *code,
            Self::ServerError(_)
            | Self::Store(_)
            | Self::HostKeyMismatch { .. }
            | Self::BadHostSignature
            | Self::IterationCount { .. } => ErrorCode::ServerError,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Self::InvalidMessage(what.into())
    }
}

/// The closest code for a server's `e=<value>` (RFC 5802 section 7).
fn scram_refused_code(value: &str) -> ErrorCode {
    use crate::sasl::ServerErrorValue as V;
    match V::parse(value) {
        Some(V::InvalidProof | V::UnknownUser | V::ChannelBindingsDontMatch) => {
            ErrorCode::AuthenticationFailed
        }
        Some(V::InvalidEncoding | V::InvalidUsernameEncoding) => ErrorCode::InvalidMessage,
        Some(
            V::ExtensionsNotSupported
            | V::ServerDoesSupportChannelBinding
            | V::ChannelBindingNotSupported
            | V::UnsupportedChannelBindingType,
        ) => ErrorCode::Unsupported,
        Some(V::NoResources) => ErrorCode::Busy,
        Some(V::OtherError) | None => ErrorCode::ServerError,
    }
}

/// Result alias for the core.
pub type Result<T, E = Error> = core::result::Result<T, E>;
