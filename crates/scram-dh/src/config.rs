//! Server settings.

use crate::dh::Group;
use crate::error::{Error, Result};
use crate::hostkey::HostKey;
use crate::keys::MIN_ITERATIONS;
use crate::secret::SessionSealKey;
#[doc(no_inline)]
pub use crate::step::Step;

/// The default ceiling on an iteration count the server will store or hand out:
/// the lowest client ceiling in the field (postgres-protocol refuses more than
/// 100,000), so every standard client can log in.
pub const DEFAULT_MAX_IC: u32 = 100_000;

/// The salt lengths a record may have (SPEC 2 makes 32; imports and password
/// changes must stay within what mock replies can imitate).
pub const SALT_LEN_RANGE: core::ops::RangeInclusive<usize> = 16..=64;

/// HMAC label deriving [`ServerConfig::session_seal_key`] from the mock secret.
const SEAL_KEY_LABEL: &[u8] = b"scram-dh/1 session seal key";

/// Server-side protocol settings. `Debug` omits the mock-salt secret and the
/// session seal key.
#[derive(Clone)]
pub struct ServerConfig {
    /// Iteration count for new registrations (never below 4096, never above `max_ic`).
    pub ic: u32,
    /// The largest iteration count a record may have (password changes, imports).
    pub max_ic: u32,
    /// The Ed25519 host key that signs registration transcripts.
    pub host_key: HostKey,
    /// Groups accepted from clients.
    pub groups: Vec<Group>,
    /// Whether registrations may ask for RFC labels.
    pub allow_rfc_labels: bool,
    /// Whether in-band registration (R1..R4) is open; when closed, provisioning is
    /// the only way to add users (finding M6).
    pub registration_open: bool,
    /// Secret for unknown users' deterministic mock salts (SPEC 4 step 2).
    pub mock_secret: [u8; 32],
    /// Seals session state before a session store sees it (SPEC 5). By default
    /// derived from `mock_secret` with its own HMAC label.
    pub session_seal_key: SessionSealKey,
    /// Session time to live, milliseconds (SPEC 5: 10 s by default).
    pub session_ttl_ms: u64,
    /// Benchmarks only: answer logins with the null protocol ([`crate::null`]),
    /// which lets every login in. Off by default.
    pub null_protocol: bool,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("ic", &self.ic)
            .field("max_ic", &self.max_ic)
            .field("host_key", &self.host_key)
            .field("groups", &self.groups)
            .field("allow_rfc_labels", &self.allow_rfc_labels)
            .field("registration_open", &self.registration_open)
            .field("session_ttl_ms", &self.session_ttl_ms)
            .field("null_protocol", &self.null_protocol)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Defaults: ic 4096, `max_ic` 100,000, all groups, RFC labels allowed,
    /// registration open, TTL 10 s, the seal key derived from `mock_secret`.
    #[must_use]
    pub fn new(host_key: HostKey, mock_secret: [u8; 32]) -> Self {
        let session_seal_key =
            SessionSealKey::from_bytes(*crate::crypto::hmac_secret(&mock_secret, &[SEAL_KEY_LABEL]));
        Self {
            ic: MIN_ITERATIONS,
            max_ic: DEFAULT_MAX_IC,
            host_key,
            groups: Group::ALL.to_vec(),
            allow_rfc_labels: true,
            registration_open: true,
            mock_secret,
            session_seal_key,
            session_ttl_ms: 10_000,
            null_protocol: false,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::ServerError`] when the iteration count is below 4096 or above
    /// `max_ic`, or no group is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.ic < MIN_ITERATIONS {
            return Err(Error::ServerError(format!("iteration count must be at least {MIN_ITERATIONS}")));
        }
        if self.ic > self.max_ic {
            return Err(Error::ServerError(format!(
                "iteration count {} is above the configured maximum {}",
                self.ic, self.max_ic
            )));
        }
        if self.groups.is_empty() {
            return Err(Error::ServerError("at least one DH group must be allowed".into()));
        }
        Ok(())
    }

    /// Checks the shape of a record made outside in-band registration (a password
    /// change, an import): salt 16..=64 bytes and `4096..=max_ic` iterations, so
    /// that mock replies for unknown users can look the same (finding M6).
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the bound that is broken.
    pub fn check_record_shape(&self, salt_len: usize, ic: u32) -> Result<()> {
        check_record_shape(salt_len, ic, self.max_ic)
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

/// [`ServerConfig::check_record_shape`] for a given highest iteration count, for
/// tools that check records without a server configuration (verifier imports).
///
/// # Errors
/// [`Error::Unsupported`] naming the bound that is broken.
pub fn check_record_shape(salt_len: usize, ic: u32, max_ic: u32) -> Result<()> {
    if !SALT_LEN_RANGE.contains(&salt_len) {
        return Err(Error::Unsupported(format!(
            "salt must be {} to {} bytes, not {salt_len}",
            SALT_LEN_RANGE.start(),
            SALT_LEN_RANGE.end()
        )));
    }
    if ic < MIN_ITERATIONS || ic > max_ic {
        return Err(Error::Unsupported(format!(
            "iteration count must be {MIN_ITERATIONS} to {}, not {ic}",
            max_ic
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig::new(HostKey::from_seed(&[1; 32]), [2; 32])
    }

    #[test]
    fn m6_validate_refuses_ic_above_max_ic() {
        let mut c = config();
        assert_eq!(c.max_ic, 100_000);
        c.ic = 100_000;
        assert!(c.validate().is_ok());
        c.ic = 100_001;
        assert!(matches!(c.validate(), Err(Error::ServerError(_))));
        c.max_ic = 200_000;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn m6_check_record_shape_bounds() {
        let c = config();
        assert!(c.check_record_shape(16, 4096).is_ok());
        assert!(c.check_record_shape(64, 100_000).is_ok());
        assert!(c.check_record_shape(32, 8192).is_ok());
        for (salt_len, ic) in [(15, 4096), (65, 4096), (0, 4096), (32, 4095), (32, 100_001), (32, 1)] {
            assert!(
                matches!(c.check_record_shape(salt_len, ic), Err(Error::Unsupported(_))),
                "{salt_len} {ic}"
            );
        }
    }

    #[test]
    fn seal_key_is_derived_distinctly_and_redacted() {
        let c = config();
        assert_ne!(c.session_seal_key.expose(), &c.mock_secret);
        let mock_salt = crate::crypto::hmac(&c.mock_secret, &[b"scram-dh mock salt"]);
        assert_ne!(c.session_seal_key.expose(), &mock_salt);
        let other = ServerConfig::new(HostKey::from_seed(&[1; 32]), [3; 32]);
        assert_ne!(c.session_seal_key, other.session_seal_key);
        let text = format!("{c:?}");
        assert!(!text.contains(&format!("{:?}", &c.session_seal_key.expose()[..8])), "{text}");
        assert!(!text.contains("session_seal_key"), "{text}");
    }
}
