//! Standard SCRAM-SHA-256 (RFC 5802, RFC 7677) on the same records: the text
//! codec ([`text`]), sans-IO server ([`server`]) and client ([`client`]) steps,
//! and `tls-exporter` channel binding (RFC 9266), so standard clients
//! (libraries, PostgreSQL drivers, GNU SASL) log in with a password.
//!
//! Only records with RFC labels can log in this way; a record with random labels
//! (and an unknown user) is answered exactly like a wrong password, with
//! `e=invalid-proof` at the last step.
//!
//! A full exchange in memory, both sides sans-IO:
//!
//! ```
//! use rand_core::SeedableRng;
//! use scram_dh::hostkey::HostKey;
//! use scram_dh::mock::MockProfile;
//! use scram_dh::sasl::client::SaslClient;
//! use scram_dh::sasl::server::ClientFirstRequest;
//! use scram_dh::sasl::{ClientChannel, ServerChannel};
//! use scram_dh::{ClientConfig, ClientKeys, Labels, Password, ServerConfig};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let config = ServerConfig::new(HostKey::from_seed(&[1; 32]), [2; 32]);
//! // The server's record for "user" / "pencil", with RFC labels.
//! let salt = [7u8; 16];
//! let salted = scram_dh::keys::salted_password(&Password::new("pencil"), &salt, 4096)?;
//! let record = ClientKeys::rfc(&salted).record("user", &salt, 4096, 0, Labels::Rfc);
//!
//! let client = SaslClient::new("user", &Password::new("pencil"), ClientChannel::Unsupported,
//!     &ClientConfig::default(), &mut rng)?;
//! let request = ClientFirstRequest::parse(client.mechanism(), client.client_first().as_bytes(),
//!     ServerChannel::None).map_err(|f| f.error)?;
//! assert_eq!(request.username(), "user");
//! let (server_first, pending) = request
//!     .continue_with(Some(record), &mut rng, &config, &MockProfile::new())
//!     .map_err(|f| f.error)?;
//! let client = client.receive_server_first(server_first.as_bytes())?;
//! let (server_final, auth) =
//!     pending.receive_final(client.client_final().as_bytes()).map_err(|f| f.error)?;
//! assert_eq!(auth.username(), "user");
//! assert!(!auth.channel_bound());
//! client.receive_server_final(server_final.as_bytes())?; // the server proved itself
//! # Ok::<(), scram_dh::Error>(())
//! ```

pub mod client;
pub mod server;
pub mod text;

use core::fmt;

use crate::error::Error;

/// The mechanism name without channel binding.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// The mechanism name with channel binding (RFC 5802 section 4).
pub const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";
/// The one channel-binding type supported (RFC 9266).
pub const TLS_EXPORTER: &str = "tls-exporter";
/// RFC 9266 exporter label, empty context, 32 bytes.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// RFC 5802 section 7 server-error-value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerErrorValue {
    /// `invalid-encoding`
    InvalidEncoding,
    /// `extensions-not-supported`
    ExtensionsNotSupported,
    /// `invalid-proof`
    InvalidProof,
    /// `channel-bindings-dont-match`
    ChannelBindingsDontMatch,
    /// `server-does-support-channel-binding`
    ServerDoesSupportChannelBinding,
    /// `channel-binding-not-supported`
    ChannelBindingNotSupported,
    /// `unsupported-channel-binding-type`
    UnsupportedChannelBindingType,
    /// `unknown-user` (never sent by this server: unknown users get `invalid-proof`)
    UnknownUser,
    /// `invalid-username-encoding`
    InvalidUsernameEncoding,
    /// `no-resources`
    NoResources,
    /// `other-error`
    OtherError,
}

impl ServerErrorValue {
    /// Every value, in RFC 5802's order.
    pub const ALL: [Self; 11] = [
        Self::InvalidEncoding,
        Self::ExtensionsNotSupported,
        Self::InvalidProof,
        Self::ChannelBindingsDontMatch,
        Self::ServerDoesSupportChannelBinding,
        Self::ChannelBindingNotSupported,
        Self::UnsupportedChannelBindingType,
        Self::UnknownUser,
        Self::InvalidUsernameEncoding,
        Self::NoResources,
        Self::OtherError,
    ];

    /// The RFC spelling, e.g. `invalid-proof`.
    ///
    /// ```
    /// use scram_dh::sasl::ServerErrorValue;
    /// assert_eq!(ServerErrorValue::InvalidProof.as_str(), "invalid-proof");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidEncoding => "invalid-encoding",
            Self::ExtensionsNotSupported => "extensions-not-supported",
            Self::InvalidProof => "invalid-proof",
            Self::ChannelBindingsDontMatch => "channel-bindings-dont-match",
            Self::ServerDoesSupportChannelBinding => "server-does-support-channel-binding",
            Self::ChannelBindingNotSupported => "channel-binding-not-supported",
            Self::UnsupportedChannelBindingType => "unsupported-channel-binding-type",
            Self::UnknownUser => "unknown-user",
            Self::InvalidUsernameEncoding => "invalid-username-encoding",
            Self::NoResources => "no-resources",
            Self::OtherError => "other-error",
        }
    }

    /// Parses the RFC spelling; `None` for anything else (a `server-error-value-ext`).
    ///
    /// ```
    /// use scram_dh::sasl::ServerErrorValue;
    /// assert_eq!(ServerErrorValue::parse("no-resources"), Some(ServerErrorValue::NoResources));
    /// assert_eq!(ServerErrorValue::parse("No-Resources"), None);
    /// ```
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The value a server sends for `error`.
    #[must_use]
    pub fn for_error(error: &Error) -> Self {
        match error {
            Error::InvalidMessage(_) | Error::Decryption(_) => Self::InvalidEncoding,
            Error::ExtensionsNotSupported => Self::ExtensionsNotSupported,
            Error::InvalidUsernameEncoding(_) => Self::InvalidUsernameEncoding,
            Error::ChannelBindingsDontMatch => Self::ChannelBindingsDontMatch,
            Error::ChannelBindingDowngrade => Self::ServerDoesSupportChannelBinding,
            Error::ChannelBindingNotSupported => Self::ChannelBindingNotSupported,
            Error::UnsupportedChannelBindingType(_) => Self::UnsupportedChannelBindingType,
            Error::AuthenticationFailed | Error::RandomLabelsRecord => Self::InvalidProof,
            Error::Busy => Self::NoResources,
            _ => Self::OtherError,
        }
    }
}

impl fmt::Display for ServerErrorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server's transport offers for channel binding on this connection.
#[derive(Clone, Copy)]
pub enum ServerChannel<'a> {
    /// Plain TCP / HTTP: the server does not support channel binding here.
    None,
    /// TLS 1.3: the RFC 9266 tls-exporter value of this connection. The server
    /// advertises SCRAM-SHA-256-PLUS on such a connection.
    TlsExporter(&'a [u8; 32]),
}

impl fmt::Debug for ServerChannel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::TlsExporter(_) => f.write_str("TlsExporter(..)"),
        }
    }
}

/// The client's channel-binding choice (the gs2 flag it sends).
#[derive(Clone)]
pub enum ClientChannel {
    /// `n`: the client does not support channel binding.
    Unsupported,
    /// `y`: the client supports it but believes the server does not (no -PLUS offered).
    ServerLacksIt,
    /// `p=tls-exporter` with this connection's exporter value (mechanism -PLUS).
    TlsExporter([u8; 32]),
}

impl fmt::Debug for ClientChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported => f.write_str("Unsupported"),
            Self::ServerLacksIt => f.write_str("ServerLacksIt"),
            Self::TlsExporter(_) => f.write_str("TlsExporter(..)"),
        }
    }
}

/// A server-side failure: what to send and what to log.
#[derive(Debug)]
pub struct SaslFailure {
    /// Sent as `e=<value>`.
    pub value: ServerErrorValue,
    /// For the server log / metrics (no secret).
    pub error: Error,
    /// The normalised name when known (per-account penalties); never for the peer.
    pub username: Option<String>,
}

impl SaslFailure {
    /// A failure for `error`, with the value [`ServerErrorValue::for_error`] picks.
    #[must_use]
    pub fn new(error: Error, username: Option<String>) -> Self {
        Self { value: ServerErrorValue::for_error(&error), error, username }
    }

    /// The server-final-message `e=<value>` (not base64; the transport encodes).
    ///
    /// ```
    /// use scram_dh::sasl::SaslFailure;
    /// let f = SaslFailure::new(scram_dh::Error::AuthenticationFailed, None);
    /// assert_eq!(f.server_final(), "e=invalid-proof");
    /// assert!(f.is_failed_proof());
    /// ```
    #[must_use]
    pub fn server_final(&self) -> String {
        format!("e={}", self.value.as_str())
    }

    /// `true` for `InvalidProof` / `ChannelBindingsDontMatch` (a failed guess: penalties apply).
    #[must_use]
    pub fn is_failed_proof(&self) -> bool {
        matches!(self.value, ServerErrorValue::InvalidProof | ServerErrorValue::ChannelBindingsDontMatch)
    }
}

impl fmt::Display for SaslFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e={}: {}", self.value.as_str(), self.error)
    }
}

impl std::error::Error for SaslFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
