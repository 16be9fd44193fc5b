//! The stores a command works on. Credentials: the embedded SQLite file (the
//! default), or PostgreSQL when `--db` is a `postgres://` (or `postgresql://`) URL.
//! Sessions (in-flight handshakes, HTTP sessions, guessing penalties): this
//! process's memory (the default), or Redis when `--sessions` is a `redis://` URL
//! (plain TCP: loopback or a private network). With both shared, several `serve` nodes behind one load
//! balancer act as one server (issue 9).

use std::path::Path;

use anyhow::{Context, Result};
use std::sync::Arc;

use scram_dh::cluster::{HttpSessionLimits, HttpSessionStore, PenaltyStore};
use scram_dh::record::{Inserted, Record, RecordShapes, StoreError};
use scram_dh::secret::SecretBytes;
use scram_dh::session::{SessionInsert, SessionKey};
use scram_dh::{CredentialStore, MemorySessionStore, SessionStore};
use scram_dh_store::{PgOptions, PostgresCredentialStore, RedisOptions, RedisStore, SqliteCredentialStore};

/// SQLite or PostgreSQL.
#[derive(Debug)]
pub enum AnyStore {
    /// An embedded SQLite file.
    Sqlite(SqliteCredentialStore),
    /// A PostgreSQL database, pooled.
    Postgres(PostgresCredentialStore),
    /// `--db memory`: this process's memory, gone at exit (benchmarks, tests).
    Memory(scram_dh::MemoryCredentialStore),
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(db: &Path) -> bool {
    db.to_str().is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// `db` for logs and messages: a PostgreSQL URL without its password (the
/// store's own redaction).
pub fn display(db: &Path) -> String {
    let text = db.display().to_string();
    if is_postgres(db) { scram_dh_store::postgres::redact_url(&text) } else { text }
}

/// Opens the store `db` names (SQLite is created on first use; PostgreSQL is
/// migrated on connect).
///
/// # Errors
/// The store cannot be opened; the message never contains a password.
pub async fn open_store(db: &Path) -> Result<AnyStore> {
    if db == Path::new("memory") {
        return Ok(AnyStore::Memory(scram_dh::MemoryCredentialStore::default()));
    }
    if is_postgres(db) {
        let url = db.to_str().unwrap_or_default();
        let store = PostgresCredentialStore::connect(url, PgOptions::default())
            .await
            .with_context(|| format!("opening database {}", display(db)))?;
        return Ok(AnyStore::Postgres(store));
    }
    let store = SqliteCredentialStore::open(db)
        .await
        .with_context(|| format!("opening database {}", db.display()))?;
    Ok(AnyStore::Sqlite(store))
}

impl CredentialStore for AnyStore {
    async fn read(&self, username: &str) -> Result<Option<Record>, StoreError> {
        match self {
            Self::Sqlite(s) => s.read(username).await,
            Self::Postgres(s) => s.read(username).await,
            Self::Memory(s) => s.read(username).await,
        }
    }

    async fn insert(&self, record: &Record) -> Result<Inserted, StoreError> {
        match self {
            Self::Sqlite(s) => s.insert(record).await,
            Self::Postgres(s) => s.insert(record).await,
            Self::Memory(s) => s.insert(record).await,
        }
    }

    async fn replace(&self, record: &Record) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(s) => s.replace(record).await,
            Self::Postgres(s) => s.replace(record).await,
            Self::Memory(s) => s.replace(record).await,
        }
    }

    async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(s) => s.delete(username).await,
            Self::Postgres(s) => s.delete(username).await,
            Self::Memory(s) => s.delete(username).await,
        }
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Sqlite(s) => s.list().await,
            Self::Postgres(s) => s.list().await,
            Self::Memory(s) => s.list().await,
        }
    }

    async fn record_shapes(&self) -> Result<RecordShapes, StoreError> {
        match self {
            Self::Sqlite(s) => s.record_shapes().await,
            Self::Postgres(s) => s.record_shapes().await,
            Self::Memory(s) => s.record_shapes().await,
        }
    }
}

/// Whether `sessions` names a Redis server.
pub fn is_redis(sessions: &str) -> bool {
    sessions.starts_with("redis://")
}

/// `sessions` for logs and messages: a Redis URL without its password.
pub fn display_sessions(sessions: &str) -> String {
    if is_redis(sessions) { scram_dh_store::redis::redact_url(sessions) } else { sessions.to_owned() }
}

/// Refuses a `--sessions` value that is neither `memory` nor a Redis URL (a usage
/// error, shown without a password).
///
/// # Errors
/// Any other value.
pub fn check_sessions(sessions: &str) -> Result<()> {
    if sessions == "memory" || is_redis(sessions) {
        return Ok(());
    }
    Err(crate::usage(format!(
        "--sessions must be memory or a redis:// URL, not {}",
        display_sessions(sessions)
    )))
}

/// The engine's in-flight handshakes: here or in Redis.
#[derive(Debug)]
pub enum AnySessions {
    /// This process's memory.
    Memory(MemorySessionStore),
    /// A Redis server several nodes share.
    Redis(RedisStore),
}

/// Where a server keeps its sessions: the engine's store, and for the HTTP
/// sessions and the guessing penalties a shared store when there is one (`None`:
/// the fronts' own in-process tables).
pub struct SessionBackends {
    /// In-flight handshakes.
    pub handshakes: AnySessions,
    /// HTTP sessions after login.
    pub http: Option<Arc<dyn HttpSessionStore>>,
    /// Failed-proof penalties and trusted pairs.
    pub penalties: Option<Arc<dyn PenaltyStore>>,
}

/// Opens the session stores `sessions` names (`memory`, or a Redis URL), with
/// the caps of the memory store for handshakes and `http` for HTTP sessions.
///
/// # Errors
/// An unknown kind, or a Redis server that cannot be reached; the message never
/// contains a password.
pub async fn open_sessions(
    sessions: &str,
    max_sessions: usize,
    max_per_peer: usize,
    http: HttpSessionLimits,
) -> Result<SessionBackends> {
    if sessions == "memory" {
        return Ok(SessionBackends {
            handshakes: AnySessions::Memory(MemorySessionStore::new(max_sessions, max_per_peer)),
            http: None,
            penalties: None,
        });
    }
    check_sessions(sessions)?;
    let mut options = RedisOptions::new(sessions);
    options.max_sessions = max_sessions;
    options.max_sessions_per_peer = max_per_peer;
    options.http = http;
    let store = RedisStore::connect(options)
        .await
        .with_context(|| format!("opening session store {}", display_sessions(sessions)))?;
    Ok(SessionBackends {
        http: Some(Arc::new(store.clone())),
        penalties: Some(Arc::new(store.clone())),
        handshakes: AnySessions::Redis(store),
    })
}

impl SessionStore for AnySessions {
    async fn probe(&self, key: &SessionKey, peer: &str, now_ms: u64) -> Result<SessionInsert, StoreError> {
        match self {
            Self::Memory(s) => s.probe(key, peer, now_ms).await,
            Self::Redis(s) => s.probe(key, peer, now_ms).await,
        }
    }

    async fn insert(
        &self,
        key: &SessionKey,
        peer: &str,
        value: SecretBytes,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<SessionInsert, StoreError> {
        match self {
            Self::Memory(s) => s.insert(key, peer, value, now_ms, ttl_ms).await,
            Self::Redis(s) => s.insert(key, peer, value, now_ms, ttl_ms).await,
        }
    }

    async fn take(&self, key: &SessionKey, now_ms: u64) -> Result<Option<SecretBytes>, StoreError> {
        match self {
            Self::Memory(s) => s.take(key, now_ms).await,
            Self::Redis(s) => s.take(key, now_ms).await,
        }
    }

    async fn shared_live(&self, now_ms: u64) -> Result<Option<usize>, StoreError> {
        match self {
            Self::Memory(s) => s.shared_live(now_ms).await,
            Self::Redis(s) => s.shared_live(now_ms).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_shown_without_their_password() {
        let p = |s: &str| display(Path::new(s));
        assert_eq!(p("postgres://scram:s3cr@t@db:5432/users"), "postgres://scram:***@db:5432/users");
        // The store scrubs a `password=` parameter to the end of the URL.
        assert_eq!(
            p("postgresql://u@h/d?sslmode=disable&password=xyzzy&a=b"),
            "postgresql://u@h/d?sslmode=disable&password=***"
        );
        assert_eq!(p("postgres://h"), "postgres://h");
        assert_eq!(p("/var/lib/scram-dh/users.db"), "/var/lib/scram-dh/users.db");
        assert!(is_postgres(Path::new("postgresql://h/d")) && !is_postgres(Path::new("users.db")));
    }

    #[test]
    fn redis_urls_are_shown_without_their_password() {
        assert_eq!(display_sessions("redis://:hunter2@127.0.0.1:6379/"), "redis://:***@127.0.0.1:6379/");
        assert_eq!(display_sessions("memory"), "memory");
        assert!(is_redis("redis://h") && !is_redis("rediss://h") && !is_redis("memory"));
    }
}
