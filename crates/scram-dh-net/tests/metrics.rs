//! The Prometheus metrics (issue 10) as an operator scrapes them: `GET /metrics`
//! of a real HTTP front on loopback, over one engine shared by the TCP, HTTP and
//! standard SCRAM fronts. Every scrape is checked line by line against the text
//! format; the counters must move by exactly what real logins, failed logins,
//! refusals and abandoned handshakes did, over each front; nothing names a user
//! or a peer; `/metrics` off is 404; `/v1/ping` unsigned, signed and badly signed.
//!
//! The registry is process-global: the tests in this file take turns (`SERIAL`)
//! so each can count exact differences.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use support::{client_from, send};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scram_dh::auth::client::AuthClient;
use scram_dh::sasl::ClientChannel;
use scram_dh::secret::SymmetricKey;
use scram_dh::{
    ClientConfig, ClientCredential, ErrorCode, Group, HostKey, Labels, MemoryCredentialStore,
    MemorySessionStore, Password, ServerConfig, ServerEngine,
};
use scram_dh_net::http::{HttpFront, HttpOptions};
use scram_dh_net::http_auth::Authorization;
use scram_dh_net::http_client::{HttpClient, HttpError};
use scram_dh_net::sasl::{SaslServer, sasl_login};
use scram_dh_net::{
    Admission, HostKeyPolicy, KvLimits, KvService, Limits, NetError, Penalties, RegisterOptions, Server,
};
use tokio::sync::oneshot;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const T: Duration = Duration::from_secs(10);
const PW: &str = "metrics-pw-canary";

struct Running {
    tcp: SocketAddr,
    http: String,
    sasl: SocketAddr,
    fingerprint: scram_dh::Fingerprint,
    _stop: Vec<oneshot::Sender<()>>,
}

async fn start(limits: Limits, options: HttpOptions) -> Running {
    start_ttl(limits, options, ServerConfig::new(HostKey::from_seed(&[0; 32]), [0; 32]).session_ttl_ms).await
}

/// [`start`] with the engine's handshake sessions living `ttl_ms`.
async fn start_ttl(limits: Limits, options: HttpOptions, ttl_ms: u64) -> Running {
    let host_key = HostKey::from_seed(&[8; 32]);
    let fingerprint = host_key.fingerprint();
    let store = Arc::new(MemoryCredentialStore::default());
    let mut config = ServerConfig::new(host_key, [5; 32]);
    config.session_ttl_ms = ttl_ms;
    let engine = Arc::new(
        ServerEngine::new(config, Arc::clone(&store), MemorySessionStore::new(100_000, 10_000)).unwrap(),
    );
    let admission = Admission::new(limits);
    let server = Server::from_parts(Arc::clone(&engine), KvService::new(store), Arc::clone(&admission));
    let http_front = HttpFront::new(
        Arc::clone(&engine),
        Arc::clone(&admission),
        KvLimits::default().passwd_bounds(),
        options,
    );
    let sasl_front = SaslServer::new(engine, admission);
    let tcp_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sasl_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tcp, sasl) = (tcp_l.local_addr().unwrap(), sasl_l.local_addr().unwrap());
    let http = format!("http://{}", http_l.local_addr().unwrap());
    let mut stops = Vec::new();
    let mut stop = || {
        let (tx, rx) = oneshot::channel::<()>();
        stops.push(tx);
        async {
            let _ = rx.await;
        }
    };
    tokio::spawn(server.run(tcp_l, stop()));
    tokio::spawn(http_front.run(http_l, stop()));
    tokio::spawn(sasl_front.run(sasl_l, stop()));
    Running { tcp, http, sasl, fingerprint, _stop: stops }
}

/// A connection from `127.0.0.<src>`.
async fn register(srv: &Running, src: u8, user: &str, labels: Labels) -> ClientCredential {
    scram_dh_net::register(
        support::connect_from(src, srv.tcp).await,
        user,
        Password::new(PW),
        Group::X25519,
        labels,
        &HostKeyPolicy::Fingerprint(srv.fingerprint),
        ClientConfig::default(),
    )
    .await
    .unwrap()
}

fn is_code(e: &NetError, code: ErrorCode) -> bool {
    matches!(e, NetError::Protocol(scram_dh::Error::Peer { code: c, .. }) if *c == code)
}

/// One scrape: the text, checked, and its samples by series.
struct Scrape {
    text: String,
    values: HashMap<String, f64>,
}

impl Scrape {
    /// A series' value; panics when it is absent.
    fn get(&self, series: &str) -> f64 {
        *self.values.get(series).unwrap_or_else(|| panic!("no series {series} in\n{}", self.text))
    }

    /// How much `series` moved since `before`, as an integer.
    #[allow(clippy::cast_possible_truncation)]
    fn since(&self, before: &Self, series: &str) -> i64 {
        (self.get(series) - before.get(series)) as i64
    }
}

fn handshakes(front: &str, kind: &str, outcome: &str) -> String {
    format!("scram_dh_handshakes_total{{front=\"{front}\",kind=\"{kind}\",outcome=\"{outcome}\"}}")
}

fn timed(front: &str, kind: &str) -> String {
    format!("scram_dh_handshake_duration_seconds_count{{front=\"{front}\",kind=\"{kind}\"}}")
}

fn refusals(reason: &str) -> String {
    format!("scram_dh_admission_refusals_total{{reason=\"{reason}\"}}")
}

fn signed(result: &str) -> String {
    format!("scram_dh_signed_requests_total{{result=\"{result}\"}}")
}

const DH_X25519: &str = "scram_dh_dh_operations_total{group=\"x25519\"}";

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Checks the text exposition format 0.0.4 line by line and returns the samples:
/// `# HELP name text`, `# TYPE name counter|gauge|histogram` (once per family,
/// before its samples), and `name{label="value",...} number` with every name
/// in a declared family (histograms: `_bucket`, `_sum`, `_count`), counters
/// named `_total` and never negative, no series twice, histogram buckets
/// cumulative up to `+Inf` = `_count`.
fn parse(text: &str) -> HashMap<String, f64> {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut values = HashMap::new();
    let mut last_bucket: Option<(String, f64)> = None;
    for line in text.lines() {
        assert!(!line.is_empty(), "empty line");
        if let Some(rest) = line.strip_prefix("# ") {
            let mut it = rest.splitn(3, ' ');
            let (keyword, name, tail) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap_or(""));
            assert!(valid_name(name), "{line}");
            match keyword {
                "HELP" => assert!(!tail.is_empty(), "{line}"),
                "TYPE" => {
                    assert!(matches!(tail, "counter" | "gauge" | "histogram"), "{line}");
                    assert!(
                        !values.keys().any(|s: &String| s.starts_with(name)),
                        "TYPE after samples: {line}"
                    );
                    assert!(types.insert(name, tail).is_none(), "family declared twice: {line}");
                }
                _ => panic!("unknown comment: {line}"),
            }
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(v.is_finite(), "{line}");
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"))),
            None => (series, ""),
        };
        assert!(valid_name(name), "{line}");
        let mut le = None;
        if !labels.is_empty() {
            for pair in labels.split(',') {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(valid_name(k) && !k.starts_with("__"), "{line}");
                let inner = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                let inner = inner.unwrap_or_else(|| panic!("unquoted label value: {line}"));
                assert!(!inner.contains(['"', '\\', '\n']), "{line}");
                if k == "le" {
                    le = Some(inner.to_owned());
                }
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|base| types.get(base) == Some(&"histogram")))
            .unwrap_or(name);
        let kind = types.get(family).unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
        if *kind == "counter" {
            assert!(name.ends_with("_total") && v >= 0.0, "{line}");
        }
        if *kind == "histogram" {
            let base = labels.split(",le=").next().unwrap_or_default().to_owned();
            if name.ends_with("_bucket") {
                let le = le.unwrap_or_else(|| panic!("bucket without le: {line}"));
                if let Some((prev_labels, prev)) = &last_bucket
                    && *prev_labels == base
                {
                    assert!(v >= *prev, "buckets not cumulative: {line}");
                }
                if le == "+Inf" {
                    values.insert(format!("{family}_inf{{{base}}}"), v);
                }
                last_bucket = Some((base, v));
            } else if name.ends_with("_count") {
                let inf = values.get(&format!("{family}_inf{{{base}}}")).copied();
                assert_eq!(inf, Some(v), "+Inf bucket differs from _count: {line}");
            }
        }
        assert!(values.insert(series.to_owned(), v).is_none(), "series twice: {line}");
    }
    values
}

async fn scrape(srv: &Running) -> Scrape {
    let r = send(client_from(1).get(format!("{}/metrics", srv.http))).await;
    assert_eq!(r.status, 200);
    let ct = r.headers.get("content-type").unwrap().to_str().unwrap();
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    let text = String::from_utf8(r.body).unwrap();
    assert!(!text.contains("127.0.0."), "a peer address in the metrics:\n{text}");
    let values = parse(&text);
    Scrape { text, values }
}

/// Registers `user` over HTTP (X25519, random labels) with the canary password.
async fn http_register(srv: &Running, client: &HttpClient, user: &str) -> ClientCredential {
    let opts = RegisterOptions {
        group: Group::X25519,
        labels: Labels::Random,
        policy: HostKeyPolicy::Fingerprint(srv.fingerprint),
        config: ClientConfig::default(),
    };
    client.register(user, Password::new(PW), &opts, |_| Ok(())).await.unwrap()
}

/// POSTs an A1 (with a channel key) for `user` over HTTP and never follows it up.
async fn lone_a1(srv: &Running, c: &reqwest::Client, user: &str, cred: &ClientCredential) {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let a1 = AuthClient::start(&mut rng, user, cred.secret(), Some(Group::X25519), ClientConfig::default())
        .unwrap();
    let r = send(
        c.post(format!("{}/v1/auth/pairing", srv.http))
            .header("content-type", "application/json")
            .body(a1.message.to_json()),
    )
    .await;
    assert_eq!(r.status, 200);
}

/// Scrapes until `done` holds for a gauge that moves when the server notices a
/// closed connection (bounded; the wait is not what is tested).
async fn scrape_until(srv: &Running, done: impl Fn(&Scrape) -> bool) -> Scrape {
    for _ in 0..500 {
        let m = scrape(srv).await;
        if done(&m) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the metrics never reached the expected state:\n{}", scrape(srv).await.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_logins_failures_refusals_and_abandoned_handshakes_are_counted() {
    let _turn = SERIAL.lock().await;
    // Two DH steps per peer and no refill: the third one from a peer is refused.
    let limits = Limits { dh_burst: 2.0, dh_per_sec: 0.0, ..Limits::default() };
    let srv = start(limits, HttpOptions::default()).await;
    let user = "tcp-canary-user";
    let m0 = scrape(&srv).await;

    let cred = register(&srv, 1, user, Labels::Random).await;
    let plain = support::login_from(1, srv.tcp, user, cred.secret(), false).await.unwrap();
    assert!(plain.channel.is_none());
    let mut with_channel = support::login_from(1, srv.tcp, user, cred.secret(), true).await.unwrap();
    let m1 = scrape(&srv).await;
    assert_eq!(m1.since(&m0, &handshakes("tcp", "registration", "ok")), 1);
    assert_eq!(m1.since(&m0, &handshakes("tcp", "authentication", "ok")), 2);
    assert_eq!(m1.since(&m0, &timed("tcp", "registration")), 1);
    assert_eq!(m1.since(&m0, &timed("tcp", "authentication")), 2);
    assert_eq!(m1.since(&m0, DH_X25519), 2, "R1 and the A1 with a channel");
    assert_eq!(m1.since(&m0, &handshakes("http", "authentication", "ok")), 0, "another front");
    assert!(m1.get("scram_dh_channels") >= 1.0);
    assert!(m1.get("scram_dh_connections{front=\"tcp\"}") >= 1.0, "the channel's connection");
    assert!(m1.get("scram_dh_connections{front=\"http\"}") >= 1.0, "the scrape's own connection");

    let e = support::login_from(1, srv.tcp, user, support::wrong_keys(), false).await.unwrap_err();
    assert!(is_code(&e, ErrorCode::AuthenticationFailed), "{e}");
    let e = support::login_from(1, srv.tcp, user, cred.secret(), true).await.unwrap_err();
    assert!(is_code(&e, ErrorCode::Busy), "{e}");
    let m2 = scrape(&srv).await;
    assert_eq!(m2.since(&m1, &handshakes("tcp", "authentication", "failed")), 1);
    assert_eq!(m2.since(&m1, &handshakes("tcp", "authentication", "refused")), 1);
    assert_eq!(m2.since(&m1, &refusals("rate_limited")), 1);
    assert_eq!(m2.since(&m1, &handshakes("tcp", "authentication", "ok")), 0);
    assert_eq!(m2.since(&m1, DH_X25519), 0, "the refused step did no DH");

    // A1, A2, then the client goes away: an `error`, once the server sees it.
    let mut io = tokio::io::BufReader::new(support::connect_from(2, srv.tcp).await);
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let step = AuthClient::start(&mut rng, user, cred.secret(), None, ClientConfig::default()).unwrap();
    scram_dh_net::framing::write_line(&mut io, &step.message.to_json()).await.unwrap();
    let a2 = scram_dh_net::framing::read_line(&mut io).await.unwrap().unwrap();
    assert!(a2.contains("auth_pairing"), "{a2}");
    drop(io);
    let errors = handshakes("tcp", "authentication", "error");
    let m3 = scrape_until(&srv, |m| m.since(&m2, &errors) == 1).await;
    assert_eq!(m3.since(&m2, &handshakes("tcp", "authentication", "failed")), 0);

    let channel = with_channel.channel.as_mut().unwrap();
    channel.close().await.unwrap();
    drop(with_channel);
    scrape_until(&srv, |m| m.get("scram_dh_channels") < m1.get("scram_dh_channels")).await;
    let last = scrape(&srv).await;
    assert!(!last.text.contains(user), "a username in the metrics");
    assert!(!last.text.contains(PW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_logins_sessions_signed_requests_and_ping_are_counted() {
    let _turn = SERIAL.lock().await;
    let options = HttpOptions { max_sessions_per_user: 1, ..HttpOptions::default() };
    let srv = start(Limits::default(), options).await;
    let client = HttpClient::new(&srv.http, T).unwrap();
    let user = "http-canary-user";
    let m0 = scrape(&srv).await;

    let cred = http_register(&srv, &client, user).await;
    let mut session =
        client.login(user, cred.secret(), Group::X25519, ClientConfig::default()).await.unwrap();
    let m1 = scrape(&srv).await;
    assert_eq!(m1.since(&m0, &handshakes("http", "registration", "ok")), 1);
    assert_eq!(m1.since(&m0, &handshakes("http", "authentication", "ok")), 1);
    assert_eq!(m1.since(&m0, &timed("http", "registration")), 1, "timed across its two requests");
    assert_eq!(m1.since(&m0, &timed("http", "authentication")), 1);
    assert_eq!(m1.since(&m0, DH_X25519), 2);
    assert_eq!(m1.get("scram_dh_http_sessions"), 1.0);

    // The ping, three ways.
    assert_eq!(client.ping().await.unwrap(), r#"{"pong":true}"#);
    let r = session.request("GET", "/v1/ping", b"").await.unwrap();
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, serde_json::json!({"pong": true, "user": user}));
    let seq = session.take_seq();
    let forged = Authorization::sign(
        &session.session_id,
        seq,
        &SymmetricKey::from_bytes([9; 32]),
        "GET",
        "/v1/ping",
        b"",
    );
    let c = client_from(1);
    let r = send(c.get(format!("{}/v1/ping", srv.http)).header("authorization", forged.to_header())).await;
    assert_eq!((r.status, r.code().as_str()), (401, "authentication_failed"));
    assert!(r.headers.get("www-authenticate").is_some());
    let replayed = Authorization::sign(&session.session_id, 0, &session.keys.c2s, "GET", "/v1/ping", b"");
    let r = send(c.get(format!("{}/v1/ping", srv.http)).header("authorization", replayed.to_header())).await;
    assert_eq!(r.status, 401, "seq 0 was the first ping's");
    let r = send(c.get(format!("{}/v1/ping", srv.http)).header("authorization", "SCRAM-DH nonsense")).await;
    assert_eq!(r.status, 401);
    let r = send(c.get(format!("{}/v1/whoami", srv.http))).await;
    assert_eq!(r.status, 401, "whoami is signed only");

    // A second session for the user is over its cap; a wrong key fails.
    let e = client.login(user, cred.secret(), Group::X25519, ClientConfig::default()).await.unwrap_err();
    assert!(matches!(&e, HttpError::Net(n) if is_code(n, ErrorCode::Busy)), "{e}");
    let e =
        client.login(user, support::wrong_keys(), Group::X25519, ClientConfig::default()).await.unwrap_err();
    assert!(e.is_auth_failure(), "{e}");
    let m2 = scrape(&srv).await;
    assert_eq!(m2.since(&m1, &signed("ok")), 1);
    assert_eq!(m2.since(&m1, &signed("bad_mac")), 1);
    assert_eq!(m2.since(&m1, &signed("replay")), 1);
    assert_eq!(m2.since(&m1, &signed("malformed")), 1);
    assert_eq!(m2.since(&m1, &signed("missing")), 1, "the unsigned whoami; never the unsigned ping");
    assert_eq!(m2.since(&m1, &handshakes("http", "authentication", "refused")), 1);
    assert_eq!(m2.since(&m1, &refusals("http_sessions")), 1);
    assert_eq!(m2.since(&m1, &handshakes("http", "authentication", "failed")), 1);
    assert_eq!(m2.since(&m1, &timed("http", "authentication")), 2);
    assert_eq!(m2.since(&m1, DH_X25519), 2, "both A1s had a channel key");

    // A1 alone leaves a handshake session in the engine's store.
    lone_a1(&srv, &c, user, &cred).await;
    let m3 = scrape(&srv).await;
    assert_eq!(m3.since(&m2, "scram_dh_handshake_sessions"), 1);
    assert_eq!(m3.since(&m2, &handshakes("http", "authentication", "ok")), 0, "not finished");
    assert!(!m3.text.contains(user), "a username in the metrics");
    assert!(!m3.text.contains(&session.session_id), "a session id in the metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_http_handshakes_are_counted_when_their_sessions_expire() {
    let _turn = SERIAL.lock().await;
    let srv = start_ttl(Limits::default(), HttpOptions::default(), 300).await;
    let client = HttpClient::new(&srv.http, T).unwrap();
    let user = "abandoning-user";
    let cred = http_register(&srv, &client, user).await;
    let m0 = scrape(&srv).await;
    // Two A1s and nothing after them: no request ever ends these handshakes.
    let c = client_from(1);
    for _ in 0..2 {
        lone_a1(&srv, &c, user, &cred).await;
    }
    let expired = "scram_dh_handshake_sessions_expired_total";
    let m1 = scrape(&srv).await;
    assert_eq!(m1.since(&m0, "scram_dh_handshake_sessions"), 2);
    assert_eq!(m1.since(&m0, expired), 0, "still live");
    // Once the TTL has passed, a scrape of the idle server finds them expired (no
    // insert or take has to come first) and the gauge back where it was.
    let m2 = scrape_until(&srv, |m| m.since(&m0, expired) == 2).await;
    assert_eq!(m2.since(&m0, "scram_dh_handshake_sessions"), 0);
    assert_eq!(m2.since(&m0, &handshakes("http", "authentication", "ok")), 0);
    let m3 = scrape(&srv).await;
    assert_eq!(m3.since(&m2, expired), 0, "counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_scram_over_tcp_and_http_is_counted() {
    let _turn = SERIAL.lock().await;
    // A long first wait, so the refusal does not depend on how fast the test runs.
    let penalties =
        Penalties { peer_free_failures: 1, base: Duration::from_secs(600), ..Penalties::default() };
    let srv = start(Limits { penalties, ..Limits::default() }, HttpOptions::default()).await;
    let user = "sasl-canary-user";
    let _ = register(&srv, 1, user, Labels::Rfc).await;
    let m0 = scrape(&srv).await;

    let sasl = |src: u8, password: &'static str| {
        let addr = srv.sasl;
        async move {
            let stream = support::connect_from(src, addr).await;
            let pw = Password::new(password);
            sasl_login(stream, user, &pw, ClientChannel::Unsupported, &ClientConfig::default(), T).await
        }
    };
    sasl(5, PW).await.unwrap();
    // Two wrong passwords from .6: the second starts the peer's penalty, which refuses the third try.
    sasl(6, "wrong").await.unwrap_err();
    sasl(6, "wrong").await.unwrap_err();
    sasl(6, PW).await.unwrap_err();
    let client = HttpClient::new(&srv.http, T).unwrap();
    let cfg = ClientConfig::default();
    let r = client.rfc7804_request("GET", "/v1/ping", b"", user, &Password::new(PW), &cfg).await.unwrap();
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, serde_json::json!({"pong": true, "user": user}), "ping takes RFC 7804 as whoami does");
    let e = client.rfc7804_request("GET", "/v1/whoami", b"", user, &Password::new("wrong"), &cfg).await;
    assert!(e.unwrap_err().is_auth_failure());

    let m1 = scrape(&srv).await;
    assert_eq!(m1.since(&m0, &handshakes("sasl", "authentication", "ok")), 1);
    assert_eq!(m1.since(&m0, &handshakes("sasl", "authentication", "failed")), 2);
    assert_eq!(m1.since(&m0, &handshakes("sasl", "authentication", "refused")), 1);
    assert_eq!(m1.since(&m0, &refusals("peer_penalty")), 1);
    assert_eq!(m1.since(&m0, &timed("sasl", "authentication")), 4);
    assert_eq!(m1.since(&m0, &handshakes("rfc7804", "authentication", "ok")), 1);
    assert_eq!(m1.since(&m0, &handshakes("rfc7804", "authentication", "failed")), 1);
    assert_eq!(m1.since(&m0, &timed("rfc7804", "authentication")), 2, "timed across round trips");
    assert_eq!(m1.since(&m0, &handshakes("tcp", "authentication", "ok")), 0);
    assert_eq!(m1.since(&m0, &signed("ok")), 0, "RFC 7804 requests are not signed ones");
    assert_eq!(m1.since(&m0, DH_X25519), 0, "standard SCRAM does no DH");
    assert!(!m1.text.contains(user), "a username in the metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_is_a_404_and_ping_stays() {
    let _turn = SERIAL.lock().await;
    let srv = start(Limits::default(), HttpOptions { metrics: false, ..HttpOptions::default() }).await;
    let r = send(client_from(1).get(format!("{}/metrics", srv.http))).await;
    assert_eq!(r.status, 404);
    let client = HttpClient::new(&srv.http, T).unwrap();
    assert_eq!(client.ping().await.unwrap(), r#"{"pong":true}"#);
    // The registry itself still counts (another front may serve it).
    assert!(scram_dh_net::metrics::render().contains("# TYPE scram_dh_handshakes_total counter\n"));
}
