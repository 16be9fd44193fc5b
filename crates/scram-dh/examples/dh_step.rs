//! The server's registration DH step per group, without criterion: key generation,
//! validation of the client's key (range and Legendre), and the shared secret, the
//! same three calls as `benches/dh.rs`'s `server_registration_dh`, and the Legendre
//! check alone. Prints one line per group with the modexp engine and the medians.
//!
//! It exists for machines that run the test build but not `cargo bench`: `cargo
//! test` builds it (optimised, `[profile.test]`), and `scripts/machine-info.sh` runs
//! it at the end of the suite, so the CI machine's figures (an AVX-512 IFMA CPU
//! there, which the project's VM lacks) are printed with every run. Criterion's
//! figures in BENCHMARKS.md stay the reference.
//!
//! `cargo run --release -p scram-dh --example dh_step [-- SAMPLES [GROUP...]]`
//! (default 40 samples, modp2048 modp6144 modp8192); `SCRAM_DH_MODEXP=crypto-bigint`
//! forces the portable engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use scram_dh::dh::{Group, PublicKey, legendre_check};

fn median_us(mut ns: Vec<u128>) -> f64 {
    ns.sort_unstable();
    ns[ns.len() / 2] as f64 / 1000.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().map(|s| s.parse().expect("SAMPLES is a number")).unwrap_or(40).max(1);
    let names: Vec<String> = args.collect();
    let groups: Vec<Group> = if names.is_empty() {
        vec![Group::Modp2048, Group::Modp6144, Group::Modp8192]
    } else {
        names
            .iter()
            .map(|n| Group::ALL.into_iter().find(|g| g.name() == n).unwrap_or_else(|| panic!("no group {n}")))
            .collect()
    };
    let engine = scram_dh::dh::modexp_engine();
    let mut rng = ChaCha20Rng::seed_from_u64(0xd4);
    for group in groups {
        let client = group.generate(&mut rng);
        let client_pk = client.public_key().as_bytes().to_vec();
        let step = |rng: &mut ChaCha20Rng| {
            let t = Instant::now();
            let secret = group.generate(rng);
            let peer = PublicKey::from_bytes(group, black_box(&client_pk)).expect("valid");
            black_box(secret.diffie_hellman(&peer).expect("the shared secret"));
            t.elapsed().as_nanos()
        };
        // Warm-up: tables, caches, clocks.
        for _ in 0..samples.div_ceil(4) {
            step(&mut rng);
        }
        let steps: Vec<u128> = (0..samples).map(|_| step(&mut rng)).collect();
        let legendre: Vec<u128> = (0..samples * 4)
            .map(|_| {
                let t = Instant::now();
                black_box(legendre_check(group, black_box(&client_pk)).expect("a valid key"));
                t.elapsed().as_nanos()
            })
            .collect();
        println!(
            "dh_step {} engine={engine} samples={samples} registration_dh_us={:.1} legendre_us={:.1}",
            group.name(),
            median_us(steps),
            median_us(legendre)
        );
    }
}
