//! The SQLite credential store against a real file on disk.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};

use scram_dh::Labels;
use scram_dh::secret::{ServerKey, StoredKey};
use scram_dh_store::{CredentialStore, Inserted, Record, SqliteCredentialStore};

fn record(username: &str, seed: u8) -> Record {
    Record {
        username: username.to_owned(),
        salt: vec![seed; 32],
        ic: 4096,
        stored_key: StoredKey::from_bytes([seed.wrapping_add(1); 32]),
        server_key: ServerKey::from_bytes([seed.wrapping_add(2); 32]),
        created: 1_700_000_000 + u64::from(seed),
        labels: Labels::Random,
    }
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("users.db")
}

async fn fresh() -> (tempfile::TempDir, SqliteCredentialStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteCredentialStore::open(db_path(&dir)).await.unwrap();
    (dir, store)
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_keeps_every_field() {
    let (_dir, store) = fresh().await;
    let random = record("alice", 1);
    let rfc = Record {
        username: "bob".into(),
        salt: vec![0, 1, 2, 255, 0],
        ic: u32::MAX,
        stored_key: StoredKey::from_bytes(core::array::from_fn(|i| i as u8)),
        server_key: ServerKey::from_bytes(core::array::from_fn(|i| 255 - i as u8)),
        created: i64::MAX as u64,
        labels: Labels::Rfc,
    };
    assert_eq!(store.insert(&random).await.unwrap(), Inserted::Inserted);
    assert_eq!(store.insert(&rfc).await.unwrap(), Inserted::Inserted);

    for want in [&random, &rfc] {
        let got = store.read(&want.username).await.unwrap().unwrap();
        assert_eq!(got.username, want.username);
        assert_eq!(got.salt, want.salt);
        assert_eq!(got.ic, want.ic);
        assert_eq!(got.stored_key.expose(), want.stored_key.expose());
        assert_eq!(got.server_key.expose(), want.server_key.expose());
        assert_eq!(got.created, want.created);
        assert_eq!(got.labels, want.labels);
        assert_eq!(&got, want);
    }
    assert!(store.read("carol").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn insert_never_overwrites() {
    let (_dir, store) = fresh().await;
    let first = record("alice", 1);
    assert_eq!(store.insert(&first).await.unwrap(), Inserted::Inserted);
    assert_eq!(store.insert(&record("alice", 9)).await.unwrap(), Inserted::AlreadyExists);
    assert_eq!(store.read("alice").await.unwrap().unwrap(), first);
    assert_eq!(store.list().await.unwrap(), ["alice"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_delete_list() {
    let (_dir, store) = fresh().await;
    assert!(!store.replace(&record("alice", 1)).await.unwrap(), "replace of an absent user");
    assert!(store.read("alice").await.unwrap().is_none(), "replace must not insert");
    assert!(!store.delete("alice").await.unwrap());

    for (name, seed) in [("mallory", 3), ("alice", 1), ("Zed", 4), ("bob", 2), ("émile", 5)] {
        assert_eq!(store.insert(&record(name, seed)).await.unwrap(), Inserted::Inserted);
    }
    // Byte order, as `str`'s Ord: uppercase before lowercase, non-ASCII last.
    let mut want = vec!["Zed", "alice", "bob", "mallory", "émile"];
    assert_eq!(store.list().await.unwrap(), want);

    let mut changed = record("alice", 7);
    changed.labels = Labels::Rfc;
    changed.ic = 10_000;
    assert!(store.replace(&changed).await.unwrap());
    assert_eq!(store.read("alice").await.unwrap().unwrap(), changed);
    assert_eq!(store.read("bob").await.unwrap().unwrap(), record("bob", 2), "others untouched");

    assert!(store.delete("mallory").await.unwrap());
    assert!(!store.delete("mallory").await.unwrap());
    assert!(store.read("mallory").await.unwrap().is_none());
    want.retain(|n| *n != "mallory");
    assert_eq!(store.list().await.unwrap(), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_store_lists_nothing() {
    let (_dir, store) = fresh().await;
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn reopen_keeps_records_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = SqliteCredentialStore::open(&path).await.unwrap();
        store.insert(&record("alice", 1)).await.unwrap();
        store.insert(&record("bob", 2)).await.unwrap();
    }
    for _ in 0..3 {
        let store = SqliteCredentialStore::open(&path).await.unwrap();
        assert_eq!(store.list().await.unwrap(), ["alice", "bob"]);
        assert_eq!(store.read("alice").await.unwrap().unwrap(), record("alice", 1));
    }
    let conn = raw(&path);
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 1);
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(tables, 1);
    let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal", "WAL mode is persistent in the file");
}

#[tokio::test(flavor = "multi_thread")]
async fn future_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    raw(&path).pragma_update(None, "user_version", 99).unwrap();
    let err = SqliteCredentialStore::open(&path).await.unwrap_err();
    assert!(err.0.contains("99") && err.0.contains("newer"), "{err}");
    // Refused before touching it: still no table.
    let conn = raw(&path);
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_and_garbage_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteCredentialStore::open(dir.path()).await.unwrap_err();
    assert!(err.0.contains("directory"), "{err}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    assert!(SqliteCredentialStore::open(&garbage).await.is_err());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;

    let (dir, store) = fresh().await;
    store.insert(&record("alice", 1)).await.unwrap();
    let path = db_path(&dir);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode {mode:o}");
    // SQLite gives its side files the database file's mode.
    for side in ["users.db-wal", "users.db-shm"] {
        let side = dir.path().join(side);
        if let Ok(meta) = std::fs::metadata(&side) {
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} mode {mode:o}", side.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_inserts_of_one_username_have_one_winner() {
    let (_dir, store) = fresh().await;
    let tasks: Vec<_> = (0..100u8)
        .map(|seed| {
            let store = store.clone();
            tokio::spawn(async move { (seed, store.insert(&record("alice", seed)).await.unwrap()) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (seed, outcome) = task.await.unwrap();
        if outcome == Inserted::Inserted {
            winners.push(seed);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(store.read("alice").await.unwrap().unwrap(), record("alice", winners[0]));
    assert_eq!(store.list().await.unwrap(), ["alice"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_reads_and_writes() {
    let (_dir, store) = fresh().await;
    let tasks: Vec<_> = (0..50u8)
        .map(|seed| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = format!("user{seed:02}");
                assert_eq!(store.insert(&record(&name, seed)).await.unwrap(), Inserted::Inserted);
                for _ in 0..5 {
                    assert_eq!(store.read(&name).await.unwrap().unwrap(), record(&name, seed));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let want: Vec<String> = (0..50).map(|s| format!("user{s:02}")).collect();
    assert_eq!(store.list().await.unwrap(), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_violations_leave_nothing_behind() {
    let (_dir, store) = fresh().await;
    let mut low = record("alice", 1);
    low.ic = 100;
    let err = store.insert(&low).await.unwrap_err();
    assert!(err.0.contains("CHECK"), "{err}");
    assert!(store.read("alice").await.unwrap().is_none());
    assert!(store.list().await.unwrap().is_empty());

    let mut empty_salt = record("alice", 1);
    empty_salt.salt.clear();
    assert!(store.insert(&empty_salt).await.is_err());

    let mut far_future = record("alice", 1);
    far_future.created = u64::MAX;
    assert!(store.insert(&far_future).await.is_err());
    assert!(store.list().await.unwrap().is_empty());

    // The store still works, and a bad replace keeps the old record.
    let good = record("alice", 1);
    assert_eq!(store.insert(&good).await.unwrap(), Inserted::Inserted);
    assert!(store.replace(&low).await.is_err());
    assert_eq!(store.read("alice").await.unwrap().unwrap(), good);
}

/// Writes a row past the CHECK constraints, as a damaged or hand-edited file might.
fn corrupt_insert(path: &Path, username: &str, stored_key: &[u8], labels: &str) {
    let conn = raw(path);
    conn.pragma_update(None, "ignore_check_constraints", "ON").unwrap();
    conn.execute(
        "INSERT INTO users (username, salt, ic, stored_key, server_key, labels, created)
         VALUES (?1, ?2, 4096, ?3, ?4, ?5, 0)",
        rusqlite::params![username, vec![1u8; 32], stored_key, vec![0xABu8; 32], labels],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_rows_are_errors_not_panics() {
    let (dir, store) = fresh().await;
    let path = db_path(&dir);
    corrupt_insert(&path, "short", &[0xCD; 31], "random");
    corrupt_insert(&path, "badlabels", &[0xCD; 32], "plain");

    let err = store.read("short").await.unwrap_err();
    assert!(err.0.contains("short") && err.0.contains("stored_key"), "{err}");
    let err = store.read("badlabels").await.unwrap_err();
    assert!(err.0.contains("labels"), "{err}");
    // No key bytes in the message, in any spelling.
    for msg in [store.read("short").await.unwrap_err().0, store.read("badlabels").await.unwrap_err().0] {
        let lower = msg.to_lowercase();
        for key_bytes in ["cdcd", "abab", "205", "171"] {
            assert!(!lower.contains(key_bytes), "{msg}");
        }
    }
    // The rest of the store is unaffected.
    assert_eq!(store.list().await.unwrap(), ["badlabels", "short"]);
    assert!(store.delete("short").await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_prints_the_path_only() {
    let (dir, store) = fresh().await;
    store.insert(&record("alice", 1)).await.unwrap();
    let shown = format!("{store:?}");
    assert!(shown.starts_with("SqliteCredentialStore"), "{shown}");
    assert!(shown.contains(&db_path(&dir).display().to_string()), "{shown}");
    assert!(!shown.contains("alice"), "{shown}");
    assert_eq!(store.path(), db_path(&dir));
}

/// M6: the histogram of `(ic, salt length)` the mock replies imitate, from one
/// GROUP BY, counting salt bytes (not characters) and agreeing with the memory store.
#[tokio::test(flavor = "multi_thread")]
async fn m6_record_shapes_histogram() {
    use scram_dh::record::{RecordShape, RecordShapes};
    let (_dir, store) = fresh().await;
    assert!(store.record_shapes().await.unwrap().is_empty());
    let memory = scram_dh::MemoryCredentialStore::default();
    let mut n = 0u8;
    for (ic, salt_len, count) in [(4096u32, 32usize, 3u8), (8192, 16, 2), (4096, 64, 1)] {
        for _ in 0..count {
            n += 1;
            // 0xff bytes: not valid UTF-8, so a TEXT length would differ.
            let r = Record { ic, salt: vec![0xff; salt_len], ..record(&format!("u{n}"), n) };
            store.insert(&r).await.unwrap();
            memory.insert(&r).await.unwrap();
        }
    }
    let mut want = RecordShapes::new();
    want.insert(RecordShape { ic: 4096, salt_len: 32 }, 3);
    want.insert(RecordShape { ic: 8192, salt_len: 16 }, 2);
    want.insert(RecordShape { ic: 4096, salt_len: 64 }, 1);
    assert_eq!(store.record_shapes().await.unwrap(), want);
    assert_eq!(memory.record_shapes().await.unwrap(), want);
    store.delete("u1").await.unwrap();
    want.insert(RecordShape { ic: 4096, salt_len: 32 }, 2);
    assert_eq!(store.record_shapes().await.unwrap(), want);
}
