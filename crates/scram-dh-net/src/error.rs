//! Errors of the network layer.

use scram_dh::ErrorCode;

/// What can go wrong on a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Socket I/O failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection mid-exchange.
    #[error("connection closed by peer")]
    Closed,
    /// The encrypted channel's connection ended without the peer's authenticated
    /// end of stream: it may have been cut by an attacker (SPEC 7).
    #[error("encrypted channel truncated: the connection ended without an authenticated end of stream")]
    Truncated,
    /// The peer took too long.
    #[error("timed out")]
    Timeout,
    /// A handshake line exceeded 16 KiB.
    #[error("handshake line longer than 16 KiB")]
    LineTooLong,
    /// A channel record was malformed, oversized, or failed authentication.
    #[error("encrypted channel: {0}")]
    Channel(&'static str),
    /// The protocol refused something (either side).
    #[error(transparent)]
    Protocol(#[from] scram_dh::Error),
    /// TLS failed: a certificate or key file, the handshake, or the server's
    /// certificate was refused.
    #[error("TLS: {0}")]
    Tls(String),
    /// TLS: the server's certificate was refused (not from the trusted CA, wrong
    /// name, expired): the server did not prove who it is.
    #[error("TLS: server certificate refused: {0}")]
    CertificateRefused(String),
    /// A credential or known-hosts file problem.
    #[error("{0}")]
    Local(String),
}

impl NetError {
    /// Whether this is an authentication failure (wrong password or keys, unknown
    /// user — also as a standard SCRAM `e=invalid-proof` — or a server that could
    /// not prove itself), as opposed to a connection
    /// or usage problem.
    #[must_use]
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            Self::Protocol(scram_dh::Error::Peer { code: ErrorCode::AuthenticationFailed, .. })
                | Self::Protocol(scram_dh::Error::ServerSignature)
                | Self::Protocol(scram_dh::Error::AuthenticationFailed)
                | Self::Protocol(scram_dh::Error::HostKeyMismatch { .. })
                | Self::Protocol(scram_dh::Error::BadHostSignature)
                | Self::CertificateRefused(_)
        ) || matches!(self, Self::Protocol(e @ scram_dh::Error::ScramRefused { .. })
            if e.code() == ErrorCode::AuthenticationFailed)
    }

    /// Whether the connection itself failed (refused, reset, timed out, closed).
    #[must_use]
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, Self::Io(_) | Self::Closed | Self::Timeout | Self::Truncated | Self::Tls(_))
    }
}
