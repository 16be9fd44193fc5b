//! One session-store test suite, run against every backend of the three shared-
//! state traits: the in-memory stores of the core crate (the reference semantics)
//! and Redis (a throwaway `redis-server` this test process starts; it fails,
//! never skips, when Redis cannot start). Each case is a generic async fn over
//! [`Fixture`]; `suite!` instantiates them all for one backend. The cases run on
//! the caller's logical clock (`now_ms`), so both backends must agree on every
//! answer. Redis-only cases (a killed server, scripts flushed, key prefixes,
//! redaction) follow in `redis_only`.
#![cfg(all(feature = "redis", feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use scram_dh::MemorySessionStore;
use scram_dh::cluster::{
    HttpSessionLimits, HttpSessionRecord, HttpSessionStore, MemoryHttpSessionStore, MemoryPenaltyStore,
    PenaltyRule, PenaltyStore, WindowSwap,
};
use scram_dh::nonce::Nonce;
use scram_dh::secret::SecretBytes;
use scram_dh::session::{Phase, SessionInsert, SessionKey, SessionStore};
use scram_dh_store::{RedisOptions, RedisStore};

/// The bounds a case's stores are made with.
#[derive(Clone, Copy)]
struct Limits {
    max_sessions: usize,
    max_per_peer: usize,
    http: HttpSessionLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 1000,
            max_per_peer: 1000,
            http: HttpSessionLimits {
                idle_ms: 1000,
                lifetime_ms: 10_000,
                max_sessions: 1000,
                max_per_user: 1000,
            },
        }
    }
}

/// One empty backend, and any number of handles onto it.
trait Fixture: Sized + Send + Sync + 'static {
    type Engine: SessionStore + Clone + Send + Sync + 'static;
    fn new(limits: Limits) -> impl Future<Output = Self> + Send;
    /// A new handle (its own connection where the backend has any).
    fn engine(&self) -> impl Future<Output = Self::Engine> + Send;
    fn http(&self) -> impl Future<Output = Arc<dyn HttpSessionStore>> + Send;
    fn penalty(&self) -> impl Future<Output = Arc<dyn PenaltyStore>> + Send;
}

struct Memory {
    engine: Arc<MemorySessionStore>,
    http: Arc<MemoryHttpSessionStore>,
    penalty: Arc<MemoryPenaltyStore>,
}

impl Fixture for Memory {
    type Engine = Arc<MemorySessionStore>;
    async fn new(limits: Limits) -> Self {
        Self {
            engine: Arc::new(MemorySessionStore::new(limits.max_sessions, limits.max_per_peer)),
            http: Arc::new(MemoryHttpSessionStore::new(limits.http)),
            penalty: Arc::new(MemoryPenaltyStore::new(100_000)),
        }
    }
    async fn engine(&self) -> Self::Engine {
        Arc::clone(&self.engine)
    }
    async fn http(&self) -> Arc<dyn HttpSessionStore> {
        self.http.clone()
    }
    async fn penalty(&self) -> Arc<dyn PenaltyStore> {
        self.penalty.clone()
    }
}

/// A fresh key prefix on this process's shared Redis server.
struct Redis {
    _server: Arc<support::redis::Server>,
    options: RedisOptions,
}

fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("t{}-{}:", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl Redis {
    async fn connect(&self) -> RedisStore {
        RedisStore::connect(self.options.clone()).await.unwrap()
    }
}

impl Fixture for Redis {
    type Engine = RedisStore;
    async fn new(limits: Limits) -> Self {
        let server = support::redis::shared();
        let mut options = RedisOptions::new(server.url());
        options.prefix = unique_prefix();
        options.max_sessions = limits.max_sessions;
        options.max_sessions_per_peer = limits.max_per_peer;
        options.http = limits.http;
        Self { _server: server, options }
    }
    async fn engine(&self) -> Self::Engine {
        self.connect().await
    }
    async fn http(&self) -> Arc<dyn HttpSessionStore> {
        Arc::new(self.connect().await)
    }
    async fn penalty(&self) -> Arc<dyn PenaltyStore> {
        Arc::new(self.connect().await)
    }
}

fn key(n: u8, phase: Phase) -> SessionKey {
    SessionKey::new(phase, &Nonce::from_bytes([n; 32]))
}

fn nth_key(i: u32) -> SessionKey {
    let mut n = [7u8; 32];
    n[..4].copy_from_slice(&i.to_be_bytes());
    SessionKey::new(Phase::Authentication, &Nonce::from_bytes(n))
}

fn val(bytes: &[u8]) -> SecretBytes {
    SecretBytes::new(bytes.to_vec())
}

fn taken(v: Option<SecretBytes>) -> Option<Vec<u8>> {
    v.map(|v| v.to_vec())
}

const A: Phase = Phase::Authentication;
const R: Phase = Phase::Registration;

// ---------------------------------------------------------------------------
// Engine sessions (SessionStore).

async fn session_insert_then_take_once<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let s = f.engine().await;
    let k = key(1, A);
    // Every byte value, 0x00 and 0xff included, and more than a few KiB.
    let blob: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    assert_eq!(s.insert(&k, "p", val(&blob), 1000, 10_000).await.unwrap(), SessionInsert::Inserted);
    assert_eq!(s.insert(&k, "p", val(b"other"), 1001, 10_000).await.unwrap(), SessionInsert::Exists);
    assert_eq!(
        s.insert(&k, "q", val(b"other"), 1001, 10_000).await.unwrap(),
        SessionInsert::Exists,
        "any peer"
    );
    assert!(s.take(&key(1, R), 1002).await.unwrap().is_none(), "phases are separate keys");
    assert!(s.take(&key(1, Phase::Sasl), 1002).await.unwrap().is_none());
    assert_eq!(taken(s.take(&k, 1002).await.unwrap()), Some(blob), "byte-exact");
    assert!(s.take(&k, 1003).await.unwrap().is_none(), "single use: consumed");
    assert_eq!(s.insert(&k, "p", val(b""), 1004, 10).await.unwrap(), SessionInsert::Inserted, "free again");
    assert_eq!(taken(s.take(&k, 1005).await.unwrap()), Some(Vec::new()), "an empty value is a value");
}

async fn session_expiry_by_the_callers_clock<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let s = f.engine().await;
    let k = key(2, R);
    assert_eq!(s.insert(&k, "p", val(b"a"), 1000, 10).await.unwrap(), SessionInsert::Inserted);
    assert_eq!(taken(s.take(&k, 1009).await.unwrap()).as_deref(), Some(&b"a"[..]), "live until ttl");
    assert_eq!(s.insert(&k, "p", val(b"b"), 1000, 10).await.unwrap(), SessionInsert::Inserted);
    assert_eq!(s.insert(&k, "p", val(b"x"), 1009, 10).await.unwrap(), SessionInsert::Exists);
    assert!(s.take(&k, 1010).await.unwrap().is_none(), "expired at now + ttl");
    assert_eq!(s.insert(&k, "p", val(b"c"), 1011, 10).await.unwrap(), SessionInsert::Inserted);
    // An expired session is replaced by a new insert without anyone taking it.
    assert_eq!(s.insert(&k, "q", val(b"d"), 1021, 10).await.unwrap(), SessionInsert::Inserted);
    assert_eq!(taken(s.take(&k, 1022).await.unwrap()).as_deref(), Some(&b"d"[..]), "the new value");
    assert!(s.take(&k, 1023).await.unwrap().is_none());
}

async fn session_caps_global_and_per_peer<F: Fixture>() {
    let f = F::new(Limits { max_sessions: 3, max_per_peer: 2, ..Limits::default() }).await;
    let s = f.engine().await;
    let ins = |n: u8, peer: &'static str, now: u64| {
        let s = s.clone();
        async move { s.insert(&key(n, R), peer, val(&[n]), now, 10).await.unwrap() }
    };
    assert_eq!(ins(1, "a", 0).await, SessionInsert::Inserted);
    assert_eq!(ins(2, "a", 0).await, SessionInsert::Inserted);
    assert_eq!(ins(3, "a", 0).await, SessionInsert::Full, "per peer");
    assert_eq!(ins(3, "b", 0).await, SessionInsert::Inserted);
    assert_eq!(ins(4, "c", 0).await, SessionInsert::Full, "global");
    assert_eq!(ins(1, "c", 0).await, SessionInsert::Exists, "a live key is Exists before Full");
    // A take frees room at once, globally and for its peer.
    assert!(s.take(&key(1, R), 1).await.unwrap().is_some());
    assert_eq!(ins(4, "a", 1).await, SessionInsert::Inserted);
    assert_eq!(ins(5, "a", 1).await, SessionInsert::Full, "global again");
    // Expiry frees room without any scan by the caller.
    assert_eq!(ins(5, "c", 10).await, SessionInsert::Inserted, "the three from t=0 expired");
    assert_eq!(ins(6, "c", 10).await, SessionInsert::Inserted);
    assert_eq!(ins(7, "c", 10).await, SessionInsert::Full, "per peer (4 from t=1 still live)");
    assert_eq!(ins(7, "d", 11).await, SessionInsert::Inserted);
}

async fn session_probe_answers_like_insert_without_storing<F: Fixture>() {
    let f = F::new(Limits { max_sessions: 2, max_per_peer: 1, ..Limits::default() }).await;
    let s = f.engine().await;
    let (k1, k2, k3) = (key(1, R), key(2, R), key(3, R));
    assert_eq!(s.probe(&k1, "a", 0).await.unwrap(), SessionInsert::Inserted);
    assert!(s.take(&k1, 0).await.unwrap().is_none(), "a probe stores nothing");
    s.insert(&k1, "a", val(b"1"), 0, 10).await.unwrap();
    assert_eq!(s.probe(&k1, "b", 0).await.unwrap(), SessionInsert::Exists);
    assert_eq!(s.probe(&k2, "a", 0).await.unwrap(), SessionInsert::Full, "per peer");
    s.insert(&k2, "b", val(b"2"), 0, 10).await.unwrap();
    assert_eq!(s.probe(&k3, "c", 0).await.unwrap(), SessionInsert::Full, "global");
    assert_eq!(s.probe(&k3, "c", 10).await.unwrap(), SessionInsert::Inserted, "after expiry");
    assert_eq!(s.probe(&k1, "a", 10).await.unwrap(), SessionInsert::Inserted, "expired key is free");
    for _ in 0..5 {
        assert_eq!(s.probe(&k3, "c", 10).await.unwrap(), SessionInsert::Inserted, "probes never fill");
    }
    assert_eq!(s.insert(&k3, "c", val(b"3"), 10, 10).await.unwrap(), SessionInsert::Inserted);
    assert_eq!(taken(s.take(&k3, 11).await.unwrap()).as_deref(), Some(&b"3"[..]));
}

async fn session_concurrent_inserts_of_one_key_have_one_winner<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let mut handles = Vec::new();
    for _ in 0..5 {
        handles.push(f.engine().await);
    }
    let k = key(9, A);
    let tasks: Vec<_> = (0..50u8)
        .map(|i| {
            let s = handles[usize::from(i) % handles.len()].clone();
            tokio::spawn(async move { (i, s.insert(&k, "p", val(&[i]), 100, 10_000).await.unwrap()) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, outcome) = t.await.unwrap();
        match outcome {
            SessionInsert::Inserted => winners.push(i),
            SessionInsert::Exists => {}
            SessionInsert::Full => panic!("Full with room for 1000"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one Inserted: {winners:?}");
    // And of 50 concurrent takes, exactly one gets it: the winner's value.
    let takes: Vec<_> = (0..50usize)
        .map(|i| {
            let s = handles[i % handles.len()].clone();
            tokio::spawn(async move { s.take(&k, 101).await.unwrap() })
        })
        .collect();
    let mut got = Vec::new();
    for t in takes {
        if let Some(v) = t.await.unwrap() {
            got.push(v.to_vec());
        }
    }
    assert_eq!(got, [vec![winners[0]]], "exactly one take wins");
}

async fn session_concurrent_inserts_respect_the_caps<F: Fixture>() {
    let f = F::new(Limits { max_sessions: 10, max_per_peer: 1000, ..Limits::default() }).await;
    let g = F::new(Limits { max_sessions: 1000, max_per_peer: 5, ..Limits::default() }).await;
    for (fixture, cap, peer_of) in
        [(&f, 10, (|i| format!("peer{i}")) as fn(u32) -> String), (&g, 5, |_| "one".into())]
    {
        let mut handles = Vec::new();
        for _ in 0..5 {
            handles.push(fixture.engine().await);
        }
        let tasks: Vec<_> = (0..50u32)
            .map(|i| {
                let s = handles[i as usize % handles.len()].clone();
                let peer = peer_of(i);
                tokio::spawn(async move { s.insert(&nth_key(i), &peer, val(b"v"), 0, 10_000).await.unwrap() })
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            match t.await.unwrap() {
                SessionInsert::Inserted => inserted += 1,
                SessionInsert::Full => {}
                SessionInsert::Exists => panic!("distinct keys"),
            }
        }
        assert_eq!(inserted, cap, "exactly the cap is admitted");
    }
}

// ---------------------------------------------------------------------------
// HTTP sessions (HttpSessionStore).

fn rec(user: &str, seed: u8) -> HttpSessionRecord {
    HttpSessionRecord {
        username: user.to_owned(),
        sealed_keys: (0..80u8).map(|b| b.wrapping_mul(seed).wrapping_add(seed)).chain([0, 255]).collect(),
        window: [seed; 16],
    }
}

fn http_limits(idle_ms: u64, lifetime_ms: u64, max_sessions: usize, max_per_user: usize) -> Limits {
    Limits {
        http: HttpSessionLimits { idle_ms, lifetime_ms, max_sessions, max_per_user },
        ..Limits::default()
    }
}

async fn http_create_get_end_live<F: Fixture>() {
    let f = F::new(http_limits(1000, 10_000, 100, 10)).await;
    let s = f.http().await;
    let alice = rec("älice ☃ \u{0}x", 3);
    assert!(s.create("s1", &alice, 0).await.unwrap());
    assert_eq!(s.get("s1", 1).await.unwrap(), Some(alice.clone()), "byte-exact, non-ASCII username");
    assert_eq!(s.live(1).await.unwrap(), 1);
    assert!(!s.create("s1", &rec("bob", 4), 1).await.unwrap(), "a live id is not taken over");
    assert_eq!(s.get("s1", 1).await.unwrap(), Some(alice.clone()));
    assert!(s.create("s2", &rec("bob", 4), 1).await.unwrap());
    assert_eq!(s.live(2).await.unwrap(), 2);
    assert!(s.get("nope", 2).await.unwrap().is_none());
    s.end("s1").await.unwrap();
    assert!(s.get("s1", 3).await.unwrap().is_none());
    assert_eq!(s.live(3).await.unwrap(), 1);
    s.end("s1").await.unwrap();
    s.end("never").await.unwrap();
    assert_eq!(s.swap_window("s1", &alice.window, &[9; 16], 3).await.unwrap(), WindowSwap::Gone);
    assert_eq!(s.get("s2", 3).await.unwrap(), Some(rec("bob", 4)));
}

async fn http_caps_global_and_per_user<F: Fixture>() {
    let f = F::new(http_limits(10, 25, 3, 2)).await;
    let s = f.http().await;
    assert!(s.create("a", &rec("alice", 1), 0).await.unwrap());
    assert!(s.create("b", &rec("alice", 1), 0).await.unwrap());
    assert!(!s.create("c", &rec("alice", 1), 0).await.unwrap(), "per-user cap");
    assert!(s.create("d", &rec("bob", 1), 0).await.unwrap());
    assert!(!s.create("e", &rec("carol", 1), 0).await.unwrap(), "global cap");
    s.end("a").await.unwrap();
    assert!(s.create("c", &rec("alice", 1), 1).await.unwrap(), "end frees the user's slot");
    assert!(!s.create("f", &rec("alice", 1), 1).await.unwrap(), "per-user cap again");
    assert!(s.get("a", 1).await.unwrap().is_none());
    assert_eq!(s.live(9).await.unwrap(), 3);
    // Idle expiry frees room: b and d (t=0) end at 10, c (t=1) at 11.
    assert!(s.create("e", &rec("carol", 1), 10).await.unwrap(), "b and d idle-expired");
    assert!(s.create("f", &rec("alice", 1), 10).await.unwrap(), "b's user slot is free");
    assert!(!s.create("g", &rec("alice", 1), 10).await.unwrap(), "c and f: per-user cap");
    assert_eq!(s.live(10).await.unwrap(), 3);
    assert_eq!(s.live(11).await.unwrap(), 2, "c idle-expired");
    assert!(s.create("g", &rec("alice", 1), 11).await.unwrap());
}

async fn http_window_swap_is_compare_and_set<F: Fixture>() {
    let f = F::new(http_limits(1000, 10_000, 100, 10)).await;
    let s = f.http().await;
    let r = rec("alice", 0);
    assert!(s.create("w", &r, 0).await.unwrap());
    let (w0, w1, w2) = ([0u8; 16], [1u8; 16], [2u8; 16]);
    assert_eq!(s.swap_window("w", &w0, &w1, 1).await.unwrap(), WindowSwap::Swapped);
    assert_eq!(s.get("w", 1).await.unwrap().unwrap().window, w1);
    assert_eq!(s.swap_window("w", &w0, &w2, 2).await.unwrap(), WindowSwap::Changed, "stale old");
    assert_eq!(s.get("w", 2).await.unwrap().unwrap().window, w1, "a refused swap changes nothing");
    let mut near = w1;
    near[15] ^= 1;
    assert_eq!(s.swap_window("w", &near, &w2, 2).await.unwrap(), WindowSwap::Changed, "byte for byte");
    assert_eq!(s.swap_window("w", &w1, &w1, 3).await.unwrap(), WindowSwap::Swapped, "same window");
    assert_eq!(s.swap_window("w", &w1, &w2, 3).await.unwrap(), WindowSwap::Swapped);
    let got = s.get("w", 3).await.unwrap().unwrap();
    assert_eq!((got.username.as_str(), &got.sealed_keys, got.window), ("alice", &r.sealed_keys, w2));
    s.end("w").await.unwrap();
    assert_eq!(s.swap_window("w", &w2, &w0, 4).await.unwrap(), WindowSwap::Gone, "after end");
    assert_eq!(s.swap_window("unknown", &w0, &w1, 4).await.unwrap(), WindowSwap::Gone);
    assert!(s.create("x", &r, 10).await.unwrap());
    assert_eq!(s.swap_window("x", &w0, &w1, 1010).await.unwrap(), WindowSwap::Gone, "after idle expiry");
}

async fn http_idle_extension_never_past_lifetime<F: Fixture>() {
    let f = F::new(http_limits(10, 25, 3, 2)).await;
    let s = f.http().await;
    let r = rec("alice", 0);
    assert!(s.create("a", &r, 0).await.unwrap());
    assert!(s.create("b", &r, 0).await.unwrap());
    let one = [1u8; 16];
    assert_eq!(s.swap_window("a", &[0; 16], &one, 8).await.unwrap(), WindowSwap::Swapped);
    assert_eq!(s.get("a", 17).await.unwrap().unwrap().window, one, "kept alive by use");
    assert!(s.get("b", 17).await.unwrap().is_none(), "idle-expired");
    assert!(s.get("b", 10).await.unwrap().is_none(), "at exactly idle_ms");
    assert!(s.get("a", 9).await.unwrap().is_some());
    assert_eq!(s.swap_window("a", &one, &[2; 16], 16).await.unwrap(), WindowSwap::Swapped);
    assert!(s.get("a", 24).await.unwrap().is_some(), "16 + 10 = 26 > 25: capped at the lifetime");
    assert!(s.get("a", 25).await.unwrap().is_none(), "lifetime over");
    assert_eq!(s.swap_window("a", &[2; 16], &[3; 16], 25).await.unwrap(), WindowSwap::Gone);
    assert_eq!(s.live(25).await.unwrap(), 0);
    assert!(s.create("a", &r, 30).await.unwrap(), "an expired id may be created again");
    s.end("a").await.unwrap();
    assert_eq!(s.live(30).await.unwrap(), 0);
}

async fn http_concurrent_swaps_have_one_winner<F: Fixture>() {
    let f = F::new(http_limits(60_000, 600_000, 100, 10)).await;
    let mut handles = Vec::new();
    for _ in 0..5 {
        handles.push(f.http().await);
    }
    assert!(handles[0].create("c", &rec("alice", 0), 0).await.unwrap());
    let tasks: Vec<_> = (1..=50u8)
        .map(|i| {
            let s = Arc::clone(&handles[usize::from(i) % handles.len()]);
            tokio::spawn(async move { (i, s.swap_window("c", &[0; 16], &[i; 16], 5).await.unwrap()) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, outcome) = t.await.unwrap();
        match outcome {
            WindowSwap::Swapped => winners.push(i),
            WindowSwap::Changed => {}
            WindowSwap::Gone => panic!("session vanished"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one Swapped: {winners:?}");
    assert_eq!(handles[1].get("c", 6).await.unwrap().unwrap().window, [winners[0]; 16]);
}

// ---------------------------------------------------------------------------
// Penalties (PenaltyStore).

async fn penalty_waits_double_to_the_cap<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let s = f.penalty().await;
    let rule = PenaltyRule { free: 2, base_ms: 100, max_ms: 1000, forget_ms: 1_000_000 };
    assert_eq!(s.wait("k", 0).await.unwrap(), None, "unknown key");
    let mut now = 1000;
    let mut waits = Vec::new();
    for n in 1..=9 {
        let w = s.fail("k", &rule, now).await.unwrap();
        assert_eq!(w, rule.wait_after(n), "failure {n}");
        waits.push(w);
        match w {
            Some(w) => {
                assert_eq!(s.wait("k", now).await.unwrap(), Some(w));
                assert_eq!(s.wait("k", now + w - 1).await.unwrap(), Some(1));
                assert_eq!(s.wait("k", now + w).await.unwrap(), None, "over at now + wait");
            }
            None => assert_eq!(s.wait("k", now).await.unwrap(), None),
        }
        now += 2000;
    }
    assert_eq!(
        waits,
        [None, None, Some(100), Some(200), Some(400), Some(800), Some(1000), Some(1000), Some(1000)]
    );
    // A failure during a wait still counts (and restarts the wait).
    assert_eq!(s.fail("k", &rule, now).await.unwrap(), Some(1000));
    assert_eq!(s.fail("k", &rule, now + 1).await.unwrap(), Some(1000));
    assert_eq!(s.wait("k", now + 500).await.unwrap(), Some(501));
}

async fn penalty_forget_and_clear<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let s = f.penalty().await;
    let r = PenaltyRule { free: 1, base_ms: 100, max_ms: 1000, forget_ms: 5000 };
    assert_eq!(s.fail("a", &r, 0).await.unwrap(), None);
    assert_eq!(s.fail("a", &r, 10).await.unwrap(), Some(100));
    assert_eq!(s.wait("a", 50).await.unwrap(), Some(60));
    assert_eq!(s.wait("a", 110).await.unwrap(), None);
    assert_eq!(s.fail("a", &r, 6000).await.unwrap(), None, "forgotten after 5 s");
    assert_eq!(s.fail("a", &r, 6001).await.unwrap(), Some(100));
    s.clear("a").await.unwrap();
    assert_eq!(s.wait("a", 6002).await.unwrap(), None, "clear ends the wait");
    assert_eq!(s.fail("a", &r, 6002).await.unwrap(), None, "and the count");
    assert_eq!(s.fail("a", &r, 7000).await.unwrap(), Some(100));
    assert_eq!(s.fail("a", &r, 11_999).await.unwrap(), Some(200), "4999 ms later: remembered");
    assert_eq!(s.fail("a", &r, 16_999).await.unwrap(), None, "exactly forget_ms later: forgotten");
    s.clear("never-failed").await.unwrap();
    // Zero free failures: the first one waits.
    let strict = PenaltyRule { free: 0, base_ms: 7, max_ms: 7, forget_ms: 10 };
    assert_eq!(s.fail("b", &strict, 0).await.unwrap(), Some(7));
    assert_eq!(s.wait("b", 3).await.unwrap(), Some(4));
}

async fn penalty_keys_are_independent_and_opaque<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let s = f.penalty().await;
    let r = PenaltyRule { free: 0, base_ms: 100, max_ms: 100, forget_ms: 10_000 };
    let keys = ["peer:127.0.0.1", "peer:2001:db8::/64", "account:älice", "account:älice ", "trust:x:y", ""];
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(s.wait(k, 0).await.unwrap(), None);
        assert_eq!(s.fail(k, &r, i as u64).await.unwrap(), Some(100), "{k:?}");
        for other in &keys[i + 1..] {
            assert_eq!(s.wait(other, i as u64).await.unwrap(), None, "{other:?} untouched by {k:?}");
            assert!(!s.trusted(other, 0).await.unwrap());
        }
    }
    // Failures and trust live apart even under one key.
    s.trust("account:älice", 50, 0).await.unwrap();
    assert!(s.trusted("account:älice", 1).await.unwrap());
    assert_eq!(s.wait("account:älice", 10).await.unwrap(), Some(92));
    s.clear("account:älice").await.unwrap();
    assert!(s.trusted("account:älice", 1).await.unwrap(), "clear leaves trust");
}

async fn trust_expires<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let s = f.penalty().await;
    assert!(!s.trusted("t", 0).await.unwrap());
    s.trust("t", 100, 0).await.unwrap();
    assert!(s.trusted("t", 0).await.unwrap());
    assert!(s.trusted("t", 99).await.unwrap());
    assert!(!s.trusted("t", 100).await.unwrap(), "over at now + ttl");
    assert!(!s.trusted("u", 50).await.unwrap());
    s.trust("t", 50, 100).await.unwrap();
    assert!(s.trusted("t", 149).await.unwrap(), "trusted again");
    assert!(!s.trusted("t", 150).await.unwrap());
    s.trust("t", 1000, 200).await.unwrap();
    s.trust("t", 10, 200).await.unwrap();
    assert!(!s.trusted("t", 210).await.unwrap(), "the latest trust counts");
}

async fn penalty_concurrent_fails_counted_exactly<F: Fixture>() {
    let f = F::new(Limits::default()).await;
    let mut handles = Vec::new();
    for _ in 0..5 {
        handles.push(f.penalty().await);
    }
    let rule = PenaltyRule { free: 49, base_ms: 100, max_ms: 10_000, forget_ms: 1_000_000 };
    let tasks: Vec<_> = (0..50usize)
        .map(|i| {
            let s = Arc::clone(&handles[i % handles.len()]);
            tokio::spawn(async move { s.fail("peer:203.0.113.9", &rule, 1000).await.unwrap() })
        })
        .collect();
    let mut waits = Vec::new();
    for t in tasks {
        if let Some(w) = t.await.unwrap() {
            waits.push(w);
        }
    }
    assert_eq!(waits, [100], "the 50th failure, and only it, waits");
    assert_eq!(handles[0].fail("peer:203.0.113.9", &rule, 1000).await.unwrap(), Some(200), "51st");
    assert_eq!(handles[3].wait("peer:203.0.113.9", 1000).await.unwrap(), Some(200));
}

// ---------------------------------------------------------------------------
// Any time.

/// Real epoch times (13 digits) and times past 10^15 ms, where a store that
/// printed numbers as floating point would round them, and TTLs that saturate.
async fn large_times_are_exact<F: Fixture>() {
    let f = F::new(http_limits(1000, 10_000, 100, 10)).await;
    for now in [1_764_600_000_123u64, (1 << 50) + 7] {
        let s = f.engine().await;
        let k = key(77, A);
        assert_eq!(s.insert(&k, "p", val(b"v"), now, 10).await.unwrap(), SessionInsert::Inserted);
        assert_eq!(s.insert(&k, "p", val(b"w"), now + 9, 10).await.unwrap(), SessionInsert::Exists);
        assert!(s.take(&k, now + 10).await.unwrap().is_none(), "expired at exactly now + ttl");
        assert_eq!(s.insert(&k, "p", val(b"v"), now, u64::MAX).await.unwrap(), SessionInsert::Inserted);
        assert_eq!(s.insert(&k, "p", val(b"w"), now + 1_000_000, 10).await.unwrap(), SessionInsert::Exists);
        assert!(s.take(&k, now + 1_000_000).await.unwrap().is_some(), "a saturating ttl never expires");

        let h = f.http().await;
        let id = format!("big{now}");
        assert!(h.create(&id, &rec("alice", 1), now).await.unwrap());
        assert_eq!(h.swap_window(&id, &[1; 16], &[2; 16], now + 500).await.unwrap(), WindowSwap::Swapped);
        assert!(h.get(&id, now + 1499).await.unwrap().is_some(), "extended to now + 500 + idle");
        assert!(h.get(&id, now + 1500).await.unwrap().is_none());
        h.end(&id).await.unwrap();

        let p = f.penalty().await;
        let rule = PenaltyRule { free: 0, base_ms: 100, max_ms: 1000, forget_ms: 60_000 };
        let pk = format!("peer:{now}");
        assert_eq!(p.fail(&pk, &rule, now).await.unwrap(), Some(100));
        assert_eq!(p.wait(&pk, now + 99).await.unwrap(), Some(1));
        assert_eq!(p.wait(&pk, now + 100).await.unwrap(), None);
        assert_eq!(p.fail(&pk, &rule, now + 59_999).await.unwrap(), Some(200), "remembered");
        assert_eq!(p.fail(&pk, &rule, now + 119_999).await.unwrap(), Some(100), "forgotten");
        p.trust(&pk, 1, now).await.unwrap();
        assert!(p.trusted(&pk, now).await.unwrap());
        assert!(!p.trusted(&pk, now + 1).await.unwrap());
        p.trust(&pk, u64::MAX, now).await.unwrap();
        assert!(p.trusted(&pk, now + 1_000_000_000).await.unwrap());
        let huge = PenaltyRule { free: 0, base_ms: u64::MAX / 4, max_ms: u64::MAX, forget_ms: u64::MAX };
        let w = p.fail("huge", &huge, now).await.unwrap().unwrap();
        assert!(w >= 1 << 52, "a huge wait stays huge ({w})");
        assert!(p.wait("huge", now + 1_000_000).await.unwrap().is_some());
    }
}

// ---------------------------------------------------------------------------

macro_rules! cases {
    ($fixture:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case::<$fixture>().await;
            }
        )*
    };
}

/// Every case of the suite, for one backend.
macro_rules! suite {
    ($backend:ident: $fixture:ty) => {
        mod $backend {
            cases!($fixture;
                session_insert_then_take_once,
                session_expiry_by_the_callers_clock,
                session_caps_global_and_per_peer,
                session_probe_answers_like_insert_without_storing,
                session_concurrent_inserts_of_one_key_have_one_winner,
                session_concurrent_inserts_respect_the_caps,
                http_create_get_end_live,
                http_caps_global_and_per_user,
                http_window_swap_is_compare_and_set,
                http_idle_extension_never_past_lifetime,
                http_concurrent_swaps_have_one_winner,
                penalty_waits_double_to_the_cap,
                penalty_forget_and_clear,
                penalty_keys_are_independent_and_opaque,
                trust_expires,
                penalty_concurrent_fails_counted_exactly,
                large_times_are_exact,
            );
        }
    };
}

suite!(memory: super::Memory);
suite!(redis: super::Redis);

// ---------------------------------------------------------------------------
// Redis only.

mod redis_only {
    use super::*;
    use std::time::Instant;
    use support::redis::{PASSWORD, Server};

    fn options(server: &Server) -> RedisOptions {
        let mut o = RedisOptions::new(server.url());
        o.prefix = unique_prefix();
        o
    }

    fn no_secret(msg: &str) {
        assert!(!msg.contains(PASSWORD), "password in {msg:?}");
        assert!(!msg.contains("S3cret"), "password in {msg:?}");
    }

    async fn raw(server: &Server) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    async fn keys_under(server: &Server, prefix: &str) -> Vec<Vec<u8>> {
        let mut conn = raw(server).await;
        let mut pattern = prefix.as_bytes().to_vec();
        pattern.push(b'*');
        ::redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.unwrap()
    }

    /// One call of every method of the three traits; each result as Ok/Err text.
    async fn every_method(store: &RedisStore, now: u64) -> Vec<(&'static str, Result<(), String>)> {
        let http: &dyn HttpSessionStore = store;
        let pen: &dyn PenaltyStore = store;
        let rule = PenaltyRule { free: 1, base_ms: 10, max_ms: 100, forget_ms: 1000 };
        let e = |r: Result<(), scram_dh::record::StoreError>| r.map_err(|e| e.0);
        let k = key(42, A);
        vec![
            ("probe", e(store.probe(&k, "p", now).await.map(drop))),
            ("insert", e(store.insert(&k, "p", val(b"v"), now, 10_000).await.map(drop))),
            ("take", e(store.take(&k, now).await.map(drop))),
            ("create", e(http.create("sid", &rec("u", 1), now).await.map(drop))),
            ("get", e(http.get("sid", now).await.map(drop))),
            ("swap_window", e(http.swap_window("sid", &[1; 16], &[2; 16], now).await.map(drop))),
            ("live", e(http.live(now).await.map(drop))),
            ("end", e(http.end("sid").await)),
            ("fail", e(pen.fail("k", &rule, now).await.map(drop))),
            ("wait", e(pen.wait("k", now).await.map(drop))),
            ("clear", e(pen.clear("k").await)),
            ("trust", e(pen.trust("t", 100, now).await)),
            ("trusted", e(pen.trusted("t", now).await.map(drop))),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_redis_fails_closed_then_recovers_without_restart() {
        let server = Server::new();
        let mut o = options(&server);
        o.op_timeout = Duration::from_millis(500);
        let store = RedisStore::connect(o).await.unwrap();
        for (name, r) in every_method(&store, 1000).await {
            assert!(r.is_ok(), "{name} before the outage: {r:?}");
        }
        assert_eq!(
            store.insert(&key(1, A), "p", val(b"held"), 1000, 60_000).await.unwrap(),
            SessionInsert::Inserted
        );

        server.stop();
        for round in 0..2 {
            for (name, r) in {
                let started = Instant::now();
                let results = every_method(&store, 2000).await;
                let per_call = started.elapsed() / results.len() as u32;
                eprintln!("round {round}: {per_call:?} per failed call");
                assert!(per_call < Duration::from_millis(1500), "round {round}: {per_call:?} per call");
                results
            } {
                let msg = r.expect_err(name);
                if round == 0 && name == "fail" {
                    eprintln!("{name}: {msg}");
                }
                assert!(msg.starts_with("redis unavailable"), "{name}: {msg}");
                no_secret(&msg);
            }
        }
        // Each call alone is bounded too (op_timeout 500 ms + slack).
        let started = Instant::now();
        let err = store.take(&key(1, A), 2000).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
        no_secret(&err.0);

        server.start();
        // Service resumes by itself, within seconds, with the same store object.
        let started = Instant::now();
        loop {
            if store.live(3000).await.is_ok() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "not back 10 s after Redis returned");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("recovered {:?} after restart", started.elapsed());
        // The restarted server has no scripts cached (and no data: no persistence):
        // every scripted call reloads its script (NOSCRIPT, then EVAL) and works.
        for (name, r) in every_method(&store, 3000).await {
            assert!(r.is_ok(), "{name} after the outage: {r:?}");
        }
        assert!(
            store.take(&key(1, A), 3000).await.unwrap().is_none(),
            "lost with the server (no persistence)"
        );
        assert_eq!(
            store.insert(&key(1, A), "p", val(b"new"), 3000, 60_000).await.unwrap(),
            SessionInsert::Inserted
        );
        assert_eq!(taken(store.take(&key(1, A), 3001).await.unwrap()).as_deref(), Some(&b"new"[..]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_redis_is_bounded_by_op_timeout() {
        let server = Server::new();
        let mut o = options(&server);
        o.op_timeout = Duration::from_millis(400);
        let store = RedisStore::connect(o).await.unwrap();
        assert!(store.trust("t", 60_000, 1000).await.is_ok());
        server.freeze();
        let mut slowest = Duration::ZERO;
        for (name, r) in every_method(&store, 2000).await {
            let msg = r.expect_err(name);
            assert!(msg.starts_with("redis unavailable"), "{name}: {msg}");
            no_secret(&msg);
        }
        for _ in 0..3 {
            let started = Instant::now();
            let r = PenaltyStore::trusted(&store, "t", 2000).await;
            slowest = slowest.max(started.elapsed());
            let msg = r.unwrap_err().0;
            assert!(msg.starts_with("redis unavailable"), "{msg}");
        }
        assert!(slowest < Duration::from_millis(1400), "a call took {slowest:?} (op_timeout 400 ms)");
        server.thaw();
        let started = Instant::now();
        loop {
            match PenaltyStore::trusted(&store, "t", 2000).await {
                Ok(trusted) => {
                    assert!(trusted, "the data survived the hang");
                    break;
                }
                Err(e) => assert!(started.elapsed() < Duration::from_secs(10), "not back: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (name, r) in every_method(&store, 3000).await {
            assert!(r.is_ok(), "{name} after the hang: {r:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_credentials_fail_closed_then_recover() {
        // An operator changes the server's password and drops every connection,
        // then puts the right one back: the store reconnects by itself.
        let server = Server::new();
        let mut o = options(&server);
        o.op_timeout = Duration::from_millis(500);
        let store = RedisStore::connect(o).await.unwrap();
        PenaltyStore::trust(&store, "t", 600_000, 0).await.unwrap();
        let mut admin = raw(&server).await;
        let () = ::redis::cmd("CONFIG")
            .arg(&["SET", "requirepass", "Other-S3cret-Pass"])
            .query_async(&mut admin)
            .await
            .unwrap();
        let _: i64 =
            ::redis::cmd("CLIENT").arg(&["KILL", "TYPE", "normal"]).query_async(&mut admin).await.unwrap();
        for _ in 0..3 {
            let msg = PenaltyStore::trusted(&store, "t", 1).await.unwrap_err().0;
            assert!(msg.starts_with("redis unavailable"), "{msg}");
            assert!(!msg.contains("Other-S3cret-Pass"), "{msg}");
            no_secret(&msg);
        }
        let () = ::redis::cmd("CONFIG")
            .arg(&["SET", "requirepass", PASSWORD])
            .query_async(&mut admin)
            .await
            .unwrap();
        let started = Instant::now();
        loop {
            match PenaltyStore::trusted(&store, "t", 1).await {
                Ok(trusted) => {
                    assert!(trusted);
                    break;
                }
                Err(e) => assert!(started.elapsed() < Duration::from_secs(10), "not back: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (name, r) in every_method(&store, 3000).await {
            assert!(r.is_ok(), "{name} after the password came back: {r:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scripts_reload_after_script_flush() {
        let server = support::redis::shared();
        let store = RedisStore::connect(options(&server)).await.unwrap();
        for round in 0..3 {
            let mut conn = raw(&server).await;
            let () = ::redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
            for (name, r) in every_method(&store, 1000 + round).await {
                assert!(r.is_ok(), "{name} after SCRIPT FLUSH: {r:?}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prefixes_isolate_deployments_and_every_key_expires() {
        let server = support::redis::shared();
        let (mut oa, mut ob) = (options(&server), options(&server));
        oa.max_sessions_per_peer = 1;
        ob.max_sessions_per_peer = 1;
        oa.http.max_per_user = 1;
        ob.http.max_per_user = 1;
        let (pa, pb) = (oa.prefix.clone(), ob.prefix.clone());
        let a = RedisStore::connect(oa).await.unwrap();
        let b = RedisStore::connect(ob).await.unwrap();
        let k = key(5, R);
        assert_eq!(a.insert(&k, "p", val(b"a"), 0, 10_000).await.unwrap(), SessionInsert::Inserted);
        assert_eq!(
            b.insert(&k, "p", val(b"b"), 0, 10_000).await.unwrap(),
            SessionInsert::Inserted,
            "same key"
        );
        assert_eq!(a.probe(&key(6, R), "p", 0).await.unwrap(), SessionInsert::Full, "a's own per-peer cap");
        assert!(HttpSessionStore::create(&a, "s", &rec("u", 1), 0).await.unwrap());
        assert!(HttpSessionStore::create(&b, "s", &rec("u", 2), 0).await.unwrap(), "same id, same user");
        let rule = PenaltyRule { free: 0, base_ms: 100, max_ms: 100, forget_ms: 1000 };
        PenaltyStore::fail(&a, "k", &rule, 0).await.unwrap();
        PenaltyStore::trust(&a, "t", 1000, 0).await.unwrap();
        assert_eq!(PenaltyStore::wait(&b, "k", 0).await.unwrap(), None);
        assert!(!PenaltyStore::trusted(&b, "t", 0).await.unwrap());
        assert_eq!(taken(b.take(&k, 1).await.unwrap()).as_deref(), Some(&b"b"[..]));
        assert_eq!(taken(a.take(&k, 1).await.unwrap()).as_deref(), Some(&b"a"[..]));
        assert_eq!(HttpSessionStore::get(&a, "s", 1).await.unwrap().unwrap().window, [1; 16]);
        assert_eq!(HttpSessionStore::live(&b, 1).await.unwrap(), 1);

        // Everything a's calls left is under a's prefix, with a native expiry:
        // nothing lingers once the logical deadlines (plus the slack) pass.
        assert_eq!(a.insert(&key(7, A), "q", val(b"x"), 0, 10_000).await.unwrap(), SessionInsert::Inserted);
        // a: sess:…, sess-index, sess-peer:q, http:s, http-index, http-user:u,
        // fail:k, trust:t; b: its three http keys (emptied sorted sets vanish).
        for (prefix, expected) in [(&pa, 8), (&pb, 3)] {
            let keys = keys_under(&server, prefix).await;
            let shown: Vec<_> = keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
            assert_eq!(keys.len(), expected, "{prefix}: {shown:?}");
            let mut conn = raw(&server).await;
            for k in keys {
                let pttl: i64 = ::redis::cmd("PTTL").arg(&k).query_async(&mut conn).await.unwrap();
                assert!(pttl > 0, "{} has no expiry ({pttl})", String::from_utf8_lossy(&k));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_sessions_are_counted_once_across_nodes() {
        // Two nodes on one Redis and prefix; deadlines by the callers' clock.
        let server = support::redis::shared();
        let o = options(&server);
        let prefix = o.prefix.clone();
        let (a, b) = (RedisStore::connect(o.clone()).await.unwrap(), RedisStore::connect(o).await.unwrap());
        let totals = || (a.sessions_expired_total(), b.sessions_expired_total());
        for i in 0..4 {
            assert_eq!(
                a.insert(&nth_key(i), "p", val(b"v"), 1000, 100).await.unwrap(),
                SessionInsert::Inserted
            );
        }
        // Taken in time (on the other node): never counted.
        assert!(b.take(&nth_key(0), 1099).await.unwrap().is_some());
        assert_eq!(totals(), (0, 0));
        // Taken too late, on b: b counts it, and it leaves the index.
        assert!(b.take(&nth_key(1), 1100).await.unwrap().is_none());
        assert_eq!(totals(), (0, 1));
        // The other two are dropped, and counted, by the next insert, here on b.
        assert_eq!(b.insert(&nth_key(10), "q", val(b"w"), 1200, 100).await.unwrap(), SessionInsert::Inserted);
        assert_eq!(totals(), (0, 3));
        // Nothing is counted twice: later calls on either node find nothing new,
        // and a take of an already-dropped session counts nothing either.
        assert_eq!(a.probe(&nth_key(11), "q", 1201).await.unwrap(), SessionInsert::Inserted);
        assert!(a.take(&nth_key(2), 1202).await.unwrap().is_none());
        assert_eq!(totals(), (0, 3));
        // A probe drops what expired too: b's session, counted on a.
        assert_eq!(a.probe(&nth_key(12), "q", 1300).await.unwrap(), SessionInsert::Inserted);
        assert_eq!(totals(), (1, 3));
        // The index outlives its newest session by INDEX_GRACE_MS, so a quiet
        // spell longer than the TTL loses nothing to Redis's own expiry.
        assert_eq!(a.insert(&nth_key(13), "q", val(b"x"), 2000, 100).await.unwrap(), SessionInsert::Inserted);
        let mut conn = raw(&server).await;
        let pttl: i64 =
            ::redis::cmd("PTTL").arg(format!("{prefix}sess-index")).query_async(&mut conn).await.unwrap();
        let least = i64::try_from(scram_dh_store::redis::INDEX_GRACE_MS).unwrap();
        assert!(pttl > least, "sess-index PTTL {pttl} ms");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn live_sessions_are_counted_for_the_whole_store_on_every_node() {
        // Two nodes on one Redis and prefix: each counts every node's live
        // sessions (deadline after now), through the trait and through an Arc.
        let server = support::redis::shared();
        let o = options(&server);
        let (a, b) = (RedisStore::connect(o.clone()).await.unwrap(), RedisStore::connect(o).await.unwrap());
        let b = std::sync::Arc::new(b);
        let live = |now| {
            let (a, b) = (a.clone(), std::sync::Arc::clone(&b));
            async move { (a.shared_live(now).await.unwrap(), b.shared_live(now).await.unwrap()) }
        };
        assert_eq!(live(1000).await, (Some(0), Some(0)));
        for i in 0..3 {
            assert_eq!(
                a.insert(&nth_key(i), "p", val(b"v"), 1000, 100).await.unwrap(),
                SessionInsert::Inserted
            );
        }
        assert_eq!(b.insert(&nth_key(3), "q", val(b"w"), 1000, 500).await.unwrap(), SessionInsert::Inserted);
        assert_eq!(live(1050).await, (Some(4), Some(4)));
        // A probe holds nothing; a take (on the other node) frees its session.
        assert_eq!(b.probe(&nth_key(4), "q", 1050).await.unwrap(), SessionInsert::Inserted);
        assert!(b.take(&nth_key(0), 1050).await.unwrap().is_some());
        assert_eq!(live(1050).await, (Some(3), Some(3)));
        // At its deadline a session is no longer live (as the insert's cap sees it).
        assert_eq!(live(1099).await, (Some(3), Some(3)));
        assert_eq!(live(1100).await, (Some(1), Some(1)));
        // Counting only reads: the expired are left for the insert that drops
        // them and counts them as expired, once.
        assert_eq!((a.sessions_expired_total(), b.sessions_expired_total()), (0, 0));
        assert_eq!(a.insert(&nth_key(5), "p", val(b"x"), 1200, 100).await.unwrap(), SessionInsert::Inserted);
        assert_eq!((a.sessions_expired_total(), b.sessions_expired_total()), (2, 0));
        assert_eq!(live(1200).await, (Some(2), Some(2)));
        assert_eq!(live(1500).await, (Some(0), Some(0)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stored_values_are_the_callers_bytes_only() {
        // A dump of Redis holds what the engine and the front gave (sealed blobs),
        // the usernames and the counters; nothing else is added in the clear.
        let server = support::redis::shared();
        let o = options(&server);
        let prefix = o.prefix.clone();
        let store = RedisStore::connect(o).await.unwrap();
        let marker = b"SEALED-BLOB-MARKER";
        store.insert(&key(3, A), "198.51.100.7", val(marker), 0, 10_000).await.unwrap();
        let mut conn = raw(&server).await;
        let full = format!("{prefix}sess:{}", key(3, A).to_key_string());
        let raw_value: Vec<u8> = ::redis::cmd("GET").arg(&full).query_async(&mut conn).await.unwrap();
        assert_eq!(&raw_value[..8], &10_000u64.to_be_bytes(), "deadline first");
        assert!(raw_value.ends_with(marker), "then peer and the blob as given");
        assert_eq!(raw_value.len(), 8 + 4 + "198.51.100.7".len() + marker.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn debug_and_errors_redact_the_password() {
        let server = support::redis::shared();
        let o = options(&server);
        let shown = format!("{o:?}");
        no_secret(&shown);
        assert!(shown.contains(":***@127.0.0.1"), "{shown}");
        let store = RedisStore::connect(o).await.unwrap();
        let shown = format!("{store:?}");
        no_secret(&shown);
        assert!(shown.contains(":***@127.0.0.1"), "{shown}");

        // Wrong password: refused clearly, without the (wrong or right) password.
        let mut wrong = options(&server);
        wrong.url = format!("redis://:Wrong-S3cret-Pass@127.0.0.1:{}/0", server.port);
        let err = RedisStore::connect(wrong).await.unwrap_err().0;
        assert!(!err.contains("Wrong-S3cret-Pass"), "{err}");
        assert!(err.contains("redis unavailable: cannot connect to redis://:***@127.0.0.1"), "{err}");
        // A password the URL spells with percent-escapes is hidden too.
        let mut escaped = options(&server);
        escaped.url = format!("redis://app:Pa%40ss-S3cret@127.0.0.1:{}/0", server.port);
        let err = RedisStore::connect(escaped).await.unwrap_err().0;
        assert!(!err.contains("Pa%40ss-S3cret") && !err.contains("Pa@ss-S3cret"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_fails_fast_when_nothing_listens() {
        let port = scram_dh_testkit::free_port();
        let mut o = RedisOptions::new(format!("redis://:{PASSWORD}@127.0.0.1:{port}/0"));
        o.op_timeout = Duration::from_millis(800);
        let started = Instant::now();
        let err = RedisStore::connect(o).await.unwrap_err().0;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(err.starts_with("redis unavailable: cannot connect to redis://:***@127.0.0.1"), "{err}");
        no_secret(&err);
        let bad = RedisStore::connect(RedisOptions::new("http://:S3cret-x@nowhere")).await.unwrap_err().0;
        no_secret(&bad);
    }
}
