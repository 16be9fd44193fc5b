//! The HTTP front (issue 7, SPEC 7) over real HTTP on loopback with memory
//! stores: handshakes, signed requests, sessions, passwd, the gateway, limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use support::{Reply, client_from, send};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scram_dh::auth::client::AuthClient;
use scram_dh::message::ServerMessage;
use scram_dh::register::client::{HostKeyCheck, RegistrationClient};
use scram_dh::{
    ClientConfig, ClientCredential, ClientSecret, Group, HostKey, Labels, MemoryCredentialStore,
    MemorySessionStore, Password, ServerConfig, ServerEngine, SessionKeys,
};
use scram_dh_net::http::{HttpFront, HttpOptions};
use scram_dh_net::http_auth::{Authorization, RESPONSE_MAC_HEADER, mac_matches, response_mac};
use scram_dh_net::{Admission, HostKeyPolicy, KvLimits, KvService, Limits, Penalties, Server};
use tokio::sync::oneshot;

type Engine = ServerEngine<Arc<MemoryCredentialStore>, MemorySessionStore>;

struct Running {
    http: String,
    tcp: SocketAddr,
    fingerprint: scram_dh::Fingerprint,
    _stop: (oneshot::Sender<()>, oneshot::Sender<()>),
}

async fn start(limits: Limits, options: HttpOptions) -> Running {
    start_with(limits, options, true).await
}

async fn start_with(limits: Limits, options: HttpOptions, registration_open: bool) -> Running {
    let host_key = HostKey::from_seed(&[7; 32]);
    let fingerprint = host_key.fingerprint();
    let store = Arc::new(MemoryCredentialStore::default());
    let mut config = ServerConfig::new(host_key, [4; 32]);
    config.registration_open = registration_open;
    let engine: Arc<Engine> = Arc::new(
        ServerEngine::new(config, Arc::clone(&store), MemorySessionStore::new(100_000, 10_000)).unwrap(),
    );
    let admission = Admission::new(limits);
    let server = Server::from_parts(Arc::clone(&engine), KvService::new(store), Arc::clone(&admission));
    let front = HttpFront::new(server.engine_arc(), admission, KvLimits::default().passwd_bounds(), options);
    let tcp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = tcp_listener.local_addr().unwrap();
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", http_listener.local_addr().unwrap());
    let (t1, r1) = oneshot::channel::<()>();
    let (t2, r2) = oneshot::channel::<()>();
    tokio::spawn(server.run(tcp_listener, async {
        let _ = r1.await;
    }));
    tokio::spawn(front.run(http_listener, async {
        let _ = r2.await;
    }));
    Running { http, tcp, fingerprint, _stop: (t1, t2) }
}

async fn post_json(c: &reqwest::Client, url: String, body: String) -> Reply {
    send(c.post(url).header("content-type", "application/json").body(body)).await
}

async fn http_register(srv: &Running, c: &reqwest::Client, user: &str, pinned: bool) -> ClientCredential {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let check = if pinned { HostKeyCheck::Pinned(srv.fingerprint) } else { HostKeyCheck::TrustOnFirstUse };
    let step = RegistrationClient::start(
        &mut rng,
        user,
        Password::new("canary-pw-0451"),
        Group::X25519,
        Labels::Random,
        check,
        ClientConfig::default(),
    )
    .unwrap();
    let r = post_json(c, format!("{}/v1/registration/pairing", srv.http), step.message.to_json()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let reply = ServerMessage::from_json(std::str::from_utf8(&r.body).unwrap()).unwrap();
    let step = step.state.receive_pairing(reply.into_registration_pairing().unwrap()).unwrap();
    let r = post_json(c, format!("{}/v1/registration/password", srv.http), step.message.to_json()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let reply = ServerMessage::from_json(std::str::from_utf8(&r.body).unwrap()).unwrap();
    step.state.finish(reply.into_registration_keys().unwrap()).unwrap()
}

/// Just R1 (what a taken name or a closed registration stops).
async fn r1_only(srv: &Running, c: &reqwest::Client, user: &str) -> Reply {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let step = RegistrationClient::start(
        &mut rng,
        user,
        Password::new("x"),
        Group::X25519,
        Labels::Random,
        HostKeyCheck::TrustOnFirstUse,
        ClientConfig::default(),
    )
    .unwrap();
    post_json(c, format!("{}/v1/registration/pairing", srv.http), step.message.to_json()).await
}

struct Session {
    sid: String,
    keys: SessionKeys,
    seq: Mutex<u64>,
}

/// A1..A4 over HTTP; `Err` is the failing reply.
async fn try_http_login(
    srv: &Running,
    c: &reqwest::Client,
    user: &str,
    secret: ClientSecret,
) -> Result<Session, Reply> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let step =
        AuthClient::start(&mut rng, user, secret, Some(Group::X25519), ClientConfig::default()).unwrap();
    let r = post_json(c, format!("{}/v1/auth/pairing", srv.http), step.message.to_json()).await;
    if r.status != 200 {
        return Err(r);
    }
    let reply = ServerMessage::from_json(std::str::from_utf8(&r.body).unwrap()).unwrap();
    let step = step.state.receive_pairing(reply.into_auth_pairing().unwrap()).unwrap();
    let r = post_json(c, format!("{}/v1/auth/proof", srv.http), step.message.to_json()).await;
    if r.status != 200 {
        return Err(r);
    }
    let reply = ServerMessage::from_json(std::str::from_utf8(&r.body).unwrap()).unwrap();
    let ServerMessage::AuthProof(proof) = reply else { panic!("not A4") };
    let done = step.state.finish(proof).unwrap();
    let sid = done.session_id().unwrap().to_owned();
    assert_eq!(sid.len(), 43);
    let keys = done.into_session_keys().unwrap();
    Ok(Session { sid, keys, seq: Mutex::new(0) })
}

async fn http_login(srv: &Running, c: &reqwest::Client, user: &str, secret: ClientSecret) -> Session {
    try_http_login(srv, c, user, secret)
        .await
        .unwrap_or_else(|r| panic!("{}", String::from_utf8_lossy(&r.body)))
}

impl Session {
    fn next(&self) -> u64 {
        let mut s = self.seq.lock().unwrap();
        *s += 1;
        *s
    }
    fn sign(&self, seq: u64, method: &str, pq: &str, body: &[u8]) -> String {
        Authorization::sign(&self.sid, seq, &self.keys.c2s, method, pq, body).to_header()
    }
    /// A signed request; checks the response MAC when the request was accepted.
    async fn call(
        &self,
        c: &reqwest::Client,
        base: &str,
        method: &str,
        pq: &str,
        body: &[u8],
    ) -> (u64, Reply) {
        let seq = self.next();
        let r = self.raw(c, base, method, pq, body, &self.sign(seq, method, pq, body), &[]).await;
        if r.status < 400 || r.headers.contains_key(RESPONSE_MAC_HEADER) {
            let mac = r.headers.get(RESPONSE_MAC_HEADER).expect("response MAC").to_str().unwrap();
            assert!(mac_matches(&response_mac(&self.keys.s2c, r.status, seq, &r.body), mac), "response MAC");
        }
        (seq, r)
    }
    #[allow(clippy::too_many_arguments)]
    async fn raw(
        &self,
        c: &reqwest::Client,
        base: &str,
        method: &str,
        pq: &str,
        body: &[u8],
        auth: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = c
            .request(method.parse().unwrap(), format!("{base}{pq}"))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        send(req).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_whoami_logout_over_http() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "alice", true).await;
    let _ = http_register(&srv, &c, "tofu", false).await;
    let s = http_login(&srv, &c, "alice", cred.secret()).await;
    let (_, r) = s.call(&c, &srv.http, "GET", "/v1/whoami", b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["username"], "alice");
    let (_, r) = s.call(&c, &srv.http, "POST", "/v1/logout", b"").await;
    assert_eq!(r.status, 200);
    let (_, r) = s.call(&c, &srv.http, "GET", "/v1/whoami", b"").await;
    assert_eq!((r.status, r.code().as_str()), (401, "unknown_session"));
    // A taken username over HTTP is 409.
    let r = r1_only(&srv, &c, "alice").await;
    assert_eq!((r.status, r.code().as_str()), (409, "username_taken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_http_share_users_both_ways() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let stream = tokio::net::TcpStream::connect(srv.tcp).await.unwrap();
    let tcp_cred = scram_dh_net::register(
        stream,
        "bob",
        Password::new("pw"),
        Group::X25519,
        Labels::Rfc,
        &HostKeyPolicy::Fingerprint(srv.fingerprint),
        ClientConfig::default(),
    )
    .await
    .unwrap();
    let s = http_login(&srv, &c, "bob", tcp_cred.secret()).await;
    let (_, r) = s.call(&c, &srv.http, "GET", "/v1/whoami", b"").await;
    assert_eq!(r.json()["username"], "bob");
    let http_cred = http_register(&srv, &c, "carol", true).await;
    let stream = tokio::net::TcpStream::connect(srv.tcp).await.unwrap();
    let login = scram_dh_net::login(stream, "carol", http_cred.secret(), None, ClientConfig::default()).await;
    assert!(login.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_refuse_tampering_and_replay() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "dave", true).await;
    let s = http_login(&srv, &c, "dave", cred.secret()).await;
    let base = &srv.http;
    // A request, then its replay.
    let seq = s.next();
    let auth = s.sign(seq, "GET", "/v1/whoami", b"");
    assert_eq!(s.raw(&c, base, "GET", "/v1/whoami", b"", &auth, &[]).await.status, 200);
    let r = s.raw(&c, base, "GET", "/v1/whoami", b"", &auth, &[]).await;
    assert_eq!((r.status, r.code().as_str()), (401, "authentication_failed"), "replay");
    // Altered method, path, query, body, seq: each fails its MAC.
    let seq = s.next();
    let auth = s.sign(seq, "POST", "/v1/passwd?x=1", b"{}");
    for (method, pq, body) in [
        ("PUT", "/v1/passwd?x=1", &b"{}"[..]),
        ("POST", "/v1/whoami?x=1", b"{}"),
        ("POST", "/v1/passwd?x=2", b"{}"),
        ("POST", "/v1/passwd?x=1", b"{ }"),
    ] {
        let r = s.raw(&c, base, method, pq, body, &auth, &[]).await;
        assert_eq!(r.status, 401, "{method} {pq}");
        assert!(!r.headers.contains_key(RESPONSE_MAC_HEADER));
    }
    let mac_of_seq = Authorization::sign(&s.sid, seq, &s.keys.c2s, "GET", "/v1/whoami", b"");
    let moved = Authorization { seq: seq + 1, ..mac_of_seq.clone() }.to_header();
    assert_eq!(s.raw(&c, base, "GET", "/v1/whoami", b"", &moved, &[]).await.status, 401, "altered seq");
    // The forged requests burned no seq: the genuine one still goes through.
    assert_eq!(s.raw(&c, base, "GET", "/v1/whoami", b"", &mac_of_seq.to_header(), &[]).await.status, 200);
    // Wrong session id.
    let other = Authorization::sign(&"A".repeat(43), 99, &s.keys.c2s, "GET", "/v1/whoami", b"").to_header();
    let r = s.raw(&c, base, "GET", "/v1/whoami", b"", &other, &[]).await;
    assert_eq!((r.status, r.code().as_str()), (401, "unknown_session"));
    // Below the window: jump 100 ahead, then an old fresh number.
    let high = s.sign(200, "GET", "/v1/whoami", b"");
    assert_eq!(s.raw(&c, base, "GET", "/v1/whoami", b"", &high, &[]).await.status, 200);
    let low = s.sign(100, "GET", "/v1/whoami", b"");
    assert_eq!(s.raw(&c, base, "GET", "/v1/whoami", b"", &low, &[]).await.status, 401, "below the window");
    // Unsigned and malformed.
    let r = send(c.get(format!("{base}/v1/whoami"))).await;
    assert_eq!((r.status, r.code().as_str()), (401, "authentication_failed"));
    for bad in ["Basic Zm9vOmJhcg==", "SCRAM-DH sid=x", "SCRAM-DH sid=a, seq=01, mac=AAAA"] {
        let r = s.raw(&c, base, "GET", "/v1/whoami", b"", bad, &[]).await;
        assert_eq!(r.status, 401, "{bad}");
        assert_eq!(r.json()["type"], "error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_requests_then_their_replays() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "erin", true).await;
    let s = Arc::new(http_login(&srv, &c, "erin", cred.secret()).await);
    let auths: Vec<String> = (1..=32).map(|seq| s.sign(seq, "GET", "/v1/whoami", b"")).collect();
    let run = |auths: Vec<String>| {
        let (s, c, base) = (Arc::clone(&s), c.clone(), srv.http.clone());
        async move {
            let tasks: Vec<_> = auths
                .into_iter()
                .map(|a| {
                    let (s, c, base) = (Arc::clone(&s), c.clone(), base.clone());
                    tokio::spawn(
                        async move { s.raw(&c, &base, "GET", "/v1/whoami", b"", &a, &[]).await.status },
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
    assert!(run(auths.clone()).await.iter().all(|s| *s == 200));
    assert!(run(auths).await.iter().all(|s| *s == 401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_lifetime_expiry() {
    let opts = HttpOptions {
        idle_timeout: Duration::from_millis(700),
        lifetime: Duration::from_millis(1800),
        ..HttpOptions::default()
    };
    let srv = start(Limits::default(), opts).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "fay", true).await;
    let idle = http_login(&srv, &c, "fay", cred.secret()).await;
    let busy = http_login(&srv, &c, "fay", cred.secret()).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(busy.call(&c, &srv.http, "GET", "/v1/whoami", b"").await.1.status, 200);
    }
    let r = idle.call(&c, &srv.http, "GET", "/v1/whoami", b"").await.1;
    assert_eq!((r.status, r.code().as_str()), (401, "unknown_session"), "idle-expired");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(busy.call(&c, &srv.http, "GET", "/v1/whoami", b"").await.1.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = busy.call(&c, &srv.http, "GET", "/v1/whoami", b"").await.1;
    assert_eq!((r.status, r.code().as_str()), (401, "unknown_session"), "lifetime over though in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_content_type_size_and_channel_rules() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let a1 = format!("{{\"type\":\"auth_pairing\",\"username\":\"u\",\"client_nonce\":\"{:064x}\"}}", 1);
    let url = format!("{}/v1/auth/pairing", srv.http);
    let r = send(c.post(&url).header("content-type", "text/plain").body(a1.clone())).await;
    assert_eq!((r.status, r.code().as_str()), (415, "invalid_message"));
    let r = send(c.post(&url).body(a1.clone())).await;
    assert_eq!(r.status, 415, "no content type");
    let r = post_json(&c, url.clone(), a1).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_message"), "A1 without channel fields");
    let r = post_json(&c, url.clone(), "x".repeat(16 * 1024 + 1)).await;
    assert_eq!(r.status, 413);
    let r = post_json(&c, url.clone(), "{\"type\":\"nope\"}".into()).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_message"));
    let r = post_json(&c, format!("{}/v1/auth/proof", srv.http), format!(
        "{{\"type\":\"auth_client_proof_generation\",\"client_proof\":\"{}\",\"nonce\":\"{:064x}-{:064x}\"}}",
        "A".repeat(43) + "=", 1, 2
    ))
    .await;
    assert_eq!((r.status, r.code().as_str()), (401, "unknown_session"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_proofs_from_one_address_lead_to_429() {
    let penalties = Penalties {
        peer_free_failures: 2,
        account_free_failures: 100,
        base: Duration::from_secs(30),
        ..Penalties::default()
    };
    let srv = start(Limits { penalties, ..Limits::default() }, HttpOptions::default()).await;
    let owner = client_from(2);
    let cred = http_register(&srv, &owner, "gus", true).await;
    let attacker = client_from(3);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let wrong = ClientSecret::Password(Password::new("guess"));
        match try_http_login(&srv, &attacker, "gus", wrong).await {
            Ok(_) => panic!("guessed"),
            Err(r) => statuses.push((r.status, r.headers.get("retry-after").is_some())),
        }
    }
    assert_eq!(&statuses[..3], &[(401, false); 3]);
    assert_eq!(statuses[3], (429, true), "{statuses:?}");
    // The owner, from elsewhere, logs in.
    http_login(&srv, &owner, "gus", cred.secret()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_over_http_replaces_the_credential() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "hal", true).await;
    let s = http_login(&srv, &c, "hal", cred.secret()).await;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let (body, updated) = scram_dh_net::passwd_body(&mut rng, &cred, &Password::new("new-pw")).unwrap();
    let mut bad = body.clone();
    bad.ic = 1;
    let (_, r) = s.call(&c, &srv.http, "POST", "/v1/passwd", &serde_json::to_vec(&bad).unwrap()).await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_message"));
    let (_, r) = s.call(&c, &srv.http, "POST", "/v1/passwd", &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"], "credential replaced");
    assert!(try_http_login(&srv, &c, "hal", cred.secret()).await.is_err(), "old credential");
    http_login(&srv, &c, "hal", updated.secret()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_names_the_user_only_for_signed_requests() {
    use axum::http::HeaderMap;
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = Arc::clone(&seen);
    let upstream = axum::Router::new().fallback(move |headers: HeaderMap, uri: axum::http::Uri| {
        let log = Arc::clone(&log);
        async move {
            let user = headers.get("x-scram-dh-user").map(|v| v.to_str().unwrap().to_owned());
            log.lock().unwrap().push(user.clone());
            let auth = headers.contains_key("authorization");
            format!("{} user={user:?} auth={auth}", uri)
        }
    });
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(up, upstream).await });
    let opts = HttpOptions { upstream: Some(format!("http://{up_addr}")), ..HttpOptions::default() };
    let srv = start(Limits::default(), opts).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "ida", true).await;
    let s = http_login(&srv, &c, "ida", cred.secret()).await;
    let seq = s.next();
    let auth = s.sign(seq, "GET", "/app/page?q=1", b"");
    let r = s.raw(&c, &srv.http, "GET", "/app/page?q=1", b"", &auth, &[("x-scram-dh-user", "root")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(String::from_utf8_lossy(&r.body), "/app/page?q=1 user=Some(\"ida\") auth=false");
    let mac = r.headers.get(RESPONSE_MAC_HEADER).unwrap().to_str().unwrap();
    assert!(mac_matches(&response_mac(&s.keys.s2c, 200, seq, &r.body), mac));
    // Unsigned, forged and replayed requests never reach the upstream.
    let r = send(c.get(format!("{}/app/page", srv.http)).header("x-scram-dh-user", "root")).await;
    assert_eq!((r.status, r.code().as_str()), (401, "authentication_failed"));
    let r = s.raw(&c, &srv.http, "GET", "/app/page?q=1", b"", &auth, &[("x-scram-dh-user", "root")]).await;
    assert_eq!(r.status, 401);
    let forged = s.sign(999, "GET", "/app/other", b"");
    let r = s.raw(&c, &srv.http, "GET", "/app/page", b"", &forged, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(*seen.lock().unwrap(), vec![Some("ida".to_owned())]);
}

/// An upstream for the gateway: `/slow` answers after 2 s, `/big` with 200 bytes,
/// `/echo` with the request's body, method, headers seen and the client port (the
/// gateway's pooled connection).
async fn test_upstream() -> String {
    use axum::extract::ConnectInfo;
    use axum::http::HeaderMap;
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "late"
            }),
        )
        .route("/big", axum::routing::get(|| async { "x".repeat(200) }))
        .route(
            "/echo",
            axum::routing::post(
                |ConnectInfo(from): ConnectInfo<SocketAddr>, headers: HeaderMap, body: String| async move {
                    let seen = |h: &str| headers.contains_key(h);
                    let reply = format!(
                        "{body}|x-hop={} keep={} port={}",
                        seen("x-hop"),
                        seen("x-keep"),
                        from.port()
                    );
                    // A hop-by-hop header the gateway must not pass back, and one it must.
                    ([("connection", "x-hop-back"), ("x-hop-back", "1"), ("x-kept", "1")], reply)
                },
            ),
        );
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", up.local_addr().unwrap());
    tokio::spawn(
        async move { axum::serve(up, app.into_make_service_with_connect_info::<SocketAddr>()).await },
    );
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_forwards_bodies_strips_hops_and_bounds_the_upstream() {
    let upstream = Some(test_upstream().await);
    let opts = HttpOptions {
        upstream,
        upstream_timeout: Duration::from_millis(500),
        max_body: 100,
        ..HttpOptions::default()
    };
    let srv = start(Limits::default(), opts).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "gus", true).await;
    let s = http_login(&srv, &c, "gus", cred.secret()).await;
    // A signed POST's body reaches the upstream; hop-by-hop headers go neither way,
    // and every forward reuses one kept-alive connection to the upstream.
    let mut ports = Vec::new();
    for _ in 0..4 {
        let seq = s.next();
        let auth = s.sign(seq, "POST", "/echo", b"hello");
        let extra = [("connection", "x-hop"), ("x-hop", "1"), ("x-keep", "1")];
        let r = s.raw(&c, &srv.http, "POST", "/echo", b"hello", &auth, &extra).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let mac = r.headers.get(RESPONSE_MAC_HEADER).unwrap().to_str().unwrap();
        assert!(mac_matches(&response_mac(&s.keys.s2c, 200, seq, &r.body), mac));
        let body = String::from_utf8(r.body.clone()).unwrap();
        let (head, port) = body.rsplit_once(" port=").unwrap();
        assert_eq!(head, "hello|x-hop=false keep=true", "{body}");
        ports.push(port.to_owned());
        assert!(!r.headers.contains_key("x-hop-back") && r.headers.contains_key("x-kept"), "{:?}", r.headers);
    }
    ports.dedup();
    assert_eq!(ports.len(), 1, "one pooled upstream connection: {ports:?}");
    // An upstream slower than the timeout: 504, MAC'd like any accepted request.
    let started = std::time::Instant::now();
    let (_, r) = s.call(&c, &srv.http, "GET", "/slow", b"").await;
    assert_eq!((r.status, r.code().as_str()), (504, "server_error"));
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    // A response over max_body is not buffered whole: 502.
    let (_, r) = s.call(&c, &srv.http, "GET", "/big", b"").await;
    assert_eq!((r.status, r.code().as_str()), (502, "server_error"));
    assert!(String::from_utf8_lossy(&r.body).contains("too large"));
    // No upstream listening: 502.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_url = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let srv2 =
        start(Limits::default(), HttpOptions { upstream: Some(gone_url), ..HttpOptions::default() }).await;
    let cred = http_register(&srv2, &c, "hub", true).await;
    let s2 = http_login(&srv2, &c, "hub", cred.secret()).await;
    let (_, r) = s2.call(&c, &srv2.http, "GET", "/app", b"").await;
    assert_eq!((r.status, r.code().as_str()), (502, "server_error"));
    assert!(String::from_utf8_lossy(&r.body).contains("unavailable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_caps_dh_rate_limit_and_closed_registration() {
    let opts = HttpOptions { max_sessions_per_user: 1, ..HttpOptions::default() };
    let srv = start(Limits { dh_per_sec: 0.001, dh_burst: 4.0, ..Limits::default() }, opts).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "jo", true).await;
    let _first = http_login(&srv, &c, "jo", cred.secret()).await;
    let r = try_http_login(&srv, &c, "jo", cred.secret()).await.err().expect("per-user session cap");
    assert_eq!((r.status, r.code().as_str()), (429, "busy"));
    assert!(r.headers.contains_key("retry-after"));
    // Three DH pairings used the burst of 4 (R1, A1, A1); the next two: one more, then 429.
    let _ = try_http_login(&srv, &c, "jo", cred.secret()).await;
    let r = try_http_login(&srv, &c, "jo", cred.secret()).await.err().expect("rate limited");
    assert_eq!((r.status, r.code().as_str()), (429, "busy"), "{}", String::from_utf8_lossy(&r.body));
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs > 1, "Retry-After from the refusal: {secs}");

    let closed = start_with(Limits::default(), HttpOptions::default(), false).await;
    let r = r1_only(&closed, &c, "kim").await;
    assert_eq!((r.status, r.code().as_str()), (400, "unsupported"), "closed registration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_bodies_are_limited() {
    let srv = start(Limits::default(), HttpOptions { max_body: 64, ..HttpOptions::default() }).await;
    let c = client_from(1);
    let cred = http_register(&srv, &c, "lee", true).await;
    let s = http_login(&srv, &c, "lee", cred.secret()).await;
    let big = vec![b'x'; 65];
    let seq = s.next();
    let r =
        s.raw(&c, &srv.http, "POST", "/v1/passwd", &big, &s.sign(seq, "POST", "/v1/passwd", &big), &[]).await;
    assert_eq!((r.status, r.code().as_str()), (413, "invalid_message"));
    // The refused request burned no seq.
    let r = s.raw(&c, &srv.http, "GET", "/v1/whoami", b"", &s.sign(seq, "GET", "/v1/whoami", b""), &[]).await;
    assert_eq!(r.status, 200);
}
