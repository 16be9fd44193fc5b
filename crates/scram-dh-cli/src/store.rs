//! The credential store a command works on: the embedded SQLite file (the
//! default), or PostgreSQL when `--db` is a `postgres://` (or `postgresql://`) URL,
//! so that several `serve` nodes share one set of records (issue 9).

use std::path::Path;

use anyhow::{Context, Result};
use scram_dh::CredentialStore;
use scram_dh::record::{Inserted, Record, RecordShapes, StoreError};
use scram_dh_store::{PgOptions, PostgresCredentialStore, SqliteCredentialStore};

/// SQLite or PostgreSQL.
#[derive(Debug)]
pub enum AnyStore {
    /// An embedded SQLite file.
    Sqlite(SqliteCredentialStore),
    /// A PostgreSQL database, pooled.
    Postgres(PostgresCredentialStore),
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
        }
    }

    async fn insert(&self, record: &Record) -> Result<Inserted, StoreError> {
        match self {
            Self::Sqlite(s) => s.insert(record).await,
            Self::Postgres(s) => s.insert(record).await,
        }
    }

    async fn replace(&self, record: &Record) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(s) => s.replace(record).await,
            Self::Postgres(s) => s.replace(record).await,
        }
    }

    async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(s) => s.delete(username).await,
            Self::Postgres(s) => s.delete(username).await,
        }
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Sqlite(s) => s.list().await,
            Self::Postgres(s) => s.list().await,
        }
    }

    async fn record_shapes(&self) -> Result<RecordShapes, StoreError> {
        match self {
            Self::Sqlite(s) => s.record_shapes().await,
            Self::Postgres(s) => s.record_shapes().await,
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
}
