//! `login NAME --password-stdin` through the real binary (issue 11): the password
//! itself instead of a saved credential, as the browser page's users have none.
//! Over HTTP (`--http URL`) the session is saved as with a credential, so `http
//! GET /v1/whoami` works after it; over TCP it opens the channel. A wrong
//! password, an unknown user and a record with random labels all end in
//! `authentication_failed` (exit 3); the password is in no file or log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, assert_absent, canary, cli, ok};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every byte of every file under `dir`.
fn all_files(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return bytes };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            bytes.extend(all_files(&p));
        } else {
            bytes.extend(std::fs::read(&p).unwrap());
        }
    }
    bytes
}

/// Exit 3 with `authentication_failed` and the RFC-labels hint.
fn assert_refused(out: &Output, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(3), "{what}: {err}");
    assert!(err.contains("authentication_failed"), "{what}: {err}");
    assert!(err.contains("--labels rfc"), "{what}: the hint is missing: {err}");
    assert!(out.stdout.is_empty(), "{what}");
}

#[test]
fn login_with_the_password_over_http_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), "127.0.0.1:0", &["--http", "127.0.0.1:0"]);
    let base = format!("http://{}", server.http.clone().unwrap());
    let (pw, random_pw) = (canary(), canary());
    // Registered as the browser page does (RFC labels), and one with random labels.
    let registrar = dir.path().join("registrar");
    let out = ok(&cli(
        &registrar,
        &["register", "rita", "--http", &base, "--group", "x25519", "--labels", "rfc", "--password-stdin"],
        Some(&pw),
    ));
    assert!(out.contains("registered rita"), "{out}");
    ok(&cli(
        &registrar,
        &["register", "ralf", "--http", &base, "--group", "x25519", "--password-stdin"],
        Some(&random_pw),
    ));

    // A fresh config dir: no credential, only the password.
    let fresh = dir.path().join("fresh");
    let out = ok(&cli(&fresh, &["login", "rita", "--http", &base, "--password-stdin"], Some(&pw)));
    assert!(out.contains("logged in as rita at"), "{out}");
    assert!(out.contains("session saved to"), "{out}");
    assert!(!fresh.join("credentials").exists(), "no credential is written");
    let session =
        fresh.join("http-sessions").join(server.http.clone().unwrap().replace(':', "_")).join("rita.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&session).unwrap().permissions().mode() & 0o777, 0o600);
    let who = ok(&cli(&fresh, &["http", "GET", "/v1/whoami"], None));
    assert!(who.contains("\"username\":\"rita\""), "{who}");
    ok(&cli(&fresh, &["logout", "--http", &base, "--user", "rita"], None));

    // Over TCP: the channel opens (whoami over it), and without one.
    let out = ok(&cli(&fresh, &["login", "rita", "--server", &server.addr, "--password-stdin"], Some(&pw)));
    assert_eq!(out.trim(), "rita");
    let out = ok(&cli(
        &fresh,
        &["login", "rita", "--server", &server.addr, "--password-stdin", "--no-channel"],
        Some(&pw),
    ));
    assert!(out.contains("authenticated as rita"), "{out}");
    let out = ok(&cli(
        &fresh,
        &["login", "rita", "--server", &server.addr, "--password-stdin", "-c", "set color blue"],
        Some(&pw),
    ));
    assert!(!out.is_empty());

    // Wrong password, unknown user, random labels: authentication_failed, exit 3.
    let wrong = format!("{pw}x");
    assert_refused(
        &cli(&fresh, &["login", "rita", "--http", &base, "--password-stdin"], Some(&wrong)),
        "wrong, http",
    );
    assert_refused(
        &cli(&fresh, &["login", "rita", "--server", &server.addr, "--password-stdin"], Some(&wrong)),
        "wrong, tcp",
    );
    assert_refused(
        &cli(&fresh, &["login", "nobody", "--http", &base, "--password-stdin"], Some(&pw)),
        "unknown",
    );
    assert_refused(
        &cli(&fresh, &["login", "ralf", "--http", &base, "--password-stdin"], Some(&random_pw)),
        "random labels, http",
    );
    assert_refused(
        &cli(&fresh, &["login", "ralf", "--server", &server.addr, "--password-stdin"], Some(&random_pw)),
        "random labels, tcp",
    );
    // ... while ralf's saved credential still logs in.
    ok(&cli(&registrar, &["login", "ralf", "--http", &base], None));
    // No leftover session from the refused logins.
    let out = cli(&fresh, &["http", "GET", "/v1/whoami"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Usage: the password or a credential file, not both; an empty password.
    let cred = dir.path().join("x.json");
    let out = cli(
        &fresh,
        &["login", "rita", "--http", &base, "--password-stdin", "--credential", cred.to_str().unwrap()],
        Some(&pw),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = cli(&fresh, &["login", "rita", "--http", &base, "--password-stdin"], Some(""));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let log = server.stop();
    for secret in [&pw, &random_pw] {
        assert_absent("the client's files", &all_files(&fresh), secret);
        assert_absent("the registrar's files", &all_files(&registrar), secret);
        assert_absent("the server log", log.as_bytes(), secret);
    }
}
