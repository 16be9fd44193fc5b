//! The cost of one full in-process login, for instruction counting and allocation
//! counting: the same steps as `protocol`'s `auth/full_in_process_no_channel`, run
//! `N` times (first argument, default 1000) inside `login_once`, which
//! `valgrind --tool=callgrind --toggle-collect='*login_once*'` can isolate.
//! Heap allocations per login: `valgrind --tool=dhat` on `N` and on `2N` logins,
//! the difference in "total blocks" divided by `N` (no counting allocator here: it
//! would need `unsafe`, which the workspace keeps to one audited module).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

#[path = "support/login.rs"]
mod login;
use login::login_once;

use scram_dh::auth::client::AuthClient;
use scram_dh::message::ServerMessage;
use scram_dh::pair::{Pair, block_on};
use scram_dh::{ClientConfig, ClientSecret, Group, Labels, Outcome};

fn steps(pair: &mut Pair, secret: &ClientSecret) {
    use std::time::Instant;
    let mut t = [0f64; 8];
    let n = 50_000;
    for _ in 0..n {
        let t0 = Instant::now();
        let step =
            AuthClient::start(&mut pair.client_rng, "alice", secret.clone(), None, ClientConfig::default())
                .expect("start");
        let a1 = step.message.to_json();
        let t1 = Instant::now();
        let out = block_on(pair.engine.handle_json(&a1, "bench", pair.now_ms, &mut pair.server_rng));
        let t2 = Instant::now();
        let j = out.reply().to_json();
        let a2 = ServerMessage::from_json(&j).and_then(ServerMessage::into_auth_pairing).expect("a2");
        let t3 = Instant::now();
        let step = step.state.receive_pairing(a2).expect("a3");
        let t4 = Instant::now();
        let a3 = step.message.to_json();
        let t5 = Instant::now();
        let out = block_on(pair.engine.handle_json(&a3, "bench", pair.now_ms, &mut pair.server_rng));
        let t6 = Instant::now();
        let Outcome::Authenticated { reply, auth } = out else { panic!("auth failed") };
        let a4 =
            ServerMessage::from_json(&reply.to_json()).and_then(ServerMessage::into_auth_proof).expect("a4");
        black_box((step.state.finish(a4).expect("verify"), auth));
        let t7 = Instant::now();
        for (i, (a, b)) in
            [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6), (t6, t7)].into_iter().enumerate()
        {
            t[i] += (b - a).as_secs_f64();
        }
    }
    let names = [
        "start+A1 json",
        "server A1",
        "A2 json+parse",
        "receive_pairing",
        "A3 json",
        "server A3",
        "A4 json+finish",
    ];
    for (i, name) in names.iter().enumerate() {
        println!("{name:>18}: {:5.0} ns", t[i] / f64::from(n) * 1e9);
    }
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut pair = Pair::new(1);
    let cred = pair.register("alice", "pw", Group::X25519, Labels::Random).expect("register");
    let secret = cred.secret();
    login_once(&mut pair, &secret);
    for _ in 0..n {
        login_once(&mut pair, &secret);
    }
    println!("{n} logins");
    if std::env::args().nth(2).as_deref() == Some("time") {
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = std::time::Instant::now();
            for _ in 0..20_000 {
                login_once(&mut pair, &secret);
            }
            best = best.min(t.elapsed().as_secs_f64() / 20_000.0 * 1e9);
        }
        println!("best of 7 batches: {best:.0} ns per login");
        steps(&mut pair, &secret);
        micro();
    }
}

fn time(name: &str, mut f: impl FnMut()) {
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = std::time::Instant::now();
        for _ in 0..20_000 {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / 20_000.0 * 1e9);
    }
    println!("{name}: {best:.0} ns");
}

fn micro() {
    use rand_core::SeedableRng;
    let am = [b'x'; 400];
    let key = [7u8; 32];
    time("hmac 400B", || {
        black_box(scram_dh::crypto::hmac(black_box(&key), &[&am]));
    });
    let hk = scram_dh::crypto::HmacKey::new(&key);
    time("hmackey.mac 400B", || {
        black_box(hk.mac(&[black_box(&am)]));
    });
    time("hmackey.mac 20B", || {
        black_box(hk.mac(&[black_box(&am[..20])]));
    });
    time("sha256 32B", || {
        black_box(scram_dh::crypto::sha256(black_box(&key)));
    });
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let pt = [1u8; 206];
    time("seal 206B", || {
        black_box(
            scram_dh::crypto::seal_random(
                &key,
                &mut rng,
                b"auth:0123456789012345678901234567890123456789",
                &pt,
            )
            .unwrap(),
        );
    });
    let sealed = scram_dh::crypto::seal_random(&key, &mut rng, b"aad", &pt).unwrap();
    time("open 206B", || {
        black_box(scram_dh::crypto::open_random(&key, b"aad", black_box(&sealed)).unwrap());
    });
    for len in [0usize, 16, 64, 206, 512] {
        let pt = vec![1u8; len];
        time(&format!("xseal {len}B"), || {
            black_box(scram_dh::crypto::seal_random(&key, &mut rng, b"aad", &pt).unwrap());
        });
        let sk = scram_dh::secret::SymmetricKey::from_bytes(key);
        time(&format!("chacha seal {len}B"), || {
            black_box(scram_dh::crypto::seal(&sk, 1, b"aad", &pt).unwrap());
        });
    }
    let mut buf = [0u8; 64];
    time("rng 64B", || {
        rand_core::Rng::fill_bytes(&mut rng, &mut buf);
        black_box(&buf);
    });
}
