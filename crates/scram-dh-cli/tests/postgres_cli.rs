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

#[test]
fn users_migrate_moves_sqlite_records_to_postgres_byte_for_byte() {
    let _pg = peers::postgres();
    let url = database("scram_migrate");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("old.db");
    let host_key = dir.path().join("old.hostkey");
    // Records of both label kinds in the SQLite file: registered in-band (random
    // labels) and imported from a PostgreSQL verifier (rfc labels).
    let old = Server::start_with(
        dir.path(),
        "127.0.0.1:0",
        &["--db", sqlite.to_str().unwrap(), "--host-key", host_key.to_str().unwrap()],
    );
    let config = dir.path().join("client");
    register(&config, &old.addr, "alice", "correct horse", "random");
    register(&config, &old.addr, "zoë", "battery staple", "rfc");
    let old_addr = old.addr.clone();
    old.stop();
    let db = sqlite.to_str().unwrap();
    let sqlite_spec = format!("sqlite:{db}");
    let before = ok(&admin(&["users", "--db", db, "export"]));

    let dry = ok(&admin(&["users", "migrate", "--from", &sqlite_spec, "--to", &url, "--dry-run"]));
    assert!(dry.contains("dry run: 2 copied"), "{dry}");
    assert_eq!(ok(&admin(&["users", "--db", &url, "list"])).trim(), "", "a dry run writes nothing");

    let out = ok(&admin(&["users", "migrate", "--from", &sqlite_spec, "--to", &url]));
    assert!(out.contains("2 copied, 0 replaced, 0 already there"), "{out}");
    assert!(!out.contains(DB_PASSWORD), "{out}");
    assert_eq!(ok(&admin(&["users", "--db", &url, "export"])), before, "byte for byte");
    // A rerun is harmless.
    let again = ok(&admin(&["users", "migrate", "--from", &sqlite_spec, "--to", &url]));
    assert!(again.contains("0 copied, 0 replaced, 2 already there"), "{again}");

    // A destination record that differs stops the copy before anything is written.
    ok(&admin(&["users", "--db", &url, "delete", "alice"]));
    let carol = peers::gsasl_to_postgres(&peers::gsasl_mkpasswd("other", 4096, "c2FsdHNhbHRzYWx0c2FsdA=="));
    ok(&admin(&["users", "--db", &url, "import-verifier", "zoë", &carol, "--replace"]));
    let refused = admin(&["users", "migrate", "--from", db, "--to", &url]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("1 user(s) exist") && err.contains("nothing copied"), "{err}");
    assert_eq!(ok(&admin(&["users", "--db", &url, "list"])).trim(), "zoë", "alice was not copied either");
    let out = ok(&admin(&["users", "migrate", "--from", db, "--to", &url, "--replace"]));
    assert!(out.contains("1 copied, 1 replaced, 0 already there"), "{out}");
    assert_eq!(ok(&admin(&["users", "--db", &url, "export"])), before);

    // The migrated in-band credential logs in against a node on PostgreSQL with the
    // old host key.
    std::fs::create_dir_all(dir.path().join("pg-node")).unwrap();
    let node = Server::start_with(
        &dir.path().join("pg-node"),
        "127.0.0.1:0",
        &["--db", &url, "--host-key", host_key.to_str().unwrap()],
    );
    let cred = credential_path(&config, &old_addr, "alice");
    let out = ok(&cli(
        &config,
        &["login", "alice", "--server", &node.addr, "--credential", cred.to_str().unwrap()],
        None,
    ));
    assert!(out.contains("alice"), "{out}");

    // Bad arguments are usage errors.
    let same = admin(&["users", "migrate", "--from", &url, "--to", &url]);
    assert_eq!(same.status.code(), Some(2));
    let missing = admin(&["users", "migrate", "--from", "sqlite:/nonexistent/x.db", "--to", &url]);
    assert_eq!(missing.status.code(), Some(2));
}
