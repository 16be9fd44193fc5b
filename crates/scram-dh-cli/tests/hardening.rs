//! Hardening tests through the real `scram-dh serve` binary (issue 6): log
//! forging in both log formats (finding M4), and the flood test: one peer holding
//! idle connections, half-open handshakes, DH-costing pairings and idle channels
//! at once while a real user on another address registers and logs in, every time,
//! with the server's memory bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader as StdBufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scram_dh::{ClientConfig, ClientCredential, Fingerprint, Group, Labels, Password};
use scram_dh_net::HostKeyPolicy;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_scram-dh");

struct Serve {
    child: Child,
    addr: SocketAddr,
    fingerprint: Fingerprint,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, args: &[&str], log: &Path) -> Serve {
    serve_logging(dir, args, log, "trace")
}

fn serve_logging(dir: &Path, args: &[&str], log: &Path, level: &str) -> Serve {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("s.db"))
        .args(args)
        .env("RUST_LOG", level)
        .env_remove("SCRAM_DH_CONFIG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    StdBufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(line.starts_with("listening on "), "{line:?}: {}", std::fs::read_to_string(log).unwrap());
    Serve { addr: words[2].parse().unwrap(), fingerprint: words[5].parse().unwrap(), child }
}

async fn connect_from(src: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::from(([127, 0, 0, src], 0)))?;
    sock.connect(addr).await
}

/// Finding M4: peer-controlled text (an unknown `type` carrying ESC and a
/// newline, a username with them) never reaches the log raw, in either format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m4_peer_text_cannot_forge_log_lines() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let srv = serve(dir.path(), &["--log-format", format], &log);
        let forged = r#"\u001b[2J\u001b[1;1H\n2026-12-01T00:00:00.000000Z  INFO scram_dh_net::handshake: authenticated peer=10.0.0.1 username=root channel=true"#;
        let lines = [
            format!(r#"{{"type":"{forged}"}}"#),
            format!(r#"{{"type":"auth_pairing","username":"{forged}","client_nonce":"{}"}}"#, "0".repeat(64)),
            format!(r#"{{"type":"auth_pairing","username":"x","client_nonce":"{forged}"}}"#),
        ];
        for l in &lines {
            let mut s = BufReader::new(connect_from(1, srv.addr).await.unwrap());
            s.get_mut().write_all(format!("{l}\n").as_bytes()).await.unwrap();
            let mut reply = String::new();
            s.read_line(&mut reply).await.unwrap();
            assert!(reply.contains(r#""code":"invalid_message""#), "{reply}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(srv);
        let text = std::fs::read(&log).unwrap();
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("2J"), "the hostile text was logged (escaped), format {format}: {text}");
        assert!(!text.contains('\u{1b}'), "raw ESC in the {format} log");
        for line in text.lines() {
            assert!(
                !line.contains("username=root") || line.contains("\\n"),
                "forged line in {format} log: {line}"
            );
            if format == "json" {
                serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            } else {
                assert!(
                    line.starts_with("20"),
                    "a {format} log line not starting with a timestamp: {line:?}"
                );
            }
        }
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[derive(Default)]
struct Tally {
    served: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

impl Tally {
    fn count(&self, reply: &str) {
        let c = if reply.contains(r#""code":"busy""#) {
            &self.busy
        } else if reply.starts_with(r#"{"type":"auth_pairing""#) || reply.is_empty() {
            &self.served
        } else {
            &self.other
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn show(&self) -> String {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!("served {} busy {} other {}", l(&self.served), l(&self.busy), l(&self.other))
    }
}

async fn register(addr: SocketAddr, src: u8, user: &str, fp: Fingerprint) -> ClientCredential {
    let s = connect_from(src, addr).await.unwrap();
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
    .unwrap_or_else(|e| panic!("registration of {user} from 127.0.0.{src}: {e}"))
}

fn a1(i: u64, channel: Option<&str>) -> String {
    let ch = channel.map(|pk| format!(r#","group":"x25519","public_key":"{pk}""#)).unwrap_or_default();
    format!("{{\"type\":\"auth_pairing\",\"username\":\"flood{i}\",\"client_nonce\":\"{i:064x}\"{ch}}}\n")
}

/// The flood test of issue 6: from 127.0.0.1, 10,000 idle connections, 1,000
/// half-open handshakes, 200 DH-costing pairings per second and 100 idle channels
/// at once, while a real user on 127.0.0.2 registers and logs in with a channel,
/// every time; the server's peak RSS stays below 256 MiB. Default limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_from_one_peer_does_not_deny_another() {
    let fd = scram_dh_net::admission::raise_fd_limit().unwrap();
    assert!(fd >= 12_000, "this test holds ~11,500 sockets; the open-file limit here is {fd}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let srv = serve(dir.path(), &[], &log);
    let (addr, fp) = (srv.addr, srv.fingerprint);
    // The attacker's own account, for the idle channels.
    let mallory = register(addr, 1, "mallory", fp).await;
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut attacks = tokio::task::JoinSet::new();

    // 10,000 idle connections, opened as fast as the server takes them, held.
    let idle = Arc::new(Tally::default());
    {
        let idle = Arc::clone(&idle);
        attacks.spawn(async move {
            let mut held = Vec::new();
            for _ in 0..10_000 {
                match connect_from(1, addr).await {
                    Ok(s) => held.push(s),
                    Err(_) => {
                        idle.other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Whatever the server said by now is in each socket's buffer.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut buf = [0u8; 256];
            for s in &held {
                match s.try_read(&mut buf) {
                    Ok(n) if n > 0 => idle.count(&String::from_utf8_lossy(&buf[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => idle.count(""),
                    _ => {
                        idle.other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            tokio::time::sleep_until(deadline.into()).await;
            drop(held);
        });
    }
    // 1,000 half-open handshakes: A1, read A2 (or the refusal), then silence.
    let half = Arc::new(Tally::default());
    {
        let half = Arc::clone(&half);
        attacks.spawn(async move {
            let mut held = Vec::new();
            for i in 0..1000u64 {
                let Ok(s) = connect_from(1, addr).await else {
                    half.other.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let mut s = BufReader::new(s);
                let _ = s.get_mut().write_all(a1(i, None).as_bytes()).await;
                let mut reply = String::new();
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read_line(&mut reply)).await;
                half.count(&reply);
                held.push(s);
            }
            tokio::time::sleep_until(deadline.into()).await;
            drop(held);
        });
    }
    // 200 DH-costing pairings per second (A1 with an X25519 key), each on its own connection.
    let dh = Arc::new(Tally::default());
    {
        let dh = Arc::clone(&dh);
        attacks.spawn(async move {
            let pk = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut i = 1_000_000u64;
            while Instant::now() < deadline {
                tick.tick().await;
                i += 1;
                let dh = Arc::clone(&dh);
                tokio::spawn(async move {
                    let Ok(s) = connect_from(1, addr).await else {
                        dh.other.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let mut s = BufReader::new(s);
                    let _ = s.get_mut().write_all(a1(i, Some(pk)).as_bytes()).await;
                    let mut reply = String::new();
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_line(&mut reply)).await;
                    dh.count(&reply);
                });
            }
        });
    }
    // 100 idle channels as mallory.
    let channels = Arc::new(Tally::default());
    {
        let channels = Arc::clone(&channels);
        attacks.spawn(async move {
            let mut held = Vec::new();
            for _ in 0..100 {
                let Ok(s) = connect_from(1, addr).await else {
                    channels.other.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match scram_dh_net::login(
                    s,
                    "mallory",
                    mallory.secret(),
                    Some(Group::X25519),
                    ClientConfig::default(),
                )
                .await
                {
                    Ok(l) => {
                        channels.served.fetch_add(1, Ordering::Relaxed);
                        held.push(l);
                    }
                    Err(e) if e.to_string().contains("busy") => {
                        channels.busy.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        channels.other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            tokio::time::sleep_until(deadline.into()).await;
            drop(held);
        });
    }

    // Meanwhile the real user, from 127.0.0.2: register, log in with a channel, use it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rounds = 0;
    let mut worst = Duration::ZERO;
    while Instant::now() + Duration::from_secs(1) < deadline {
        let t = Instant::now();
        let user = format!("alice{rounds}");
        let cred = register(addr, 2, &user, fp).await;
        let s = connect_from(2, addr).await.unwrap();
        let mut login =
            scram_dh_net::login(s, &user, cred.secret(), Some(Group::X25519), ClientConfig::default())
                .await
                .unwrap_or_else(|e| panic!("round {rounds}: the real user's login failed: {e}"));
        let ch = login.channel.as_mut().unwrap();
        ch.send(br#"{"cmd":"whoami"}"#).await.unwrap();
        let reply = ch.recv().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&reply).contains(&format!(r#""user":"{user}""#)));
        ch.close().await.unwrap();
        worst = worst.max(t.elapsed());
        rounds += 1;
        // One registration a second: within a real user's registration budget.
        tokio::time::sleep(Duration::from_millis(1000).saturating_sub(t.elapsed())).await;
    }
    let hwm = vm_hwm_kib(srv.child.id());
    while attacks.join_next().await.is_some() {}
    eprintln!(
        "flood: real user {rounds} rounds, slowest {worst:?}; idle connections: {}; half-open: {}; \
         DH pairings: {}; idle channels: {}; server peak RSS {} KiB",
        idle.show(),
        half.show(),
        dh.show(),
        channels.show(),
        hwm
    );
    assert!(rounds >= 5, "the real user got {rounds} rounds");
    assert!(hwm < 256 * 1024, "server peak RSS {hwm} KiB");
    // The limits did their work: most of the attack was refused, visibly.
    assert!(idle.busy.load(Ordering::Relaxed) > 9000, "idle: {}", idle.show());
    assert!(dh.busy.load(Ordering::Relaxed) > dh.served.load(Ordering::Relaxed), "dh: {}", dh.show());
    assert!(channels.busy.load(Ordering::Relaxed) >= 80, "channels: {}", channels.show());
}

/// Finding M5 through the binary, default limits: a guesser on one address gets a
/// handful of proofs evaluated, then waits; a distributed guesser (many
/// addresses) gets the account penalised for untrusted peers while the owner, on
/// the address it logged in from before, still logs in; and the log at the
/// default level grows by a few lines, not one per failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_online_guessing_is_throttled_and_logged_in_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let srv = serve_logging(dir.path(), &[], &log, "info");
    let (addr, fp) = (srv.addr, srv.fingerprint);
    let owner = register(addr, 2, "owner", fp).await;
    let s = connect_from(2, addr).await.unwrap();
    scram_dh_net::login(s, "owner", owner.secret(), None, ClientConfig::default()).await.unwrap();
    let log_before = std::fs::read_to_string(&log).unwrap().lines().count();
    let wrong = scram_dh::ClientSecret::Keys(scram_dh::ClientKeys {
        client_key: scram_dh::secret::ClientKey::from_bytes([1; 32]),
        server_key: scram_dh::secret::ServerKey::from_bytes([2; 32]),
    });
    let guess = |src: u8| {
        let wrong = wrong.clone();
        async move {
            let s = connect_from(src, addr).await.unwrap();
            match scram_dh_net::login(s, "owner", wrong, None, ClientConfig::default()).await {
                Err(e) if e.is_auth_failure() => "failed",
                Err(e) if e.to_string().contains("busy") => "busy",
                other => panic!("a wrong proof from 127.0.0.{src}: {other:?}"),
            }
        }
    };
    // One address, as fast as it can for 5 s.
    let t = Instant::now();
    let (mut evaluated, mut refused) = (0u32, 0u32);
    while t.elapsed() < Duration::from_secs(5) {
        match guess(1).await {
            "failed" => evaluated += 1,
            _ => refused += 1,
        }
    }
    eprintln!("one peer, 5 s: {evaluated} proofs evaluated, {refused} refused busy");
    assert!(evaluated <= 6, "{evaluated} guesses evaluated in 5 s from one address");
    assert!(refused > 100, "the refusals are cheap and visible: {refused}");
    // Many addresses, one guess each: the account's penalty starts.
    let mut distributed = 0;
    for src in 10..40u8 {
        if guess(src).await == "failed" {
            distributed += 1;
        }
    }
    eprintln!("30 peers, one guess each: {distributed} evaluated");
    assert!(distributed <= 12, "{distributed} of 30 distributed guesses evaluated");
    let s = connect_from(50, addr).await.unwrap();
    let e = scram_dh_net::login(s, "owner", owner.secret(), None, ClientConfig::default()).await.unwrap_err();
    assert!(e.to_string().contains("for this account"), "a new address waits: {e}");
    // The owner, from its usual address, is not locked out.
    let s = connect_from(2, addr).await.unwrap();
    scram_dh_net::login(s, "owner", owner.secret(), Some(Group::X25519), ClientConfig::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(srv);
    let text = std::fs::read_to_string(&log).unwrap();
    let added = text.lines().count() - log_before;
    let attempts = evaluated + refused + 30;
    eprintln!("log: {added} lines, {} bytes for {attempts} attempts", text.len());
    assert!(added <= 30, "{added} log lines for {attempts} attempts:\n{text}");
    assert!(text.contains("penalising peer") && text.contains("penalising account"), "{text}");
}

/// Finding M6 through the binary: `--registration closed` refuses every R1 the
/// same way (no `username_taken` oracle), while provisioned users log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m6_registration_closed_leaves_provisioning() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let srv = serve(dir.path(), &["--registration", "closed"], &log);
    let out = Command::new(BIN)
        .args(["provision", "erin", "--db"])
        .arg(dir.path().join("s.db"))
        .args(["--server", &srv.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let erin = ClientCredential::from_json(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let mut replies = Vec::new();
    for name in ["erin", "nobody"] {
        let s = connect_from(1, srv.addr).await.unwrap();
        let e = scram_dh_net::register(
            s,
            name,
            Password::new("pw"),
            Group::X25519,
            Labels::Random,
            &HostKeyPolicy::Fingerprint(srv.fingerprint),
            ClientConfig::default(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("registration is closed"), "{name}: {e}");
        replies.push(e.to_string());
    }
    assert_eq!(replies[0], replies[1], "an existing and an unknown name get the same refusal");
    let s = connect_from(1, srv.addr).await.unwrap();
    scram_dh_net::login(s, "erin", erin.secret(), Some(Group::X25519), ClientConfig::default())
        .await
        .unwrap();
}
