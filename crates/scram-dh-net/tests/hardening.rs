//! Regression tests for the review findings against the TCP front (issue 6),
//! each named after its finding, over loopback with several source addresses
//! (127.0.0.0/8 is all loopback) and memory stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scram_dh::{
    ClientConfig, ClientCredential, ClientSecret, ErrorCode, Group, HostKey, Labels, MemoryCredentialStore,
    MemorySessionStore, Password, ServerConfig, ServerEngine,
};
use scram_dh_net::{Admission, HostKeyPolicy, KvService, Limits, NetError, Penalties, Server};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    admission: Arc<Admission>,
    fingerprint: scram_dh::Fingerprint,
    _stop: oneshot::Sender<()>,
}

async fn start(limits: Limits) -> Running {
    let host_key = HostKey::from_seed(&[6; 32]);
    let fingerprint = host_key.fingerprint();
    let store = Arc::new(MemoryCredentialStore::default());
    let engine = ServerEngine::new(
        ServerConfig::new(host_key, [3; 32]),
        Arc::clone(&store),
        MemorySessionStore::new(100_000, 10_000),
    )
    .unwrap();
    let server = Server::new(engine, KvService::new(store), limits);
    let admission = Arc::clone(server.admission());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    Running { addr, admission, fingerprint, _stop: tx }
}

/// A connection from `127.0.0.<src>`.
async fn try_register(srv: &Running, src: u8, user: &str) -> Result<ClientCredential, NetError> {
    let s = support::connect_from(src, srv.addr).await;
    scram_dh_net::register(
        s,
        user,
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        &HostKeyPolicy::Fingerprint(srv.fingerprint),
        ClientConfig::default(),
    )
    .await
}

async fn register(srv: &Running, src: u8, user: &str) -> ClientCredential {
    try_register(srv, src, user).await.unwrap()
}

async fn login(
    srv: &Running,
    src: u8,
    user: &str,
    secret: ClientSecret,
    channel: bool,
) -> Result<scram_dh_net::Login<TcpStream>, NetError> {
    support::login_from(src, srv.addr, user, secret, channel).await
}

fn busy_message(e: &NetError) -> Option<String> {
    match e {
        NetError::Protocol(scram_dh::Error::Peer { code: ErrorCode::Busy, message }) => Some(message.clone()),
        _ => None,
    }
}

async fn line(s: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_line(&mut l)).await.unwrap().unwrap();
    l
}

async fn closed(s: &mut BufReader<TcpStream>) -> bool {
    let mut rest = String::new();
    matches!(tokio::time::timeout(Duration::from_secs(5), s.read_line(&mut rest)).await, Ok(Ok(0) | Err(_)))
}

fn a1(user: &str, nonce: u32) -> String {
    format!("{{\"type\":\"auth_pairing\",\"username\":\"{user}\",\"client_nonce\":\"{nonce:064x}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_channel_caps_answer_busy_instead_of_closing() {
    let srv = start(Limits { max_channels_per_user: 2, max_channels_per_peer: 3, ..Limits::default() }).await;
    let alice = register(&srv, 1, "alice").await;
    let bob = register(&srv, 1, "bob").await;
    let a = login(&srv, 1, "alice", alice.secret(), true).await.unwrap();
    let b = login(&srv, 1, "alice", alice.secret(), true).await.unwrap();
    // The user's cap: a third channel is refused with `busy` (not A4 then a cut).
    let e = login(&srv, 1, "alice", alice.secret(), true).await.unwrap_err();
    assert!(busy_message(&e).is_some_and(|m| m.contains("channel")), "{e}");
    // The peer's cap: bob from the same address gets one, then is refused.
    let c = login(&srv, 1, "bob", bob.secret(), true).await.unwrap();
    let e = login(&srv, 1, "bob", bob.secret(), true).await.unwrap_err();
    assert!(busy_message(&e).is_some(), "{e}");
    // From another address, bob is served; logins without a channel always are.
    let d = login(&srv, 2, "bob", bob.secret(), true).await.unwrap();
    login(&srv, 1, "alice", alice.secret(), false).await.unwrap();
    assert_eq!(srv.admission.usage().channels, 4);
    // Closing channels frees their slots.
    drop((a, b, c, d));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(srv.admission.usage().channels, 0);
    login(&srv, 1, "alice", alice.secret(), true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_idle_channels_are_closed_with_an_authenticated_end() {
    let srv = start(Limits { channel_idle_timeout: Duration::from_millis(400), ..Limits::default() }).await;
    let cred = register(&srv, 1, "idle").await;
    let mut busy = login(&srv, 1, "idle", cred.secret(), true).await.unwrap();
    let mut idle = login(&srv, 1, "idle", cred.secret(), true).await.unwrap();
    let ch = busy.channel.as_mut().unwrap();
    // A channel in use stays open past the timeout...
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        ch.send(br#"{"cmd":"whoami"}"#).await.unwrap();
        assert!(ch.recv().await.unwrap().is_some());
    }
    // ...an idle one is ended by the server with the end-of-stream record.
    let end = tokio::time::timeout(Duration::from_secs(3), idle.channel.as_mut().unwrap().recv()).await;
    assert!(matches!(end, Ok(Ok(None))), "{end:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(srv.admission.usage().channels, 1, "the idle channel's slot is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_dh_pairings_are_rate_limited_per_peer() {
    let srv = start(Limits { dh_per_sec: 0.001, dh_burst: 4.0, ..Limits::default() }).await;
    let cred = register(&srv, 9, "dh").await;
    for _ in 0..4 {
        login(&srv, 1, "dh", cred.secret(), true).await.unwrap();
    }
    let e = login(&srv, 1, "dh", cred.secret(), true).await.unwrap_err();
    let msg = busy_message(&e).unwrap_or_else(|| panic!("{e}"));
    assert!(msg.contains("rate limit") && msg.contains("retry in"), "{msg}");
    // A registration costs DH too and draws on the same, empty, bucket.
    let e = try_register(&srv, 1, "dh2").await.unwrap_err();
    assert!(busy_message(&e).is_some(), "{e}");
    // Logins without DH are not limited by it, and other peers have their own bucket.
    login(&srv, 1, "dh", cred.secret(), false).await.unwrap();
    login(&srv, 2, "dh", cred.secret(), true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_idle_connections_are_capped_and_timed_out() {
    let srv = start(Limits {
        max_connections_per_peer: 8,
        first_line_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(BufReader::new(support::connect_from(1, srv.addr).await));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ninth = BufReader::new(support::connect_from(1, srv.addr).await);
    let l = line(&mut ninth).await;
    assert!(l.contains(r#""code":"busy""#) && l.contains("too many connections"), "{l}");
    // Everyone else is still served while the idle eight are held...
    let cred = register(&srv, 2, "other").await;
    login(&srv, 2, "other", cred.secret(), true).await.unwrap();
    // ...and the idle eight are closed after the first-line deadline, with a reason.
    for s in &mut idle {
        let l = line(s).await;
        assert!(l.contains("timed out"), "{l}");
        assert!(closed(s).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(srv.admission.usage().connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_a_few_peers_cannot_take_the_last_slots() {
    let srv = start(Limits {
        max_connections: 40,
        max_connections_per_peer: 10,
        max_handshakes: 40,
        max_handshakes_per_peer: 10,
        connection_reserve: 12,
        reserve_peer_max: 2,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    // Four flooding addresses try to hold 10 each: 28 of 40 slots are open to all,
    // and the reserve takes only peers holding fewer than 2 (the fourth gets two).
    for src in 10..14u8 {
        for _ in 0..10 {
            held.push(BufReader::new(support::connect_from(src, srv.addr).await));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(srv.admission.usage().connections, 30, "the reserve is kept");
    // A newcomer still gets in (registers and logs in with a channel; its closed
    // registration connection may still count for a moment, hence 2 above).
    let cred = register(&srv, 2, "newcomer").await;
    login(&srv, 2, "newcomer", cred.secret(), true).await.unwrap();
}

fn fast_penalties() -> Penalties {
    Penalties {
        peer_free_failures: 2,
        account_free_failures: 3,
        base: Duration::from_secs(30),
        ..Penalties::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_failed_proofs_from_a_peer_are_penalised() {
    let srv = start(Limits { penalties: fast_penalties(), ..Limits::default() }).await;
    let cred = register(&srv, 2, "victim").await;
    for _ in 0..2 {
        let e = login(&srv, 1, "victim", support::wrong_keys(), false).await.unwrap_err();
        assert!(e.is_auth_failure(), "{e}");
    }
    // The third guess starts the penalty; the fourth is refused before any work.
    let e = login(&srv, 1, "victim", support::wrong_keys(), false).await.unwrap_err();
    assert!(e.is_auth_failure(), "{e}");
    let e = login(&srv, 1, "victim", support::wrong_keys(), false).await.unwrap_err();
    let msg = busy_message(&e).unwrap_or_else(|| panic!("{e}"));
    assert!(msg.contains("failed logins from your address"), "{msg}");
    // Even the right credential from the penalised address waits (the address is the unit)...
    assert!(busy_message(&login(&srv, 1, "victim", cred.secret(), false).await.unwrap_err()).is_some());
    // ...while the user, elsewhere, logs in.
    login(&srv, 2, "victim", cred.secret(), true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_attackers_cannot_lock_the_owner_out() {
    let srv = start(Limits { penalties: fast_penalties(), ..Limits::default() }).await;
    let cred = register(&srv, 2, "owner").await;
    // The owner has logged in from 127.0.0.2 before.
    login(&srv, 2, "owner", cred.secret(), false).await.unwrap();
    // A distributed guesser: one failure from each of many addresses.
    for src in 20..26u8 {
        let _ = login(&srv, src, "owner", support::wrong_keys(), false).await;
    }
    // A new address is now asked to wait for this account...
    let e = login(&srv, 40, "owner", cred.secret(), false).await.unwrap_err();
    let msg = busy_message(&e).unwrap_or_else(|| panic!("{e}"));
    assert!(msg.contains("failed logins for this account"), "{msg}");
    // ...but the owner's own address is not locked out, with or without a channel.
    login(&srv, 2, "owner", cred.secret(), false).await.unwrap();
    login(&srv, 2, "owner", cred.secret(), true).await.unwrap();
    // An unknown name is penalised the same way (no enumeration through penalties).
    for src in 20..26u8 {
        let _ = login(&srv, src, "nobody-here", support::wrong_keys(), false).await;
    }
    let e = login(&srv, 41, "nobody-here", support::wrong_keys(), false).await.unwrap_err();
    assert!(busy_message(&e).is_some_and(|m| m.contains("for this account")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l9_one_handshake_in_flight_per_connection() {
    let srv = start(Limits::default()).await;
    let mut s = BufReader::new(support::connect_from(1, srv.addr).await);
    s.get_mut().write_all(format!("{}\n", a1("x", 1)).as_bytes()).await.unwrap();
    assert!(line(&mut s).await.contains(r#""type":"auth_pairing""#));
    s.get_mut().write_all(format!("{}\n", a1("x", 2)).as_bytes()).await.unwrap();
    let l = line(&mut s).await;
    assert!(l.contains(r#""code":"invalid_message""#) && l.contains("already in progress"), "{l}");
    assert!(closed(&mut s).await);
    // A registration pairing after an auth pairing is refused the same way.
    let mut s = BufReader::new(support::connect_from(1, srv.addr).await);
    s.get_mut().write_all(format!("{}\n", a1("x", 3)).as_bytes()).await.unwrap();
    assert!(line(&mut s).await.contains(r#""type":"auth_pairing""#));
    let r1 = format!(
        "{{\"type\":\"registration_pairing\",\"username\":\"y\",\"group\":\"x25519\",\"public_key\":\"{}\",\"client_nonce\":\"{:064x}\",\"labels\":\"random\"}}\n",
        "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=", 4
    );
    s.get_mut().write_all(r1.as_bytes()).await.unwrap();
    let l = line(&mut s).await;
    assert!(l.contains(r#""code":"invalid_message""#), "{l}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l13_invalid_utf8_is_answered_and_crlf_is_not_counted() {
    let srv = start(Limits::default()).await;
    let mut s = BufReader::new(support::connect_from(1, srv.addr).await);
    s.get_mut().write_all(b"\xff\xfe{}\n").await.unwrap();
    let l = line(&mut s).await;
    assert!(l.contains(r#""code":"invalid_message""#) && l.contains("UTF-8"), "{l}");
    // A message of exactly 16 KiB (JSON allows trailing spaces) ended by \r\n is accepted.
    let mut msg = a1("x", 7);
    msg.push_str(&" ".repeat(16 * 1024 - msg.len()));
    let mut s = BufReader::new(support::connect_from(1, srv.addr).await);
    s.get_mut().write_all(format!("{msg}\r\n").as_bytes()).await.unwrap();
    let l = line(&mut s).await;
    assert!(l.contains(r#""type":"auth_pairing""#), "{l}");
    // One byte more is refused as too long.
    let mut s = BufReader::new(support::connect_from(1, srv.addr).await);
    s.get_mut().write_all(format!("{msg} \r\n").as_bytes()).await.unwrap();
    let l = line(&mut s).await;
    assert!(l.contains("16 KiB"), "{l}");
}
