//! Several `serve` nodes behind nginx, sharing PostgreSQL (credentials) and Redis
//! (in-flight handshakes, HTTP sessions, penalties), exactly as
//! `scripts/cluster.sh up` deploys them (issue 9). Each test starts its own
//! cluster on free loopback ports with that script and fails, never skips, when
//! a piece cannot start (scripts/peers.sh installs PostgreSQL 15, redis-server and
//! nginx).
//!
//! Handshake steps are sent to chosen nodes directly (the nodes trust 127.0.0.1
//! as their proxy, so `X-Forwarded-For` names the client's address as nginx
//! would), and through nginx, whose round robin puts a login's two steps on two
//! different nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/peers.rs"]
mod peers;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, contains};
use scram_dh::auth::client::AuthClient;
use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::{ClientConfig, ClientCredential, ClientSecret, Group, Labels, Password, SessionKeys};
use scram_dh_net::http_client::{AUTH_PAIRING, AUTH_PROOF, HttpClient, HttpSession};
use scram_dh_net::{HostKeyPolicy, RegisterOptions};

/// A cluster from `scripts/cluster.sh up`, taken down on drop.
struct Cluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Cluster {
    fn up(nodes: usize, node_args: &str) -> Self {
        peers::ensure_peers();
        let dir = tempfile::Builder::new().prefix("scram-dh-cluster-").tempdir().unwrap();
        // The PostgreSQL server runs as `postgres` when the tests run as root: it
        // must be able to reach its directory.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = Self::script(
            dir.path(),
            "up",
            &[("NODES", &nodes.to_string()), ("SCRAM_DH_NODE_ARGS", node_args)],
        );
        assert!(out.status.success(), "{}", peers::show("scripts/cluster.sh up", &out));
        let env = std::fs::read_to_string(dir.path().join("env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { dir, env }
    }

    fn script(dir: &Path, cmd: &str, env: &[(&str, &str)]) -> std::process::Output {
        let mut c = Command::new("bash");
        c.arg(peers::root().join("scripts/cluster.sh")).arg(cmd).arg(dir).env("SCRAM_DH_BIN", BIN);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).output().unwrap()
    }

    fn ctl(&self, cmd: &str) {
        let out = Self::script(self.dir.path(), cmd, &[]);
        assert!(out.status.success(), "{}", peers::show(&format!("cluster.sh {cmd}"), &out));
    }

    fn get(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("{key} missing from the cluster's env file"))
    }

    fn node_http(&self, i: usize) -> String {
        self.get(&format!("NODE{i}_HTTP")).to_owned()
    }

    fn lb(&self) -> String {
        format!("127.0.0.1:{}", self.get("LB_PORT"))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn node_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.path(&format!("node{i}/serve.log"))).unwrap_or_default()
    }

    fn fingerprint(&self) -> scram_dh::Fingerprint {
        let log = self.node_log(1);
        let fp = log
            .lines()
            .filter(|l| l.starts_with("listening on "))
            .find_map(|l| l.split(" host key ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no host key in node 1's log:\n{log}"));
        fp.parse().unwrap()
    }

    /// `scram-dh users --db <PostgreSQL> ARGS`.
    fn users(&self, args: &[&str]) -> String {
        let out = Command::new(BIN).args(["users", "--db", self.get("PG_URL")]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", peers::show("users", &out));
        peers::text(&out.stdout)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Self::script(self.dir.path(), "down", &[]);
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// POSTs one handshake message to `addr` as client `peer`: the reply.
fn step(addr: &str, route: &str, msg: &ClientMessage, peer: &str) -> ServerMessage {
    let (status, body) = http(addr, "POST", route, &[("X-Forwarded-For", peer)], &msg.to_json());
    ServerMessage::from_json(&body)
        .unwrap_or_else(|e| panic!("{route} on {addr}: status {status}, {e}: {body}"))
}

fn error_of(reply: &ServerMessage) -> Option<(String, String)> {
    match reply {
        ServerMessage::Error(e) => Some((e.code.as_str().to_owned(), e.message.clone())),
        _ => None,
    }
}

/// A login whose A1 goes to `first` and A3 to `second`: the reply to A3, the A3
/// message (to replay), and the client's result when it succeeded.
fn split_login(
    first: &str,
    second: &str,
    user: &str,
    secret: ClientSecret,
    peer: &str,
) -> (ServerMessage, ClientMessage, Option<(String, SessionKeys)>) {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let a1 = AuthClient::start(&mut rng, user, secret, Some(Group::X25519), ClientConfig::default()).unwrap();
    let a2 = step(first, AUTH_PAIRING, &a1.message, peer);
    let ServerMessage::AuthPairing(a2) = a2 else { return (a2, a1.message, None) };
    let a3 = a1.state.receive_pairing(a2).unwrap();
    let a4 = step(second, AUTH_PROOF, &a3.message, peer);
    let ServerMessage::AuthProof(proof) = a4.clone() else { return (a4, a3.message, None) };
    let sid = proof.session_id.clone().expect("the HTTP front names a session");
    let done = a3.state.finish(proof).expect("the server's signature verifies");
    (a4, a3.message, Some((sid, done.into_session_keys().unwrap())))
}

fn register(
    base: &str,
    user: &str,
    password: &str,
    labels: Labels,
    fp: scram_dh::Fingerprint,
) -> ClientCredential {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = HttpClient::new(&format!("http://{base}"), Duration::from_secs(30)).unwrap();
        let options = RegisterOptions {
            group: Group::X25519,
            labels,
            policy: HostKeyPolicy::Fingerprint(fp),
            config: ClientConfig::default(),
        };
        client.register(user, Password::new(password), &options, |_| Ok(())).await.unwrap()
    })
}

fn session(base: &str, user: &str, sid: &str, keys: &SessionKeys, next_seq: u64) -> HttpSession {
    let json = serde_json::json!({
        "base_url": format!("http://{base}"),
        "username": user,
        "session_id": sid,
        "keys": {
            "c2s": base64_of(keys.c2s.expose()),
            "s2c": base64_of(keys.s2c.expose()),
        },
        "next_seq": next_seq,
    });
    serde_json::from_value(json).unwrap()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn whoami(s: &HttpSession, seq: u64) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match rt.block_on(s.request_with_seq(seq, "GET", "/v1/whoami", b"")) {
        Ok(r) => r.status,
        Err(scram_dh_net::http_client::HttpError::BadResponseMac { status }) => status,
        Err(e) => panic!("whoami: {e}"),
    }
}

#[test]
fn a_login_split_across_nodes_works_and_nothing_replays_on_the_other_node() {
    let c = Cluster::up(2, "");
    let (n1, n2) = (c.node_http(1), c.node_http(2));
    let fp = c.fingerprint();

    // Registered on node 1, visible on node 2 at once.
    let cred = register(&n1, "alice", "correct horse", Labels::Random, fp);
    let (reply, proof, done) = split_login(&n1, &n2, "alice", cred.secret(), "10.0.0.1");
    let (sid, keys) = done.unwrap_or_else(|| panic!("split login refused: {reply:?}"));

    // The proof consumed on node 2 is refused when replayed on node 1, and on node 2.
    for node in [&n1, &n2] {
        let again = step(node, AUTH_PROOF, &proof, "10.0.0.1");
        let (code, _) =
            error_of(&again).unwrap_or_else(|| panic!("replayed proof accepted on {node}: {again:?}"));
        assert_eq!(code, "unknown_session", "replayed A3 on {node}");
    }

    // The HTTP session opened on node 2 serves signed requests on node 1; a
    // request replayed on the other node is refused, a fresh seq is not.
    let s1 = session(&n1, "alice", &sid, &keys, 0);
    let s2 = session(&n2, "alice", &sid, &keys, 0);
    assert_eq!(whoami(&s1, 0), 200);
    assert_eq!(whoami(&s2, 0), 401, "seq 0 replayed on node 2");
    assert_eq!(whoami(&s2, 1), 200);
    assert_eq!(whoami(&s1, 1), 401, "seq 1 replayed on node 1");
    // Logged out on node 1, gone on node 2.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut out = session(&n1, "alice", &sid, &keys, 2);
    rt.block_on(out.logout()).unwrap();
    assert_eq!(whoami(&s2, 9), 401, "after logout on the other node");

    // Through nginx: the CLI's login lands its two steps on two nodes.
    let config = c.path("client");
    let cred_file = c.path("alice.cred");
    std::fs::write(&cred_file, cred.to_json()).unwrap();
    let lb = format!("http://{}", c.lb());
    for _ in 0..3 {
        let out = common::cli(
            &config,
            &["login", "alice", "--http", &lb, "--credential", cred_file.to_str().unwrap()],
            None,
        );
        assert!(out.status.success(), "{}", peers::show("login through nginx", &out));
    }
    let access = std::fs::read_to_string(c.path("nginx/access.log")).unwrap();
    let upstream = |route: &str| -> Vec<String> {
        access
            .lines()
            .filter(|l| l.contains(route) && l.contains(" 200 "))
            .map(|l| l.rsplit("upstream=").next().unwrap_or_default().to_owned())
            .collect()
    };
    let (pairings, proofs) = (upstream(AUTH_PAIRING), upstream(AUTH_PROOF));
    assert_eq!(pairings.len(), 3, "{access}");
    assert!(
        pairings.iter().zip(&proofs).all(|(a, b)| a != b),
        "each login's steps should land on two nodes:\n{access}"
    );
    assert!(!access.is_empty());
}

/// `scram_dh_handshake_sessions_expired_total` in a scrape of `addr`.
/// `GET /metrics` on `addr`, which must answer 200: the exposition text.
fn scrape(addr: &str) -> String {
    let (status, text) = http(addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200, "{text}");
    text
}

fn expired_total(addr: &str) -> u64 {
    let text = scrape(addr);
    common::metric(&text, "scram_dh_handshake_sessions_expired_total")
        .unwrap_or_else(|| panic!("{addr} reports no expired total:\n{text}"))
}

/// `scram_dh_handshake_sessions_shared` on `addr`: the shared store's live
/// handshakes. A node on Redis has no count of its own to report.
fn shared_live(addr: &str) -> u64 {
    let text = scrape(addr);
    assert_eq!(common::metric(&text, "scram_dh_handshake_sessions"), None, "{text}");
    common::metric(&text, "scram_dh_handshake_sessions_shared")
        .unwrap_or_else(|| panic!("{addr} reports no shared live count:\n{text}"))
}

#[test]
fn abandoned_handshakes_show_live_on_every_node_then_expire_counted_once() {
    let c = Cluster::up(2, "--ttl 1");
    let (n1, n2) = (c.node_http(1), c.node_http(2));
    // Three A1s on node 1 that no A3 follows.
    let a1 = |node: &str, n: u32| {
        let body = common::lone_a1_json(n);
        let (status, reply) = http(node, "POST", AUTH_PAIRING, &[("X-Forwarded-For", "10.0.0.9")], &body);
        assert_eq!(status, 200, "{reply}");
    };
    assert_eq!((shared_live(&n1), shared_live(&n2)), (0, 0));
    for n in 1..=3 {
        a1(&n1, n);
    }
    // Live, the three show on both nodes: the store's count, not node 1's.
    assert_eq!((shared_live(&n1), shared_live(&n2)), (3, 3));
    std::thread::sleep(Duration::from_millis(1300));
    // Past the TTL they are no longer live, but nobody has dropped them yet; the
    // next handshake, on node 2, drops all three from the shared index and
    // counts them there, once.
    assert_eq!((shared_live(&n1), shared_live(&n2)), (0, 0));
    assert_eq!((expired_total(&n1), expired_total(&n2)), (0, 0));
    a1(&n2, 4);
    assert_eq!((expired_total(&n1), expired_total(&n2)), (0, 3));
    assert_eq!((shared_live(&n1), shared_live(&n2)), (1, 1));
    a1(&n1, 5);
    assert_eq!((expired_total(&n1), expired_total(&n2)), (0, 3), "nothing is counted twice");
}

#[test]
fn guessing_penalties_on_one_node_throttle_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("limits.toml");
    std::fs::write(
        &config,
        "[limits]\npeer_free_failures = 3\naccount_free_failures = 4\npenalty_base = 60\n",
    )
    .unwrap();
    let c = Cluster::up(2, &format!("--config {}", config.display()));
    let (n1, n2) = (c.node_http(1), c.node_http(2));
    let fp = c.fingerprint();
    let bob = register(&n1, "bob", "bob's password", Labels::Rfc, fp);
    let carol = register(&n2, "carol", "carol's password", Labels::Rfc, fp);
    let wrong = || ClientSecret::Password(Password::new("a guess"));

    // A peer trusted for bob before the attack keeps its access.
    let (reply, _, done) = split_login(&n2, &n2, "bob", bob.secret(), "10.9.9.9");
    assert!(done.is_some(), "{reply:?}");

    // Guesses on node 1, each from its own address so that only the account
    // penalty builds up, until node 1 refuses bob.
    let mut refused_at = None;
    for i in 0..8 {
        let (reply, _, done) = split_login(&n1, &n1, "bob", wrong(), &format!("10.1.0.{i}"));
        assert!(done.is_none());
        if let Some((code, message)) = error_of(&reply)
            && code == "busy"
        {
            assert!(message.contains("this account"), "{message}");
            refused_at = Some(i);
            break;
        }
    }
    assert!(refused_at.is_some(), "node 1 never throttled bob");
    // Node 2 refuses bob too, from a fresh address, even with the right keys…
    let (reply, _, done) = split_login(&n2, &n2, "bob", bob.secret(), "10.2.0.1");
    assert!(done.is_none(), "node 2 let bob in during the account penalty");
    let (code, message) = error_of(&reply).unwrap();
    assert_eq!(code, "busy", "{message}");
    assert!(message.contains("this account"), "{message}");
    // …but the peer trusted for bob on node 2 logs in on node 1.
    let (reply, _, done) = split_login(&n1, &n1, "bob", bob.secret(), "10.9.9.9");
    assert!(done.is_some(), "trusted peer refused: {reply:?}");

    // A peer's failures on node 1 throttle it on node 2, for every account.
    for _ in 0..4 {
        let _ = split_login(&n1, &n1, "carol", wrong(), "10.3.0.1");
    }
    let (reply, _, done) = split_login(&n2, &n2, "carol", carol.secret(), "10.3.0.1");
    assert!(done.is_none(), "node 2 let a penalised peer in");
    let (code, message) = error_of(&reply).unwrap();
    assert_eq!(code, "busy");
    assert!(message.contains("your address"), "{message}");
}

#[test]
fn concurrent_registrations_of_one_name_across_nodes_leave_one_record() {
    let c = Cluster::up(2, "");
    let fp = c.fingerprint();
    let nodes = [c.node_http(1), c.node_http(2)];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let results: Vec<Result<ClientCredential, String>> = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let base = format!("http://{}", nodes[i % 2]);
            tasks.spawn(async move {
                let client = HttpClient::new(&base, Duration::from_secs(30)).unwrap();
                let options = RegisterOptions {
                    group: Group::X25519,
                    labels: Labels::Random,
                    policy: HostKeyPolicy::Fingerprint(fp),
                    config: ClientConfig::default(),
                };
                client
                    .register("dave", Password::new(format!("password {i}")), &options, |_| Ok(()))
                    .await
                    .map_err(|e| e.to_string())
            });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            out.push(r.unwrap());
        }
        out
    });
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(e.contains("already registered") || e.contains("username_taken"), "{e}");
    }
    assert_eq!(c.users(&["list"]).trim(), "dave");
    // The winner's keys are the record's.
    let (reply, _, done) = split_login(&nodes[0], &nodes[1], "dave", won[0].secret(), "10.0.0.2");
    assert!(done.is_some(), "{reply:?}");
}

#[test]
fn redis_and_postgres_dumps_hold_only_sealed_blobs_and_verifiers() {
    let c = Cluster::up(2, "");
    let (n1, n2) = (c.node_http(1), c.node_http(2));
    let fp = c.fingerprint();
    let password = common::canary();
    let cred = register(&n1, "erin", &password, Labels::Rfc, fp);
    // Live state of every kind in Redis: an HTTP session, a login parked between
    // its two steps, a registration parked after R1.
    let (reply, _, done) = split_login(&n1, &n2, "erin", cred.secret(), "10.0.0.3");
    let (sid, keys) = done.unwrap_or_else(|| panic!("{reply:?}"));
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let parked =
        AuthClient::start(&mut rng, "erin", cred.secret(), Some(Group::X25519), ClientConfig::default())
            .unwrap();
    assert!(matches!(step(&n2, AUTH_PAIRING, &parked.message, "10.0.0.3"), ServerMessage::AuthPairing(_)));
    let r1 = scram_dh::register::client::RegistrationClient::start(
        &mut rng,
        "frank",
        Password::new(password.clone()),
        Group::X25519,
        Labels::Random,
        scram_dh::register::client::HostKeyCheck::Pinned(fp),
        ClientConfig::default(),
    )
    .unwrap();
    let r2 = step(&n1, scram_dh_net::http_client::REGISTRATION_PAIRING, &r1.message, "10.0.0.3");
    assert!(matches!(r2, ServerMessage::RegistrationPairing(_)), "{r2:?}");

    let rdb = c.path("redis/dump-test.rdb");
    let out = Command::new("redis-cli")
        .args(["-p", c.get("REDIS_PORT"), "--no-auth-warning", "-a", c.get("REDIS_PASSWORD"), "--rdb"])
        .arg(&rdb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", peers::show("redis-cli --rdb", &out));
    let redis = std::fs::read(&rdb).unwrap();
    let pg = Command::new("pg_dump").arg(c.get("PG_URL")).output().unwrap();
    assert!(pg.status.success(), "{}", peers::show("pg_dump", &pg));
    let pg = pg.stdout;

    // The dumps are not empty: the session id and the verifier are in them.
    assert!(contains(&redis, sid.as_bytes()), "the Redis dump lacks the live session");
    let verifier = c.users(&["export"]);
    let stored_b64 = verifier.split('$').nth(2).unwrap().split(':').next().unwrap().to_owned();
    let stored_hex: String = {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.decode(stored_b64).unwrap();
        raw.iter().map(|b| format!("{b:02x}")).collect()
    };
    assert!(contains(&pg, stored_hex.as_bytes()), "the PostgreSQL dump lacks erin's StoredKey (bytea hex)");

    let salted =
        scram_dh::keys::salted_password(&Password::new(password.clone()), &cred.salt, cred.ic).unwrap();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("salted password", salted.expose().to_vec()),
        ("ClientKey", cred.client_key.expose().to_vec()),
        ("session key c2s", keys.c2s.expose().to_vec()),
        ("session key s2c", keys.s2c.expose().to_vec()),
        ("password", password.as_bytes().to_vec()),
    ];
    for (what, secret) in &secrets {
        for (encoding, needle) in common::byte_encodings(secret) {
            assert!(!contains(&redis, &needle), "{what} ({encoding}) in the Redis dump");
            assert!(!contains(&pg, &needle), "{what} ({encoding}) in the PostgreSQL dump");
        }
    }
}

/// Logins through nginx by `workers` clients until `stop`; each result with its time.
fn load(
    lb: String,
    cred: ClientCredential,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(Instant, Result<(), String>)> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let client = HttpClient::new(&format!("http://{lb}"), Duration::from_secs(10)).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (client, cred, stop) = (client.clone(), cred.clone(), stop.clone());
            tasks.spawn(async move {
                let mut out = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Log in, then out: each login's HTTP session ends (the
                    // per-user session cap stays clear) through the shared store.
                    let r = match client
                        .login(&cred.username, cred.secret(), Group::X25519, ClientConfig::default())
                        .await
                    {
                        Ok(mut session) => session.logout().await.map_err(|e| format!("logout: {e}")),
                        Err(e) => Err(e.to_string()),
                    };
                    out.push((Instant::now(), r));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                out
            });
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap());
        }
        all.sort_by_key(|(t, _)| *t);
        all
    })
}

#[test]
fn postgres_then_redis_killed_mid_load_fail_clearly_and_recover_without_restarts() {
    // The load comes from one address (nginx's view of this test): lift the
    // per-peer DH rate limit that would otherwise, rightly, throttle it.
    let c = Cluster::up(2, "--dh-per-sec 100000 --dh-burst 100000");
    let fp = c.fingerprint();
    let cred = register(&c.node_http(1), "gina", "gina's password", Labels::Random, fp);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let (lb, cred, stop) = (c.lb(), cred.clone(), stop.clone());
        std::thread::spawn(move || load(lb, cred, stop))
    };
    let pause = |s| std::thread::sleep(Duration::from_secs(s));
    pause(2);
    let t_pg_down = Instant::now();
    c.ctl("stop-postgres");
    pause(3);
    // A registration during the outage fails cleanly.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reg = rt.block_on(async {
        let client = HttpClient::new(&format!("http://{}", c.lb()), Duration::from_secs(10)).unwrap();
        let options = RegisterOptions {
            group: Group::X25519,
            labels: Labels::Random,
            policy: HostKeyPolicy::Fingerprint(fp),
            config: ClientConfig::default(),
        };
        client.register("hank", Password::new("hank's password"), &options, |_| Ok(())).await
    });
    let reg_err = reg.expect_err("a registration without the database").to_string();
    assert!(reg_err.contains("server_error") || reg_err.contains("store"), "{reg_err}");
    // "Back" is when the server is up again (`start-*` waits for it), so the time
    // a loaded machine needs to start PostgreSQL is not charged to the nodes.
    c.ctl("start-postgres");
    let t_pg_up = Instant::now();
    pause(4);
    let t_redis_down = Instant::now();
    c.ctl("stop-redis");
    pause(3);
    // A scrape during the outage still answers, without the gauge Redis would give.
    let text = scrape(&c.node_http(1));
    assert_eq!(common::metric(&text, "scram_dh_handshake_sessions_shared"), None, "{text}");
    assert!(text.contains("scram_dh_handshakes_total"), "{text}");
    c.ctl("start-redis");
    let t_redis_up = Instant::now();
    pause(4);
    // And the gauge is back once Redis is, with no restart.
    let _ = shared_live(&c.node_http(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let results = loader.join().unwrap();

    let in_window = |from: Instant, to: Instant| results.iter().filter(move |(t, _)| *t >= from && *t < to);
    let early: Vec<_> =
        in_window(results[0].0, t_pg_down).filter_map(|(_, r)| r.as_ref().err()).take(5).collect();
    assert!(early.is_empty(), "failures before any outage: {early:?}");
    // Each outage shows as clear errors, never a hang: the load kept producing results.
    for (what, from, to) in [("PostgreSQL", t_pg_down, t_pg_up), ("Redis", t_redis_down, t_redis_up)] {
        let errors: Vec<_> =
            in_window(from + Duration::from_millis(500), to).filter_map(|(_, r)| r.as_ref().err()).collect();
        assert!(!errors.is_empty(), "no failure while {what} was down");
        for e in &errors {
            assert!(e.contains("server_error"), "{what} down: unclear error {e}");
        }
    }
    // Service resumed within seconds of each coming back, with no node restarted.
    for (what, back) in [("PostgreSQL", t_pg_up), ("Redis", t_redis_up)] {
        let first_ok = results
            .iter()
            .find(|(t, r)| *t > back && r.is_ok())
            .unwrap_or_else(|| panic!("no login succeeded after {what} came back"));
        let took = first_ok.0 - back;
        eprintln!("logins resumed {took:?} after {what} came back");
        assert!(took < Duration::from_secs(4), "{what}: resumed only after {took:?}");
    }
    assert!(results.last().unwrap().1.is_ok(), "the last login failed");
    // No half-written record: hank does not exist, gina is intact.
    assert_eq!(c.users(&["list"]).trim(), "gina");
    for i in [1, 2] {
        let log = c.node_log(i);
        assert!(!log.contains(c.get("REDIS_PASSWORD")), "node {i} logs the Redis password");
        if i == 1 {
            assert!(
                log.contains("scram_dh_handshake_sessions_shared left out"),
                "node 1: the failed scrape is not logged"
            );
        }
        assert!(log.contains("listening on"), "node {i} restarted?");
        assert_eq!(log.matches("listening on").count(), 1, "node {i} restarted");
    }
}

#[test]
fn bad_session_and_proxy_settings_stop_serve_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("x.db"))
            .args(extra)
            .env_remove("SCRAM_DH_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Nothing listens there: a clear start-up error, the password not in it.
    let port = peers::free_port().to_string();
    let url = format!("redis://:redis-canary-51@127.0.0.1:{port}/");
    let out = serve(&["--sessions", &url]);
    let err = peers::text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("opening session store redis://:***@127.0.0.1"), "{err}");
    assert!(!err.contains("redis-canary-51"), "{err}");
    for (flags, want) in [
        (&["--sessions", "memcached://h"][..], "--sessions must be memory or a redis:// URL"),
        (&["--sessions", "rediss://h"][..], "--sessions must be memory or a redis:// URL"),
        (&["--trusted-proxy", "10.0.0.0/33"][..], "--trusted-proxy"),
        (&["--trusted-proxy", "nginx.internal"][..], "is not an IP address"),
    ] {
        let out = serve(flags);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", peers::text(&out.stderr));
        assert!(peers::text(&out.stderr).contains(want), "{flags:?}: {}", peers::text(&out.stderr));
    }
}
