//! A packet capture of real sessions: tcpdump on loopback, filtered to the
//! server's port, while the real binary registers (both label kinds), logs in
//! (with and without a channel, running commands), changes a password, and a
//! standard SCRAM client logs in with a password. The canary passwords must be
//! in no encoding in the capture, the server's trace-level log, the database
//! files or the client's saved files.
//!
//! tcpdump is required: `scripts/test.sh` installs it. Without it, or without the
//! right to capture, this test fails; it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Server, assert_absent, canary, cli, contains, ok, register};
use scram_dh::{ClientConfig, ClientSecret, Password};

/// tcpdump writing pcap to a pipe, started and ready ("listening on ...").
struct Capture {
    child: std::process::Child,
    pcap: std::thread::JoinHandle<Vec<u8>>,
    stderr: mpsc::Receiver<String>,
}

impl Capture {
    fn start(port: u16) -> Self {
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "--immediate-mode", "-U", "-s", "0", "-w", "-"])
            .arg(format!("tcp port {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run tcpdump ({e}): it is required; scripts/test.sh installs it (apt-get install tcpdump)")
            });
        let mut stdout = child.stdout.take().unwrap();
        let pcap = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut said = Vec::new();
        loop {
            match stderr.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => said.push(line),
                Err(_) => {
                    let status = child.try_wait().unwrap();
                    let _ = child.kill();
                    panic!("tcpdump cannot capture on lo (status {status:?}): {}", said.join("\n"));
                }
            }
        }
        Self { child, pcap, stderr }
    }

    /// SIGINT (tcpdump flushes and prints its counters), then the pcap bytes and
    /// what tcpdump said.
    fn stop(mut self) -> (Vec<u8>, String) {
        // Immediate mode delivers each packet at once; a short pause lets the last ones through.
        std::thread::sleep(Duration::from_millis(500));
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
        let pcap = self.pcap.join().unwrap();
        let said: Vec<String> = self.stderr.try_iter().collect();
        let said = said.join("\n");
        let dropped = said.lines().find(|l| l.contains("dropped by kernel")).unwrap_or_else(|| {
            panic!("tcpdump did not report its counters: {said}");
        });
        assert!(dropped.trim_start().starts_with("0 "), "tcpdump dropped packets: {said}");
        (pcap, said)
    }
}

/// A TCP flow: source address and port, destination address and port.
type Flow = (Vec<u8>, u16, Vec<u8>, u16);

/// The TCP payload of every flow (src, dst) in a pcap file, reassembled by sequence
/// number, so a secret split across segments is still found.
fn tcp_streams(pcap: &[u8]) -> HashMap<Flow, Vec<u8>> {
    let u32le = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    let u16be = |b: &[u8]| u16::from_be_bytes(b[..2].try_into().unwrap());
    let u32be = |b: &[u8]| u32::from_be_bytes(b[..4].try_into().unwrap());
    assert!(pcap.len() >= 24, "empty capture");
    assert!(matches!(u32le(pcap), 0xa1b2_c3d4 | 0xa1b2_3c4d), "not a little-endian pcap file");
    let link_header = match u32le(&pcap[20..]) {
        0 => 4,    // BSD loopback
        1 => 14,   // Ethernet (Linux lo)
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        other => panic!("unexpected link type {other}"),
    };
    let mut streams: HashMap<_, (u32, Vec<u8>)> = HashMap::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32le(&pcap[at + 8..]) as usize;
        let packet = &pcap[at + 16..(at + 16 + len).min(pcap.len())];
        at += 16 + len;
        let Some(ip) = packet.get(link_header..) else { continue };
        let (src, dst, tcp) = match ip.first().map(|b| b >> 4) {
            Some(4) if ip.len() >= 20 && ip[9] == 6 => {
                let total = usize::from(u16be(&ip[2..])).min(ip.len());
                let ihl = usize::from(ip[0] & 15) * 4;
                (ip[12..16].to_vec(), ip[16..20].to_vec(), &ip[ihl..total])
            }
            Some(6) if ip.len() >= 40 && ip[6] == 6 => {
                let total = (40 + usize::from(u16be(&ip[4..]))).min(ip.len());
                (ip[8..24].to_vec(), ip[24..40].to_vec(), &ip[40..total])
            }
            _ => continue,
        };
        if tcp.len() < 20 {
            continue;
        }
        let offset = usize::from(tcp[12] >> 4) * 4;
        let Some(payload) = tcp.get(offset..) else { continue };
        if payload.is_empty() {
            continue;
        }
        let seq = u32be(&tcp[4..]);
        let key = (src, u16be(tcp), dst, u16be(&tcp[2..]));
        let (next, data) = streams.entry(key).or_insert((seq, Vec::new()));
        // Skip what a retransmission repeats; append the rest.
        let skip = (next.wrapping_sub(seq) as usize).min(payload.len());
        let skip = if next.wrapping_sub(seq) > 1 << 30 { 0 } else { skip };
        data.extend_from_slice(&payload[skip..]);
        *next = seq.wrapping_add(payload.len() as u32);
    }
    streams.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

fn files_under(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files_under(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[test]
fn capture_has_no_password_in_any_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let addr = server.addr.clone();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let capture = Capture::start(port);

    let (pw_random, pw_rfc, pw_new) = (canary(), canary(), canary());
    // Registration with random labels over X25519, then a login with a channel.
    let out = register(&client, &addr, "ivy", &pw_random, "random");
    assert!(out.contains("logged in as ivy"), "{out}");
    // Registration with RFC labels over the default modp6144, no login.
    ok(&cli(
        &client,
        &["register", "jack", "--server", &addr, "--labels", "rfc", "--password-stdin", "--no-login"],
        Some(&pw_rfc),
    ));
    // Logins with a channel and a command, over X25519 and modp2048, and without one.
    ok(&cli(&client, &["login", "ivy", "--server", &addr, "-c", "set k v"], None));
    assert_eq!(
        ok(&cli(&client, &["login", "jack", "--server", &addr, "--group", "modp2048", "-c", "whoami"], None))
            .trim(),
        "jack"
    );
    ok(&cli(&client, &["login", "jack", "--server", &addr, "--no-channel"], None));
    // A password change over the channel, then a login with the new credential.
    ok(&cli(&client, &["passwd", "ivy", "--server", &addr, "--password-stdin"], Some(&pw_new)));
    assert_eq!(ok(&cli(&client, &["login", "ivy", "--server", &addr, "-c", "get k"], None)).trim(), "v");
    // A standard SCRAM login with the RFC-labels password itself.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let pw = ClientSecret::Password(Password::new(pw_rfc.clone()));
        scram_dh_net::login(s, "jack", pw, None, ClientConfig::default()).await.unwrap();
    });

    let (pcap, said) = capture.stop();
    let streams = tcp_streams(&pcap);
    let wire: Vec<u8> = streams.values().flatten().copied().collect();
    // Not vacuous: the capture holds every handshake message of both phases.
    for needle in [
        r#""type":"registration_pairing""#,
        r#""type":"registration_send_password""#,
        r#""type":"registration_keys_generation""#,
        r#""type":"auth_pairing""#,
        r#""type":"auth_client_proof_generation""#,
        r#""type":"auth_proof""#,
        r#""labels":"rfc""#,
        r#""labels":"random""#,
    ] {
        assert!(
            contains(&wire, needle.as_bytes()),
            "the capture lacks {needle} ({} bytes; tcpdump: {said})",
            pcap.len()
        );
    }
    let connections = streams.keys().filter(|k| k.3 == port).count();
    assert!(connections >= 8, "one flow per session: saw {connections}");

    let db_live: Vec<u8> = ["server.db", "server.db-wal", "server.db-shm"]
        .iter()
        .flat_map(|f| std::fs::read(dir.path().join(f)).unwrap_or_default())
        .collect();
    let log = server.stop();
    assert!(log.contains("DEBUG"), "the server logged verbosely (RUST_LOG=trace)");
    assert!(log.contains("ivy") && log.contains("jack"), "the log saw both users");
    let mut db = db_live;
    db.extend(std::fs::read(dir.path().join("server.db")).unwrap());
    db.extend(std::fs::read(dir.path().join("server.db-wal")).unwrap_or_default());
    let saved = files_under(&client);
    assert!(!saved.is_empty());
    for pw in [&pw_random, &pw_rfc, &pw_new] {
        assert_absent("the raw capture", &pcap, pw);
        assert_absent("the reassembled TCP streams", &wire, pw);
        assert_absent("the server's trace log", log.as_bytes(), pw);
        assert_absent("the database files", &db, pw);
        assert_absent("the client's saved files", &saved, pw);
    }
}
