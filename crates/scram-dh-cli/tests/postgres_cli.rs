//! `--db postgres://…` through the real binary (issue 9, first part): two `serve`
//! nodes over one PostgreSQL database, one host key and one cluster secret. A
//! registration on one node logs in on the other at once, `users` and `provision`
//! work against the database, and the database password appears in no log.
//! The throwaway PostgreSQL 15 cluster is the one `std_interop` uses; it fails,
//! never skips, when PostgreSQL cannot start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/peers.rs"]
mod peers;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, Server, cli, credential_path, ok, register};

const DB_PASSWORD: &str = "db-canary-7f3a9c";

fn database(name: &str) -> String {
    let pg = peers::postgres();
    pg.sql(&format!("CREATE ROLE {name} LOGIN PASSWORD '{DB_PASSWORD}'"));
    pg.sql(&format!("CREATE DATABASE {name} OWNER {name}"));
    format!("postgres://{name}:{DB_PASSWORD}@127.0.0.1:{}/{name}", pg.port)
}

fn admin(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap()
}

fn node(dir: &Path, name: &str, url: &str, host_key: &Path, secret: &Path) -> Server {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    Server::start_with(
        &d,
        "127.0.0.1:0",
        &[
            "--db",
            url,
            "--host-key",
            host_key.to_str().unwrap(),
            "--cluster-secret-file",
            secret.to_str().unwrap(),
        ],
    )
}

#[test]
fn two_nodes_share_one_postgres_database() {
    let _pg = peers::postgres();
    let url = database("scram_two_nodes");
    let dir = tempfile::tempdir().unwrap();
    let host_key = dir.path().join("cluster.hostkey");
    let secret = dir.path().join("cluster.secret");
    std::fs::write(&secret, [9u8; 32]).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let a = node(dir.path(), "a", &url, &host_key, &secret);
    let b = node(dir.path(), "b", &url, &host_key, &secret);
    assert_eq!(a.fingerprint, b.fingerprint);

    // Registered on node a, at once usable on node b.
    let config = dir.path().join("client");
    register(&config, &a.addr, "alice", "correct horse", "random");
    let cred = credential_path(&config, &a.addr, "alice");
    let out = ok(&cli(
        &config,
        &["login", "alice", "--server", &b.addr, "--credential", cred.to_str().unwrap()],
        None,
    ));
    assert!(out.contains("alice"), "{out}");
    // One record for one name: node b refuses a second registration of alice.
    let again = cli(
        &config,
        &["register", "alice", "--server", &b.addr, "--group", "x25519", "--password-stdin", "--no-login"],
        Some("another"),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already registered"));

    // The admin commands on the same database.
    let list = ok(&admin(&["users", "--db", &url, "list"]));
    assert_eq!(list.trim(), "alice");
    let bundle = dir.path().join("bob.cred");
    ok(&admin(&[
        "provision",
        "bob",
        "--db",
        &url,
        "--host-key",
        host_key.to_str().unwrap(),
        "--server",
        &b.addr,
        "-o",
        bundle.to_str().unwrap(),
    ]));
    ok(&cli(
        &config,
        &["login", "bob", "--server", &a.addr, "--credential", bundle.to_str().unwrap(), "--no-channel"],
        None,
    ));
    let export = ok(&admin(&["users", "--db", &url, "export"]));
    assert!(export.contains("bob\tSCRAM-SHA-256$"), "{export}");

    // Without a host key file a database URL is refused: nodes must share one.
    let out = admin(&["users", "--db", &url, "list"]);
    assert!(out.status.success());
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &url])
        .env_remove("SCRAM_DH_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--host-key"));

    for (name, log) in [("a", a.stop()), ("b", b.stop())] {
        assert!(!log.contains(DB_PASSWORD), "node {name}'s log shows the database password");
        assert!(log.contains("***@127.0.0.1"), "node {name} logs the database without its password");
    }
}

#[test]
fn a_wrong_database_password_is_a_clear_error_without_the_password() {
    let pg = peers::postgres();
    let url = format!("postgres://nobody:wrong-{DB_PASSWORD}@127.0.0.1:{}/postgres", pg.port);
    let out = admin(&["users", "--db", &url, "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("opening database"), "{err}");
    assert!(!err.contains(DB_PASSWORD), "{err}");
}
