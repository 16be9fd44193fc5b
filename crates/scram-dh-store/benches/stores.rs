//! Credential store read and insert for the in-memory store and SQLite (issue 10),
//! through the same `CredentialStore` trait the engine calls, on a Tokio runtime.
//! SQLite runs on a file in a temporary directory with the store's own settings
//! (WAL, synchronous=FULL), so an insert includes its fsync.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use scram_dh::secret::{ServerKey, StoredKey};
use scram_dh::{Labels, MemoryCredentialStore};
use scram_dh_store::{CredentialStore, Inserted, Record, SqliteCredentialStore};

fn record(username: String) -> Record {
    Record {
        username,
        salt: vec![7; 32],
        ic: 4096,
        stored_key: StoredKey::from_bytes([1; 32]),
        server_key: ServerKey::from_bytes([2; 32]),
        created: 1_700_000_000,
        labels: Labels::Random,
    }
}

fn bench_store<S: CredentialStore>(c: &mut Criterion, name: &str, rt: &tokio::runtime::Runtime, store: &S) {
    for i in 0..1000 {
        let r = record(format!("user{i}"));
        assert_eq!(rt.block_on(store.insert(&r)).unwrap(), Inserted::Inserted);
    }
    let mut g = c.benchmark_group(format!("store_{name}"));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("read_hit", |b| {
        b.iter(|| black_box(rt.block_on(store.read(black_box("user500"))).unwrap().unwrap()));
    });
    g.bench_function("read_miss", |b| {
        b.iter(|| assert!(rt.block_on(store.read(black_box("nobody"))).unwrap().is_none()));
    });
    let n = AtomicU64::new(0);
    g.bench_function("insert", |b| {
        b.iter(|| {
            let r = record(format!("new{}", n.fetch_add(1, Ordering::Relaxed)));
            assert_eq!(rt.block_on(store.insert(&r)).unwrap(), Inserted::Inserted);
        });
    });
    g.finish();
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    bench_store(c, "memory", &rt, &MemoryCredentialStore::new(10_000_000));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(SqliteCredentialStore::open(dir.path().join("bench.db"))).unwrap();
    bench_store(c, "sqlite", &rt, &sqlite);
}

criterion_group!(benches, stores);
criterion_main!(benches);
