//! Standard SCRAM-SHA-256 against independent implementations (issue 8), through
//! the real binary: our `serve --sasl` with Python scramp and GNU SASL's
//! `gsasl --client` (through socat), our `login --sasl` with a scramp server and
//! `gsasl --server`, our RFC 7804 HTTP front with requests-scram and npm gel, and
//! verifiers crossing over to and from PostgreSQL 15 and `gsasl -k`.
//!
//! Every case: the right password succeeds, a wrong one fails, usernames with `,`
//! and `=`, a non-ASCII password that needs SASLprep (given raw and prepped), and
//! users imported from a verifier. `scripts/peers.sh` installs the peers (test.sh
//! runs it; these tests run it too); a peer that cannot start fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/peers.rs"]
mod peers;

use std::path::Path;

use common::register;
use peers::{
    PW_NEEDS_PREP, PW_PREPPED, SaslServer, ScrampServer, assert_gsasl_ok, assert_gsasl_refused,
    assert_our_login_ok, exported_verifier, gel, gsasl_client, gsasl_mkpasswd, gsasl_to_postgres,
    import_verifier, our_sasl_login, postgres, requests_scram, scramp_client, show, sql_ident, sql_literal,
    text, users,
};

/// The users every server test registers in-band with `--labels rfc`:
/// (name, password, other spellings of the same password after SASLprep).
const USERS: &[(&str, &str, &[&str])] = &[
    ("alice", "correct horse 1", &[]),
    ("a,b=c", "comma equals 2", &[]),
    ("=2C,=", "escapes look-alike 3", &[]),
    ("prep", PW_NEEDS_PREP, &[PW_PREPPED]),
];

/// RFC 7677 section 3: user `user`, password `pencil`, this salt, i = 4096.
const RFC7677_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC7677_GSASL: &str = "{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,\
     WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

/// Our server with [`USERS`] registered in-band (rfc labels).
fn server_with_users(dir: &Path) -> SaslServer {
    let server = SaslServer::start(dir);
    let config = dir.join("client");
    for (user, pw, _) in USERS {
        register(&config, &server.addr, user, pw, "rfc");
    }
    server
}

fn every_password() -> impl Iterator<Item = (&'static str, &'static str)> {
    USERS
        .iter()
        .flat_map(|(u, pw, more)| std::iter::once((*u, *pw)).chain(more.iter().map(move |p| (*u, *p))))
}

// ---------------------------------------------------------------------------
// Our SASL server <- independent clients.

#[test]
fn scramp_client_logs_in_to_our_sasl_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path());
    for (user, pw) in every_password() {
        let out = scramp_client(&server.sasl, user, pw);
        assert!(
            out.status.success()
                && text(&out.stdout)
                    .contains(&format!("authenticated as {user} (server signature verified)")),
            "{}\nserver log tail:\n{}",
            show(&format!("scramp client {user:?} / {pw:?}"), &out),
            server.log_tail(30)
        );
    }
    for (user, _, _) in USERS {
        let out = scramp_client(&server.sasl, user, "wrong password");
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            show(&format!("scramp client {user:?}, wrong password"), &out)
        );
        assert!(text(&out.stderr).contains("e=invalid-proof"), "{}", show("wrong password", &out));
    }
    // An unknown user fails like a wrong password (mock, e=invalid-proof at the end).
    let out = scramp_client(&server.sasl, "nobody", "pw");
    assert_eq!(out.status.code(), Some(3), "{}", show("scramp client, unknown user", &out));
    assert!(text(&out.stderr).contains("server-final e=invalid-proof"), "{}", show("unknown user", &out));
}

#[test]
fn gsasl_client_logs_in_to_our_sasl_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path());
    for (user, pw) in every_password() {
        let out = gsasl_client(dir.path(), &server.sasl, user, pw);
        assert!(
            out.status.success() && !text(&out.stderr).contains("mechanism error"),
            "{}\nserver log tail:\n{}",
            show(&format!("gsasl --client {user:?} / {pw:?}"), &out),
            server.log_tail(30)
        );
    }
    for (user, _, _) in USERS {
        let out = gsasl_client(dir.path(), &server.sasl, user, "wrong password");
        // gsasl 2.2.0 reports a server-final e= as "could not parse input".
        assert_gsasl_refused(&out, &format!("gsasl --client {user:?}, wrong password"));
    }
    assert_gsasl_refused(
        &gsasl_client(dir.path(), &server.sasl, "nobody", "pw"),
        "gsasl --client, unknown user",
    );
}

#[test]
fn gsasl_mkpasswd_verifiers_import_and_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = SaslServer::start(dir.path());
    // RFC 7677 section 3, made by gsasl -k: the conversion to PostgreSQL's form is
    // checked against the published StoredKey / ServerKey.
    let vector = gsasl_mkpasswd("pencil", 4096, RFC7677_SALT);
    assert_eq!(vector, RFC7677_GSASL.replace(' ', ""));
    let verifier = gsasl_to_postgres(&vector);
    assert_eq!(
        verifier,
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
         wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
            .replace(' ', "")
    );
    import_verifier(&server.db, "user", &verifier);
    // A name with `,` `=` and a password gsasl SASLpreps, with a random salt, via --file.
    let tricky = gsasl_to_postgres(&gsasl_mkpasswd(PW_NEEDS_PREP, 4096, "c2FsdHNhbHRzYWx0c2FsdA=="));
    let file = dir.path().join("verifiers.tsv");
    std::fs::write(&file, format!("x,y=z\t{tricky}\n")).unwrap();
    let out = users(&server.db, &["import-verifier", "--file", file.to_str().unwrap()]);
    assert!(
        out.status.success() && text(&out.stdout).contains("imported x,y=z"),
        "{}",
        show("import --file", &out)
    );

    for (user, pw) in [("user", "pencil"), ("x,y=z", PW_NEEDS_PREP), ("x,y=z", PW_PREPPED)] {
        let out = scramp_client(&server.sasl, user, pw);
        assert!(out.status.success(), "{}\n{}", show(&format!("scramp {user:?}"), &out), server.log_tail(30));
        assert_gsasl_ok(
            &gsasl_client(dir.path(), &server.sasl, user, pw),
            &format!("gsasl --client {user:?}"),
        );
    }
    for user in ["user", "x,y=z"] {
        let out = scramp_client(&server.sasl, user, "wrong");
        assert_eq!(out.status.code(), Some(3), "{}", show(&format!("scramp {user:?}, wrong password"), &out));
        assert_gsasl_refused(&gsasl_client(dir.path(), &server.sasl, user, "wrong"), "gsasl, wrong password");
    }

    // --file is all-or-nothing: a malformed second line imports nothing.
    let bad = dir.path().join("bad.tsv");
    let ok_line = gsasl_to_postgres(&gsasl_mkpasswd("pw", 4096, RFC7677_SALT));
    std::fs::write(&bad, format!("fresh\t{ok_line}\nbroken\tSCRAM-SHA-256$4096:nope\n")).unwrap();
    let out = users(&server.db, &["import-verifier", "--file", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", show("import --file with a malformed line", &out));
    let list = text(&users(&server.db, &["list"]).stdout);
    assert!(!list.lines().any(|l| l == "fresh"), "a malformed file imported its good line: {list}");
}

// ---------------------------------------------------------------------------
// Our client (`login --sasl`) -> independent servers.

#[test]
fn our_client_logs_in_to_a_scramp_server() {
    let dir = tempfile::tempdir().unwrap();
    // A record made by gsasl -k (RFC 7677 vector) stands for "imported from a verifier".
    let vector = gsasl_to_postgres(&gsasl_mkpasswd("pencil", 4096, RFC7677_SALT));
    let users: Vec<(&str, &str)> = USERS.iter().map(|(u, p, _)| (*u, *p)).collect();
    let peer = ScrampServer::start(&users, &[("user", &vector)]);
    for (user, pw) in every_password().chain([("user", "pencil")]) {
        let out = our_sasl_login(dir.path(), &peer.addr, user, pw);
        let verdict = peer.verdict();
        assert_our_login_ok(&out, user, &format!("login --sasl {user:?} / {pw:?} (scramp said {verdict:?})"));
        assert_eq!(verdict, Some(format!("ok {user}")));
    }
    for (user, _, _) in USERS {
        let out = our_sasl_login(dir.path(), &peer.addr, user, "wrong password");
        let verdict = peer.verdict().unwrap_or_default();
        let what = format!("login --sasl {user:?}, wrong password (scramp said {verdict:?})");
        assert_eq!(out.status.code(), Some(3), "{}", show(&what, &out));
        assert!(verdict.starts_with(&format!("fail {user} e=invalid-proof")), "{what}");
    }
    // scramp answers an unknown user with e=unknown-user in place of server-first.
    let out = our_sasl_login(dir.path(), &peer.addr, "nobody", "pw");
    let verdict = peer.verdict().unwrap_or_default();
    let what = format!("login --sasl unknown user (scramp said {verdict:?})");
    assert_eq!(out.status.code(), Some(3), "{}", show(&what, &out));
    assert!(verdict.starts_with("fail nobody e=unknown-user"), "{what}");
}

#[test]
fn our_client_logs_in_to_gsasl_server() {
    let dir = tempfile::tempdir().unwrap();
    // gsasl --server takes one password for any username; each case gets its own.
    let cases = [
        ("alice", "pencil", "pencil"),
        ("a,b=c", "comma equals 2", "comma equals 2"),
        ("=2C,=", "x", "x"),
        // gsasl SASLpreps its -p, we SASLprep ours: each spelling meets the other.
        ("prep", PW_PREPPED, PW_NEEDS_PREP),
        ("prep", PW_NEEDS_PREP, PW_PREPPED),
    ];
    for (user, server_pw, client_pw) in cases {
        let peer = peers::GsaslServer::start(dir.path(), server_pw);
        let out = our_sasl_login(dir.path(), &peer.addr, user, client_pw);
        let (status, said) = peer.finish();
        let what = format!("login --sasl {user:?} / {client_pw:?} to gsasl --server (gsasl said:\n{said})");
        assert_our_login_ok(&out, user, &what);
        let trusted = said.contains("Server authentication finished (client trusted)");
        assert!(status.is_some_and(|s| s.success()) && trusted, "{what}");
    }
    // A wrong password: gsasl --server sends no e=, it closes after client-final.
    let peer = peers::GsaslServer::start(dir.path(), "pencil");
    let out = our_sasl_login(dir.path(), &peer.addr, "alice", "wrong");
    let (status, said) = peer.finish();
    let what = format!("login --sasl to gsasl --server, wrong password (gsasl said:\n{said})");
    assert!(!out.status.success(), "{}", show(&what, &out));
    assert!(status.is_some_and(|s| !s.success()) && said.contains("Error authenticating user"), "{what}");
}

// ---------------------------------------------------------------------------
// RFC 7804 on our HTTP front <- independent clients.

#[test]
fn requests_scram_logs_in_over_rfc7804() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path());
    let base = server.base_url();
    for path in ["/v1/whoami", "/v1/auth/token"] {
        for (user, pw) in every_password() {
            let out = requests_scram(&format!("{base}{path}"), user, pw);
            let stdout = text(&out.stdout);
            // http_scram.py checked the server signature from Authentication-Info with scramp.
            assert!(
                out.status.success()
                    && stdout.contains(&format!("authenticated as {user} (server signature verified)")),
                "{}\nserver log tail:\n{}",
                show(&format!("requests-scram GET {path} {user:?} / {pw:?}"), &out),
                server.log_tail(30)
            );
            let body: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{path} body is not JSON ({e}): {stdout}"));
            assert_eq!(body["username"], *user, "{stdout}");
        }
        let out = requests_scram(&format!("{base}{path}"), "alice", "wrong password");
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            show(&format!("requests-scram {path}, wrong password"), &out)
        );
        let out = requests_scram(&format!("{base}{path}"), "nobody", "pw");
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            show(&format!("requests-scram {path}, unknown user"), &out)
        );
    }
}

#[test]
fn gel_logs_in_over_rfc7804() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path());
    // gel hits BASE/auth/token. Its "saslprep" is NFKC only and it does not escape
    // `,` `=` in names (interop findings): it logs in as the plain user.
    let base = format!("{}/v1", server.base_url());
    let out = gel(&base, "alice", "correct horse 1");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("authenticated as alice (server signature verified)"),
        "{}\nserver log tail:\n{}",
        show("gel alice", &out),
        server.log_tail(30)
    );
    let body: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("/v1/auth/token body is not JSON ({e}): {stdout}"));
    assert_eq!(body["username"], "alice", "{stdout}");
    // Repeated: the server nonce must survive gel's base64 round trip every time.
    for _ in 0..5 {
        let out = gel(&base, "alice", "correct horse 1");
        assert!(out.status.success(), "{}", show("gel alice again", &out));
    }
    let out = gel(&base, "alice", "wrong password");
    assert_eq!(out.status.code(), Some(3), "{}", show("gel, wrong password", &out));
    let out = gel(&base, "nobody", "pw");
    assert_eq!(out.status.code(), Some(3), "{}", show("gel, unknown user", &out));
}

// ---------------------------------------------------------------------------
// PostgreSQL 15.

#[test]
fn exported_verifier_lets_psql_log_in_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_users(dir.path());
    let pg = postgres();
    for (user, pw, more) in USERS {
        let role = format!("ours_{user}");
        // Registered again under a role name of its own (the cluster is shared).
        register(&dir.path().join("client"), &server.addr, &role, pw, "rfc");
        let verifier = exported_verifier(&server.db, &role);
        assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
        pg.sql(&format!("CREATE ROLE {} LOGIN PASSWORD {}", sql_ident(&role), sql_literal(&verifier)));
        // PostgreSQL hashes a malformed verifier as a plain password: check it took ours.
        let stored =
            pg.sql(&format!("SELECT rolpassword FROM pg_authid WHERE rolname = {}", sql_literal(&role)));
        assert_eq!(stored.trim(), verifier, "PostgreSQL did not store our verifier as is");
        for pw in std::iter::once(pw).chain(more.iter()) {
            let out = pg.login(&role, pw);
            assert!(
                out.status.success() && text(&out.stdout).trim() == role,
                "{}\npostgres log:\n{}",
                show(&format!("psql as {role:?} / {pw:?}"), &out),
                pg.log()
            );
        }
        let out = pg.login(&role, "wrong password");
        assert!(!out.status.success(), "{}", show(&format!("psql as {role:?}, wrong password"), &out));
        assert!(text(&out.stderr).contains("password authentication failed"), "{}", show("psql wrong", &out));
    }
}

#[test]
fn postgres_verifier_imported_lets_scramp_and_gsasl_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = SaslServer::start(dir.path());
    let pg = postgres();
    for (role, pw, more) in
        [("frompg_plain", "from postgres 1", &[][..]), ("frompg,c=1", PW_NEEDS_PREP, &[PW_PREPPED][..])]
    {
        // A role made with a plain password: PostgreSQL computes the verifier.
        pg.sql(&format!("CREATE ROLE {} LOGIN PASSWORD {}", sql_ident(role), sql_literal(pw)));
        let verifier =
            pg.sql(&format!("SELECT rolpassword FROM pg_authid WHERE rolname = {}", sql_literal(role)));
        let verifier = verifier.trim();
        assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "pg_authid: {verifier}");
        import_verifier(&server.db, role, verifier);
        // The same verifier comes back out of `users export`.
        assert_eq!(exported_verifier(&server.db, role), verifier);
        for pw in std::iter::once(pw).chain(more.iter().copied()) {
            let out = scramp_client(&server.sasl, role, pw);
            assert!(
                out.status.success(),
                "{}\n{}",
                show(&format!("scramp {role:?} / {pw:?}"), &out),
                server.log_tail(30)
            );
            assert_gsasl_ok(
                &gsasl_client(dir.path(), &server.sasl, role, pw),
                &format!("gsasl {role:?} / {pw:?}"),
            );
            // And PostgreSQL itself agrees on the password.
            let out = pg.login(role, pw);
            assert!(out.status.success(), "{}", show(&format!("psql {role:?}"), &out));
        }
        let out = scramp_client(&server.sasl, role, "wrong");
        assert_eq!(out.status.code(), Some(3), "{}", show(&format!("scramp {role:?}, wrong password"), &out));
        assert_gsasl_refused(&gsasl_client(dir.path(), &server.sasl, role, "wrong"), "gsasl, wrong password");
    }
}

// ---------------------------------------------------------------------------
// The peers themselves: when a test above fails, this one tells whether the peer
// or our side is at fault.

#[test]
fn peers_agree_with_each_other() {
    let dir = tempfile::tempdir().unwrap();
    // scramp server <- gsasl --client
    let peer = ScrampServer::start(&[("a,b=c", PW_NEEDS_PREP)], &[]);
    assert_gsasl_ok(&gsasl_client(dir.path(), &peer.addr, "a,b=c", PW_PREPPED), "gsasl --client -> scramp");
    assert_eq!(peer.verdict().as_deref(), Some("ok a,b=c"));
    assert_gsasl_refused(
        &gsasl_client(dir.path(), &peer.addr, "a,b=c", "wrong"),
        "gsasl --client -> scramp, wrong",
    );
    let verdict = peer.verdict().unwrap_or_default();
    assert!(verdict.starts_with("fail a,b=c e=invalid-proof"), "{verdict}");
    // gsasl --server <- scramp client
    let g = peers::GsaslServer::start(dir.path(), PW_PREPPED);
    let out = scramp_client(&g.addr, "a,b=c", PW_NEEDS_PREP);
    let (status, said) = g.finish();
    assert!(out.status.success(), "{}\ngsasl said:\n{said}", show("scramp -> gsasl --server", &out));
    assert!(status.is_some_and(|s| s.success()), "gsasl said:\n{said}");
    // PostgreSQL <- psql, and a verifier from gsasl -k set as a role's password
    let pg = postgres();
    let verifier = gsasl_to_postgres(&gsasl_mkpasswd("pencil", 4096, RFC7677_SALT));
    pg.sql(&format!("CREATE ROLE peers_check LOGIN PASSWORD {}", sql_literal(&verifier)));
    let out = pg.login("peers_check", "pencil");
    assert!(out.status.success() && text(&out.stdout).trim() == "peers_check", "{}", show("psql", &out));
    assert!(!pg.login("peers_check", "wrong").status.success());
}
