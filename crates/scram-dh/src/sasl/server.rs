//! Server side of standard SCRAM-SHA-256, sans-IO: [`ClientFirstRequest::parse`]
//! → `store.read(username)` → [`ClientFirstRequest::continue_with`] → keep
//! [`PendingSasl`] → [`PendingSasl::receive_final`].

use rand_core::CryptoRng;

use super::{SaslFailure, ServerChannel};
use crate::config::ServerConfig;
use crate::error::Result;
use crate::mock::MockProfile;
use crate::record::Record;
use crate::secret::SecretBytes;

/// A parsed and checked client-first-message.
pub struct ClientFirstRequest {
    username: String,
}

impl core::fmt::Debug for ClientFirstRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientFirstRequest").field("username", &self.username).finish_non_exhaustive()
    }
}

impl ClientFirstRequest {
    /// Parses and checks the client-first-message.
    ///
    /// # Errors
    /// A [`SaslFailure`] with the `e=` value to send.
    pub fn parse(
        _mechanism: &str,
        _client_first: &[u8],
        _channel: ServerChannel<'_>,
    ) -> Result<Self, SaslFailure> {
        todo!()
    }

    /// SASLprep-normalised username (what to read from the store).
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Continues with the record; returns the server-first-message.
    ///
    /// # Errors
    /// A [`SaslFailure`] (`other-error`) only for internal faults.
    pub fn continue_with<R: CryptoRng + ?Sized>(
        self,
        _record: Option<Record>,
        _rng: &mut R,
        _config: &ServerConfig,
        _profile: &MockProfile,
    ) -> Result<(String, PendingSasl), SaslFailure> {
        todo!()
    }

    /// Same with an explicit server nonce part.
    ///
    /// # Errors
    /// A [`SaslFailure`] (`other-error`) when `server_nonce` is not printable.
    pub fn continue_with_nonce(
        self,
        _record: Option<Record>,
        _server_nonce: &str,
        _config: &ServerConfig,
        _profile: &MockProfile,
    ) -> Result<(String, PendingSasl), SaslFailure> {
        todo!()
    }
}

/// The server's state between server-first and client-final.
pub struct PendingSasl {
    username: String,
}

impl core::fmt::Debug for PendingSasl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingSasl").field("username", &self.username).finish_non_exhaustive()
    }
}

impl PendingSasl {
    /// The username this exchange is for.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Verifies the client-final-message; returns the server-final-message `v=...`.
    ///
    /// # Errors
    /// A [`SaslFailure`] with the `e=` value to send.
    pub fn receive_final(self, _client_final: &[u8]) -> Result<(String, SaslAuthenticated), SaslFailure> {
        todo!()
    }

    pub(crate) fn to_bytes(&self) -> SecretBytes {
        todo!()
    }

    pub(crate) fn from_bytes(_bytes: &[u8]) -> Result<Self> {
        todo!()
    }
}

/// Proof that a standard SCRAM client authenticated; only [`PendingSasl::receive_final`] builds it.
#[derive(Debug)]
pub struct SaslAuthenticated {
    username: String,
    channel_bound: bool,
    _seal: (),
}

impl SaslAuthenticated {
    /// The authenticated (normalised) username.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether the exchange was bound to the TLS connection (`p=tls-exporter`).
    #[must_use]
    pub fn channel_bound(&self) -> bool {
        self.channel_bound
    }
}
