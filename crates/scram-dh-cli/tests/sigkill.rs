//! SIGKILL of the real server binary, again and again, while the real client
//! binary registers users concurrently; the server restarts on the same database
//! and address each time. Afterwards the database passes `PRAGMA
//! integrity_check`, every record in it is complete and belongs to a client that
//! holds its credential, and every client either holds a working credential or
//! gets one back by running `register` again (recovered if the server had
//! committed, afresh if not): no name is left taken by nobody (L10).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Server, cli, cli_command, credential_path, feed, ok, rand_u32};
use scram_dh::{ClientConfig, ClientCredential};

const KILLS: usize = 24;
const IN_FLIGHT: usize = 8;
const EXTRA: &[&str] = &["--groups", "x25519,modp2048"];

struct Attempt {
    config: PathBuf,
    user: String,
    password: String,
    child: Option<Child>,
    /// Exit code of the first `register`, once it finished.
    first: Option<i32>,
}

/// One row of the users table, as the database holds it.
struct Row {
    salt: Vec<u8>,
    ic: i64,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    labels: String,
}

fn restart(dir: &Path, addr: &str) -> Server {
    // The port is free again at once (SO_REUSEADDR); retry briefly all the same.
    let mut last = String::new();
    for _ in 0..50 {
        match Server::try_start(dir, addr, EXTRA) {
            Ok(s) => return s,
            Err(log) => last = log,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server does not come back after SIGKILL: {last}");
}

fn spawn(attempt: &mut Attempt, addr: &str, n: usize) {
    let group = if n % 4 == 3 { "modp2048" } else { "x25519" };
    let labels = if n % 3 == 2 { "rfc" } else { "random" };
    let mut child = cli_command(
        &attempt.config,
        &[
            "register",
            &attempt.user,
            "--server",
            addr,
            "--group",
            group,
            "--labels",
            labels,
            "--password-stdin",
            "--no-login",
            "--timeout",
            "5",
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    feed(&mut child, Some(&attempt.password));
    attempt.child = Some(child);
}

fn reap(attempts: &mut [Attempt], wait: bool) -> usize {
    let mut running = 0;
    for a in attempts.iter_mut() {
        if let Some(child) = a.child.as_mut() {
            let status = if wait { Some(child.wait().unwrap()) } else { child.try_wait().unwrap() };
            match status {
                Some(s) => {
                    a.first = Some(s.code().unwrap_or(-1));
                    a.child = None;
                }
                None => running += 1,
            }
        }
    }
    running
}

fn read_rows(db: &Path) -> BTreeMap<String, Row> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok", "PRAGMA integrity_check");
    let mut stmt = conn
        .prepare("SELECT username, salt, ic, stored_key, server_key, labels, created FROM users")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let created: i64 = r.get(6)?;
            assert!(created > 0);
            Ok((
                r.get::<_, String>(0)?,
                Row {
                    salt: r.get(1)?,
                    ic: r.get(2)?,
                    stored_key: r.get(3)?,
                    server_key: r.get(4)?,
                    labels: r.get(5)?,
                },
            ))
        })
        .unwrap()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .unwrap();
    for (user, row) in &rows {
        assert_eq!(row.salt.len(), 32, "{user}: salt");
        assert_eq!(row.ic, 4096, "{user}: ic");
        assert_eq!(row.stored_key.len(), 32, "{user}: stored_key");
        assert_eq!(row.server_key.len(), 32, "{user}: server_key");
        assert!(row.labels == "random" || row.labels == "rfc", "{user}: labels");
    }
    rows
}

fn credential(a: &Attempt, addr: &str) -> Option<ClientCredential> {
    let text = std::fs::read_to_string(credential_path(&a.config, addr, &a.user)).ok()?;
    Some(
        ClientCredential::from_json(&text)
            .unwrap_or_else(|e| panic!("{}: unreadable credential: {e}", a.user)),
    )
}

/// The record is the one this credential was made for.
fn matches(cred: &ClientCredential, row: &Row) -> bool {
    scram_dh::crypto::sha256(cred.client_key.expose()).as_slice() == row.stored_key.as_slice()
        && cred.server_key.expose().as_slice() == row.server_key.as_slice()
        && cred.salt == row.salt
}

#[test]
fn sigkill_during_concurrent_registrations_loses_no_name() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let first = Server::start_with(dir.path(), "127.0.0.1:0", EXTRA);
    let addr = first.addr.clone();
    let mut server = Some(first);
    let tag = rand_u32();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut kills = 0;
    let mut killed_in_flight = 0;
    while kills < KILLS {
        let alive = Duration::from_millis(150 + u64::from(rand_u32() % 450));
        let up = Instant::now();
        while up.elapsed() < alive {
            let running = reap(&mut attempts, false);
            for _ in running..IN_FLIGHT {
                let n = attempts.len();
                let mut a = Attempt {
                    config: dir.path().join(format!("c{n}")),
                    user: format!("u{n}-{tag:08x}"),
                    password: format!("pw-{n}-{:08x}", rand_u32()),
                    child: None,
                    first: None,
                };
                spawn(&mut a, &addr, n);
                attempts.push(a);
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        killed_in_flight += reap(&mut attempts, false);
        server.take().unwrap().kill();
        kills += 1;
        if kills < KILLS {
            server = Some(restart(dir.path(), &addr));
        }
    }
    reap(&mut attempts, true);

    // The database as the last SIGKILL left it.
    let rows = read_rows(&db);
    let server = restart(dir.path(), &addr);
    let (mut clean, mut recovered, mut afresh) = (0, 0, 0);
    for a in &attempts {
        let saved = credential(a, &addr);
        match rows.get(&a.user) {
            Some(row) => {
                // Committed: the client must hold this very credential (confirmed or not).
                let cred = saved.as_ref().unwrap_or_else(|| panic!("{} is taken by nobody", a.user));
                assert!(matches(cred, row), "{}: the record is not the client's", a.user);
                if a.first == Some(0) {
                    assert!(!cred.unconfirmed, "{}: success leaves a confirmed credential", a.user);
                }
            }
            None => assert_ne!(a.first, Some(0), "{}: reported success without a record", a.user),
        }
        if a.first == Some(0) {
            clean += 1;
            continue;
        }
        // A cut registration: `register` again must end with a working credential.
        let out = ok(&cli(
            &a.config,
            &["register", &a.user, "--server", &addr, "--group", "x25519", "--password-stdin", "--no-login"],
            Some(&a.password),
        ));
        if out.contains("recovered") {
            assert!(rows.contains_key(&a.user), "{}: recovered a record that was never committed", a.user);
            recovered += 1;
        } else {
            assert!(!rows.contains_key(&a.user), "{}: registered afresh over a committed record", a.user);
            afresh += 1;
        }
    }

    // Every client now logs in with its saved, confirmed credential, and every
    // record belongs to one of them.
    let final_rows = read_rows(&db);
    assert_eq!(final_rows.len(), attempts.len(), "one record per client, no more, no less");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // In batches: the server's per-peer handshake cap is a few hundred.
    for batch in attempts.chunks(64) {
        rt.block_on(async {
            let mut tasks = Vec::new();
            for a in batch {
                let cred = credential(a, &addr).unwrap_or_else(|| panic!("{}: no credential", a.user));
                assert!(!cred.unconfirmed, "{}", a.user);
                assert!(matches(&cred, &final_rows[&a.user]), "{}", a.user);
                let addr = addr.clone();
                tasks.push(tokio::spawn(async move {
                    let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                    scram_dh_net::login(s, &cred.username, cred.secret(), None, ClientConfig::default())
                        .await
                        .map(|l| l.username)
                }));
            }
            for (t, a) in tasks.into_iter().zip(batch) {
                assert_eq!(t.await.unwrap().unwrap_or_else(|e| panic!("{}: login: {e}", a.user)), a.user);
            }
        });
    }
    server.stop();
    eprintln!(
        "{kills} SIGKILLs, {} registrations ({killed_in_flight} in flight at a kill): {clean} clean, \
         {recovered} recovered after the server committed, {afresh} registered afresh; {:?}",
        attempts.len(),
        started.elapsed()
    );
    assert!(kills >= 20);
    assert!(recovered + afresh > 0, "no kill landed during a registration");
    assert!(started.elapsed() < Duration::from_secs(90), "bounded in time");
}
