//! The server's per-user record and the credential-store trait (the original's
//! `AbstractRecord`), with an in-memory implementation.

use core::fmt;
use core::future::Future;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::{ServerKey, StoredKey};

/// How a record's keys were derived from the salted password (SPEC 3a step 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Labels {
    /// Two random 32-byte labels: only a client holding ClientKey can log in.
    #[default]
    Random,
    /// RFC 5802's `"Client Key"` / `"Server Key"`: standard SCRAM clients that know
    /// the password can log in too.
    Rfc,
}

impl Labels {
    /// Wire spelling: `"random"` or `"rfc"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Rfc => "rfc",
        }
    }

    /// Parses the wire spelling.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "random" => Some(Self::Random),
            "rfc" => Some(Self::Rfc),
            _ => None,
        }
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 5802's client label.
pub const RFC_CLIENT_LABEL: &[u8] = b"Client Key";
/// RFC 5802's server label.
pub const RFC_SERVER_LABEL: &[u8] = b"Server Key";

/// What the server keeps for a user: never the password nor the salted password.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// SASLprep-normalised username.
    pub username: String,
    /// The user's salt (32 bytes when made here; imported verifiers may differ).
    pub salt: Vec<u8>,
    /// Iteration count.
    pub ic: u32,
    /// `SHA-256(ClientKey)`.
    pub stored_key: StoredKey,
    /// `HMAC(SaltedPassword, server_label)`.
    pub server_key: ServerKey,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Key-derivation kind.
    pub labels: Labels,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("username", &self.username)
            .field("ic", &self.ic)
            .field("created", &self.created)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// The record as a PostgreSQL SCRAM verifier:
    /// `SCRAM-SHA-256$<ic>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>`.
    ///
    /// Only records with RFC labels let a PostgreSQL client log in with the password.
    #[must_use]
    pub fn to_postgres_verifier(&self) -> String {
        use base64ct::Encoding as _;
        // The keys through constant-time base64 (finding F7); the salt is public.
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.ic,
            STANDARD.encode(&self.salt),
            base64ct::Base64::encode_string(self.stored_key.expose()),
            base64ct::Base64::encode_string(self.server_key.expose())
        )
    }

    /// Parses a PostgreSQL verifier into a record with RFC labels.
    ///
    /// Strict: exactly `SCRAM-SHA-256$<ic>:<salt>$<StoredKey>:<ServerKey>`, the
    /// iteration count in decimal without sign or leading zeros, every base64
    /// field canonical (standard alphabet, padded, no stray bits), nothing before
    /// or after (no whitespace). What parses prints back byte for byte through
    /// [`to_postgres_verifier`](Self::to_postgres_verifier).
    ///
    /// ```
    /// use scram_dh::Record;
    /// // RFC 7677 section 3: "user" / "pencil".
    /// let v = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
    ///          WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
    /// let record = Record::from_postgres_verifier("user", v, 0)?;
    /// assert_eq!(record.to_postgres_verifier(), v);
    /// assert!(Record::from_postgres_verifier("user", &format!("{v}\n"), 0).is_err());
    /// # Ok::<(), scram_dh::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] for any deviation from the format, an iteration
    /// count below 4096, an empty salt or keys that are not 32 bytes.
    pub fn from_postgres_verifier(username: &str, verifier: &str, created: u64) -> Result<Self> {
        let bad = || Error::invalid("not a SCRAM-SHA-256 verifier");
        let rest = verifier.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (params, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (ic, salt) = params.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        if !ic.bytes().all(|b| b.is_ascii_digit()) || ic.starts_with('0') {
            return Err(bad());
        }
        let ic: u32 = ic.parse().map_err(|_| bad())?;
        if ic < crate::MIN_ITERATIONS {
            return Err(Error::invalid("iteration count below 4096"));
        }
        let salt = STANDARD.decode(salt).map_err(|_| bad())?;
        if salt.is_empty() {
            return Err(bad());
        }
        let decode32 = |s: &str| {
            use base64ct::Encoding as _;
            use subtle::ConstantTimeEq as _;
            let mut buf = zeroize::Zeroizing::new([0u8; 32]);
            let n = base64ct::Base64::decode(s.as_bytes(), buf.as_mut()).ok()?.len();
            // Canonical only: the constant-time encoder must give back the same text.
            let again = zeroize::Zeroizing::new(base64ct::Base64::encode_string(buf.as_ref()));
            (n == 32 && bool::from(again.as_bytes().ct_eq(s.as_bytes()))).then_some(buf)
        };
        let stored_key = StoredKey::from_bytes(*decode32(stored).ok_or_else(bad)?);
        let server_key = ServerKey::from_bytes(*decode32(server).ok_or_else(bad)?);
        Ok(Self {
            username: crate::username::normalize(username)?,
            salt,
            ic,
            stored_key,
            server_key,
            created,
            labels: Labels::Rfc,
        })
    }
}

/// A record's public shape, as A2 shows it: iteration count and salt length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordShape {
    /// Iteration count.
    pub ic: u32,
    /// Salt length in bytes.
    pub salt_len: usize,
}

impl RecordShape {
    /// The shape of `record`.
    #[must_use]
    pub fn of(record: &Record) -> Self {
        Self { ic: record.ic, salt_len: record.salt.len() }
    }
}

/// How many records have each shape.
pub type RecordShapes = BTreeMap<RecordShape, u64>;

/// A credential store failure (the backend is down, a constraint broke).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e.0)
    }
}

/// Outcome of an insert-if-absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The record is stored (durably, for persistent backends).
    Inserted,
    /// A record with that username exists; nothing was changed.
    AlreadyExists,
}

/// Where the server keeps records. Implementations must make `insert` atomic:
/// of any number of concurrent inserts for one username, exactly one succeeds.
pub trait CredentialStore: Send + Sync {
    /// Reads a user's record.
    fn read(&self, username: &str) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;
    /// Inserts a record unless the username exists.
    fn insert(&self, record: &Record) -> impl Future<Output = Result<Inserted, StoreError>> + Send;
    /// Replaces an existing record; `false` if the user does not exist.
    fn replace(&self, record: &Record) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes a record; `false` if it did not exist.
    fn delete(&self, username: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// All usernames, sorted.
    fn list(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The histogram of record shapes `(ic, salt length) -> count`, which mock
    /// replies for unknown users imitate (finding M6).
    ///
    /// The provided implementation reads every record; backends should answer it
    /// with one aggregate query.
    fn record_shapes(&self) -> impl Future<Output = Result<RecordShapes, StoreError>> + Send {
        async move {
            let mut shapes = RecordShapes::new();
            for username in self.list().await? {
                if let Some(record) = self.read(&username).await? {
                    *shapes.entry(RecordShape::of(&record)).or_insert(0) += 1;
                }
            }
            Ok(shapes)
        }
    }
}

/// An in-memory credential store, bounded in the number of records.
#[derive(Debug)]
pub struct MemoryCredentialStore {
    records: RwLock<HashMap<String, Record>>,
    max_records: usize,
}

impl Default for MemoryCredentialStore {
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

impl MemoryCredentialStore {
    /// A store that refuses inserts beyond `max_records`.
    #[must_use]
    pub fn new(max_records: usize) -> Self {
        Self { records: RwLock::new(HashMap::new()), max_records }
    }

    fn poisoned() -> StoreError {
        StoreError("memory credential store lock poisoned".into())
    }
}

impl CredentialStore for MemoryCredentialStore {
    async fn read(&self, username: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.records.read().map_err(|_| Self::poisoned())?.get(username).cloned())
    }

    async fn insert(&self, record: &Record) -> Result<Inserted, StoreError> {
        let mut map = self.records.write().map_err(|_| Self::poisoned())?;
        if map.contains_key(&record.username) {
            return Ok(Inserted::AlreadyExists);
        }
        if map.len() >= self.max_records {
            return Err(StoreError("memory credential store is full".into()));
        }
        map.insert(record.username.clone(), record.clone());
        Ok(Inserted::Inserted)
    }

    async fn replace(&self, record: &Record) -> Result<bool, StoreError> {
        let mut map = self.records.write().map_err(|_| Self::poisoned())?;
        match map.get_mut(&record.username) {
            Some(slot) => {
                *slot = record.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        Ok(self.records.write().map_err(|_| Self::poisoned())?.remove(username).is_some())
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> =
            self.records.read().map_err(|_| Self::poisoned())?.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    async fn record_shapes(&self) -> Result<RecordShapes, StoreError> {
        let mut shapes = RecordShapes::new();
        for record in self.records.read().map_err(|_| Self::poisoned())?.values() {
            *shapes.entry(RecordShape::of(record)).or_insert(0) += 1;
        }
        Ok(shapes)
    }
}

impl<T: CredentialStore> CredentialStore for std::sync::Arc<T> {
    fn read(&self, username: &str) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        (**self).read(username)
    }
    fn insert(&self, record: &Record) -> impl Future<Output = Result<Inserted, StoreError>> + Send {
        (**self).insert(record)
    }
    fn replace(&self, record: &Record) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).replace(record)
    }
    fn delete(&self, username: &str) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).delete(username)
    }
    fn list(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        (**self).list()
    }
    fn record_shapes(&self) -> impl Future<Output = Result<RecordShapes, StoreError>> + Send {
        (**self).record_shapes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // RFC 7677 section 3, "user" / "pencil" (StoredKey and ServerKey as in NOTES.md).
    const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const STORED: &str = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=";
    const SERVER: &str = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

    fn verifier(ic: &str, salt: &str, stored: &str, server: &str) -> String {
        format!("SCRAM-SHA-256${ic}:{salt}${stored}:{server}")
    }

    #[test]
    fn verifier_round_trips_byte_for_byte() {
        let v = verifier("4096", SALT, STORED, SERVER);
        let r = Record::from_postgres_verifier("user", &v, 7).unwrap();
        assert_eq!((r.ic, r.salt.len(), r.labels, r.created), (4096, 16, Labels::Rfc, 7));
        assert_eq!(r.to_postgres_verifier(), v);
    }

    #[test]
    fn verifier_parser_is_strict() {
        let bad = [
            verifier("04096", SALT, STORED, SERVER),
            verifier("+4096", SALT, STORED, SERVER),
            verifier("", SALT, STORED, SERVER),
            verifier("4095", SALT, STORED, SERVER),
            verifier("4294967296", SALT, STORED, SERVER),
            verifier("4096", "", STORED, SERVER),
            verifier("4096", "W22ZaJ0SNY7soEsUEjb6gQ=", STORED, SERVER),
            verifier("4096", "W22ZaJ0SNY7soEsUEjb6gR==", STORED, SERVER),
            verifier("4096", "W22ZaJ0SNY7soEsUEjb6gQ", STORED, SERVER),
            verifier("4096", " W22ZaJ0SNY7soEsUEjb6gQ==", STORED, SERVER),
            // Non-canonical last character (stray low bits) in each key.
            verifier("4096", SALT, "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qZ=", SERVER),
            verifier("4096", SALT, STORED, "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dV="),
            verifier("4096", SALT, "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY", SERVER),
            verifier("4096", SALT, "c2FsdA==", SERVER),
            verifier("4096", SALT, STORED, &format!("{SERVER}AAAA")),
            format!("{}\n", verifier("4096", SALT, STORED, SERVER)),
            format!("{} ", verifier("4096", SALT, STORED, SERVER)),
            format!(" {}", verifier("4096", SALT, STORED, SERVER)),
            format!("{}$x", verifier("4096", SALT, STORED, SERVER)),
            format!("{}:x", verifier("4096", SALT, STORED, SERVER)),
            verifier("4096", SALT, STORED, SERVER).replace("SCRAM-SHA-256", "SCRAM-SHA-1"),
            verifier("4096", SALT, STORED, SERVER).replace("SCRAM-SHA-256", "scram-sha-256"),
        ];
        for v in &bad {
            assert!(Record::from_postgres_verifier("user", v, 0).is_err(), "accepted {v:?}");
        }
    }
}
