//! End-to-end tests: the real `scram-dh` binary serving on SQLite over loopback,
//! driven by the real binary as a client (and by the client library where a test
//! needs many clients at once).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{BIN, Server, assert_absent, canary, cli, credential_path, ok, register};
use scram_dh::{ClientConfig, ClientCredential, ClientSecret, ErrorCode, Group, Labels, Password};
use scram_dh_net::{HostKeyPolicy, KnownHosts, NetError};

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
    let cred = credential_path(&client, &addr, "alice");
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
    let path = credential_path(&client, &server.addr, "kate");
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
    let port = scram_dh_testkit::free_port();
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
    let addr = common::announced_addr(&mut child);
    let client = dir.path().join("client");
    ok(&cli(
        &client,
        &["register", "lee", "--server", &addr, "--group", "x25519", "--password-stdin"],
        Some("pw"),
    ));
    let cred = ClientCredential::from_json(
        &std::fs::read_to_string(credential_path(&client, &addr, "lee")).unwrap(),
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
fn workers_size_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, format!("workers = 1\ndb = \"{}\"\n", dir.path().join("w.db").display())).unwrap();
    for (flag, want) in [(None, 1), (Some("3"), 3)] {
        let log = dir.path().join("serve.log");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&cfg);
        if let Some(n) = flag {
            cmd.args(["--workers", n]);
        }
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        common::announced_addr(&mut child);
        // The runtime's own count of its workers, as the startup line gives it.
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(log.contains(&format!(" workers={want}")), "flag {flag:?}: {log}");
        let _ = child.kill();
        let _ = child.wait();
    }
    for bad in ["0", "1025", "many"] {
        let out =
            Command::new(BIN).args(["serve", "--listen", "127.0.0.1:0", "--workers", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "--workers {bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("workers"), "--workers {bad}");
    }
}

/// Out-of-range HTTP settings are usage errors that name the setting, never a panic
/// (a duration of 1e30 seconds used to overflow `Duration`).
#[test]
fn http_settings_out_of_range_are_usage_errors() {
    for (flag, value, name) in [
        ("--http-idle-timeout", "1e30", "http_idle_timeout"),
        ("--http-lifetime", "0", "http_lifetime"),
        ("--upstream-timeout", "0", "upstream_timeout"),
        ("--upstream-timeout", "inf", "upstream_timeout"),
        ("--http-max-body", "0", "http_max_body"),
    ] {
        let out = Command::new(BIN)
            .args([
                "serve",
                "--db",
                "memory",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                flag,
                value,
            ])
            .env_remove("SCRAM_DH_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(name) && !stderr.contains("panicked"), "{flag} {value}: {stderr}");
    }
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

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

/// Files in `dir` (not recursive) whose name marks them as temporaries.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') || n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn l14_config_dirs_are_0700() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "127.0.0.1:0");
    // A fresh config dir: created private, all the way down.
    let fresh = dir.path().join("fresh").join("scram-dh");
    register(&fresh, &server.addr, "ana", "pw", "random");
    let cred = credential_path(&fresh, &server.addr, "ana");
    for d in [&fresh, &fresh.join("credentials"), &cred.parent().unwrap().to_path_buf()] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    assert_eq!(mode(&cred), 0o600);
    assert_eq!(mode(&fresh.join("known_hosts")), 0o600);
    // An existing, too open config dir of ours (as older versions left it) is tightened.
    let old = dir.path().join("old");
    std::fs::create_dir_all(old.join("credentials")).unwrap();
    for d in [&old, &old.join("credentials")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(old.join("known_hosts"), "").unwrap();
    std::fs::set_permissions(old.join("known_hosts"), std::fs::Permissions::from_mode(0o644)).unwrap();
    register(&old, &server.addr, "ben", "pw", "rfc");
    let cred = credential_path(&old, &server.addr, "ben");
    for d in [&old, &old.join("credentials"), &cred.parent().unwrap().to_path_buf()] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    assert_eq!(mode(&old.join("known_hosts")), 0o600, "known_hosts is rewritten 0600");
    assert!(std::fs::read_to_string(old.join("known_hosts")).unwrap().contains(&server.fingerprint));
    // Loosened again: a login tightens the dirs, a register (server already
    // pinned, so known_hosts is not rewritten) tightens known_hosts.
    let dirs = [old.clone(), old.join("credentials"), cred.parent().unwrap().to_path_buf()];
    for d in &dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(old.join("known_hosts"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(ok(&cli(&old, &["login", "ben", "--server", &server.addr], None)).trim(), "ben");
    for d in &dirs {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    register(&old, &server.addr, "cid", "pw", "random");
    assert_eq!(mode(&old.join("known_hosts")), 0o600);
}

/// Runs the binary with file writes limited to 0 bytes (`ulimit -f 0`, SIGXFSZ
/// ignored so a write fails with EFBIG instead of killing the process): a full disk.
fn with_full_disk(args: &[&std::ffi::OsStr], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 0 || exit 99; exec "$0" "$@""#)
        .arg(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::feed(&mut child, stdin);
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(99), "ulimit -f is not available");
    out
}

#[test]
fn l11_failed_writes_leave_no_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let key = dir.path().join("server.hostkey");
    let os = |s: &str| std::ffi::OsString::from(s);
    // First start on a full disk: a clear error, and no host key at all.
    let args = [os("serve"), os("--listen"), os("127.0.0.1:0"), os("--db"), db.clone().into_os_string()];
    let out = with_full_disk(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(), None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the server cannot start without its host key: {err}");
    assert!(err.contains("host key") && err.contains("server.hostkey"), "{err}");
    // Its stderr on the full disk too: the error cannot be printed, and the exit
    // code still says "error", not "panic" (101).
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 0 || exit 99; exec "$0" "$@""#)
        .arg(BIN)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    std::fs::remove_file(dir.path().join("stderr.log")).unwrap();
    assert!(
        !key.exists(),
        "no partial host key left ({} bytes)",
        std::fs::metadata(&key).map(|m| m.len()).unwrap_or(0)
    );
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
    // The next start works and creates a whole key, 0600.
    let server = Server::start(dir.path(), "127.0.0.1:0");
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 44);
    assert_eq!(mode(&key), 0o600);

    // A client on a full disk: the credential (and known_hosts) cannot be written,
    // so the registration stops before the password is sent, and leaves nothing.
    let client = dir.path().join("client");
    let args = [
        os("register"),
        os("ola"),
        os("--server"),
        os(&server.addr),
        os("--group"),
        os("x25519"),
        os("--password-stdin"),
        os("--config-dir"),
        client.clone().into_os_string(),
    ];
    let out = with_full_disk(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(), Some("pw"));
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let cred = credential_path(&client, &server.addr, "ola");
    assert!(!cred.exists(), "no partial credential");
    assert_eq!(temporaries(cred.parent().unwrap()), Vec::<String>::new());
    let list = ok(&Command::new(BIN).args(["users", "list", "--db"]).arg(&db).output().unwrap());
    assert_eq!(list, "", "nothing was registered");
    // With room again, the same registration works.
    let out = register(&client, &server.addr, "ola", "pw", "random");
    assert!(out.contains("registered ola"), "{out}");
    // Known hosts, credentials: whole files only, no temporaries left behind.
    assert_eq!(temporaries(&client), Vec::<String>::new());
    assert_eq!(temporaries(cred.parent().unwrap()), Vec::<String>::new());
}

/// A fake server: answers the first line of every connection with `reply`.
fn fake_server(reply: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut line = String::new();
            let _ = BufReader::new(conn.try_clone().unwrap()).read_line(&mut line);
            let _ = conn.write_all(reply.as_bytes());
            let _ = conn.write_all(b"\n");
        }
    });
    addr
}

#[test]
fn l12_server_strings_are_escaped_before_printing() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client");
    // A hostile server's error message: a terminal escape, a forged line, a CR.
    let evil = fake_server(
        r#"{"type":"error","code":"server_error","message":"\u001b[2J\u001b[31mboom\nINFO scram_dh: authenticated username=root\rX\u009b"}"#,
    );
    let out = cli(
        &client,
        &["register", "eve", "--server", &evil, "--group", "x25519", "--password-stdin"],
        Some("pw"),
    );
    assert!(!out.status.success());
    let err = out.stderr.clone();
    let text = String::from_utf8_lossy(&err);
    assert!(!err.contains(&0x1b) && !err.contains(&b'\r'), "raw control bytes printed: {text:?}");
    assert!(!text.contains('\u{9b}'), "raw C1 control printed: {text:?}");
    assert_eq!(text.lines().count(), 1, "one line, nothing forged: {text:?}");
    assert!(
        text.contains(r"\x1b[2J\x1b[31mboom\nINFO scram_dh: authenticated username=root\rX\u{9b}"),
        "{text:?}"
    );

    // Results and errors from the channel: the server echoes what a user stored.
    let server = Server::start(dir.path(), "127.0.0.1:0");
    register(&client, &server.addr, "eve", "pw", "random");
    let login = |cmd: &str| cli(&client, &["login", "eve", "--server", &server.addr, "-c", cmd], None);
    ok(&login("set k \u{1b}]0;owned\u{7}\u{1b}[1mbold"));
    let out = login("get k");
    let stdout = ok(&out);
    assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07), "{stdout:?}");
    assert_eq!(stdout, "\\x1b]0;owned\\x07\\x1b[1mbold\n");
    let out = login("get \u{1b}[31mnokey");
    assert!(!out.status.success());
    assert!(!out.stderr.contains(&0x1b), "{:?}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn l13_register_timeout_is_honoured() {
    // Accepts, reads, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = cli(
        &dir.path().join("client"),
        &["register", "tim", "--server", &addr, "--group", "x25519", "--password-stdin", "--timeout", "2"],
        Some("pw"),
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(
        took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(6),
        "took {took:?}"
    );
    // And a zero timeout is a usage error, not an instant failure.
    let out = cli(&dir.path().join("client"), &["login", "tim", "--timeout", "0"], None);
    assert_eq!(out.status.code(), Some(2));
}

/// Where a [`cutting_relay`] cuts the first connection off.
#[derive(Clone, Copy)]
enum Cut {
    /// After R3 reached the server, before R4 reaches the client: the server
    /// committed and the client never hears of it.
    LoseR4,
    /// After R2, before R3 leaves: the server never gets the password.
    DropR3,
}

/// A relay to `upstream` that cuts its first connection's handshake at `cut` and
/// passes every later connection through untouched.
fn cutting_relay(upstream: String, cut: Cut) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for (i, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { break };
            let server = std::net::TcpStream::connect(&upstream).unwrap();
            if i > 0 {
                let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut c2, mut s2) = (client, server);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
                continue;
            }
            let mut from_client = BufReader::new(client.try_clone().unwrap());
            let mut from_server = BufReader::new(server.try_clone().unwrap());
            let (mut to_client, mut to_server) = (client, server);
            let mut line = String::new();
            // R1 → server, R2 → client.
            from_client.read_line(&mut line).unwrap();
            to_server.write_all(line.as_bytes()).unwrap();
            line.clear();
            from_server.read_line(&mut line).unwrap();
            to_client.write_all(line.as_bytes()).unwrap();
            line.clear();
            from_client.read_line(&mut line).unwrap();
            if let Cut::LoseR4 = cut {
                to_server.write_all(line.as_bytes()).unwrap();
                line.clear();
                // R4 arrives only after the commit; it is dropped here.
                from_server.read_line(&mut line).unwrap();
                assert!(line.contains("registration_keys_generation"), "{line}");
            }
            let _ = to_client.shutdown(std::net::Shutdown::Both);
            let _ = to_server.shutdown(std::net::Shutdown::Both);
        }
    });
    addr
}

fn users(db: &Path) -> String {
    ok(&Command::new(BIN).args(["users", "list", "--db"]).arg(db).output().unwrap())
}

fn read_credential(path: &Path) -> ClientCredential {
    ClientCredential::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn register_no_login(config: &Path, server: &str, user: &str, password: &str) -> std::process::Output {
    cli(
        config,
        &["register", user, "--server", server, "--group", "x25519", "--password-stdin", "--no-login"],
        Some(password),
    )
}

#[test]
fn l10_lost_r4_is_recovered_by_register() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let relay = cutting_relay(server.addr.clone(), Cut::LoseR4);
    let client = dir.path().join("client");
    let out = register_no_login(&client, &relay, "rita", "pw");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "the connection was cut: {err}");
    assert!(err.contains("run `scram-dh register rita` again"), "{err}");
    // The server committed; the client holds the credential, marked unconfirmed.
    assert_eq!(users(&dir.path().join("server.db")), "rita\n");
    let path = credential_path(&client, &relay, "rita");
    assert!(read_credential(&path).unconfirmed);
    assert_eq!(mode(&path), 0o600);
    // `register` again recovers it instead of answering username_taken.
    let out = ok(&register_no_login(&client, &relay, "rita", "pw"));
    assert!(out.contains("recovered rita"), "{out}");
    assert!(!read_credential(&path).unconfirmed);
    assert!(std::fs::read_to_string(client.join("known_hosts")).unwrap().contains(&server.fingerprint));
    assert_eq!(ok(&cli(&client, &["login", "rita", "--server", &relay], None)).trim(), "rita");
    // Now confirmed: another `register` refuses instead of overwriting it.
    let out = register_no_login(&client, &relay, "rita", "pw");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("registered at"), "{out:?}");
    assert_eq!(ok(&cli(&client, &["login", "rita", "--server", &relay], None)).trim(), "rita");
}

#[test]
fn l10_first_login_confirms_an_unconfirmed_credential() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let relay = cutting_relay(server.addr.clone(), Cut::LoseR4);
    let client = dir.path().join("client");
    assert_eq!(register_no_login(&client, &relay, "sam", "pw").status.code(), Some(4));
    let path = credential_path(&client, &relay, "sam");
    assert!(read_credential(&path).unconfirmed);
    assert_eq!(ok(&cli(&client, &["login", "sam", "--server", &relay, "-c", "whoami"], None)).trim(), "sam");
    assert!(!read_credential(&path).unconfirmed, "a successful login confirms it");
}

#[test]
fn l10_never_committed_registers_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "127.0.0.1:0");
    let relay = cutting_relay(server.addr.clone(), Cut::DropR3);
    let client = dir.path().join("client");
    assert_eq!(register_no_login(&client, &relay, "tia", "pw").status.code(), Some(4));
    let path = credential_path(&client, &relay, "tia");
    assert!(read_credential(&path).unconfirmed, "saved before R3");
    assert_eq!(users(&dir.path().join("server.db")), "", "the server never got R3");
    let old = read_credential(&path);
    let out = ok(&register_no_login(&client, &relay, "tia", "pw2"));
    assert!(out.contains("registered tia") && !out.contains("recovered"), "{out}");
    let new = read_credential(&path);
    assert!(!new.unconfirmed && new.salt != old.salt);
    assert_eq!(ok(&cli(&client, &["login", "tia", "--server", &relay], None)).trim(), "tia");
    // For anyone else the name is taken: username_taken, and nothing saved.
    let other = dir.path().join("other");
    let out = register_no_login(&other, &server.addr, "tia", "pw");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("username_taken"), "{out:?}");
    assert!(!credential_path(&other, &server.addr, "tia").exists(), "nothing is saved for a refused name");
}
