//! Several nodes behind a load balancer (issue 9), on loopback: two sets of
//! fronts (TCP, standard SCRAM over TCP, HTTP) over engines with one
//! configuration and one credential store, sharing an HTTP session store and a
//! penalty store (the memory implementations: one instance seen by both nodes is
//! exactly the multi-node semantics a Redis store gives). And stores that are
//! down: every front refuses, with `server_error`, and serves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use support::{Reply, client_from, send};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scram_dh::auth::client::AuthClient;
use scram_dh::cluster::{
    HttpSessionLimits, HttpSessionRecord, HttpSessionStore, MemoryHttpSessionStore, MemoryPenaltyStore,
    PenaltyRule, PenaltyStore, StoreFuture, WindowSwap,
};
use scram_dh::record::StoreError;
use scram_dh::sasl::ClientChannel;
use scram_dh::sasl::client::SaslClient;
use scram_dh::{
    ClientConfig, ClientKeys, ClientSecret, CredentialStore, ErrorCode, Group, HostKey, Labels,
    MemoryCredentialStore, MemorySessionStore, Password, ServerConfig, ServerEngine, SessionKeys,
};
use scram_dh_net::http::{HttpFront, HttpOptions};
use scram_dh_net::http_auth::{Authorization, RESPONSE_MAC_HEADER, mac_matches, response_mac};
use scram_dh_net::http_client::HttpClient;
use scram_dh_net::sasl::{SaslServer, sasl_login};
use scram_dh_net::{Admission, KvLimits, KvService, Limits, NetError, Penalties, Server};
use tokio::sync::oneshot;

type Engine = ServerEngine<Arc<MemoryCredentialStore>, MemorySessionStore>;

const PW: &str = "pencil";
const T: Duration = Duration::from_secs(10);

/// One node: its three fronts' addresses.
struct Node {
    http: String,
    tcp: SocketAddr,
    sasl: SocketAddr,
    _stop: Vec<oneshot::Sender<()>>,
}

/// A user with RFC labels, so both the scram-dh and the standard SCRAM clients
/// log in with the password.
async fn add_user(store: &MemoryCredentialStore, user: &str) {
    let salt = [0x5a; 16];
    let salted = scram_dh::keys::salted_password(&Password::new(PW), &salt, 4096).unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let keys = ClientKeys::generate(&mut rng, &salted, Labels::Rfc);
    store.insert(&keys.record(user, &salt, 4096, 0, Labels::Rfc)).await.unwrap();
}

/// A node over `credentials` with the cluster's one configuration (host key,
/// secret), its own in-flight handshakes, and the given admission layer and
/// HTTP session store.
async fn node(
    credentials: &Arc<MemoryCredentialStore>,
    admission: Arc<Admission>,
    sessions: Arc<dyn HttpSessionStore>,
) -> Node {
    let config = ServerConfig::new(HostKey::from_seed(&[7; 32]), [4; 32]);
    let engine: Arc<Engine> = Arc::new(
        ServerEngine::new(config, Arc::clone(credentials), MemorySessionStore::new(100_000, 10_000)).unwrap(),
    );
    let tcp_front = Server::from_parts(
        Arc::clone(&engine),
        KvService::new(Arc::clone(credentials)),
        Arc::clone(&admission),
    );
    let http_front = HttpFront::with_session_store(
        Arc::clone(&engine),
        Arc::clone(&admission),
        KvLimits::default().passwd_bounds(),
        HttpOptions::default(),
        sessions,
    );
    let sasl_front = SaslServer::new(engine, admission);
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (tcp_l, http_l, sasl_l) = (bind().await.unwrap(), bind().await.unwrap(), bind().await.unwrap());
    let (tcp, sasl) = (tcp_l.local_addr().unwrap(), sasl_l.local_addr().unwrap());
    let http = format!("http://{}", http_l.local_addr().unwrap());
    let mut stop = Vec::new();
    let mut stopper = || {
        let (tx, rx) = oneshot::channel::<()>();
        stop.push(tx);
        async {
            let _ = rx.await;
        }
    };
    tokio::spawn(tcp_front.run(tcp_l, stopper()));
    tokio::spawn(http_front.run(http_l, stopper()));
    tokio::spawn(sasl_front.run(sasl_l, stopper()));
    Node { http, tcp, sasl, _stop: stop }
}

fn memory_sessions() -> Arc<dyn HttpSessionStore> {
    Arc::new(MemoryHttpSessionStore::new(HttpSessionLimits::default()))
}

/// One signed request numbered `seq` in session `sid`, sent to `base`; the
/// response MAC is checked whenever the layer gave one.
async fn signed(base: &str, sid: &str, keys: &SessionKeys, seq: u64, method: &str, pq: &str) -> Reply {
    let auth = Authorization::sign(sid, seq, &keys.c2s, method, pq, b"");
    let c = client_from(1);
    let r = send(
        c.request(method.parse().unwrap(), format!("{base}{pq}")).header("authorization", auth.to_header()),
    )
    .await;
    if let Some(mac) = r.headers.get(RESPONSE_MAC_HEADER) {
        assert!(mac_matches(&response_mac(&keys.s2c, r.status, seq, &r.body), mac.to_str().unwrap()));
    } else {
        assert!(r.status >= 400, "a success without a response MAC");
    }
    r
}

// A session opened on node A serves signed requests on node B; a seq accepted
// on one is refused on the other; a logout on B ends it on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sessions_span_nodes() {
    let credentials = Arc::new(MemoryCredentialStore::default());
    add_user(&credentials, "alice").await;
    let sessions = memory_sessions();
    let a = node(&credentials, Admission::new(Limits::default()), Arc::clone(&sessions)).await;
    let b = node(&credentials, Admission::new(Limits::default()), Arc::clone(&sessions)).await;
    let login = HttpClient::new(&a.http, T)
        .unwrap()
        .login("alice", ClientSecret::Password(Password::new(PW)), Group::X25519, ClientConfig::default())
        .await
        .unwrap();
    let (sid, keys) = (login.session_id.clone(), login.keys.clone());
    let r = signed(&b.http, &sid, &keys, 0, "GET", "/v1/whoami").await;
    assert_eq!((r.status, r.json()["username"].as_str()), (200, Some("alice")), "served by B");
    let r = signed(&a.http, &sid, &keys, 0, "GET", "/v1/whoami").await;
    assert_eq!((r.status, r.code().as_str()), (401, "authentication_failed"), "B's seq replayed on A");
    assert_eq!(signed(&a.http, &sid, &keys, 1, "GET", "/v1/whoami").await.status, 200);
    // Concurrent requests spread over both nodes: each seq once, across them.
    let run = |seqs: Vec<u64>, flip: bool| {
        let (a, b, sid, keys) = (a.http.clone(), b.http.clone(), sid.clone(), keys.clone());
        async move {
            let tasks: Vec<_> = seqs
                .into_iter()
                .map(|seq| {
                    let base = if (seq % 2 == 0) != flip { a.clone() } else { b.clone() };
                    let (sid, keys) = (sid.clone(), keys.clone());
                    tokio::spawn(
                        async move { signed(&base, &sid, &keys, seq, "GET", "/v1/whoami").await.status },
                    )
                })
                .collect();
            let mut statuses = Vec::new();
            for t in tasks {
                statuses.push(t.await.unwrap());
            }
            statuses
        }
    };
    assert!(run((2..34).collect(), false).await.iter().all(|s| *s == 200));
    // The same seqs again, each on the other node than before.
    assert!(run((2..34).collect(), true).await.iter().all(|s| *s == 401));
    let r = signed(&b.http, &sid, &keys, 40, "POST", "/v1/logout").await;
    assert_eq!(r.status, 200, "logout on B");
    let r = signed(&a.http, &sid, &keys, 41, "GET", "/v1/whoami").await;
    assert_eq!((r.status, r.code().as_str()), (401, "unknown_session"), "ended on A too");
    assert_eq!(sessions.live(now_ms()).await.unwrap(), 0);
}

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
        .unwrap()
}

/// A standard SCRAM login over TCP from 127.0.0.`src`.
async fn sasl_from(src: u8, addr: SocketAddr, user: &str, pw: &str) -> Result<(), NetError> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, src], 0))).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let config = ClientConfig::default();
    sasl_login(stream, user, &Password::new(pw), ClientChannel::Unsupported, &config, T).await.map(|_| ())
}

fn e_value(e: &NetError) -> &str {
    match e {
        NetError::Protocol(scram_dh::Error::ScramRefused { value }) => value,
        other => panic!("expected an e= refusal, got {other:?}"),
    }
}

// A peer that guessed on node A is throttled on node B, on every front; an
// account guessed at from many addresses is locked on both, except for a peer
// that logged in to it before, on either node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn penalties_span_nodes() {
    let credentials = Arc::new(MemoryCredentialStore::default());
    for user in ["bob", "carol"] {
        add_user(&credentials, user).await;
    }
    let penalties: Arc<dyn PenaltyStore> = Arc::new(MemoryPenaltyStore::new(10_000));
    let limits = || Limits {
        penalties: Penalties {
            peer_free_failures: 2,
            account_free_failures: 3,
            base: Duration::from_secs(30),
            ..Penalties::default()
        },
        ..Limits::default()
    };
    let a = node(
        &credentials,
        Admission::with_penalty_store(limits(), Arc::clone(&penalties)),
        memory_sessions(),
    )
    .await;
    let b = node(
        &credentials,
        Admission::with_penalty_store(limits(), Arc::clone(&penalties)),
        memory_sessions(),
    )
    .await;
    // 127.0.0.9 logs in to carol on B: trusted for carol everywhere.
    sasl_from(9, b.sasl, "carol", PW).await.unwrap();
    // 127.0.0.3 guesses bob's password three times on A's HTTP front.
    for _ in 0..3 {
        let wrong = ClientSecret::Password(Password::new("guess"));
        let e = login_from(&a.http, 3, "bob", wrong).await.unwrap_err();
        assert!(e.starts_with("401"), "{e}");
    }
    // ... and is refused on B, over standard SCRAM and over HTTP.
    let e = sasl_from(3, b.sasl, "bob", PW).await.unwrap_err();
    assert_eq!(e_value(&e), "no-resources");
    let right = ClientSecret::Password(Password::new(PW));
    let e = login_from(&b.http, 3, "bob", right).await.unwrap_err();
    assert!(e.starts_with("429"), "{e}");
    // Another address is not, on either node.
    sasl_from(4, b.sasl, "bob", PW).await.unwrap();
    // carol guessed at from four addresses on A (one each: no peer penalty).
    for src in 20..24 {
        let e = sasl_from(src, a.sasl, "carol", "guess").await.unwrap_err();
        assert_eq!(e_value(&e), "invalid-proof");
    }
    // A fresh address is refused for carol on B; the one trusted on B gets in on A.
    assert_eq!(e_value(&sasl_from(30, b.sasl, "carol", PW).await.unwrap_err()), "no-resources");
    sasl_from(9, a.sasl, "carol", PW).await.unwrap();
}

/// A scram-dh login over HTTP from 127.0.0.`src`: `Err` is the status and body.
async fn login_from(base: &str, src: u8, user: &str, secret: ClientSecret) -> Result<(), String> {
    let c = client_from(src);
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let step =
        AuthClient::start(&mut rng, user, secret, Some(Group::X25519), ClientConfig::default()).unwrap();
    let post = |route: &str, body: String| {
        c.post(format!("{base}{route}")).header("content-type", "application/json").body(body)
    };
    let r = send(post("/v1/auth/pairing", step.message.to_json())).await;
    if r.status != 200 {
        return Err(format!("{} {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    let reply = scram_dh::message::ServerMessage::from_json(std::str::from_utf8(&r.body).unwrap()).unwrap();
    let step = step.state.receive_pairing(reply.into_auth_pairing().unwrap()).unwrap();
    let r = send(post("/v1/auth/proof", step.message.to_json())).await;
    if r.status != 200 {
        return Err(format!("{} {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    Ok(())
}

/// A store that is always down (both kinds).
#[derive(Debug)]
struct Down;

fn down<'a, T: Send + 'a>() -> StoreFuture<'a, T> {
    Box::pin(async { Err(StoreError("connection refused".into())) })
}

impl PenaltyStore for Down {
    fn wait<'a>(&'a self, _: &'a str, _: u64) -> StoreFuture<'a, Option<u64>> {
        down()
    }
    fn fail<'a>(&'a self, _: &'a str, _: &'a PenaltyRule, _: u64) -> StoreFuture<'a, Option<u64>> {
        down()
    }
    fn clear<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
        down()
    }
    fn trust<'a>(&'a self, _: &'a str, _: u64, _: u64) -> StoreFuture<'a, ()> {
        down()
    }
    fn trusted<'a>(&'a self, _: &'a str, _: u64) -> StoreFuture<'a, bool> {
        down()
    }
}

impl HttpSessionStore for Down {
    fn create<'a>(&'a self, _: &'a str, _: &'a HttpSessionRecord, _: u64) -> StoreFuture<'a, bool> {
        down()
    }
    fn get<'a>(&'a self, _: &'a str, _: u64) -> StoreFuture<'a, Option<HttpSessionRecord>> {
        down()
    }
    fn swap_window<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8; 16],
        _: &'a [u8; 16],
        _: u64,
    ) -> StoreFuture<'a, WindowSwap> {
        down()
    }
    fn end<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
        down()
    }
    fn live(&self, _: u64) -> StoreFuture<'_, usize> {
        down()
    }
}

// Fail closed: with the penalty store down, every front refuses every login
// with server_error (TCP: the error message; standard SCRAM: e=other-error;
// HTTP and RFC 7804: 503), and the reply says nothing of the store's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_penalty_store_refuses_logins_on_every_front() {
    let credentials = Arc::new(MemoryCredentialStore::default());
    add_user(&credentials, "dave").await;
    let n = node(
        &credentials,
        Admission::with_penalty_store(Limits::default(), Arc::new(Down)),
        memory_sessions(),
    )
    .await;
    // TCP, scram-dh.
    let stream = tokio::net::TcpStream::connect(n.tcp).await.unwrap();
    let secret = ClientSecret::Password(Password::new(PW));
    match scram_dh_net::login(stream, "dave", secret, None, ClientConfig::default()).await {
        Err(NetError::Protocol(scram_dh::Error::Peer { code, message })) => {
            assert_eq!(code, ErrorCode::ServerError);
            assert!(!message.contains("connection refused"), "{message}");
        }
        other => panic!("expected server_error: {:?}", other.map(|l| l.username)),
    }
    // TCP, standard SCRAM.
    let e = sasl_from(1, n.sasl, "dave", PW).await.unwrap_err();
    assert_eq!(e_value(&e), "other-error");
    // HTTP, scram-dh.
    let e = login_from(&n.http, 1, "dave", ClientSecret::Password(Password::new(PW))).await.unwrap_err();
    assert!(e.starts_with("503") && e.contains("server_error") && !e.contains("connection refused"), "{e}");
    // HTTP, RFC 7804.
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let sasl = SaslClient::new(
        "dave",
        &Password::new(PW),
        ClientChannel::Unsupported,
        &ClientConfig::default(),
        &mut rng,
    )
    .unwrap();
    let first = STANDARD.encode(sasl.client_first());
    let r = send(
        client_from(1)
            .get(format!("{}/v1/whoami", n.http))
            .header("authorization", format!("SCRAM-SHA-256 data={first}")),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (503, "server_error"));
    assert!(r.headers.contains_key("retry-after"));
}

// Fail closed: with the HTTP session store down, a login that proved the
// password gets 503 and no session, and a signed request is 503, never served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_session_store_serves_nothing() {
    let credentials = Arc::new(MemoryCredentialStore::default());
    add_user(&credentials, "erin").await;
    let n = node(&credentials, Admission::new(Limits::default()), Arc::new(Down)).await;
    let e = login_from(&n.http, 1, "erin", ClientSecret::Password(Password::new(PW))).await.unwrap_err();
    assert!(e.starts_with("503") && e.contains("server_error"), "{e}");
    let keys = SessionKeys {
        c2s: scram_dh::secret::SymmetricKey::from_bytes([1; 32]),
        s2c: scram_dh::secret::SymmetricKey::from_bytes([2; 32]),
    };
    let r = signed(&n.http, "some-session", &keys, 0, "GET", "/v1/whoami").await;
    assert_eq!((r.status, r.code().as_str()), (503, "server_error"));
}
