//! `passwd`: the only way a record is ever replaced, for an authenticated user,
//! with the new StoredKey and ServerKey computed on the client (the server never
//! sees the password nor the salted password). The TCP key-value service's
//! `passwd` command and the HTTP front's `POST /v1/passwd` both call
//! [`replace_credential`].

use std::ops::RangeInclusive;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scram_dh::secret::{ServerKey, StoredKey};
use scram_dh::{CredentialStore, Labels, MIN_ITERATIONS, Record};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::log::{Escaped, escaped};

/// A new credential as sent by the client (HTTP body
/// `{"salt":"<b64>","ic":N,"stored_key":"<b64>","server_key":"<b64>","labels":"random"|"rfc"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswdRequest {
    /// The new salt, base64.
    pub salt: String,
    /// The iteration count.
    pub ic: u32,
    /// The new StoredKey, base64 (32 bytes).
    pub stored_key: String,
    /// The new ServerKey, base64 (32 bytes).
    pub server_key: String,
    /// `random` or `rfc`.
    pub labels: String,
}

/// The record shapes `passwd` accepts (finding M6): only shapes a mock reply can
/// imitate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdBounds {
    /// Salt lengths, bytes.
    pub salt_len: RangeInclusive<usize>,
    /// Iteration counts: the server's bounds (`ServerConfig::max_ic`).
    pub ic: RangeInclusive<u32>,
}

impl Default for PasswdBounds {
    fn default() -> Self {
        Self {
            salt_len: scram_dh::config::SALT_LEN_RANGE,
            ic: MIN_ITERATIONS..=scram_dh::config::DEFAULT_MAX_IC,
        }
    }
}

/// Why `passwd` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswdError {
    /// The request is malformed or outside the bounds (the text says which field).
    #[error("{0}")]
    Invalid(String),
    /// The user was deleted meanwhile.
    #[error("user no longer exists")]
    NoSuchUser,
    /// The store failed (logged on the server, not told to the client).
    #[error("could not store the new credential")]
    Store,
}

impl PasswdRequest {
    /// Checks the request against `bounds` and builds the record for `username`.
    ///
    /// # Errors
    /// [`PasswdError::Invalid`] naming the field.
    pub fn to_record(&self, username: &str, bounds: &PasswdBounds) -> Result<Record, PasswdError> {
        let invalid = |m: String| PasswdError::Invalid(m);
        let salt = STANDARD.decode(&self.salt).map_err(|_| invalid("salt is not base64".into()))?;
        if !bounds.salt_len.contains(&salt.len()) {
            let (lo, hi) = (bounds.salt_len.start(), bounds.salt_len.end());
            return Err(invalid(format!("salt must be {lo} to {hi} bytes")));
        }
        if !bounds.ic.contains(&self.ic) {
            let (lo, hi) = (bounds.ic.start(), bounds.ic.end());
            return Err(invalid(format!("ic must be between {lo} and {hi}")));
        }
        let key = |s: &str| STANDARD.decode(s).ok().and_then(|v| <[u8; 32]>::try_from(v).ok());
        let stored_key = StoredKey::from_bytes(
            key(&self.stored_key).ok_or_else(|| invalid("stored_key must be 32 bytes of base64".into()))?,
        );
        let server_key = ServerKey::from_bytes(
            key(&self.server_key).ok_or_else(|| invalid("server_key must be 32 bytes of base64".into()))?,
        );
        let labels =
            Labels::from_name(&self.labels).ok_or_else(|| invalid("labels must be random or rfc".into()))?;
        let created = crate::server::now_ms() / 1000;
        Ok(Record {
            username: username.to_owned(),
            salt,
            ic: self.ic,
            stored_key,
            server_key,
            created,
            labels,
        })
    }
}

/// Replaces `username`'s record with the credential in `request`.
///
/// # Errors
/// [`PasswdError::Invalid`] for a malformed or out-of-bounds request,
/// [`PasswdError::NoSuchUser`], [`PasswdError::Store`].
pub async fn replace_credential<C: CredentialStore>(
    store: &C,
    username: &str,
    request: &PasswdRequest,
    bounds: &PasswdBounds,
) -> Result<(), PasswdError> {
    let record = request.to_record(username, bounds)?;
    match store.replace(&record).await {
        Ok(true) => {
            info!(username = %Escaped(username), "credential replaced");
            Ok(())
        }
        Ok(false) => Err(PasswdError::NoSuchUser),
        Err(e) => {
            warn!(username = %Escaped(username), error = %escaped(&e), "credential replace failed");
            Err(PasswdError::Store)
        }
    }
}
