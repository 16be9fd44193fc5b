//! Client side of standard SCRAM-SHA-256, sans-IO.

use rand_core::CryptoRng;

use super::ClientChannel;
use crate::error::Result;
use crate::keys::ClientConfig;
use crate::secret::Password;

/// A standard SCRAM exchange in progress: the client-first-message is ready.
pub struct SaslClient {
    mechanism: &'static str,
}

impl core::fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaslClient").field("mechanism", &self.mechanism).finish_non_exhaustive()
    }
}

impl SaslClient {
    /// Starts an exchange with a fresh nonce (24 random bytes, base64).
    ///
    /// # Errors
    /// [`crate::Error::InvalidMessage`] when the username is not valid under SASLprep.
    pub fn new<R: CryptoRng + ?Sized>(
        _username: &str,
        _password: &Password,
        _channel: ClientChannel,
        _config: &ClientConfig,
        _rng: &mut R,
    ) -> Result<Self> {
        todo!()
    }

    /// Starts an exchange with this client nonce.
    ///
    /// # Errors
    /// [`crate::Error::InvalidMessage`] when the username or nonce is not valid.
    pub fn with_nonce(
        _username: &str,
        _password: &Password,
        _channel: ClientChannel,
        _config: &ClientConfig,
        _nonce: &str,
    ) -> Result<Self> {
        todo!()
    }

    /// [`MECHANISM_PLUS`](super::MECHANISM_PLUS) iff the channel is `TlsExporter`.
    #[must_use]
    pub fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    /// The client-first-message (not base64).
    #[must_use]
    pub fn client_first(&self) -> String {
        todo!()
    }

    /// Checks the server-first-message and computes the proof.
    ///
    /// # Errors
    /// See the implementation.
    pub fn receive_server_first(self, _server_first: &[u8]) -> Result<SaslClientFinal> {
        todo!()
    }
}

/// The client-final-message is ready; waiting for the server-final-message.
pub struct SaslClientFinal {
    client_final: String,
}

impl core::fmt::Debug for SaslClientFinal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaslClientFinal").finish_non_exhaustive()
    }
}

impl SaslClientFinal {
    /// The client-final-message (not base64).
    #[must_use]
    pub fn client_final(&self) -> String {
        self.client_final.clone()
    }

    /// Verifies the server-final-message in constant time.
    ///
    /// # Errors
    /// [`crate::Error::ScramRefused`], [`crate::Error::ServerSignature`].
    pub fn receive_server_final(self, _server_final: &[u8]) -> Result<()> {
        todo!()
    }
}
