//! What `tests/store_suite.rs` runs its cases against: one fixture per backend,
//! and a throwaway PostgreSQL 15 cluster per test process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod pg;
pub mod redis;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use scram_dh::MemoryCredentialStore;
use scram_dh_store::{CredentialStore, PgOptions, PostgresCredentialStore, SqliteCredentialStore};

/// An empty backend, and any number of store handles onto it.
pub trait Fixture: Sized + Send + Sync {
    type Store: CredentialStore + Clone + 'static;
    /// A fresh, empty backend.
    fn new() -> impl Future<Output = Self> + Send;
    /// A new store handle onto this backend (its own connections where the
    /// backend has any).
    fn handle(&self) -> impl Future<Output = Self::Store> + Send;
}

pub struct Memory(Arc<MemoryCredentialStore>);

impl Fixture for Memory {
    type Store = Arc<MemoryCredentialStore>;
    async fn new() -> Self {
        Self(Arc::new(MemoryCredentialStore::default()))
    }
    async fn handle(&self) -> Self::Store {
        Arc::clone(&self.0)
    }
}

pub struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture for Sqlite {
    type Store = SqliteCredentialStore;
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        Self { _dir: dir, path }
    }
    async fn handle(&self) -> Self::Store {
        SqliteCredentialStore::open(&self.path).await.unwrap()
    }
}

/// A fresh database in this process's shared cluster, owned by the test role.
pub struct Postgres {
    pub cluster: Arc<pg::Cluster>,
    pub url: String,
    pub dbname: String,
}

impl Postgres {
    pub fn options() -> PgOptions {
        PgOptions::default().with_pool_size(8)
    }
}

impl Fixture for Postgres {
    type Store = PostgresCredentialStore;
    async fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let cluster = pg::shared();
        let dbname = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        cluster.admin(&format!("CREATE DATABASE {dbname} OWNER {}", pg::ROLE)).await;
        let url = cluster.url(&dbname);
        Self { cluster, url, dbname }
    }
    async fn handle(&self) -> Self::Store {
        PostgresCredentialStore::connect(&self.url, Self::options()).await.unwrap()
    }
}
