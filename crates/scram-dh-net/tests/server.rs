//! Adversarial tests of the TCP front on loopback with memory stores: caps,
//! rate limits, deadlines, oversized and malformed input, and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use scram_dh::{
    ClientConfig, ErrorCode, Group, HostKey, Labels, MemoryCredentialStore, MemorySessionStore, Password,
    ServerConfig, ServerEngine,
};
use scram_dh_net::{HostKeyPolicy, KnownHosts, KvService, Limits, NetError, Server};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Running {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Arc<MemoryCredentialStore>,
    fingerprint: scram_dh::Fingerprint,
}

async fn start(limits: Limits) -> Running {
    let host_key = HostKey::from_seed(&[5; 32]);
    let fingerprint = host_key.fingerprint();
    let store = Arc::new(MemoryCredentialStore::default());
    let engine = ServerEngine::new(
        ServerConfig::new(host_key, [9; 32]),
        Arc::clone(&store),
        MemorySessionStore::default(),
    )
    .unwrap();
    let server = Server::new(engine, KvService::new(Arc::clone(&store)), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = rx.await;
    }));
    Running { addr, stop: Some(tx), task, store, fingerprint }
}

async fn reply_line(stream: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_line(&mut line)).await.unwrap().unwrap();
    line
}

async fn register(
    addr: &str,
    user: &str,
    fp: scram_dh::Fingerprint,
) -> Result<scram_dh::ClientCredential, NetError> {
    let s = TcpStream::connect(addr).await?;
    scram_dh_net::register(
        s,
        user,
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        &HostKeyPolicy::Fingerprint(fp),
        ClientConfig::default(),
    )
    .await
}

fn code_of(e: &NetError) -> Option<ErrorCode> {
    match e {
        NetError::Protocol(scram_dh::Error::Peer { code, .. }) => Some(*code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_rate_limit_per_peer() {
    let srv =
        start(Limits { registrations_per_sec: 0.001, registration_burst: 3.0, ..Limits::default() }).await;
    let mut creds = Vec::new();
    for i in 0..3 {
        creds.push(register(&srv.addr, &format!("u{i}"), srv.fingerprint).await.unwrap());
    }
    let err = register(&srv.addr, "u3", srv.fingerprint).await.unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::Busy), "{err}");
    assert_eq!(srv.store.list_len().await, 3);
    // Logins do not draw on the registration bucket.
    for c in &creds {
        let s = TcpStream::connect(&srv.addr).await.unwrap();
        scram_dh_net::login(s, &c.username, c.secret(), None, ClientConfig::default()).await.unwrap();
    }
}

trait Len {
    async fn list_len(&self) -> usize;
}
impl Len for Arc<MemoryCredentialStore> {
    async fn list_len(&self) -> usize {
        scram_dh::CredentialStore::list(self.as_ref()).await.unwrap().len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_caps_answer_busy() {
    let srv = start(Limits { max_handshakes: 4, max_handshakes_per_peer: 2, ..Limits::default() }).await;
    // Two idle connections from this peer hold both per-peer slots.
    let idle1 = TcpStream::connect(&srv.addr).await.unwrap();
    let idle2 = TcpStream::connect(&srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
    let line = reply_line(&mut third).await;
    assert!(line.contains(r#""code":"busy""#), "{line}");
    drop((idle1, idle2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Slots are released when those connections go away.
    register(&srv.addr, "after", srv.fingerprint).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_hits_the_deadline() {
    let srv = start(Limits { handshake_timeout: Duration::from_millis(300), ..Limits::default() }).await;
    let mut s = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
    // Half a message, then nothing (slowloris).
    s.get_mut().write_all(br#"{"type":"auth_pair"#).await.unwrap();
    let line = reply_line(&mut s).await;
    assert!(line.contains("timed out"), "{line}");
    let mut rest = String::new();
    assert_eq!(s.read_line(&mut rest).await.unwrap(), 0, "closed after the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_lines_are_refused() {
    let srv = start(Limits::default()).await;
    let mut s = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
    let big = vec![b'a'; 20 * 1024];
    let _ = s.get_mut().write_all(&big).await;
    let line = reply_line(&mut s).await;
    assert!(line.contains(r#""code":"invalid_message""#) && line.contains("16 KiB"), "{line}");

    for bad in ["not json", "{}", r#"{"type":"auth_pairing"}"#, "\u{0}\u{1}"] {
        let mut s = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
        s.get_mut().write_all(format!("{bad}\n").as_bytes()).await.unwrap();
        let line = reply_line(&mut s).await;
        assert!(line.contains(r#""code":"invalid_message""#), "{bad:?} -> {line}");
    }
    // Invalid UTF-8 closes the connection without a panic.
    let mut s = BufReader::new(TcpStream::connect(&srv.addr).await.unwrap());
    s.get_mut().write_all(b"\xff\xfe\n").await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_line(&mut out)).await.unwrap();
    // The server still works.
    register(&srv.addr, "still-fine", srv.fingerprint).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_pairings_stays_bounded() {
    let srv = start(Limits { max_handshakes_per_peer: 64, ..Limits::default() }).await;
    // 200 auth pairings that never finish: each answered, none left holding a slot.
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let addr = srv.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = BufReader::new(TcpStream::connect(&addr).await.unwrap());
            let nonce = format!("{:064x}", i);
            s.get_mut()
                .write_all(
                    format!(
                        "{{\"type\":\"auth_pairing\",\"username\":\"x{i}\",\"client_nonce\":\"{nonce}\"}}\n"
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
            reply_line(&mut s).await
        }));
    }
    let mut busy = 0;
    for t in tasks {
        let line = t.await.unwrap();
        if line.contains("busy") {
            busy += 1;
        } else {
            assert!(line.contains(r#""type":"auth_pairing""#), "{line}");
        }
    }
    assert!(busy < 200);
    // The flooding peer's live sessions count against its per-peer session cap until
    // they expire, so it is refused for now...
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = register(&srv.addr, "after-flood", srv.fingerprint).await.unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::Busy), "{err}");
    // ...while another address is served normally.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let s = sock.connect(srv.addr.parse().unwrap()).await.unwrap();
    scram_dh_net::register(
        s,
        "other-peer",
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        &HostKeyPolicy::Fingerprint(srv.fingerprint),
        ClientConfig::default(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tofu_records_and_then_pins() {
    let srv = start(Limits::default()).await;
    let dir = tempfile_dir();
    let kh = KnownHosts::new(dir.join("known_hosts"));
    let policy = HostKeyPolicy::KnownHosts { file: kh.clone(), server: srv.addr.clone() };
    let s = TcpStream::connect(&srv.addr).await.unwrap();
    scram_dh_net::register(
        s,
        "tofu",
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        &policy,
        ClientConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(kh.lookup(&srv.addr).unwrap(), Some(srv.fingerprint));
    // A different key for the same name is now refused.
    let other = KnownHosts::new(dir.join("other"));
    other.add(&srv.addr, &HostKey::from_seed(&[1; 32]).fingerprint()).unwrap();
    let policy = HostKeyPolicy::KnownHosts { file: other, server: srv.addr.clone() };
    let s = TcpStream::connect(&srv.addr).await.unwrap();
    let err = scram_dh_net::register(
        s,
        "tofu2",
        Password::new("pw"),
        Group::X25519,
        Labels::Random,
        &policy,
        ClientConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, NetError::Protocol(scram_dh::Error::HostKeyMismatch { .. })), "{err}");
    assert!(err.is_auth_failure());
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let d = std::env::temp_dir().join(format!("scram-dh-net-test-{}", u64::from_le_bytes(b)));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_channels_and_returns() {
    let mut srv = start(Limits::default()).await;
    let cred = register(&srv.addr, "sd", srv.fingerprint).await.unwrap();
    let s = TcpStream::connect(&srv.addr).await.unwrap();
    let mut login = scram_dh_net::login(s, "sd", cred.secret(), Some(Group::X25519), ClientConfig::default())
        .await
        .unwrap();
    let ch = login.channel.as_mut().unwrap();
    ch.send(br#"{"cmd":"whoami"}"#).await.unwrap();
    assert!(String::from_utf8_lossy(&ch.recv().await.unwrap().unwrap()).contains(r#""user":"sd""#));
    srv.stop.take().unwrap().send(()).unwrap();
    let res =
        tokio::time::timeout(Duration::from_secs(10), &mut srv.task).await.expect("server stops").unwrap();
    assert!(res.is_ok());
    // The open channel was told to stop: the client sees the end of the stream.
    let end = tokio::time::timeout(Duration::from_secs(2), ch.recv()).await.unwrap();
    assert!(matches!(end, Ok(None) | Err(_)));
    assert!(TcpStream::connect(&srv.addr).await.is_err(), "no longer accepting");
}
