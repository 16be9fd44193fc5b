//! The standard SCRAM-SHA-256 listener on loopback with memory stores: our
//! client against our server over plain TCP and over TLS 1.3 with channel
//! binding `tls-exporter`, the wire lines, the refusals (wrong password, unknown
//! user, random labels, wrong binding, downgrade, PLUS without TLS, a bad
//! mechanism, silence), and the failed-proof penalties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scram_dh::sasl::client::SaslClient;
use scram_dh::sasl::{ClientChannel, MECHANISM, MECHANISM_PLUS};
use scram_dh::{
    ClientConfig, ClientKeys, CredentialStore, HostKey, Labels, MemoryCredentialStore, MemorySessionStore,
    Password, ServerConfig, ServerEngine,
};
use scram_dh_net::admission::Penalties;
use scram_dh_net::sasl::{SaslServer, connect_tls, sasl_login, tls_client_config, tls_server_config};
use scram_dh_net::{Admission, Limits, NetError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

type Engine = ServerEngine<Arc<MemoryCredentialStore>, MemorySessionStore>;

struct Running {
    addr: String,
    tls_addr: String,
    ca: std::path::PathBuf,
    store: Arc<MemoryCredentialStore>,
    _dir: tempfile::TempDir,
    _stop: Vec<oneshot::Sender<()>>,
}

async fn add_user(store: &MemoryCredentialStore, user: &str, password: &str, labels: Labels) {
    let salt = [0x5a; 16];
    let salted = scram_dh::keys::salted_password(&Password::new(password), &salt, 4096).unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let keys = ClientKeys::generate(&mut rng, &salted, labels);
    let name = scram_dh::username::normalize(user).unwrap();
    store.insert(&keys.record(&name, &salt, 4096, 0, labels)).await.unwrap();
}

/// A self-signed certificate for `localhost` / 127.0.0.1 in `dir`: (cert, key).
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k)
}

async fn start(limits: Limits) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let store = Arc::new(MemoryCredentialStore::default());
    let engine: Arc<Engine> = Arc::new(
        ServerEngine::new(
            ServerConfig::new(HostKey::from_seed(&[3; 32]), [4; 32]),
            Arc::clone(&store),
            MemorySessionStore::default(),
        )
        .unwrap(),
    );
    let admission = Admission::new(limits);
    let mut stops = Vec::new();
    let mut spawn = |server: SaslServer<_, _>, listener| {
        let (tx, rx) = oneshot::channel::<()>();
        stops.push(tx);
        tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
    };
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, tls_addr) = (plain.local_addr().unwrap().to_string(), tls.local_addr().unwrap().to_string());
    spawn(SaslServer::new(Arc::clone(&engine), Arc::clone(&admission)), plain);
    let config = tls_server_config(&cert, &key).unwrap();
    spawn(SaslServer::with_tls(Arc::clone(&engine), Arc::clone(&admission), config), tls);
    Running { addr, tls_addr, ca: cert, store, _dir: dir, _stop: stops }
}

fn lenient() -> Limits {
    Limits { penalties: Penalties { peer_free_failures: 1000, ..Penalties::default() }, ..Limits::default() }
}

const T: Duration = Duration::from_secs(10);

async fn plain_login(srv: &Running, user: &str, password: &str) -> Result<(), NetError> {
    let stream = TcpStream::connect(&srv.addr).await.unwrap();
    sasl_login(
        stream,
        user,
        &Password::new(password),
        ClientChannel::Unsupported,
        &ClientConfig::default(),
        T,
    )
    .await
    .map(|done| assert!(!done.channel_bound))
}

async fn tls_login(
    srv: &Running,
    user: &str,
    password: &str,
    channel: Option<ClientChannel>,
) -> Result<bool, NetError> {
    let stream = TcpStream::connect(&srv.tls_addr).await.unwrap();
    let (tls, exporter) = connect_tls(stream, "localhost", tls_client_config(&srv.ca).unwrap()).await?;
    let channel = channel.unwrap_or(ClientChannel::TlsExporter(exporter));
    sasl_login(tls, user, &Password::new(password), channel, &ClientConfig::default(), T)
        .await
        .map(|done| done.channel_bound)
}

fn refused(e: &NetError) -> &str {
    match e {
        NetError::Protocol(scram_dh::Error::ScramRefused { value }) => value,
        other => panic!("expected an e= refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_password_logs_in_and_wrong_one_fails() {
    let srv = start(lenient()).await;
    add_user(&srv.store, "alice", "pencil", Labels::Rfc).await;
    plain_login(&srv, "alice", "pencil").await.unwrap();
    let e = plain_login(&srv, "alice", "pen").await.unwrap_err();
    assert_eq!(refused(&e), "invalid-proof");
    assert!(e.is_auth_failure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_random_label_users_fail_like_a_wrong_password() {
    let srv = start(lenient()).await;
    add_user(&srv.store, "keys-only", "pencil", Labels::Random).await;
    for user in ["nobody", "keys-only"] {
        let e = plain_login(&srv, user, "pencil").await.unwrap_err();
        assert_eq!(refused(&e), "invalid-proof", "{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_comma_and_equals_and_a_saslprep_password() {
    let srv = start(lenient()).await;
    add_user(&srv.store, "a,b=c", "I\u{00AD}X \u{00A0}pässwörd", Labels::Rfc).await;
    // SASLprep maps U+00AD to nothing and U+00A0 to a space: both spellings log in.
    plain_login(&srv, "a,b=c", "IX  pässwörd").await.unwrap();
    plain_login(&srv, "a,b=c", "I\u{00AD}X \u{00A0}pässwörd").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lines_on_the_wire_follow_gsasl() {
    let srv = start(lenient()).await;
    add_user(&srv.store, "user", "pencil", Labels::Rfc).await;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let client = SaslClient::new(
        "user",
        &Password::new("pencil"),
        ClientChannel::Unsupported,
        &ClientConfig::default(),
        &mut rng,
    )
    .unwrap();
    let mut io = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
    let first = STANDARD.encode(client.client_first());
    io.write_all(format!("{MECHANISM}\n{first}\n").as_bytes()).await.unwrap();
    let line = read(&mut io).await;
    let client = client.receive_server_first(&STANDARD.decode(line.trim_end()).unwrap()).unwrap();
    io.write_all(format!("{}\n", STANDARD.encode(client.client_final())).as_bytes()).await.unwrap();
    let line = read(&mut io).await;
    assert!(STANDARD.decode(line.trim_end()).unwrap().starts_with(b"v="));
    client.receive_server_final(&STANDARD.decode(line.trim_end()).unwrap()).unwrap();
    io.write_all(b"\n").await.unwrap();
    assert_eq!(read(&mut io).await, "\n", "the closing empty line");
    assert_eq!(read(&mut io).await, "", "then the server closes");
}

async fn read(io: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), io.read_line(&mut line)).await.unwrap().unwrap();
    line
}

async fn server_says(srv_addr: &str, lines: &str) -> String {
    let mut io = BufReader::new(TcpStream::connect(srv_addr).await.unwrap());
    io.write_all(lines.as_bytes()).await.unwrap();
    let line = read(&mut io).await;
    String::from_utf8(STANDARD.decode(line.trim_end()).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_the_rfc_error_values() {
    let srv = start(lenient()).await;
    let b64 = |s: &str| STANDARD.encode(s);
    let m = MECHANISM;
    assert_eq!(server_says(&srv.addr, "DIGEST-MD5\n").await, "e=other-error");
    assert_eq!(
        server_says(&srv.addr, &format!("{MECHANISM_PLUS}\n{}\n", b64("p=tls-exporter,,n=u,r=abcdefgh")))
            .await,
        "e=other-error",
        "no -PLUS without TLS"
    );
    assert_eq!(server_says(&srv.addr, &format!("{m}\n!!!\n")).await, "e=invalid-encoding");
    assert_eq!(
        server_says(&srv.addr, &format!("{m}\n{}\n", b64("n,,m=x,n=u,r=abcdefgh"))).await,
        "e=extensions-not-supported"
    );
    assert_eq!(
        server_says(&srv.addr, &format!("{m}\n{}\n", b64("p=tls-exporter,,n=u,r=abcdefgh"))).await,
        "e=channel-binding-not-supported"
    );
    assert_eq!(
        server_says(&srv.addr, &format!("{m}\n{}\n", b64("n,,n=a=b,r=abcdefgh"))).await,
        "e=invalid-username-encoding"
    );
    // An empty initial response gets the empty challenge first.
    let mut io = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
    io.write_all(format!("{m}\n\n").as_bytes()).await.unwrap();
    assert_eq!(read(&mut io).await, "\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_first_line_deadline() {
    let srv = start(Limits { first_line_timeout: Duration::from_millis(300), ..lenient() }).await;
    let mut io = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
    let started = std::time::Instant::now();
    assert_eq!(read(&mut io).await, "");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_over_tls_binds_the_channel() {
    let srv = start(lenient()).await;
    add_user(&srv.store, "alice", "pencil", Labels::Rfc).await;
    assert!(tls_login(&srv, "alice", "pencil", None).await.unwrap());
    // A client that cannot bind (n) is served too: it claimed no support, nothing was removed.
    assert!(!tls_login(&srv, "alice", "pencil", Some(ClientChannel::Unsupported)).await.unwrap());
    let e = tls_login(&srv, "alice", "wrong", None).await.unwrap_err();
    assert_eq!(refused(&e), "invalid-proof");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_binding_and_a_downgrade_are_refused() {
    let srv = start(lenient()).await;
    add_user(&srv.store, "alice", "pencil", Labels::Rfc).await;
    // The exporter value of another connection: what a man in the middle relaying
    // between two TLS connections would present.
    let e = tls_login(&srv, "alice", "pencil", Some(ClientChannel::TlsExporter([7; 32]))).await.unwrap_err();
    assert_eq!(refused(&e), "channel-bindings-dont-match");
    assert!(e.is_auth_failure());
    // `y`: "I could bind, but you don't offer -PLUS" on a listener that does offer it.
    let e = tls_login(&srv, "alice", "pencil", Some(ClientChannel::ServerLacksIt)).await.unwrap_err();
    assert_eq!(refused(&e), "server-does-support-channel-binding");
    // On plain TCP the same `y` is honest and accepted.
    let stream = TcpStream::connect(&srv.addr).await.unwrap();
    sasl_login(
        stream,
        "alice",
        &Password::new("pencil"),
        ClientChannel::ServerLacksIt,
        &ClientConfig::default(),
        T,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refuses_an_untrusted_certificate() {
    let srv = start(lenient()).await;
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = certificate(other.path());
    let stream = TcpStream::connect(&srv.tls_addr).await.unwrap();
    let e = connect_tls(stream, "localhost", tls_client_config(&other_ca).unwrap()).await.unwrap_err();
    assert!(matches!(e, NetError::CertificateRefused(_)), "{e:?}");
    assert!(e.is_auth_failure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_proofs_are_penalised_per_peer() {
    let limits = Limits {
        penalties: Penalties { peer_free_failures: 2, base: Duration::from_secs(30), ..Penalties::default() },
        ..Limits::default()
    };
    let srv = start(limits).await;
    add_user(&srv.store, "alice", "pencil", Labels::Rfc).await;
    for _ in 0..2 {
        assert_eq!(refused(&plain_login(&srv, "alice", "guess").await.unwrap_err()), "invalid-proof");
    }
    let mut penalised = false;
    for _ in 0..2 {
        if refused(&plain_login(&srv, "alice", "guess").await.unwrap_err()) == "no-resources" {
            penalised = true;
        }
    }
    assert!(penalised, "guesses past the free ones are refused before any proof is checked");
    // Even the right password waits out the penalty.
    let e = plain_login(&srv, "alice", "pencil").await.unwrap_err();
    assert_eq!(refused(&e), "no-resources");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_applies_its_iteration_ceiling() {
    let srv = start(lenient()).await;
    let salt = [1u8; 16];
    let salted = scram_dh::keys::salted_password(&Password::new("pencil"), &salt, 20_000).unwrap();
    let rec = ClientKeys::rfc(&salted).record("slow", &salt, 20_000, 0, Labels::Rfc);
    srv.store.insert(&rec).await.unwrap();
    let stream = TcpStream::connect(&srv.addr).await.unwrap();
    let e = sasl_login(
        stream,
        "slow",
        &Password::new("pencil"),
        ClientChannel::Unsupported,
        &ClientConfig { max_iterations: 10_000 },
        T,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, NetError::Protocol(scram_dh::Error::IterationCount { ic: 20_000, .. })), "{e:?}");
}
