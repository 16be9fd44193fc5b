//! One credential-store test suite, run against every backend: the in-memory
//! store of the core crate, SQLite, and PostgreSQL (a throwaway cluster this test
//! process starts; it fails, never skips, when PostgreSQL cannot start). Each case
//! is a generic async fn over [`support::Fixture`]; `suite!` instantiates them all
//! for one backend. PostgreSQL-only cases (migrations under concurrency, the
//! database's own constraints, a killed server) follow in `postgres_only`.
#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use scram_dh::Labels;
use scram_dh::record::{RecordShape, RecordShapes};
use scram_dh::secret::{ServerKey, StoredKey};
use scram_dh_store::{CredentialStore, Inserted, Record};
use support::Fixture;

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

fn assert_same(got: &Record, want: &Record) {
    assert_eq!(got.username, want.username);
    assert_eq!(got.salt, want.salt, "salt of {:?}", want.username);
    assert_eq!(got.ic, want.ic);
    assert_eq!(got.stored_key.expose(), want.stored_key.expose());
    assert_eq!(got.server_key.expose(), want.server_key.expose());
    assert_eq!(got.created, want.created);
    assert_eq!(got.labels, want.labels);
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------
// The cases, for any backend.

async fn round_trip_is_byte_exact<F: Fixture>(f: &F) {
    let store = f.handle().await;
    let mut want = Vec::new();
    for (i, salt_len) in (16..=64usize).step_by(8).enumerate() {
        let i = u8::try_from(i).unwrap();
        want.push(Record {
            username: format!("user{salt_len}"),
            // Every byte value, 0x00 and 0xff included (not UTF-8).
            salt: (0..salt_len).map(|b| (b as u8).wrapping_mul(37).wrapping_add(i)).collect(),
            ic: [4096, 10_000, 600_000, i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX][usize::from(i) % 6],
            stored_key: StoredKey::from_bytes(core::array::from_fn(|b| (b as u8) ^ i)),
            server_key: ServerKey::from_bytes(core::array::from_fn(|b| (255 - b as u8) ^ i)),
            created: [0, 1_700_000_000, i64::MAX as u64][usize::from(i) % 3],
            labels: if i % 2 == 0 { Labels::Random } else { Labels::Rfc },
        });
    }
    for r in &want {
        assert_eq!(store.insert(r).await.unwrap(), Inserted::Inserted);
    }
    let again = f.handle().await;
    for r in &want {
        assert_same(&store.read(&r.username).await.unwrap().unwrap(), r);
        assert_same(&again.read(&r.username).await.unwrap().unwrap(), r);
    }
    assert!(store.read("nobody").await.unwrap().is_none());
}

async fn insert_is_insert_if_absent<F: Fixture>(f: &F) {
    let store = f.handle().await;
    let first = record("alice", 1);
    assert_eq!(store.insert(&first).await.unwrap(), Inserted::Inserted);
    assert_eq!(store.insert(&record("alice", 9)).await.unwrap(), Inserted::AlreadyExists);
    assert_eq!(store.insert(&first).await.unwrap(), Inserted::AlreadyExists);
    assert_same(&store.read("alice").await.unwrap().unwrap(), &first);
    assert_eq!(store.list().await.unwrap(), ["alice"]);
}

async fn replace_needs_an_existing_user<F: Fixture>(f: &F) {
    let store = f.handle().await;
    assert!(!store.replace(&record("alice", 1)).await.unwrap(), "replace of an absent user");
    assert!(store.read("alice").await.unwrap().is_none(), "replace must not insert");
    assert!(store.list().await.unwrap().is_empty());

    store.insert(&record("alice", 1)).await.unwrap();
    store.insert(&record("bob", 2)).await.unwrap();
    let changed = Record { labels: Labels::Rfc, ic: 10_000, salt: vec![7; 16], ..record("alice", 7) };
    assert!(store.replace(&changed).await.unwrap());
    assert_same(&store.read("alice").await.unwrap().unwrap(), &changed);
    assert_same(&store.read("bob").await.unwrap().unwrap(), &record("bob", 2));
}

async fn delete_removes_one_user<F: Fixture>(f: &F) {
    let store = f.handle().await;
    assert!(!store.delete("alice").await.unwrap());
    store.insert(&record("alice", 1)).await.unwrap();
    store.insert(&record("bob", 2)).await.unwrap();
    assert!(store.delete("alice").await.unwrap());
    assert!(!store.delete("alice").await.unwrap());
    assert!(store.read("alice").await.unwrap().is_none());
    assert_eq!(store.list().await.unwrap(), ["bob"]);
    // The name is free again.
    assert_eq!(store.insert(&record("alice", 3)).await.unwrap(), Inserted::Inserted);
    assert_same(&store.read("alice").await.unwrap().unwrap(), &record("alice", 3));
}

async fn list_is_sorted_by_bytes<F: Fixture>(f: &F) {
    let store = f.handle().await;
    assert!(store.list().await.unwrap().is_empty());
    let names = ["mallory", "alice", "Zed", "bob", "émile", "Émile", "用户", "a", "ab", "B"];
    for (seed, name) in names.iter().enumerate() {
        store.insert(&record(name, u8::try_from(seed).unwrap())).await.unwrap();
    }
    let mut want: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    want.sort(); // `str`'s Ord: UTF-8 byte order.
    assert_eq!(store.list().await.unwrap(), want);
}

async fn non_ascii_usernames_round_trip<F: Fixture>(f: &F) {
    let store = f.handle().await;
    let names = ["émile", "Ωmega", "用户", "user name", "o'brien", "quote\"d", "\u{1F600}"];
    for (seed, name) in names.iter().enumerate() {
        let r = record(name, u8::try_from(seed).unwrap());
        assert_eq!(store.insert(&r).await.unwrap(), Inserted::Inserted, "{name:?}");
        assert_same(&store.read(name).await.unwrap().unwrap(), &r);
    }
    // Lookups are exact: no case folding, no normalisation, no prefix match.
    for other in ["Émile", "e\u{0301}mile", "ωmega", "用", "user"] {
        assert!(store.read(other).await.unwrap().is_none(), "{other:?}");
    }
}

async fn record_shapes_is_a_histogram<F: Fixture>(f: &F) {
    let store = f.handle().await;
    assert!(store.record_shapes().await.unwrap().is_empty());
    let mut n = 0u8;
    for (ic, salt_len, count) in [(4096u32, 32usize, 3u8), (8192, 16, 2), (4096, 64, 1)] {
        for _ in 0..count {
            n += 1;
            // 0xff bytes: not UTF-8, so a character count would differ.
            let r = Record { ic, salt: vec![0xff; salt_len], ..record(&format!("u{n}"), n) };
            store.insert(&r).await.unwrap();
        }
    }
    let mut want = RecordShapes::new();
    want.insert(RecordShape { ic: 4096, salt_len: 32 }, 3);
    want.insert(RecordShape { ic: 8192, salt_len: 16 }, 2);
    want.insert(RecordShape { ic: 4096, salt_len: 64 }, 1);
    assert_eq!(store.record_shapes().await.unwrap(), want);
    store.delete("u1").await.unwrap();
    want.insert(RecordShape { ic: 4096, salt_len: 32 }, 2);
    assert_eq!(store.record_shapes().await.unwrap(), want);
}

async fn concurrent_inserts_across_handles_have_one_winner<F: Fixture>(f: &F) {
    let handles = [f.handle().await, f.handle().await, f.handle().await];
    let mut tasks = Vec::new();
    for seed in 0..50u8 {
        let store = handles[usize::from(seed) % handles.len()].clone();
        tasks.push(tokio::spawn(async move { (seed, store.insert(&record("alice", seed)).await.unwrap()) }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (seed, outcome) = task.await.unwrap();
        if outcome == Inserted::Inserted {
            winners.push(seed);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    for store in &handles {
        assert_same(&store.read("alice").await.unwrap().unwrap(), &record("alice", winners[0]));
        assert_eq!(store.list().await.unwrap(), ["alice"]);
    }
}

async fn unstorable_records_leave_nothing_behind<F: Fixture>(f: &F) {
    let store = f.handle().await;
    // Unix seconds past i64::MAX fit no SQL integer column.
    let far = Record { created: u64::MAX, ..record("alice", 1) };
    let err = store.insert(&far).await;
    // The memory store has no integer column: it may keep it.
    if err.is_err() {
        assert!(store.read("alice").await.unwrap().is_none());
        assert!(store.list().await.unwrap().is_empty());
        let good = record("alice", 1);
        assert_eq!(store.insert(&good).await.unwrap(), Inserted::Inserted);
        assert!(store.replace(&far).await.is_err());
        assert_same(&store.read("alice").await.unwrap().unwrap(), &good);
    }
}

macro_rules! cases {
    ($fixture:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = <$fixture as Fixture>::new().await;
                super::$case(&fixture).await;
            }
        )*
    };
}

/// Every case of the suite, for one backend.
macro_rules! suite {
    ($backend:ident: $fixture:ty) => {
        mod $backend {
            use super::*;
            cases!($fixture;
                round_trip_is_byte_exact,
                insert_is_insert_if_absent,
                replace_needs_an_existing_user,
                delete_removes_one_user,
                list_is_sorted_by_bytes,
                non_ascii_usernames_round_trip,
                record_shapes_is_a_histogram,
                concurrent_inserts_across_handles_have_one_winner,
                unstorable_records_leave_nothing_behind,
            );
        }
    };
}

suite!(memory: support::Memory);
suite!(sqlite: support::Sqlite);
suite!(postgres: support::Postgres);

// ---------------------------------------------------------------------------
// PostgreSQL only.

mod postgres_only {
    use super::*;
    use scram_dh_store::{PgOptions, PostgresCredentialStore};
    use support::pg::{self, Cluster, PASSWORD};
    use tokio_postgres::error::SqlState;

    /// username, salt, ic, stored_key, server_key, created, labels; the SQLSTATE.
    type BadRow<'a> = (&'a str, &'a Vec<u8>, i64, &'a Vec<u8>, &'a Vec<u8>, i64, &'a str, SqlState);

    fn no_secret(msg: &str) {
        assert!(!msg.contains(PASSWORD), "password in {msg:?}");
        assert!(!msg.contains("S3cret"), "password in {msg:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_are_idempotent_when_stores_connect_at_once() {
        let f = support::Postgres::new().await;
        let opts = support::Postgres::options;
        let (a, b, c) = tokio::join!(
            PostgresCredentialStore::connect(&f.url, opts()),
            PostgresCredentialStore::connect(&f.url, opts()),
            PostgresCredentialStore::connect(&f.url, opts()),
        );
        let (a, b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
        assert_eq!(a.insert(&record("alice", 1)).await.unwrap(), Inserted::Inserted);
        assert_eq!(b.insert(&record("alice", 2)).await.unwrap(), Inserted::AlreadyExists);
        // Connecting again later changes nothing and keeps the data.
        let d = PostgresCredentialStore::connect(&f.url, opts()).await.unwrap();
        assert_same(&d.read("alice").await.unwrap().unwrap(), &record("alice", 1));

        let admin = f.cluster.connect_superuser(&f.dbname).await;
        let rows = admin.query("SELECT version FROM scram_dh_schema", &[]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, i32>(0), 1);
        let tables: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE tablename IN ('scram_dh_schema', 'scram_dh_users')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn future_schema_version_is_refused() {
        let f = support::Postgres::new().await;
        drop(f.handle().await);
        let admin = f.cluster.connect_superuser(&f.dbname).await;
        admin.batch_execute("UPDATE scram_dh_schema SET version = 99").await.unwrap();
        let err = PostgresCredentialStore::connect(&f.url, support::Postgres::options()).await.unwrap_err();
        assert!(err.0.contains("99") && err.0.contains("newer"), "{err}");
        no_secret(&err.0);
    }

    /// The rules hold in the database itself: rows written by SQL, past the store,
    /// are refused by the CHECKs and the primary key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn database_constraints_reject_bad_rows() {
        let f = support::Postgres::new().await;
        let store = f.handle().await;
        store.insert(&record("alice", 1)).await.unwrap();
        let (client, conn) = tokio_postgres::connect(&f.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let insert =
            "INSERT INTO scram_dh_users (username, salt, ic, stored_key, server_key, created, labels)
                      VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let key = vec![0xABu8; 32];
        let short = vec![0xCDu8; 31];
        let salt = vec![1u8; 16];
        let empty: Vec<u8> = Vec::new();
        let cases: [BadRow<'_>; 8] = [
            ("low_ic", &salt, 4095, &key, &key, 0, "random", SqlState::CHECK_VIOLATION),
            ("huge_ic", &salt, 1 << 32, &key, &key, 0, "random", SqlState::CHECK_VIOLATION),
            ("short_stored", &salt, 4096, &short, &key, 0, "random", SqlState::CHECK_VIOLATION),
            ("short_server", &salt, 4096, &key, &short, 0, "random", SqlState::CHECK_VIOLATION),
            ("empty_salt", &empty, 4096, &key, &key, 0, "random", SqlState::CHECK_VIOLATION),
            ("bad_labels", &salt, 4096, &key, &key, 0, "plain", SqlState::CHECK_VIOLATION),
            ("negative_created", &salt, 4096, &key, &key, -1, "rfc", SqlState::CHECK_VIOLATION),
            ("alice", &salt, 4096, &key, &key, 0, "rfc", SqlState::UNIQUE_VIOLATION),
        ];
        for (name, salt, ic, sk, svk, created, labels, code) in cases {
            let err =
                client.execute(insert, &[&name, salt, &ic, sk, svk, &created, &labels]).await.unwrap_err();
            assert_eq!(err.code(), Some(&code), "{name}: {err:?}");
        }
        // NULLs too.
        let err = client
            .execute(
                "INSERT INTO scram_dh_users (username, ic, stored_key, server_key, created, labels)
                 VALUES ('nosalt', 4096, $1, $1, 0, 'rfc')",
                &[&key],
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::NOT_NULL_VIOLATION), "{err:?}");
        assert_eq!(store.list().await.unwrap(), ["alice"]);
        assert_same(&store.read("alice").await.unwrap().unwrap(), &record("alice", 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connection_errors_are_clear_and_redacted() {
        let f = support::Postgres::new().await;
        let fast = PgOptions::default().with_connect_timeout(Duration::from_secs(2));

        // Wrong password: refused for good (not retried), the user named, no password.
        let wrong = f.url.replace(PASSWORD, "Wrong-Pass-123");
        let err = PostgresCredentialStore::connect(&wrong, fast.clone()).await.unwrap_err();
        assert!(err.0.contains("password authentication failed"), "{err}");
        assert!(!err.0.contains("Wrong-Pass-123") && !err.0.contains("gave up"), "{err}");

        // Nothing listening: retried, then a clear error naming the target.
        let port = scram_dh_testkit::free_port();
        let closed = format!("postgres://someone:{PASSWORD}@127.0.0.1:{port}/db");
        let start = Instant::now();
        let err = PostgresCredentialStore::connect(&closed, fast.clone()).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        assert!(err.0.contains(&format!("someone@127.0.0.1:{port}/db")), "{err}");
        assert!(err.0.contains("gave up after 3 attempts"), "{err}");
        assert!(err.0.to_lowercase().contains("refused"), "{err}");
        no_secret(&err.0);

        // A URL that does not parse is reported without its password.
        let bad = format!("postgres://someone:{PASSWORD}@127.0.0.1:notaport/db");
        let err = PostgresCredentialStore::connect(&bad, fast).await.unwrap_err();
        assert!(err.0.contains("invalid connection URL") && err.0.contains("someone:***@"), "{err}");
        no_secret(&err.0);

        let store = f.handle().await;
        let shown = format!("{store:?}");
        assert!(shown.contains(&f.dbname), "{shown}");
        no_secret(&shown);
    }

    /// A killed server (`pg_ctl stop -m immediate`) makes calls fail with a clear
    /// error, never a panic nor a half-written record; the same store object works
    /// again by itself once the server is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn store_survives_a_killed_server() {
        // Its own cluster: killing the shared one would break the other tests.
        let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
        cluster.admin(&format!("CREATE DATABASE outage OWNER {}", pg::ROLE)).await;
        let options = PgOptions::default()
            .with_pool_size(4)
            .with_connect_timeout(Duration::from_secs(2))
            .with_retries(3, Duration::from_millis(50));
        let store = PostgresCredentialStore::connect(&cluster.url("outage"), options).await.unwrap();
        store.insert(&record("alice", 1)).await.unwrap();
        // Warm the pool: several connections that the kill will break.
        let warm = tokio::join!(store.read("alice"), store.read("alice"), store.read("alice"));
        for r in [warm.0, warm.1, warm.2] {
            assert!(r.unwrap().is_some());
        }

        cluster.kill();
        let start = Instant::now();
        let read = store.read("alice").await.unwrap_err();
        let insert = store.insert(&record("bob", 2)).await.unwrap_err();
        let replace = store.replace(&record("alice", 9)).await.unwrap_err();
        let delete = store.delete("alice").await.unwrap_err();
        let list = store.list().await.unwrap_err();
        let shapes = store.record_shapes().await.unwrap_err();
        let failing = start.elapsed();
        for err in [&read, &insert, &replace, &delete, &list, &shapes] {
            assert!(err.0.starts_with("postgres credential store (scram_store@127.0.0.1:"), "{err}");
            assert!(err.0.contains("gave up after 3 attempts"), "{err}");
            no_secret(&err.0);
        }
        assert!(failing < Duration::from_secs(10), "six failing calls took {failing:?}");

        cluster.pg_ctl_start();
        let back = Instant::now();
        let alice = loop {
            match store.read("alice").await {
                Ok(r) => break r,
                Err(e) => {
                    assert!(back.elapsed() < Duration::from_secs(10), "not back after 10 s: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let resumed = back.elapsed();
        assert!(resumed < Duration::from_secs(5), "resumed after {resumed:?}");
        // Nothing of the failed writes landed, whole or in part.
        assert_same(&alice.unwrap(), &record("alice", 1));
        assert!(store.read("bob").await.unwrap().is_none());
        assert_eq!(store.list().await.unwrap(), ["alice"]);
        assert_eq!(store.insert(&record("bob", 2)).await.unwrap(), Inserted::Inserted);
        assert!(store.replace(&record("alice", 9)).await.unwrap());
        assert_same(&store.read("alice").await.unwrap().unwrap(), &record("alice", 9));
        eprintln!(
            "killed server: six calls failed in {failing:?}; service resumed {resumed:?} after pg_ctl start"
        );
        drop(cluster);
    }
}
