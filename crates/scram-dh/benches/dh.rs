//! Benchmarks of the `dh` module: key generation (fixed-base comb), peer key validation
//! (range + Legendre symbol), the Legendre symbol alone, the original design's full
//! exponentiation check, the shared secret, and the server's whole registration DH.
//!
//! Every group: `cargo bench -p scram-dh --bench dh` (about two minutes); one group with
//! a filter, e.g. `-- modp6144/`. `scripts/bench-all.sh` runs it next to
//! `openssl speed ffdh6144` so the ratio comes from one session.

// A benchmark with an invalid fixture must fail loudly.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use scram_dh::dh::{Group, PublicKey, legendre_check, naive_subgroup_check};

fn bench_group(c: &mut Criterion, group: Group, naive: bool) {
    let mut rng = ChaCha20Rng::seed_from_u64(0xd4);
    // A client key to validate and agree with; also builds the comb table before timing.
    let client = group.generate(&mut rng);
    let client_pk = client.public_key().as_bytes().to_vec();

    let mut g = c.benchmark_group(group.name());
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_millis(1200));
    g.sample_size(20);

    g.bench_function("keygen", |b| b.iter(|| black_box(group.generate(&mut rng))));
    g.bench_function("validate_public_key", |b| {
        b.iter(|| black_box(PublicKey::from_bytes(group, black_box(&client_pk))))
    });
    if group != Group::X25519 {
        g.bench_function("legendre_check", |b| {
            b.iter(|| black_box(legendre_check(group, black_box(&client_pk))))
        });
    }
    let peer = PublicKey::from_bytes(group, &client_pk).expect("valid key");
    g.bench_function("shared_secret", |b| {
        b.iter_batched(
            || group.generate(&mut rng),
            |secret| black_box(secret.diffie_hellman(&peer)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("server_registration_dh", |b| {
        b.iter(|| {
            let secret = group.generate(&mut rng);
            let peer = PublicKey::from_bytes(group, black_box(&client_pk)).expect("valid");
            black_box(secret.diffie_hellman(&peer))
        })
    });
    if naive {
        // The original design's check: one full-width exponentiation (tens of ms).
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(100));
        g.measurement_time(Duration::from_millis(500));
        g.bench_function("naive_subgroup_check", |b| {
            b.iter(|| black_box(naive_subgroup_check(group, black_box(&client_pk))))
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    // Which modular exponentiation ran (SCRAM_DH_MODEXP=crypto-bigint forces the
    // fallback on an IFMA machine, to compare both in one session).
    eprintln!("modexp engine: {}", scram_dh::dh::modexp_engine());
    bench_group(c, Group::Modp6144, true);
    bench_group(c, Group::Modp2048, true);
    bench_group(c, Group::Modp3072, false);
    bench_group(c, Group::Modp4096, false);
    bench_group(c, Group::Modp8192, false);
    bench_group(c, Group::X25519, false);
}

criterion_group!(dh, benches);
criterion_main!(dh);
