//! The fuzz targets on stable, in every `cargo test`: each target runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`, then a bounded,
//! deterministic random stream (a seeded ChaCha generator: fresh inputs plus bit
//! flips, inserts, deletes and splices of the corpus). The target bodies are
//! `fuzz/src/targets.rs`, the same code the libFuzzer binaries run on nightly.
//!
//! A panic fails the test and prints the input in hex: save it (`xxd -r -p`) as
//! `fuzz/regressions/<target>/<name>` and it is replayed from then on.
//! `SCRAM_DH_FUZZ_INPUTS=<n>` multiplies every stream by `n` for a longer soak.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of one directory, sorted by name; none if it does not exist.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).expect("readable corpus file")))
        .collect();
    out.sort();
    out
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(target: &str, f: &impl Fn(&[u8]), what: &str, data: &[u8]) {
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(data))) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        panic!(
            "fuzz target {target} panicked on {what} ({} bytes): {msg}\ninput (hex): {}\n\
             save it as fuzz/regressions/{target}/<name> (echo <hex> | xxd -r -p > file)",
            data.len(),
            hex(data)
        );
    }
}

const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff\"\\{}[]:,-=\n 0aAz9";

/// One generated input: fresh bytes, or one to four byte-level mutations of a
/// corpus input.
fn generate(rng: &mut ChaCha8Rng, corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    let pick = |rng: &mut ChaCha8Rng, n: usize| rng.next_u32() as usize % n.max(1);
    if corpus.is_empty() || rng.next_u32().is_multiple_of(4) {
        let mut v = vec![0u8; pick(rng, max_len + 1)];
        rng.fill_bytes(&mut v);
        return v;
    }
    let mut v = corpus[pick(rng, corpus.len())].clone();
    for _ in 0..1 + rng.next_u32() % 4 {
        let at = pick(rng, v.len() + 1);
        match rng.next_u32() % 6 {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << (rng.next_u32() % 8);
            }
            1 => {
                let b = if rng.next_u32().is_multiple_of(2) {
                    INTERESTING[pick(rng, INTERESTING.len())]
                } else {
                    rng.next_u32() as u8
                };
                v.insert(at, b);
            }
            2 if !v.is_empty() => {
                let n = 1 + pick(rng, 8);
                let i = at.min(v.len() - 1);
                v.drain(i..(i + n).min(v.len()));
            }
            3 => {
                // Splice: this input's head and another's tail.
                let other = &corpus[pick(rng, corpus.len())];
                let from = pick(rng, other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            4 if !v.is_empty() => {
                // Duplicate a chunk in place.
                let i = at.min(v.len() - 1);
                let chunk: Vec<u8> = v[i..(i + 1 + pick(rng, 16)).min(v.len())].to_vec();
                v.splice(i..i, chunk);
            }
            _ => v.truncate(at),
        }
    }
    v.truncate(max_len.max(16) * 2);
    v
}

/// Replays the corpus and regressions of `target`, then `stream` generated inputs.
fn replay(target: &str, f: impl Fn(&[u8]), stream: usize, max_len: usize) -> Vec<Vec<u8>> {
    let started = Instant::now();
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    assert!(!corpus.is_empty(), "no corpus for {target} in {}", fuzz_dir().display());
    for (name, data) in corpus.iter().chain(&regressions) {
        run(target, &f, name, data);
    }
    let seeds: Vec<Vec<u8>> = corpus.iter().chain(&regressions).map(|(_, d)| d.clone()).collect();
    let scale = std::env::var("SCRAM_DH_FUZZ_INPUTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1usize);
    // One fixed seed per target: the stream is the same on every run and machine.
    let seed = target
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..stream * scale {
        let data = generate(&mut rng, &seeds, max_len);
        run(target, &f, &format!("generated input #{i}"), &data);
    }
    eprintln!(
        "{target}: {} corpus + {} regression inputs, {} generated, in {:.2?}",
        corpus.len(),
        regressions.len(),
        stream * scale,
        started.elapsed()
    );
    seeds
}

#[test]
fn client_message() {
    replay("client_message", targets::client_message, 40_000, 512);
}

#[test]
fn server_message() {
    replay("server_message", targets::server_message, 40_000, 512);
}

#[test]
fn server_engine() {
    replay("server_engine", targets::server_engine, 10_000, 1024);
}

#[test]
fn session_state() {
    replay("session_state", targets::session_state, 40_000, 512);
}

#[test]
fn text_fields() {
    replay("text_fields", targets::text_fields, 40_000, 256);
}

#[test]
fn sasl_text() {
    let corpus = replay("sasl_text", targets::sasl_text, 40_000, 512);
    // The seeds must hold the RFC 7677 exchange, so the forgery check has its genuine case.
    for msg in [
        targets::rfc7677::CLIENT_FIRST,
        targets::rfc7677::SERVER_FIRST,
        targets::rfc7677::CLIENT_FINAL,
        targets::rfc7677::SERVER_FINAL,
        targets::rfc7677::VERIFIER,
    ] {
        assert!(corpus.iter().any(|d| d == msg.as_bytes()), "the sasl_text corpus lacks {msg:?}");
    }
}

fn add(total: &mut targets::Stats, s: targets::Stats) {
    total.ops += s.ops;
    total.registered += s.registered;
    total.authenticated += s.authenticated;
    for (code, n) in s.refused {
        *total.refused.entry(code).or_insert(0) += n;
    }
}

#[test]
fn server_state_machine() {
    let total = std::cell::RefCell::new(targets::Stats::default());
    let seeds = replay(
        "server_state_machine",
        |data| {
            let stats = targets::server_state_machine(data);
            add(&mut total.borrow_mut(), stats);
        },
        2000,
        160,
    );
    let all = total.into_inner();
    // The corpus alone must reach the paths the invariants are about, or they prove nothing.
    let mut corpus = targets::Stats::default();
    for data in &seeds {
        add(&mut corpus, targets::server_state_machine(data));
    }
    eprintln!(
        "server_state_machine, corpus only: {corpus:?}\nserver_state_machine, corpus and stream: {all:?}"
    );
    assert!(corpus.registered > 0 && corpus.authenticated > 0, "{corpus:?}");
    for code in [
        "unknown_session",
        "nonce_reused",
        "nonce_mismatch",
        "busy",
        "username_taken",
        "authentication_failed",
        "invalid_message",
    ] {
        assert!(corpus.refused.contains_key(code), "the corpus never reaches {code}: {corpus:?}");
    }
    assert!(all.registered > corpus.registered && all.authenticated > corpus.authenticated, "{all:?}");
}
