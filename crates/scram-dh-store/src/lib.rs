//! # scram-dh-store
//!
//! Persistent credential stores for `scram-dh`: implementations of
//! [`scram_dh::CredentialStore`] (SPEC 1, "credential store") that keep each user's
//! record — `{username, salt, ic, stored_key, server_key}` plus `created` and the
//! key-derivation kind (SPEC 3) — where a server restart cannot lose it.
//!
//! The in-memory store lives in the core crate
//! ([`scram_dh::MemoryCredentialStore`]); this crate adds backends that touch disk
//! or the network, each in its own module behind a feature.
//!
//! ```no_run
//! use scram_dh_store::{CredentialStore, SqliteCredentialStore};
//!
//! # async fn demo() -> Result<(), scram_dh_store::StoreError> {
//! let store = SqliteCredentialStore::open("/var/lib/scram-dh/users.db").await?;
//! for username in store.list().await? {
//!     println!("{username}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//! - `sqlite` (default): [`SqliteCredentialStore`], records in an embedded SQLite
//!   file. SQLite is compiled in (rusqlite's `bundled`), so a fresh machine needs no
//!   system library. Uses Tokio's blocking pool, so it needs a Tokio runtime.
//!
//! - `postgres` (default): [`PostgresCredentialStore`], records in a PostgreSQL
//!   database that several server nodes share (tokio-postgres with a
//!   deadpool-postgres pool, plain TCP). On by default so that
//!   `cargo test --workspace` runs its tests against a throwaway cluster; a build
//!   that wants SQLite only can say `default-features = false, features = ["sqlite"]`.
//!   Needs a Tokio runtime.
//!
//! - `redis` (default): [`RedisStore`], the state several server nodes share
//!   besides credentials, in one Redis server: the engine's in-flight handshakes
//!   ([`scram_dh::SessionStore`], SPEC 5), the HTTP sessions with their anti-replay
//!   windows ([`scram_dh::cluster::HttpSessionStore`]) and the failed-proof
//!   penalties ([`scram_dh::cluster::PenaltyStore`]); redis-rs with its
//!   reconnecting `ConnectionManager`. Needs a Tokio runtime.
//!
//! Features choose backends only; they never change protocol behaviour.

#![forbid(unsafe_code)]

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use scram_dh::record::{CredentialStore, Inserted, Record, StoreError};

#[cfg(feature = "redis")]
pub use self::redis::{RedisOptions, RedisStore};
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PostgresCredentialStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteCredentialStore;

/// Appends a URL's authority (`user:PASS@host:port`) with the password as `***`.
/// The userinfo ends at the last `@`; a userinfo without `:` is a user name alone.
#[cfg(any(feature = "postgres", feature = "redis"))]
fn push_redacted_authority(out: &mut String, authority: &str) {
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
}

/// One `(ic, salt length, count)` row of a `record_shapes` query as a shape and
/// its count; `None` when a value is out of range (a corrupt database).
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn shape_row(ic: i64, salt_len: i64, count: i64) -> Option<(scram_dh::record::RecordShape, u64)> {
    let shape = scram_dh::record::RecordShape {
        ic: u32::try_from(ic).ok()?,
        salt_len: usize::try_from(salt_len).ok()?,
    };
    Some((shape, u64::try_from(count).ok()?))
}
