//! RFC 7804 (standard SCRAM-SHA-256 over HTTP, SPEC 7) on the real HTTP front
//! over loopback with memory stores: records with RFC labels provisioned with a
//! password, the library client and hand-made exchanges (the header spellings
//! gel and requests-scram use), refusals, the gateway and the penalties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use support::{Reply, client_from, send};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scram_dh::keys::{ClientKeys, salted_password};
use scram_dh::sasl::ClientChannel;
use scram_dh::sasl::client::{SaslClient, SaslClientFinal};
use scram_dh::{
    ClientConfig, CredentialStore, HostKey, Labels, MemoryCredentialStore, MemorySessionStore, Password,
    ServerConfig, ServerEngine,
};
use scram_dh_net::http::{HttpFront, HttpOptions};
use scram_dh_net::http_auth::{Challenge, parse_auth_info, parse_challenges};
use scram_dh_net::http_client::{HttpClient, HttpError};
use scram_dh_net::{Admission, KvLimits, Limits, Penalties};
use tokio::sync::oneshot;

const PW: &str = "pencil-0451";

struct Running {
    http: String,
    _stop: oneshot::Sender<()>,
}

async fn provision(store: &MemoryCredentialStore, user: &str, password: &str, labels: Labels) {
    let salt = [9u8; 32];
    let salted = salted_password(&Password::new(password), &salt, 4096).unwrap();
    let keys = match labels {
        Labels::Rfc => ClientKeys::rfc(&salted),
        _ => ClientKeys::generate(&mut rand_core::UnwrapErr(getrandom::SysRng), &salted, labels),
    };
    store.insert(&keys.record(user, &salt, 4096, 0, labels)).await.unwrap();
}

async fn start(limits: Limits, options: HttpOptions) -> Running {
    start_with_sessions(limits, options, MemorySessionStore::new(100_000, 10_000)).await
}

async fn start_with_sessions(limits: Limits, options: HttpOptions, sessions: MemorySessionStore) -> Running {
    let store = Arc::new(MemoryCredentialStore::default());
    provision(&store, "alice", PW, Labels::Rfc).await;
    provision(&store, "keys-only", PW, Labels::Random).await;
    let config = ServerConfig::new(HostKey::from_seed(&[7; 32]), [4; 32]);
    let engine = Arc::new(ServerEngine::open(config, store, sessions).await.unwrap());
    let front = HttpFront::new(engine, Admission::new(limits), KvLimits::default().passwd_bounds(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(front.run(listener, async {
        let _ = stopped.await;
    }));
    Running { http, _stop: stop }
}

/// Every test client is 127.0.0.1 unless it says otherwise: lift the per-peer
/// penalties for tests that fail on purpose.
fn lenient() -> Limits {
    Limits { penalties: Penalties { peer_free_failures: 1000, ..Penalties::default() }, ..Limits::default() }
}

fn lib_client(srv: &Running) -> HttpClient {
    HttpClient::new(&srv.http, Duration::from_secs(10)).unwrap()
}

impl Reply {
    fn www_authenticate(&self) -> Vec<String> {
        self.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }
    fn scram_challenge(&self) -> Challenge {
        let all: Vec<Challenge> =
            self.www_authenticate().iter().flat_map(|v| parse_challenges(v).unwrap()).collect();
        all.into_iter().find(|c| c.is("SCRAM-SHA-256")).expect("a SCRAM-SHA-256 challenge")
    }
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn unb64(s: &str) -> String {
    String::from_utf8(STANDARD.decode(s).unwrap()).unwrap()
}

/// A hand-driven exchange: round trip 1 with `first_header(b64 client-first)`.
struct Manual {
    sid: String,
    server_first: String,
    waiting: SaslClientFinal,
}

async fn manual_first(
    c: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
    first_header: impl Fn(&str) -> String,
) -> Result<Manual, Reply> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let sasl = SaslClient::new(
        user,
        &Password::new(password),
        ClientChannel::Unsupported,
        &ClientConfig::default(),
        &mut rng,
    )
    .unwrap();
    let r = send(c.get(url).header("authorization", first_header(&b64(&sasl.client_first())))).await;
    if r.status != 401 || r.headers.get_all("www-authenticate").iter().count() != 1 {
        return Err(r);
    }
    let ch = r.scram_challenge();
    let (Some(sid), Some(data)) = (ch.param("sid"), ch.param("data")) else { return Err(r) };
    let server_first = unb64(data);
    let waiting = sasl.receive_server_first(server_first.as_bytes()).unwrap();
    Ok(Manual { sid: sid.to_owned(), server_first, waiting })
}

fn final_header(sid: &str, waiting: &SaslClientFinal) -> String {
    format!("SCRAM-SHA-256 sid={sid}, data={}", b64(&waiting.client_final()))
}

fn plain(data: &str) -> String {
    format!("SCRAM-SHA-256 data={data}")
}

// The library client: GET /v1/whoami and /v1/auth/token (gel's route) as alice.
#[tokio::test]
async fn rfc7804_login_on_whoami_and_auth_token() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let http = lib_client(&srv);
    for path in ["/v1/whoami", "/v1/auth/token"] {
        let r = http
            .rfc7804_request("GET", path, b"", "alice", &Password::new(PW), &ClientConfig::default())
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{path}");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, serde_json::json!({"username": "alice"}), "{path}");
        let info = parse_auth_info(r.headers.get("authentication-info").unwrap().to_str().unwrap()).unwrap();
        assert!(unb64(&info.iter().find(|(k, _)| k == "data").unwrap().1).starts_with("v="));
        assert!(r.headers.get("scram-dh-mac").is_none(), "not a SCRAM-DH session response");
    }
}

// The server-first challenge is one field, sid and data unquoted (gel does not
// unquote); the sid is 64 lowercase hex characters.
#[tokio::test]
async fn server_first_challenge_is_one_unquoted_field() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let m = manual_first(&c, &format!("{}/v1/auth/token", srv.http), "alice", PW, plain).await.unwrap();
    assert_eq!(m.sid.len(), 64);
    assert!(m.sid.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(m.server_first.contains(",s=") && m.server_first.ends_with(",i=4096"), "{}", m.server_first);
    let r = send(
        c.get(format!("{}/v1/auth/token", srv.http))
            .header("authorization", final_header(&m.sid, &m.waiting)),
    )
    .await;
    assert_eq!(r.status, 200);
    let info = r.headers.get("authentication-info").unwrap().to_str().unwrap();
    assert!(info.starts_with(&format!("sid={}, data=", m.sid)) && !info.contains('"'), "{info}");
    m.waiting.receive_server_final(unb64(info.split("data=").nth(1).unwrap()).as_bytes()).unwrap();
}

/// A client-first Authorization spelling, and whether the final one is quoted.
type Spelling<'a> = (&'a dyn Fn(&str) -> String, bool);

// Erratum 6558 and RFC 7235: data quoted or not, realm optional, scheme and
// parameter names in any case, a trailing newline in the decoded messages (the
// RFC's own examples), unpadded base64.
#[tokio::test]
async fn quoted_unquoted_and_case_insensitive_spellings() {
    let srv = start(Limits::default(), HttpOptions::default()).await;
    let c = client_from(1);
    let url = format!("{}/v1/whoami", srv.http);
    let spellings: [Spelling<'_>; 5] = [
        (&|d| format!("SCRAM-SHA-256 data={d}"), false),
        (&|d| format!("SCRAM-SHA-256 realm=\"scram-dh\", data=\"{d}\""), true),
        (&|d| format!("scram-sha-256 Realm=scram-dh,DATA={d}  "), false),
        (&|d| format!("Scram-Sha-256 data={}", b64(&(unb64(d) + "\n"))), true),
        (&|d| format!("SCRAM-SHA-256 data={}", d.trim_end_matches('=')), false),
    ];
    for (i, (first, quote_final)) in spellings.into_iter().enumerate() {
        let m = manual_first(&c, &url, "alice", PW, first).await.unwrap_or_else(|r| panic!("{i}: {r:?}"));
        let data =
            if i == 3 { b64(&(m.waiting.client_final() + "\n")) } else { b64(&m.waiting.client_final()) };
        let header = if quote_final {
            format!("scram-sha-256 SID=\"{}\", Data=\"{data}\"", m.sid)
        } else {
            format!("SCRAM-SHA-256 sid={}, data={data}", m.sid)
        };
        let r = send(c.get(&url).header("authorization", header)).await;
        assert_eq!(r.status, 200, "{i}: {:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["username"], "alice");
    }
}

async fn wrong_password_reply(srv: &Running, c: &reqwest::Client, user: &str) -> (Reply, String) {
    let url = format!("{}/v1/whoami", srv.http);
    let m = manual_first(c, &url, user, "not-the-password", plain).await.unwrap();
    let r = send(c.get(&url).header("authorization", final_header(&m.sid, &m.waiting))).await;
    (r, m.server_first)
}

// A wrong password: 401, a fresh challenge carrying e=invalid-proof, the error
// object; the library client reports an authentication failure.
#[tokio::test]
async fn wrong_password_is_401_with_a_fresh_challenge() {
    let srv = start(lenient(), HttpOptions::default()).await;
    let (r, _) = wrong_password_reply(&srv, &client_from(1), "alice").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "authentication_failed");
    let ch = r.www_authenticate();
    assert_eq!(ch.len(), 1);
    assert!(ch[0].starts_with("SCRAM-SHA-256 realm=\"scram-dh\""), "{ch:?}");
    assert_eq!(unb64(r.scram_challenge().param("data").unwrap()), "e=invalid-proof");
    assert!(r.headers.get("authentication-info").is_none());
    let e = lib_client(&srv)
        .rfc7804_request("GET", "/v1/whoami", b"", "alice", &Password::new("nope"), &ClientConfig::default())
        .await
        .unwrap_err();
    assert!(e.is_auth_failure(), "{e}");
    assert!(e.to_string().contains("invalid-proof"), "{e}");
}

// An unknown user and a record with random labels (keys, no password) get the
// same answers as a wrong password: same server-first shape, same final reply.
#[tokio::test]
async fn unknown_user_and_keys_only_record_are_indistinguishable() {
    let srv = start(lenient(), HttpOptions::default()).await;
    let c = client_from(1);
    let (known, known_first) = wrong_password_reply(&srv, &c, "alice").await;
    let shape = |s: &str| {
        let parts: Vec<&str> = s.split(',').collect();
        (parts.len(), STANDARD.decode(&parts[1][2..]).unwrap().len(), parts[2].to_owned())
    };
    for user in ["mallory", "keys-only"] {
        let (r, first) = wrong_password_reply(&srv, &c, user).await;
        assert_eq!(shape(&first), shape(&known_first), "{user}");
        assert_eq!(r.status, known.status, "{user}");
        assert_eq!(r.body, known.body, "{user}");
        assert_eq!(r.www_authenticate(), known.www_authenticate(), "{user}");
    }
    // The right password does not open a keys-only record either.
    let e = lib_client(&srv)
        .rfc7804_request("GET", "/v1/whoami", b"", "keys-only", &Password::new(PW), &ClientConfig::default())
        .await
        .unwrap_err();
    assert!(e.is_auth_failure(), "{e}");
}

// A sid is single use: the final message replayed after a success is refused,
// and so is one replayed after a failure.
#[tokio::test]
async fn replayed_final_message_is_refused() {
    let srv = start(lenient(), HttpOptions::default()).await;
    let c = client_from(1);
    let url = format!("{}/v1/whoami", srv.http);
    let m = manual_first(&c, &url, "alice", PW, plain).await.unwrap();
    let header = final_header(&m.sid, &m.waiting);
    assert_eq!(send(c.get(&url).header("authorization", &header)).await.status, 200);
    let again = send(c.get(&url).header("authorization", &header)).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.code(), "unknown_session");
    assert!(again.headers.get("authentication-info").is_none());
    assert!(again.www_authenticate()[0].starts_with("SCRAM-SHA-256 realm=\"scram-dh\""));
    // From another address too (the sid is not tied to the peer, but it is gone).
    assert_eq!(send(client_from(2).get(&url).header("authorization", &header)).await.status, 401);
    let (wrong, _) = wrong_password_reply(&srv, &c, "alice").await;
    assert_eq!(wrong.status, 401);
}

// A client-final-message with another exchange's sid is refused (its nonce is
// not that exchange's), and the sid it burned is gone; a made-up sid is unknown.
#[tokio::test]
async fn sid_from_another_exchange_is_refused() {
    let srv = start(lenient(), HttpOptions::default()).await;
    let c = client_from(1);
    let url = format!("{}/v1/whoami", srv.http);
    let a = manual_first(&c, &url, "alice", PW, plain).await.unwrap();
    let b = manual_first(&c, &url, "alice", PW, plain).await.unwrap();
    let swapped = send(c.get(&url).header("authorization", final_header(&b.sid, &a.waiting))).await;
    assert_eq!(swapped.status, 401, "{:?}", String::from_utf8_lossy(&swapped.body));
    assert_eq!(swapped.code(), "nonce_mismatch");
    assert!(swapped.headers.get("authentication-info").is_none());
    let b_own = send(c.get(&url).header("authorization", final_header(&b.sid, &b.waiting))).await;
    assert_eq!(b_own.status, 401, "b's sid was consumed by the swap");
    // a's own exchange is untouched.
    assert_eq!(send(c.get(&url).header("authorization", final_header(&a.sid, &a.waiting))).await.status, 200);
    for sid in ["0".repeat(64), "zz".into(), "a".repeat(200)] {
        let m = manual_first(&c, &url, "alice", PW, plain).await.unwrap();
        let r = send(c.get(&url).header("authorization", final_header(&sid, &m.waiting))).await;
        assert_eq!((r.status, r.code().as_str()), (401, "unknown_session"), "{sid}");
    }
}

// Without Authorization the protected routes answer 401 with the RFC 7804
// challenge first, then the SCRAM-DH one, and the same error object as before;
// logout and passwd stay SCRAM-DH only, and a SCRAM-SHA-256 exchange there is refused.
#[tokio::test]
async fn challenges_and_signed_only_routes() {
    let srv = start(lenient(), HttpOptions::default()).await;
    let c = client_from(1);
    for path in ["/v1/whoami", "/v1/auth/token"] {
        let r = send(c.get(format!("{}{path}", srv.http))).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.code(), "authentication_failed");
        assert_eq!(r.www_authenticate(), ["SCRAM-SHA-256 realm=\"scram-dh\"", "SCRAM-DH realm=\"scram-dh\""]);
        // Another scheme (or a SCRAM-DH header that fails) gets both challenges too.
        let r = send(c.get(format!("{}{path}", srv.http)).header("authorization", "Basic YTpi")).await;
        assert_eq!(r.www_authenticate()[0], "SCRAM-SHA-256 realm=\"scram-dh\"");
    }
    for path in ["/v1/logout", "/v1/passwd"] {
        let url = format!("{}{path}", srv.http);
        let r = send(c.post(&url)).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.www_authenticate(), ["SCRAM-DH realm=\"scram-dh\""], "{path}");
        let r = send(c.post(&url).header("authorization", plain(&b64("n,,n=alice,r=abcdefgh")))).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.headers.get_all("www-authenticate").iter().all(|v| !v.to_str().unwrap().contains("sid=")));
    }
    // The RFC 7804 library client is refused a signed-only route.
    let e = lib_client(&srv)
        .rfc7804_request("POST", "/v1/logout", b"", "alice", &Password::new(PW), &ClientConfig::default())
        .await
        .unwrap_err();
    assert!(e.is_auth_failure(), "{e}");
}

// Malformed or oversized credentials: 401 with a challenge, never served.
#[tokio::test]
async fn malformed_credentials_are_refused() {
    let srv = start(lenient(), HttpOptions::default()).await;
    let c = client_from(1);
    let url = format!("{}/v1/whoami", srv.http);
    let long = format!("SCRAM-SHA-256 data={}", "QUFB".repeat(2000));
    for bad in [
        "SCRAM-SHA-256".to_owned(),
        "SCRAM-SHA-256 realm=\"scram-dh\"".into(),
        "SCRAM-SHA-256 data=!!!!".into(),
        "SCRAM-SHA-256 data=\"unterminated".into(),
        "SCRAM-SHA-256 data=a, data=b".into(),
        plain(&b64("n,,n=alice")),
        plain(&b64("p=tls-exporter,,n=alice,r=abc")),
        plain(&b64("n,,m=ext,n=alice,r=abc")),
        long,
    ] {
        let r = send(c.get(&url).header("authorization", &bad)).await;
        assert_eq!(r.status, 401, "{bad:.80}: {:?}", String::from_utf8_lossy(&r.body));
        assert!(r.www_authenticate()[0].starts_with("SCRAM-SHA-256 realm=\"scram-dh\""), "{bad:.80}");
        assert!(r.json()["code"].is_string(), "{bad:.80}");
        assert!(r.headers.get("authentication-info").is_none());
    }
}

/// A one-route upstream that records the user header and counts its requests.
async fn upstream() -> (String, Arc<Mutex<Vec<(Option<String>, bool, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
        let s = Arc::clone(&s);
        async move {
            let user = req.headers().get("x-scram-dh-user").map(|v| v.to_str().unwrap().to_owned());
            let auth = req.headers().contains_key("authorization");
            let path = req.uri().to_string();
            s.lock().unwrap().push((user, auth, path));
            "hello from upstream"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, seen)
}

// The gateway: an RFC 7804 request outside /v1/ reaches the upstream once (the
// first round trip is not forwarded, though requests-scram repeats the body on
// it), named by X-Scram-DH-User and without Authorization; a forged user header
// never reaches it.
#[tokio::test]
async fn gateway_route_is_served_with_the_identity() {
    let (up, seen) = upstream().await;
    let srv = start(lenient(), HttpOptions { upstream: Some(up), ..HttpOptions::default() }).await;
    let r = lib_client(&srv)
        .rfc7804_request(
            "POST",
            "/app/items?x=1",
            b"{\"n\":1}",
            "alice",
            &Password::new(PW),
            &ClientConfig::default(),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, b"hello from upstream".as_slice()));
    assert!(r.headers.get("authentication-info").is_some());
    assert_eq!(*seen.lock().unwrap(), [(Some("alice".to_owned()), false, "/app/items?x=1".to_owned())]);
    let c = client_from(1);
    let url = format!("{}/app/x", srv.http);
    let m = manual_first(&c, &url, "alice", PW, plain).await.unwrap();
    let r = send(
        c.get(&url)
            .header("authorization", final_header(&m.sid, &m.waiting))
            .header("x-scram-dh-user", "root"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(seen.lock().unwrap()[1].0.as_deref(), Some("alice"));
    // Unauthenticated: refused with the challenges, never forwarded.
    let r = send(c.get(&url).header("x-scram-dh-user", "alice")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.www_authenticate()[0], "SCRAM-SHA-256 realm=\"scram-dh\"");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

// Penalties: repeated wrong passwords from one peer are throttled (429 with
// Retry-After, even for the right password), other peers are not; the account
// itself is penalised for peers that never logged in to it.
#[tokio::test]
async fn repeated_failures_from_one_peer_are_throttled() {
    let limits = Limits {
        penalties: Penalties {
            peer_free_failures: 2,
            account_free_failures: 100,
            base: Duration::from_secs(30),
            ..Penalties::default()
        },
        ..Limits::default()
    };
    let srv = start(limits, HttpOptions::default()).await;
    let attacker = client_from(5);
    for _ in 0..3 {
        let (r, _) = wrong_password_reply(&srv, &attacker, "alice").await;
        assert_eq!(r.status, 401);
    }
    let url = format!("{}/v1/whoami", srv.http);
    match manual_first(&attacker, &url, "alice", PW, plain).await {
        Err(r) => {
            assert_eq!(
                (r.status, r.code().as_str()),
                (429, "busy"),
                "{:?}",
                String::from_utf8_lossy(&r.body)
            );
            assert!(r.headers.get("retry-after").is_some());
        }
        Ok(_) => panic!("the penalised peer got a server-first-message"),
    }
    let other = client_from(6);
    let m = manual_first(&other, &url, "alice", PW, plain).await.unwrap();
    assert_eq!(
        send(other.get(&url).header("authorization", final_header(&m.sid, &m.waiting))).await.status,
        200
    );
}

// A peer's parked exchanges are capped by the session store (per peer):
// over it the client-first-message is answered 429 busy.
#[tokio::test]
async fn parked_exchanges_are_capped_per_peer() {
    let srv = start_with_sessions(lenient(), HttpOptions::default(), MemorySessionStore::new(100, 2)).await;
    let url = format!("{}/v1/whoami", srv.http);
    let c = client_from(7);
    let _a = manual_first(&c, &url, "alice", PW, plain).await.unwrap();
    let _b = manual_first(&c, &url, "alice", PW, plain).await.unwrap();
    let r = manual_first(&c, &url, "alice", PW, plain).await.err().expect("over the per-peer cap");
    assert_eq!((r.status, r.code().as_str()), (429, "busy"));
    // Another peer still gets in.
    let m = manual_first(&client_from(8), &url, "alice", PW, plain).await.unwrap();
    let r = send(client_from(8).get(&url).header("authorization", final_header(&m.sid, &m.waiting))).await;
    assert_eq!(r.status, 200);
}

/// A relay in front of the real server that lets `tamper` change each answer.
async fn relay(target: String, tamper: fn(u16, &mut reqwest::header::HeaderMap)) -> String {
    let app = axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
        let target = target.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut out = reqwest::Client::new().request(parts.method, format!("{target}{}", parts.uri));
            if let Some(a) = parts.headers.get("authorization") {
                out = out.header("authorization", a);
            }
            let r = out.body(body).send().await.unwrap();
            let status = r.status().as_u16();
            let mut headers = r.headers().clone();
            let body = r.bytes().await.unwrap();
            tamper(status, &mut headers);
            let mut resp = axum::response::Response::new(axum::body::Body::from(body));
            *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
            headers.remove("content-length");
            *resp.headers_mut() = headers;
            resp
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

fn flip_signature(_: u16, h: &mut reqwest::header::HeaderMap) {
    if let Some(v) = h.get("authentication-info") {
        let info = parse_auth_info(v.to_str().unwrap()).unwrap();
        let sid = &info.iter().find(|(k, _)| k == "sid").unwrap().1;
        let v = unb64(&info.iter().find(|(k, _)| k == "data").unwrap().1);
        let mut sig = STANDARD.decode(&v[2..]).unwrap();
        sig[0] ^= 1;
        let forged = format!("sid={sid}, data={}", b64(&format!("v={}", STANDARD.encode(sig))));
        h.insert("authentication-info", forged.parse().unwrap());
    }
}

fn drop_info(_: u16, h: &mut reqwest::header::HeaderMap) {
    h.remove("authentication-info");
}

fn other_sid(_: u16, h: &mut reqwest::header::HeaderMap) {
    if let Some(v) = h.get("authentication-info") {
        let forged = v.to_str().unwrap().replacen("sid=", "sid=0", 1);
        h.insert("authentication-info", forged.parse().unwrap());
    }
}

// A changed Authentication-Info (one signature bit, a dropped header, another
// sid) makes the client refuse the 2xx: is_auth_failure, not a body.
#[tokio::test]
async fn tampered_authentication_info_is_detected_by_the_client() {
    let srv = start(lenient(), HttpOptions::default()).await;
    for tamper in [flip_signature as fn(u16, &mut reqwest::header::HeaderMap), drop_info, other_sid] {
        let url = relay(srv.http.clone(), tamper).await;
        let e = HttpClient::new(&url, Duration::from_secs(10))
            .unwrap()
            .rfc7804_request("GET", "/v1/whoami", b"", "alice", &Password::new(PW), &ClientConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::BadAuthenticationInfo { status: 200 }), "{e}");
        assert!(e.is_auth_failure());
    }
    // The untampered relay works.
    let url = relay(srv.http.clone(), |_, _| {}).await;
    HttpClient::new(&url, Duration::from_secs(10))
        .unwrap()
        .rfc7804_request("GET", "/v1/whoami", b"", "alice", &Password::new(PW), &ClientConfig::default())
        .await
        .unwrap();
}

/// A fake server: `first` answers the first request, a bare challenge or a 200
/// without any exchange.
async fn fake(first: &'static str) -> String {
    let app = axum::Router::new().fallback(move || async move {
        match first {
            "ok" => axum::response::Response::new(axum::body::Body::from("{\"username\":\"alice\"}")),
            _ => {
                let mut r = axum::response::Response::new(axum::body::Body::empty());
                *r.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
                r.headers_mut().insert("www-authenticate", first.parse().unwrap());
                r
            }
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

// The client refuses a 2xx that skipped the exchange, and a server that keeps
// answering with a bare challenge; against a server that asks for the realm
// first, it starts over once with it (the real server answers then).
#[tokio::test]
async fn client_refuses_unauthenticated_answers_and_retries_a_bare_challenge_once() {
    let login = |url: String| async move {
        HttpClient::new(&url, Duration::from_secs(10))
            .unwrap()
            .rfc7804_request("GET", "/v1/whoami", b"", "alice", &Password::new(PW), &ClientConfig::default())
            .await
    };
    let e = login(fake("ok").await).await.unwrap_err();
    assert!(matches!(e, HttpError::BadAuthenticationInfo { status: 200 }), "{e}");
    let e = login(fake("SCRAM-SHA-256 realm=\"x\"").await).await.unwrap_err();
    assert!(e.is_auth_failure(), "{e}");
    // A relay that turns the server-first 401 of the first request it sees into a bare challenge.
    let srv = start(lenient(), HttpOptions::default()).await;
    static ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let url = relay(srv.http.clone(), |status, h| {
        if status == 401 && !ONCE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            h.insert("www-authenticate", "SCRAM-SHA-256 realm=\"scram-dh\"".parse().unwrap());
        }
    })
    .await;
    let r = login(url).await.unwrap();
    assert_eq!(r.status, 200);
}
