//! The standard SCRAM-SHA-256 commands through the real binary: `serve --sasl`
//! and `--sasl-tls`, `login --sasl [--tls]`, `users import-verifier` and
//! `users export`, against our own server (peers nobody here wrote are in
//! `std_interop.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{Server, cli, ok, register};

fn words_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            return words.next();
        }
    }
    None
}

struct Sasl {
    server: Server,
    sasl: String,
    sasl_tls: String,
    ca: PathBuf,
    db: PathBuf,
}

fn start(dir: &Path) -> Sasl {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (ca, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    let server = Server::start_with(
        dir,
        "127.0.0.1:0",
        &[
            "--sasl",
            "127.0.0.1:0",
            "--sasl-tls",
            "127.0.0.1:0",
            "--tls-cert",
            ca.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let announce = server.announce.clone();
    let sasl = words_after(&announce, "sasl").expect("sasl address announced").to_owned();
    let sasl_tls = words_after(&announce, "sasl-tls").expect("sasl-tls address announced").to_owned();
    Sasl { server, sasl, sasl_tls, ca, db: dir.join("server.db") }
}

fn sasl_login(config: &Path, addr: &str, user: &str, password: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["login", user, "--sasl", addr, "--password-stdin"];
    args.extend_from_slice(extra);
    cli(config, &args, Some(password))
}

fn users(db: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(common::BIN)
        .args(["users", "--db", db.to_str().unwrap()])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
        input.write_all(b"\n").unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn rfc_users_log_in_with_standard_scram_and_random_label_users_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let s = start(dir.path());
    register(&config, &s.server.addr, "alice", "correct horse", "rfc");
    register(&config, &s.server.addr, "bob", "battery staple", "random");
    let out = ok(&sasl_login(&config, &s.sasl, "alice", "correct horse", &[]));
    assert_eq!(out.trim(), "authenticated as alice (server signature verified)");
    let wrong = sasl_login(&config, &s.sasl, "alice", "wrong horse", &[]);
    assert_eq!(wrong.status.code(), Some(3), "{}", String::from_utf8_lossy(&wrong.stderr));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("invalid-proof"));
    // bob holds keys, not a password: refused exactly like a wrong password.
    let bob = sasl_login(&config, &s.sasl, "bob", "battery staple", &[]);
    assert_eq!(bob.status.code(), Some(3));
    let nobody = sasl_login(&config, &s.sasl, "nobody", "battery staple", &[]);
    assert_eq!(nobody.status.code(), Some(3));
    assert_eq!(bob.stderr, nobody.stderr, "a random-label user and an unknown one look the same");
    let log = s.server.stop();
    assert!(log.contains("random labels"), "the operator sees why bob failed");
}

#[test]
fn tls_login_binds_the_channel_and_checks_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let s = start(dir.path());
    register(&config, &s.server.addr, "carol", "pässwörd", "rfc");
    let ca = s.ca.to_str().unwrap();
    let tls = ["--tls", "--tls-ca", ca, "--tls-name", "localhost"];
    let out = ok(&sasl_login(&config, &s.sasl_tls, "carol", "pässwörd", &tls));
    assert!(out.contains("channel binding tls-exporter"), "{out}");
    // Another certificate as the CA: the server is not trusted, nothing is sent.
    let other = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other_ca = other.path().join("ca.pem");
    std::fs::write(&other_ca, cert.cert.pem()).unwrap();
    let out = sasl_login(
        &config,
        &s.sasl_tls,
        "carol",
        "pässwörd",
        &["--tls", "--tls-ca", other_ca.to_str().unwrap(), "--tls-name", "localhost"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate refused"));
}

#[test]
fn exported_verifiers_import_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let s = start(dir.path());
    register(&config, &s.server.addr, "dave", "hunter2 hunter2", "rfc");
    let export = ok(&users(&s.db, &["export"], None));
    let line = export.lines().find(|l| l.starts_with("dave\t")).unwrap().to_owned();
    let verifier = line.split_once('\t').unwrap().1.to_owned();
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");

    // Into a second database, under another name, from the arguments.
    let other = dir.path().join("other").join("server.db");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    let out = ok(&users(&other, &["import-verifier", "dave2", &verifier], None));
    assert_eq!(out.trim(), "imported dave2");
    let dup = users(&other, &["import-verifier", "dave2", &verifier], None);
    assert!(!dup.status.success(), "an existing user is not overwritten");
    ok(&users(&other, &["import-verifier", "dave2", &verifier, "--replace"], None));

    // A malformed verifier is an error, never taken as a password.
    for bad in [
        "hunter2",
        "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
        "SCRAM-SHA-256$1000:c2FsdHNhbHRzYWx0c2FsdA==$x:y",
        &format!("{verifier} "),
        &verifier.replacen("SCRAM-SHA-256", "SCRAM-SHA-1", 1),
    ] {
        let out = users(&other, &["import-verifier", "eve", bad], None);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // A file with one bad line imports nothing, and names the line.
    let file = dir.path().join("verifiers.tsv");
    std::fs::write(&file, format!("frank\t{verifier}\ngrace\tnot-a-verifier\n")).unwrap();
    let out = users(&other, &["import-verifier", "--file", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    let list = ok(&users(&other, &["list"], None));
    assert!(!list.contains("frank"), "{list}");
    // From standard input, the export's own format.
    let out = ok(&users(&other, &["import-verifier", "--file", "-"], Some(&format!("heidi\t{verifier}"))));
    assert_eq!(out.trim(), "imported heidi");

    // The server's own database: an imported user logs in with the password.
    ok(&users(&s.db, &["import-verifier", "ivan", &verifier], None));
    ok(&sasl_login(&config, &s.sasl, "ivan", "hunter2 hunter2", &[]));
    let shown = ok(&users(&s.db, &["show", "ivan"], None));
    assert!(shown.contains("rfc"), "{shown}");
}
