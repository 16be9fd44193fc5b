//! End-to-end tests: the real `scram-dh` binary serving on SQLite over loopback,
//! driven by the real binary as a client (and by the client library where a test
//! needs many clients at once).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use scram_dh::{ClientConfig, ClientCredential, ClientSecret, ErrorCode, Group, Labels, Password};
use scram_dh_net::{HostKeyPolicy, KnownHosts, NetError};

const BIN: &str = env!("CARGO_BIN_EXE_scram-dh");

struct Server {
    child: Child,
    addr: String,
    fingerprint: String,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, listen: &str) -> Self {
        let log = dir.join(format!("server-{}.log", std::process::id() ^ rand_u32()));
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen, "--db"])
            .arg(dir.join("server.db"))
            .args(["--registrations-per-sec", "1000", "--registration-burst", "1000"])
            .args(["--max-handshakes-per-peer", "500", "--max-handshakes", "1000"])
            .args(["--max-connections-per-peer", "500", "--dh-per-sec", "1000", "--dh-burst", "1000"])
            .env("RUST_LOG", "trace")
            .env_remove("SCRAM_DH_CONFIG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "listening on 127.0.0.1:PORT host key SHA256:..."
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            line.starts_with("listening on "),
            "server said: {line:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { addr: words[2].to_owned(), fingerprint: words[5].to_owned(), child, log }
    }

    /// SIGTERM and wait: a graceful shutdown must exit 0.
    fn stop(mut self) -> String {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "server exit status {exit:?}");
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    u32::from_le_bytes(b)
}

fn canary() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    format!("canary-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config-dir")
        .arg(config)
        .env_remove("SCRAM_DH_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
        input.write_all(b"\n").unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn register(config: &Path, server: &str, user: &str, password: &str, labels: &str) -> String {
    ok(&cli(
        config,
        &["register", user, "--server", server, "--group", "x25519", "--labels", labels, "--password-stdin"],
        Some(password),
    ))
}

#[test]
fn register_login_commands_restart_and_wrong_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let addr = server.addr.clone();

    let out = register(&client, &addr, "alice", "alice-pw", "random");
    assert!(out.contains("registered alice") && out.contains("logged in as alice"), "{out}");
    assert!(out.contains(&server.fingerprint));
    let out = register(&client, &addr, "bob", "bob-pw", "rfc");
    assert!(out.contains("registered bob"), "{out}");
    // A registration in-band over the default modp6144 group, too.
    let out = ok(&cli(
        &client,
        &["register", "carol", "--server", &addr, "--password-stdin", "--no-login"],
        Some("carol-pw"),
    ));
    assert!(out.contains("registered carol"));

    // Credential files are private.
    let cred = scram_dh_cli_paths::credential(&client, &addr, "alice");
    assert_eq!(std::fs::metadata(&cred).unwrap().permissions().mode() & 0o777, 0o600);

    // Commands over the channel, each reply naming the user.
    assert_eq!(
        ok(&cli(&client, &["login", "alice", "--server", &addr, "-c", "set color blue"], None)).trim(),
        "OK"
    );
    assert_eq!(
        ok(&cli(&client, &["login", "alice", "--server", &addr, "-c", "get color"], None)).trim(),
        "blue"
    );
    assert_eq!(ok(&cli(&client, &["login", "alice", "--server", &addr], None)).trim(), "alice");
    assert_eq!(
        ok(&cli(&client, &["login", "bob", "--server", &addr, "--group", "modp2048", "-c", "whoami"], None))
            .trim(),
        "bob"
    );
    let out = ok(&cli(&client, &["login", "carol", "--server", &addr, "--no-channel"], None));
    assert!(out.contains("authenticated as carol"), "{out}");
    // Another user's data is not visible.
    let out = cli(&client, &["login", "bob", "--server", &addr, "-c", "get color"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such key"));

    // Wrong password: bob's record has RFC labels, so a password login is possible;
    // the wrong one fails and so does an unknown user, with the same error.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let try_pw = |user: &str, pw: &str| {
        rt.block_on(async {
            let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            scram_dh_net::login(
                s,
                user,
                ClientSecret::Password(Password::new(pw)),
                None,
                ClientConfig::default(),
            )
            .await
        })
    };
    assert!(try_pw("bob", "bob-pw").is_ok());
    let wrong = try_pw("bob", "not-bob-pw").unwrap_err();
    let unknown = try_pw("nobody", "not-bob-pw").unwrap_err();
    assert!(wrong.is_auth_failure() && unknown.is_auth_failure());
    assert_eq!(wrong.to_string(), unknown.to_string());

    // A tampered credential file: exit code 3 (authentication failure).
    let mut bad: ClientCredential =
        ClientCredential::from_json(&std::fs::read_to_string(&cred).unwrap()).unwrap();
    let mut key = *bad.client_key.expose();
    key[0] ^= 1;
    bad.client_key = scram_dh::secret::ClientKey::from_bytes(key);
    let bad_path = dir.path().join("bad.cred");
    std::fs::write(&bad_path, bad.to_json()).unwrap();
    let out = cli(
        &client,
        &["login", "alice", "--server", &addr, "--credential", bad_path.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));

    // Graceful restart: records survive.
    let log = server.stop();
    assert!(log.contains("server stopped"), "{log}");
    let server = Server::start(dir.path(), &addr);
    assert_eq!(
        ok(&cli(&client, &["login", "alice", "--server", &addr, "-c", "whoami"], None)).trim(),
        "alice"
    );
    assert_eq!(
        ok(&cli(&client, &["login", "carol", "--server", &addr, "-c", "whoami"], None)).trim(),
        "carol"
    );
    // Registering an existing name never overwrites it.
    let out = cli(
        &dir.path().join("other"),
        &["register", "alice", "--server", &addr, "--group", "x25519", "--password-stdin"],
        Some("x"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("username_taken"));
    assert_eq!(ok(&cli(&client, &["login", "alice", "--server", &addr], None)).trim(), "alice");
    drop(server);
}

mod scram_dh_cli_paths {
    use std::path::{Path, PathBuf};
    pub fn credential(config: &Path, server: &str, user: &str) -> PathBuf {
        let safe: String = server
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' })
            .collect();
        config.join("credentials").join(safe).join(format!("{user}.json"))
    }
}
use std::os::unix::fs::PermissionsExt;

#[test]
fn provision_then_login_with_bundle_and_users_admin() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let db = dir.path().join("server.db");
    let bundle = dir.path().join("erin.cred");
    let out = Command::new(BIN)
        .args(["provision", "erin", "--db"])
        .arg(&db)
        .args(["--server", &server.addr, "-o"])
        .arg(&bundle)
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777, 0o600);
    let parsed = ClientCredential::from_json(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(parsed.host_key.unwrap().to_string(), server.fingerprint, "bundle pins the server's host key");
    assert!(parsed.password.is_none(), "random labels: no password in the bundle");
    // The bundle names the server, so no --server is needed.
    let out =
        ok(&cli(&client, &["login", "erin", "--credential", bundle.to_str().unwrap(), "-c", "whoami"], None));
    assert_eq!(out.trim(), "erin");
    // Provisioning to stdout, RFC labels: the bundle carries the password.
    let out = ok(&Command::new(BIN)
        .args(["provision", "frank", "--labels", "rfc", "--db"])
        .arg(&db)
        .output()
        .unwrap());
    let frank = ClientCredential::from_json(&out).unwrap();
    assert!(frank.password.is_some());
    // Never overwritten.
    let again = Command::new(BIN).args(["provision", "erin", "--db"]).arg(&db).output().unwrap();
    assert!(!again.status.success());
    assert_eq!(
        ok(&cli(&client, &["login", "erin", "--credential", bundle.to_str().unwrap()], None)).trim(),
        "erin"
    );

    let users =
        |args: &[&str]| Command::new(BIN).arg("users").args(args).arg("--db").arg(&db).output().unwrap();
    assert_eq!(ok(&users(&["list"])), "erin\nfrank\n");
    let show = ok(&users(&["show", "frank"]));
    assert!(show.contains("labels:   rfc"), "{show}");
    let export = ok(&users(&["export"]));
    assert!(export.contains("frank\tSCRAM-SHA-256$4096:"), "{export}");
    ok(&users(&["delete", "frank"]));
    assert_eq!(ok(&users(&["list"])), "erin\n");
    assert_eq!(users(&["show", "frank"]).status.code(), Some(1));
    drop(server);
}

#[test]
fn changed_host_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let addr = server.addr.clone();
    register(&client, &addr, "gina", "pw", "random");
    let known = std::fs::read_to_string(client.join("known_hosts")).unwrap();
    assert!(known.contains(&format!("{addr} {}", server.fingerprint)), "{known}");
    server.stop();
    // The server comes back on the same address with a new host key.
    std::fs::remove_file(dir.path().join("server.hostkey")).unwrap();
    let server = Server::start(dir.path(), &addr);
    let out = cli(
        &client,
        &["register", "hank", "--server", &addr, "--group", "x25519", "--password-stdin"],
        Some("pw"),
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HOST KEY HAS CHANGED") && err.contains(&server.fingerprint), "{err}");
    // Nothing was registered: the password was never sent.
    let list = ok(&Command::new(BIN)
        .args(["users", "list", "--db"])
        .arg(dir.path().join("server.db"))
        .output()
        .unwrap());
    assert_eq!(list, "gina\n");
    // An explicit, correct fingerprint works.
    let out = ok(&cli(
        &client,
        &[
            "register",
            "hank",
            "--server",
            &addr,
            "--group",
            "x25519",
            "--password-stdin",
            "--fingerprint",
            &server.fingerprint,
        ],
        Some("pw"),
    ));
    assert!(out.contains("registered hank"));
}

/// A relay that records every byte the client sends.
fn recording_relay(upstream: String) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { break };
            let mut server = std::net::TcpStream::connect(&upstream).unwrap();
            let mut client2 = client.try_clone().unwrap();
            let mut server2 = server.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server2, &mut client2);
                let _ = client2.shutdown(std::net::Shutdown::Write);
            });
            let seen = Arc::clone(&seen2);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                loop {
                    match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            seen.lock().unwrap().extend_from_slice(&buf[..n]);
                            if server.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, seen)
}

fn encodings(secret: &str) -> Vec<(&'static str, Vec<u8>)> {
    let b = secret.as_bytes();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    vec![
        ("raw", b.to_vec()),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_uppercase().into_bytes()),
        ("base64", STANDARD.encode(b).into_bytes()),
        ("base64-nopad", STANDARD_NO_PAD.encode(b).into_bytes()),
        ("base64url", URL_SAFE.encode(b).into_bytes()),
        ("base64url-nopad", URL_SAFE_NO_PAD.encode(b).into_bytes()),
    ]
}

fn assert_absent(what: &str, haystack: &[u8], secret: &str) {
    for (name, needle) in encodings(secret) {
        assert!(
            !haystack.windows(needle.len()).any(|w| w == needle.as_slice()),
            "password ({name}) found in {what}"
        );
    }
}

#[test]
fn password_canary_never_leaves_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let (relay, seen) = recording_relay(server.addr.clone());
    let pw_random = canary();
    let pw_rfc = canary();
    let pw_new = canary();
    register(&client, &relay, "ivy", &pw_random, "random");
    ok(&cli(
        &client,
        &["register", "jack", "--server", &relay, "--labels", "rfc", "--password-stdin"],
        Some(&pw_rfc),
    ));
    ok(&cli(&client, &["login", "ivy", "--server", &relay, "-c", "set k v"], None));
    ok(&cli(&client, &["passwd", "ivy", "--server", &relay, "--password-stdin"], Some(&pw_new)));
    ok(&cli(&client, &["login", "ivy", "--server", &relay, "-c", "get k"], None));
    let wire = seen.lock().unwrap().clone();
    assert!(wire.len() > 2000, "the relay saw the traffic ({} bytes)", wire.len());
    let log = server.stop();
    let mut db = std::fs::read(dir.path().join("server.db")).unwrap();
    db.extend(std::fs::read(dir.path().join("server.db-wal")).unwrap_or_default());
    assert!(log.contains("registered") && log.contains("ivy"), "trace logs were captured");
    for pw in [&pw_random, &pw_rfc, &pw_new] {
        assert_absent("client-to-server bytes", &wire, pw);
        assert_absent("the database", &db, pw);
        assert_absent("the server log", log.as_bytes(), pw);
    }
}

#[test]
fn passwd_replaces_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    let server = Server::start(dir.path(), "127.0.0.1:0");
    register(&client, &server.addr, "kate", "old-pw", "rfc");
    let path = scram_dh_cli_paths::credential(&client, &server.addr, "kate");
    let old = dir.path().join("old.cred");
    std::fs::copy(&path, &old).unwrap();
    let out =
        ok(&cli(&client, &["passwd", "kate", "--server", &server.addr, "--password-stdin"], Some("new-pw")));
    assert!(out.contains("password changed for kate"), "{out}");
    assert_eq!(ok(&cli(&client, &["login", "kate", "--server", &server.addr], None)).trim(), "kate");
    let out = cli(
        &client,
        &["login", "kate", "--server", &server.addr, "--credential", old.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "the old credential no longer works");
    // RFC labels survive a passwd: a standard client logs in with the new password.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
        scram_dh_net::login(
            s,
            "kate",
            ClientSecret::Password(Password::new("new-pw")),
            None,
            ClientConfig::default(),
        )
        .await
        .unwrap();
    });
}

#[test]
fn hundred_concurrent_registrations_of_one_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let addr = server.addr.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..100 {
            let addr = addr.clone();
            let known = KnownHosts::new(dir.path().join(format!("kh{i}")));
            tasks.push(tokio::spawn(async move {
                let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let policy = HostKeyPolicy::KnownHosts { file: known, server: addr.clone() };
                let pw = format!("pw-{i}");
                let r = scram_dh_net::register(
                    s,
                    "same",
                    Password::new(pw),
                    Group::X25519,
                    Labels::Random,
                    &policy,
                    ClientConfig::default(),
                )
                .await;
                (i, r)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one registration wins");
    for (_, r) in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, NetError::Protocol(scram_dh::Error::Peer { code: ErrorCode::UsernameTaken, .. })),
                "losers are told username_taken, got {e}"
            );
        }
    }
    let (_, Ok(cred)) = winners[0] else { unreachable!() };
    // The record is the winner's and intact: its credential logs in.
    rt.block_on(async {
        let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let login =
            scram_dh_net::login(s, "same", cred.secret(), Some(Group::X25519), ClientConfig::default())
                .await
                .unwrap();
        assert_eq!(login.username, "same");
    });
    let list = ok(&Command::new(BIN)
        .args(["users", "list", "--db"])
        .arg(dir.path().join("server.db"))
        .output()
        .unwrap());
    assert_eq!(list, "same\n");
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    // Usage error.
    assert_eq!(cli(&client, &["login"], None).status.code(), Some(2));
    assert_eq!(
        cli(&client, &["register", "x", "--group", "modp1024", "--password-stdin"], Some("pw")).status.code(),
        Some(2)
    );
    // No credential saved: usage.
    assert_eq!(cli(&client, &["login", "nobody", "--server", "127.0.0.1:9"], None).status.code(), Some(2));
    // Connection refused: find a free port, then do not listen on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = cli(
        &client,
        &["register", "x", "--server", &format!("127.0.0.1:{port}"), "--password-stdin"],
        Some("pw"),
    );
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    // A bad config file is a usage error and says where.
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "listen = 5\n").unwrap();
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}

#[test]
fn config_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = \"{}\"\nic = 5000\ngroups = \"x25519\"\n",
            dir.path().join("c.db").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("SCRAM_DH_TTL", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split_whitespace().nth(2).unwrap().to_owned();
    let client = dir.path().join("client");
    ok(&cli(
        &client,
        &["register", "lee", "--server", &addr, "--group", "x25519", "--password-stdin"],
        Some("pw"),
    ));
    let cred = ClientCredential::from_json(
        &std::fs::read_to_string(scram_dh_cli_paths::credential(&client, &addr, "lee")).unwrap(),
    )
    .unwrap();
    assert_eq!(cred.ic, 5000, "ic from the config file");
    // modp groups are not offered by this config.
    let out = cli(
        &client,
        &["register", "mia", "--server", &addr, "--group", "modp2048", "--password-stdin"],
        Some("pw"),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(dir.path().join("c.db").exists());
}

#[test]
fn load_generator_runs_bounded() {
    let out = Command::new(BIN)
        .args(["bench", "--duration", "1", "--max-ops", "200", "--concurrency", "4"])
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    let out = Command::new(BIN)
        .args(["bench", "--mode", "register", "--duration", "1", "--max-ops", "20"])
        .output()
        .unwrap();
    assert!(ok(&out).contains("mode register"));
}
