//! Finding L8: does A1 → A2 take longer for a known user than for an unknown one?
//!
//! Interleaves 20,000 A1s for known users with 20,000 for unknown users through a
//! `ServerEngine` on memory stores (after 2,000 warm-up pairs), alternating which
//! goes first, and prints both latency distributions and the two-sample
//! Kolmogorov–Smirnov statistic D. Sessions are taken out of the store after each
//! sample (untimed), so the store stays the same size throughout.
//!
//! `cargo run --release -p scram-dh --example timing [-- SAMPLES]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use scram_dh::auth::server::AuthRequest;
use scram_dh::message::{AuthPairing, ClientMessage, ServerMessage};
use scram_dh::nonce::Nonce;
use scram_dh::pair::block_on;
use scram_dh::secret::SaltedPassword;
use scram_dh::session::{Phase, SessionKey};
use scram_dh::{
    ClientKeys, CredentialStore, HostKey, Labels, MemoryCredentialStore, MemorySessionStore, ServerConfig,
    ServerEngine, SessionStore,
};

const USERS: usize = 1_000;
const WARM_UP: usize = 2_000;
const NOW: u64 = 1_700_000_000_000;

type Engine = ServerEngine<MemoryCredentialStore, MemorySessionStore>;

fn a1(username: String, rng: &mut ChaCha20Rng) -> (ClientMessage, SessionKey) {
    let nonce = Nonce::random(rng);
    let key = SessionKey::new(Phase::Authentication, &nonce);
    let msg = AuthPairing { username, client_nonce: nonce.to_hex(), group: None, public_key: None };
    (ClientMessage::AuthPairing(msg), key)
}

/// One timed A1 → A2, in nanoseconds; the session is removed afterwards, untimed.
fn sample(engine: &Engine, msg: ClientMessage, key: &SessionKey, rng: &mut ChaCha20Rng) -> u64 {
    let start = Instant::now();
    let out = block_on(engine.handle(msg, "peer", NOW, rng));
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    assert!(matches!(out.reply(), ServerMessage::AuthPairing(_)), "{:?}", out.reply().type_name());
    assert!(block_on(engine.sessions().take(key, NOW)).unwrap().is_some());
    ns
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two
/// empirical distribution functions.
fn ks_d(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let gap = (i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs();
        d = d.max(gap);
    }
    d
}

fn describe(name: &str, sorted: &[u64]) {
    let mean = sorted.iter().sum::<u64>() as f64 / sorted.len() as f64;
    println!(
        "{name:<8} n={:>6}  median {:>6} ns  p10 {:>6} ns  p90 {:>6} ns  p99 {:>6} ns  mean {:>8.0} ns",
        sorted.len(),
        percentile(sorted, 0.5),
        percentile(sorted, 0.1),
        percentile(sorted, 0.9),
        percentile(sorted, 0.99),
        mean
    );
}

fn main() {
    let samples: usize = std::env::args().nth(1).map_or(20_000, |s| s.parse().expect("SAMPLES"));
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let config = ServerConfig::new(HostKey::generate(&mut rng), [5; 32]);
    let sessions = MemorySessionStore::new(1_000, 1_000);
    let engine = Engine::new(config, MemoryCredentialStore::default(), sessions).unwrap();
    for i in 0..USERS {
        let keys = ClientKeys::rfc(&SaltedPassword::from_bytes([i as u8; 32]));
        let mut salt = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut salt);
        let record = keys.record(&format!("known-{i:06}"), &salt, 4096, 0, Labels::Random);
        block_on(engine.credentials().insert(&record)).unwrap();
    }
    block_on(engine.refresh_mock_profile()).unwrap();

    let mut known = Vec::with_capacity(samples);
    let mut unknown = Vec::with_capacity(samples);
    for i in 0..WARM_UP + samples {
        // Same-length names; unknown names are never repeated, known ones cycle.
        let (k_msg, k_key) = a1(format!("known-{:06}", i % USERS), &mut rng);
        let (u_msg, u_key) = a1(format!("ghost-{:06}", i % 1_000_000), &mut rng);
        let (k, u) = if i % 2 == 0 {
            let k = sample(&engine, k_msg, &k_key, &mut rng);
            (k, sample(&engine, u_msg, &u_key, &mut rng))
        } else {
            let u = sample(&engine, u_msg, &u_key, &mut rng);
            (sample(&engine, k_msg, &k_key, &mut rng), u)
        };
        if i >= WARM_UP {
            known.push(k);
            unknown.push(u);
        }
    }
    known.sort_unstable();
    unknown.sort_unstable();
    println!("A1 -> A2 through ServerEngine on memory stores, no channel, {USERS} users, {samples} pairs");
    describe("known", &known);
    describe("unknown", &unknown);
    report(&known, &unknown);

    // Where a difference comes from: the same interleaving for the core step alone
    // (parse + continue_with, the record handed in) and for the store lookup alone.
    let profile = engine.mock_profile();
    let mut core_known = Vec::with_capacity(samples);
    let mut core_unknown = Vec::with_capacity(samples);
    let mut read_known = Vec::with_capacity(samples);
    let mut read_unknown = Vec::with_capacity(samples);
    for i in 0..WARM_UP + samples {
        let k_name = format!("known-{:06}", i % USERS);
        let u_name = format!("ghost-{:06}", i % 1_000_000);
        let record = block_on(engine.credentials().read(&k_name)).unwrap();
        let (k_msg, _) = a1(k_name.clone(), &mut rng);
        let (u_msg, _) = a1(u_name.clone(), &mut rng);
        let mut core = |msg: ClientMessage, record| {
            let ClientMessage::AuthPairing(m) = msg else { unreachable!() };
            let start = Instant::now();
            let req = AuthRequest::parse(&m, engine.config()).unwrap();
            let out = req.continue_with(record, &mut rng, engine.config(), &profile).unwrap();
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            drop(out);
            ns
        };
        let (ck, cu) = if i % 2 == 0 {
            let ck = core(k_msg, record);
            (ck, core(u_msg, None))
        } else {
            let cu = core(u_msg, None);
            (core(k_msg, record), cu)
        };
        let read = |name: &str| {
            let start = Instant::now();
            let r = block_on(engine.credentials().read(name)).unwrap();
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            drop(r);
            ns
        };
        let (rk, ru) = if i % 2 == 0 {
            let rk = read(&k_name);
            (rk, read(&u_name))
        } else {
            let ru = read(&u_name);
            (read(&k_name), ru)
        };
        if i >= WARM_UP {
            core_known.push(ck);
            core_unknown.push(cu);
            read_known.push(rk);
            read_unknown.push(ru);
        }
    }
    for v in [&mut core_known, &mut core_unknown, &mut read_known, &mut read_unknown] {
        v.sort_unstable();
    }
    println!();
    println!("core step alone: AuthRequest::parse + continue_with (record handed in)");
    describe("known", &core_known);
    describe("unknown", &core_unknown);
    report(&core_known, &core_unknown);
    println!();
    println!("credential store lookup alone: MemoryCredentialStore::read (hit vs miss)");
    describe("known", &read_known);
    describe("unknown", &read_unknown);
    report(&read_known, &read_unknown);
}

fn report(known: &[u64], unknown: &[u64]) {
    let diff = percentile(known, 0.5) as i64 - percentile(unknown, 0.5) as i64;
    println!("median difference (known - unknown): {diff} ns");
    println!("two-sample Kolmogorov-Smirnov D = {:.4}", ks_d(known, unknown));
}
