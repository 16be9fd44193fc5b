//! Server settings and the step type every state machine returns.

use crate::credential::MIN_ITERATIONS;
use crate::dh::Group;
use crate::error::{Error, Result};
use crate::hostkey::HostKey;

/// What a step returns: the message to send and the state to keep (STYLE 2).
#[must_use = "the message must be sent and the state kept"]
#[derive(Debug)]
pub struct Step<M, S> {
    /// Send this to the peer.
    pub message: M,
    /// Keep this for the next step.
    pub state: S,
}

/// Server-side protocol settings. `Debug` omits the mock-salt secret.
#[derive(Clone)]
pub struct ServerConfig {
    /// Iteration count for new registrations (never below 4096).
    pub ic: u32,
    /// The Ed25519 host key that signs registration transcripts.
    pub host_key: HostKey,
    /// Groups accepted from clients.
    pub groups: Vec<Group>,
    /// Whether registrations may ask for RFC labels.
    pub allow_rfc_labels: bool,
    /// Secret for unknown users' deterministic mock salts (SPEC 4 step 2).
    pub mock_secret: [u8; 32],
    /// Session time to live, milliseconds (SPEC 5: 10 s by default).
    pub session_ttl_ms: u64,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("ic", &self.ic)
            .field("host_key", &self.host_key)
            .field("groups", &self.groups)
            .field("allow_rfc_labels", &self.allow_rfc_labels)
            .field("session_ttl_ms", &self.session_ttl_ms)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Defaults: ic 4096, all groups, RFC labels allowed, TTL 10 s.
    #[must_use]
    pub fn new(host_key: HostKey, mock_secret: [u8; 32]) -> Self {
        Self {
            ic: MIN_ITERATIONS,
            host_key,
            groups: Group::ALL.to_vec(),
            allow_rfc_labels: true,
            mock_secret,
            session_ttl_ms: 10_000,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::ServerError`] when the iteration count is below 4096 or no group is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.ic < MIN_ITERATIONS {
            return Err(Error::ServerError(format!("iteration count must be at least {MIN_ITERATIONS}")));
        }
        if self.groups.is_empty() {
            return Err(Error::ServerError("at least one DH group must be allowed".into()));
        }
        Ok(())
    }

    /// Looks up a group a client named.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an unknown or disallowed group.
    pub fn group(&self, name: &str) -> Result<Group> {
        Group::from_name(name)
            .filter(|g| self.groups.contains(g))
            .ok_or_else(|| Error::Unsupported(format!("group {name:?} is not offered by this server")))
    }
}
