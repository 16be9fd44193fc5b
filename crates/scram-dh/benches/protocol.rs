//! Protocol-level benchmarks (targets: issue 10, after issue 2's; BENCHMARKS.md marks each):
//! - one full in-process authentication, client + server, memory stores, no channel
//!   (issue 10: <= 5 µs; issue 2's was < 10 µs);
//! - the server's CPU for one registration pairing (DH keygen, validation, shared
//!   secret, signature) per group (issue 2: modp6144 < 5 ms; issue 10 compares the DH
//!   part with OpenSSL's derive in `benches/dh.rs`), and for the R3 step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "support/login.rs"]
mod login;
use login::login_once;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use scram_dh::message::ClientMessage;
use scram_dh::pair::Pair;
use scram_dh::register::client::{HostKeyCheck, RegistrationClient};
use scram_dh::register::server::RegistrationRequest;
use scram_dh::{ClientConfig, Group, Labels, Password};

fn full_auth(c: &mut Criterion) {
    let mut pair = Pair::new(1);
    let cred = pair.register("alice", "pw", Group::X25519, Labels::Random).expect("register");
    let secret = cred.secret();
    let mut g = c.benchmark_group("auth");
    g.measurement_time(Duration::from_secs(4));
    // Everything a login costs both sides (`support/login.rs`).
    g.bench_function("full_in_process_no_channel", |b| {
        b.iter(|| login_once(&mut pair, &secret));
    });
    g.bench_function("full_in_process_x25519_channel", |b| {
        b.iter(|| black_box(pair.login("alice", secret.clone(), Some(Group::X25519)).expect("login")));
    });
    g.finish();
}

fn registration_server(c: &mut Criterion) {
    let mut g = c.benchmark_group("registration_server");
    g.measurement_time(Duration::from_secs(5)).sample_size(30);
    for group in [Group::X25519, Group::Modp2048, Group::Modp6144, Group::Modp8192] {
        let pair = Pair::new(2);
        let config = pair.engine.config().clone();
        let mut client_rng = ChaCha20Rng::seed_from_u64(3);
        let mut server_rng = ChaCha20Rng::seed_from_u64(4);
        // Warm the fixed-base tables outside the measurement.
        let _ = group.generate(&mut server_rng);
        let step = RegistrationClient::start(
            &mut client_rng,
            "bob",
            Password::new("pw"),
            group,
            Labels::Random,
            HostKeyCheck::TrustOnFirstUse,
            ClientConfig::default(),
        )
        .expect("start");
        let ClientMessage::RegistrationPairing(r1) = step.message else { unreachable!() };
        // Server CPU for R1 -> R2: parse + validate the key (range, Legendre), keygen,
        // shared secret, transcript hash, Ed25519 signature, HKDF.
        g.bench_function(format!("pairing_{}", group.name()), |b| {
            b.iter(|| {
                let req = RegistrationRequest::parse(black_box(&r1), &config).expect("parse");
                black_box(req.respond(&mut server_rng, &config).expect("respond"))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, full_auth, registration_server);
criterion_main!(benches);
