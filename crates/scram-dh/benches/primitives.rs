//! The primitives on a login's hot path, one by one (issue 10): PBKDF2, HMAC,
//! SHA-256, the channel's AEAD record, the sealing of session state, the JSON
//! messages (SPEC 7) and the RFC 5802 text codec. The DH groups are in `dh.rs`,
//! whole handshakes in `protocol.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use scram_dh::auth::client::AuthClient;
use scram_dh::crypto;
use scram_dh::message::ClientMessage;
use scram_dh::sasl::text::{ClientFinal, ClientFirst, ServerFinal, ServerFirst};
use scram_dh::secret::SymmetricKey;
use scram_dh::{ClientConfig, ClientCredential, Group, Labels};

fn kdf(c: &mut Criterion) {
    let mut g = c.benchmark_group("kdf");
    g.measurement_time(Duration::from_secs(3));
    let salt = [7u8; 32];
    for ic in [4096u32, 10_000] {
        g.bench_function(format!("pbkdf2_sha256_ic{ic}"), |b| {
            b.iter(|| black_box(crypto::hi(black_box(b"correct horse battery staple"), &salt, ic)));
        });
    }
    let key = [9u8; 32];
    let msg = [1u8; 128];
    g.bench_function("hmac_sha256_128B", |b| b.iter(|| black_box(crypto::hmac(&key, &[black_box(&msg)]))));
    g.bench_function("sha256_32B", |b| b.iter(|| black_box(crypto::sha256(black_box(&key)))));
    g.finish();
}

fn aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead");
    g.measurement_time(Duration::from_secs(3));
    let key = SymmetricKey::from_bytes([3; 32]);
    for len in [64usize, 1024, 16 * 1024] {
        let plain = vec![0x5au8; len];
        let sealed = crypto::seal(&key, 7, b"", &plain).unwrap();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("channel_record_seal_{len}B"), |b| {
            b.iter(|| black_box(crypto::seal(&key, 7, b"", black_box(&plain)).unwrap()));
        });
        g.bench_function(format!("channel_record_open_{len}B"), |b| {
            b.iter(|| black_box(crypto::open(&key, 7, b"", black_box(&sealed)).unwrap()));
        });
    }
    // Session state as the engine seals it into a session store (SPEC 5):
    // XChaCha20-Poly1305 with a random nonce, the session key as associated data.
    let seal_key = [4u8; 32];
    let state = vec![0x33u8; 320];
    let aad = b"auth:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef@00000000";
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let blob = crypto::seal_random(&seal_key, &mut rng, aad, &state).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("session_seal_320B", |b| {
        b.iter(|| black_box(crypto::seal_random(&seal_key, &mut rng, aad, black_box(&state)).unwrap()));
    });
    g.bench_function("session_open_320B", |b| {
        b.iter(|| black_box(crypto::open_random(&seal_key, aad, black_box(&blob)).unwrap()));
    });
    g.finish();
}

fn messages(c: &mut Criterion) {
    let mut g = c.benchmark_group("message");
    g.measurement_time(Duration::from_secs(3));
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let cred = ClientCredential {
        format: scram_dh::credential::CREDENTIAL_FORMAT.into(),
        username: "alice".into(),
        salt: vec![1; 32],
        ic: 4096,
        labels: Labels::Random,
        client_key: scram_dh::secret::ClientKey::from_bytes([5; 32]),
        server_key: scram_dh::secret::ServerKey::from_bytes([6; 32]),
        server: None,
        host_key: None,
        password: None,
        unconfirmed: false,
    };
    let a1 =
        AuthClient::start(&mut rng, "alice", cred.secret(), Some(Group::X25519), ClientConfig::default())
            .unwrap()
            .message;
    let text = a1.to_json();
    g.bench_function("a1_parse", |b| {
        b.iter(|| black_box(ClientMessage::from_json(black_box(&text)).unwrap()))
    });
    g.bench_function("a1_encode", |b| b.iter(|| black_box(black_box(&a1).to_json())));
    g.finish();
}

fn rfc5802(c: &mut Criterion) {
    // RFC 7677 section 3's exchange.
    let client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    let mut g = c.benchmark_group("rfc5802");
    g.measurement_time(Duration::from_secs(3));
    let (cf, sf, cfin, sfin) = (
        ClientFirst::parse(client_first).unwrap(),
        ServerFirst::parse(server_first).unwrap(),
        ClientFinal::parse(client_final).unwrap(),
        ServerFinal::parse(server_final).unwrap(),
    );
    assert_eq!((cf.encode(), sf.encode()), (client_first.to_owned(), server_first.to_owned()));
    assert_eq!((cfin.encode(), sfin.encode()), (client_final.to_owned(), server_final.to_owned()));
    g.bench_function("parse_all_four", |b| {
        b.iter(|| {
            black_box(ClientFirst::parse(black_box(client_first)).unwrap());
            black_box(ServerFirst::parse(black_box(server_first)).unwrap());
            black_box(ClientFinal::parse(black_box(client_final)).unwrap());
            black_box(ServerFinal::parse(black_box(server_final)).unwrap());
        });
    });
    g.bench_function("encode_all_four", |b| {
        b.iter(|| {
            black_box(black_box(&cf).encode());
            black_box(black_box(&sf).encode());
            black_box(black_box(&cfin).encode());
            black_box(black_box(&sfin).encode());
        });
    });
    g.finish();
}

criterion_group!(benches, kdf, aead, messages, rfc5802);
criterion_main!(benches);
