//! Independent standard-SCRAM peers for `tests/std_interop.rs`: Python scramp
//! (`interop/scramp_peer.py`) as a client and as a server, GNU SASL's `gsasl`
//! through socat as a client and as a server, requests-scram
//! (`interop/http_scram.py`) and npm gel (`interop/node/gel_client.mjs`) over
//! RFC 7804, and a throwaway PostgreSQL 15 cluster. `scripts/peers.sh` installs
//! them; every helper fails loudly (never skips) when a peer cannot start, and
//! every child runs under a deadline so a hung peer fails the test instead of
//! hanging it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::common::{BIN, rand_u32};

/// How long one peer run may take before the test fails (PBKDF2 at 4096 is ms).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// `Pa` U+0308 `ss` U+00A0 `wo` U+00AD `rd` U+2163: a combining diaeresis (NFKC
/// composes it), a no-break space (mapped to a space), a soft hyphen (mapped to
/// nothing) and a roman numeral (NFKC: `IV`). SASLprep gives [`PW_PREPPED`].
pub const PW_NEEDS_PREP: &str = "Pa\u{0308}ss\u{00A0}wo\u{00AD}rd\u{2163}";
/// [`PW_NEEDS_PREP`] after SASLprep (RFC 4013).
pub const PW_PREPPED: &str = "P\u{00E4}ss wordIV";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The venv `scripts/peers.sh` makes (scramp, requests-scram pinned).
pub fn python() -> PathBuf {
    root().join("target/peers-venv/bin/python")
}

/// Runs `scripts/peers.sh` once per test process (a no-op when everything is
/// installed, as after `scripts/test.sh`); panics with its output when it fails.
pub fn ensure_peers() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/peers.sh"))
            .current_dir(root())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run scripts/peers.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/peers.sh failed ({:?}): the interop peers are not installed\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// Spawns `cmd` (stdout/stderr piped), writes `stdin` (then closes it), and waits
/// at most [`DEADLINE`]; a run past it is killed and fails the test.
pub fn run(cmd: &mut Command, stdin: Option<&str>, what: &str) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        let _ = input.write_all(s.as_bytes());
        let _ = input.write_all(b"\n");
    }
    drop(input);
    wait_output(child, what)
}

/// Collects a spawned child's piped stdout and stderr, under [`DEADLINE`].
pub fn wait_output(mut child: Child, what: &str) -> Output {
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_deadline(&mut child, DEADLINE);
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let Some(status) = status else {
        panic!(
            "{what} did not finish within {DEADLINE:?} (killed)\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output { status, stdout, stderr }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// `Some(status)`, or `None` after killing a child still running at the deadline.
pub fn wait_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `what` and the whole output, for assertion messages.
pub fn show(what: &str, out: &Output) -> String {
    format!("{what}: status {:?}\nstdout:\n{}\nstderr:\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

/// A loopback port for a server the test starts; see `scram_dh_testkit::free_port`.
pub fn free_port() -> u16 {
    scram_dh_testkit::free_port()
}

// ---------------------------------------------------------------------------
// Our server with its SASL listener and HTTP front.

/// The real `scram-dh serve --sasl 127.0.0.1:0 --http 127.0.0.1:0` on
/// `<dir>/server.db` (the same lifted per-peer limits as `common::Server`).
pub struct SaslServer {
    pub child: Child,
    /// The native protocol's address (for in-band registration).
    pub addr: String,
    pub sasl: String,
    pub http: String,
    pub db: PathBuf,
    pub log: PathBuf,
}

impl SaslServer {
    pub fn start(dir: &Path) -> Self {
        let log = dir.join(format!("server-{}-{:08x}.log", std::process::id(), rand_u32()));
        let limits = dir.join("test-limits.toml");
        std::fs::write(&limits, "[limits]\npeer_free_failures = 1000000\naccount_free_failures = 1000000\n")
            .unwrap();
        let db = dir.join("server.db");
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&limits)
            .arg("--db")
            .arg(&db)
            .args(["--registrations-per-sec", "1000", "--registration-burst", "1000"])
            .args(["--max-handshakes-per-peer", "500", "--max-handshakes", "1000"])
            .args(["--max-connections-per-peer", "500", "--dh-per-sec", "1000", "--dh-burst", "1000"])
            .args(["--sasl", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .env("RUST_LOG", "trace")
            .env_remove("SCRAM_DH_CONFIG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start scram-dh serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "listening on ADDR host key FP http ADDR sasl ADDR"
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| words.windows(2).find(|w| w[0] == key).map(|w| w[1].to_owned());
        let (Some(addr), Some(http), Some(sasl)) = (after("on"), after("http"), after("sasl")) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scram-dh serve --sasl --http did not print `listening on ADDR host key FP http ADDR sasl ADDR`; \
                 it said {line:?}\nlog:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self { child, addr, sasl, http, db, log }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The server's log so far (trace level).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for SaslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `scram-dh users --db DB ARGS...`.
pub fn users(db: &Path, args: &[&str]) -> Output {
    run(Command::new(BIN).arg("users").arg("--db").arg(db).args(args), None, "scram-dh users")
}

/// `scram-dh users import-verifier USER VERIFIER`; must print `imported USER`.
pub fn import_verifier(db: &Path, user: &str, verifier: &str) {
    let out = users(db, &["import-verifier", user, verifier]);
    assert!(out.status.success(), "{}", show("users import-verifier", &out));
    assert!(
        text(&out.stdout).contains(&format!("imported {user}")),
        "{}",
        show("users import-verifier", &out)
    );
}

/// `users export`: the verifier of `user` (`username<TAB>verifier` lines).
pub fn exported_verifier(db: &Path, user: &str) -> String {
    let out = users(db, &["export"]);
    assert!(out.status.success(), "{}", show("users export", &out));
    text(&out.stdout)
        .lines()
        .find_map(|l| l.split_once('\t').filter(|(u, _)| *u == user).map(|(_, v)| v.to_owned()))
        .unwrap_or_else(|| panic!("users export has no line for {user:?}:\n{}", text(&out.stdout)))
}

/// `scram-dh login USER --sasl ADDR --password-stdin` (our standard-SCRAM client),
/// with a private HOME so nothing touches the real config.
pub fn our_sasl_login(home: &Path, addr: &str, user: &str, password: &str) -> Output {
    run(
        Command::new(BIN)
            .args(["login", user, "--sasl", addr, "--password-stdin"])
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env_remove("SCRAM_DH_SERVER"),
        Some(password),
        "scram-dh login --sasl",
    )
}

/// `scram-dh login --sasl` succeeded with the contract's line.
pub fn assert_our_login_ok(out: &Output, user: &str, what: &str) {
    assert!(
        out.status.success()
            && text(&out.stdout).contains(&format!("authenticated as {user} (server signature verified)")),
        "{}",
        show(what, out)
    );
}

// ---------------------------------------------------------------------------
// Python scramp over the gsasl line framing.

/// `interop/scramp_peer.py client ADDR USER` (password on stdin): exit 0 success
/// (server signature verified), 3 authentication failed, 4 connection failure.
pub fn scramp_client(addr: &str, user: &str, password: &str) -> Output {
    ensure_peers();
    run(
        Command::new(python())
            .arg(root().join("interop/scramp_peer.py"))
            .args(["--trace", "client", addr, user]),
        Some(password),
        "scramp_peer.py client",
    )
}

/// `interop/scramp_peer.py server`: a scramp server on 127.0.0.1:0 speaking the
/// framing of our `serve --sasl`; each exchange prints `ok USER` or `fail USER ...`.
pub struct ScrampServer {
    child: Child,
    pub addr: String,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl ScrampServer {
    /// `users`: (name, password) pairs made into records with scramp's
    /// `make_auth_info` (i = 4096); `verifiers`: (name, `SCRAM-SHA-256$...`).
    pub fn start(users: &[(&str, &str)], verifiers: &[(&str, &str)]) -> Self {
        ensure_peers();
        let mut cmd = Command::new(python());
        cmd.arg(root().join("interop/scramp_peer.py")).args(["--trace", "server"]);
        for (u, p) in users {
            cmd.args(["--user", u, p]);
        }
        for (u, v) in verifiers {
            cmd.args(["--verifier", u, v]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start scramp_peer.py server: {e}"));
        let stderr = drain(child.stderr.take());
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(addr) = first.strip_prefix("listening ").map(str::to_owned) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scramp_peer.py server did not start: said {first:?}\nstderr:\n{}",
                text(&stderr.join().unwrap())
            );
        };
        Self { child, addr, lines, stderr }
    }

    /// The server's verdict on the exchange a client just finished (`ok USER` /
    /// `fail USER ...`), or `None` after 10 s (no exchange reached it).
    pub fn verdict(&self) -> Option<String> {
        self.lines.recv_timeout(Duration::from_secs(10)).ok()
    }
}

impl Drop for ScrampServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// GNU SASL through socat. The gsasl arguments travel in the environment of a
// wrapper script (socat's address syntax would split a `,` in a username), and
// the wrapper writes gsasl's own exit status to a file: socat's exit status is
// not gsasl's when the peer closes first (socat then exits 0 on the EOF).

/// A wrapper running `gsasl ARGS`, then writing its exit status to the returned file.
fn gsasl_wrapper(dir: &Path, args: &str) -> (PathBuf, PathBuf) {
    let tag = format!("{:08x}", rand_u32());
    let path = dir.join(format!("gsasl-{tag}.sh"));
    let status = dir.join(format!("gsasl-{tag}.status"));
    std::fs::write(&path, format!("#!/bin/sh\ngsasl {args}\necho $? > '{}'\n", status.display())).unwrap();
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&path, perm).unwrap();
    (path, status)
}

/// gsasl's exit status from the wrapper's file (it may land just after socat exits).
fn gsasl_status(file: &Path, what: &str, said: &str) -> ExitStatus {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(file)
            && let Ok(code) = s.trim().parse::<i32>()
        {
            return std::os::unix::process::ExitStatusExt::from_raw(code << 8);
        }
        if Instant::now() > end {
            panic!("{what}: gsasl wrote no exit status (did socat start it?)\n{said}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `socat TCP:ADDR EXEC:'gsasl --client --quiet --no-cb -m SCRAM-SHA-256 -a USER -p PW'`.
/// The status is gsasl's: 0 when it authenticated the server, 1 otherwise; its
/// stderr is socat's.
pub fn gsasl_client(dir: &Path, addr: &str, user: &str, password: &str) -> Output {
    ensure_peers();
    let (script, status) = gsasl_wrapper(
        dir,
        r#"--client --quiet --no-cb -m SCRAM-SHA-256 -a "$GSASL_USER" -p "$GSASL_PASSWORD""#,
    );
    let mut out = run(
        Command::new("socat")
            .arg(format!("TCP:{addr}"))
            .arg(format!("EXEC:{}", script.display()))
            .env("GSASL_USER", user)
            .env("GSASL_PASSWORD", password),
        None,
        "socat + gsasl --client",
    );
    out.status = gsasl_status(&status, "gsasl --client", &show("socat", &out));
    out
}

/// gsasl --client succeeded: exit 0 and no gsasl error.
pub fn assert_gsasl_ok(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert!(out.status.success() && !err.contains("gsasl: mechanism error"), "{}", show(what, out));
}

/// gsasl --client refused: exit non-zero and gsasl's error line.
pub fn assert_gsasl_refused(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("gsasl: mechanism error"), "{}", show(what, out));
}

/// One `gsasl --server -p PASSWORD` behind `socat TCP-LISTEN:0` (one connection).
/// gsasl's server accepts any username with that password; with no `-m` it reads
/// the mechanism line, echoes it and sends an empty initial challenge.
pub struct GsaslServer {
    child: Child,
    pub addr: String,
    stderr: mpsc::Receiver<String>,
    status: PathBuf,
}

impl GsaslServer {
    pub fn start(dir: &Path, password: &str) -> Self {
        ensure_peers();
        let (script, status) = gsasl_wrapper(dir, r#"--server -p "$GSASL_PASSWORD""#);
        let mut child = Command::new("socat")
            .args(["-d", "-d", "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr"])
            .arg(format!("EXEC:{}", script.display()))
            .env("GSASL_PASSWORD", password)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start socat + gsasl --server: {e}"));
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // socat -d -d: "... N listening on AF=2 127.0.0.1:PORT"
        let mut seen = Vec::new();
        let addr = loop {
            match stderr.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    if let Some(at) = line.find("listening on AF=2 ") {
                        break line[at + "listening on AF=2 ".len()..].trim().to_owned();
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("socat TCP-LISTEN + gsasl --server did not listen:\n{}", seen.join("\n"));
                }
            }
        };
        Self { child, addr, stderr, status }
    }

    /// Waits (10 s at most: call it once the client is done) for socat's one
    /// connection to end: (gsasl's exit status, or `None` when socat was still
    /// running and got killed; what socat and gsasl said on stderr).
    pub fn finish(mut self) -> (Option<ExitStatus>, String) {
        let done = wait_deadline(&mut self.child, Duration::from_secs(10));
        let mut said = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(300)) {
            said.push(line);
        }
        let said = said.join("\n");
        match done {
            None => (None, format!("{said}\n(socat still running after 10 s: killed)")),
            Some(_) => (Some(gsasl_status(&self.status, "gsasl --server", &said)), said),
        }
    }
}

impl Drop for GsaslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gsasl -k -m SCRAM-SHA-256 -p PW --iteration-count=IC --salt=B64`, which prints
/// `{SCRAM-SHA-256}IC,SALT,STOREDKEY,SERVERKEY`; returned as is.
pub fn gsasl_mkpasswd(password: &str, ic: u32, salt_b64: &str) -> String {
    ensure_peers();
    let out = run(
        Command::new("gsasl")
            .args(["-k", "-m", "SCRAM-SHA-256", "-p", password])
            .arg(format!("--iteration-count={ic}"))
            .arg(format!("--salt={salt_b64}")),
        None,
        "gsasl -k",
    );
    assert!(out.status.success(), "{}", show("gsasl -k", &out));
    text(&out.stdout).trim().to_owned()
}

/// `{SCRAM-SHA-256}IC,SALT,SK,SVK` (gsasl -k) as `SCRAM-SHA-256$IC:SALT$SK:SVK`
/// (PostgreSQL's form, which `users import-verifier` takes).
pub fn gsasl_to_postgres(gsasl: &str) -> String {
    let rest = gsasl
        .strip_prefix("{SCRAM-SHA-256}")
        .unwrap_or_else(|| panic!("gsasl -k printed {gsasl:?}, not {{SCRAM-SHA-256}}..."));
    let parts: Vec<&str> = rest.split(',').collect();
    assert!(parts.len() >= 4, "gsasl -k printed {gsasl:?}: want IC,SALT,STOREDKEY,SERVERKEY");
    format!("SCRAM-SHA-256${}:{}${}:{}", parts[0], parts[1], parts[2], parts[3])
}

// ---------------------------------------------------------------------------
// RFC 7804 clients.

/// `interop/http_scram.py URL USER` (requests-scram; it checks the server
/// signature from Authentication-Info with scramp). Exit 0 / 3 / 4.
pub fn requests_scram(url: &str, user: &str, password: &str) -> Output {
    ensure_peers();
    run(
        Command::new(python()).arg(root().join("interop/http_scram.py")).args(["--trace", url, user]),
        Some(password),
        "http_scram.py (requests-scram)",
    )
}

/// `node interop/node/gel_client.mjs BASE USER` (npm gel's getHTTPSCRAMAuth against
/// BASE/auth/token; gel checks the server signature). Exit 0 / 3 / 4.
pub fn gel(base: &str, user: &str, password: &str) -> Output {
    ensure_peers();
    run(
        Command::new("node").arg(root().join("interop/node/gel_client.mjs")).args([base, user, "--trace"]),
        Some(password),
        "gel_client.mjs (npm gel)",
    )
}

// ---------------------------------------------------------------------------
// PostgreSQL 15: one throwaway cluster per test process.

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A cluster in a tempdir owned by `postgres`, listening on 127.0.0.1:PORT (a free
/// port) and a Unix socket in its directory; host connections need SCRAM, local
/// ones (used for administration as `postgres`) are trusted. Stopped on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

/// Runs `args` as the `postgres` user (runuser as root, else sudo -n).
fn as_postgres(args: &[&str]) -> Command {
    let root = rustix::process::geteuid().is_root();
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "-u", "postgres", "--"]);
        c
    };
    cmd.args(args);
    cmd
}

impl Postgres {
    fn start() -> Self {
        ensure_peers();
        let dir = tempfile::Builder::new().prefix("scram-dh-pg-").tempdir().unwrap();
        let owner = run(Command::new("id").args(["-u", "postgres"]), None, "id -u postgres");
        assert!(owner.status.success(), "no postgres user: {}", show("id -u postgres", &owner));
        let uid: u32 = text(&owner.stdout).trim().parse().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
        let data = dir.path().join("data");
        let (data_s, dir_s) = (data.to_str().unwrap().to_owned(), dir.path().to_str().unwrap().to_owned());
        let initdb = format!("{PG_BIN}/initdb");
        let out = run(
            &mut as_postgres(&[
                &initdb,
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-sync",
            ]),
            None,
            "initdb",
        );
        assert!(out.status.success(), "{}", show("initdb (as postgres)", &out));
        let port = free_port();
        let pg_ctl = format!("{PG_BIN}/pg_ctl");
        let opts = format!("-p {port} -k {dir_s} -c listen_addresses=127.0.0.1");
        let logfile = format!("{dir_s}/postgres.log");
        let out = run(
            &mut as_postgres(&[&pg_ctl, "-D", &data_s, "-o", &opts, "-l", &logfile, "-w", "start"]),
            None,
            "pg_ctl start",
        );
        assert!(
            out.status.success(),
            "{}\nserver log:\n{}",
            show("pg_ctl start", &out),
            std::fs::read_to_string(&logfile).unwrap_or_default()
        );
        Self { dir, port }
    }

    /// One SQL command as the superuser over the Unix socket; its `-At` output.
    pub fn sql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = run(
            &mut as_postgres(&[
                "psql",
                "-X",
                "-h",
                self.dir.path().to_str().unwrap(),
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ]),
            None,
            "psql (superuser)",
        );
        assert!(out.status.success(), "{}", show(&format!("psql -c {sql:?}"), &out));
        text(&out.stdout)
    }

    /// `psql` over TCP 127.0.0.1 with SCRAM (PGPASSWORD, sslmode=disable): prints
    /// `current_user` on success.
    pub fn login(&self, user: &str, password: &str) -> Output {
        let conn = format!(
            "host=127.0.0.1 port={} dbname=postgres sslmode=disable user={}",
            self.port,
            conninfo_quote(user)
        );
        run(
            Command::new("psql")
                .args(["-X", "-At", "-c", "SELECT current_user", &conn])
                .env("PGPASSWORD", password),
            None,
            "psql login",
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let pg_ctl = format!("{PG_BIN}/pg_ctl");
        let _ = as_postgres(&[&pg_ctl, "-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The cluster of this test process: started by the first test that asks, stopped
/// when the last test holding it is done.
pub fn postgres() -> Arc<Postgres> {
    static CLUSTER: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());
    let mut slot = CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(pg) = slot.upgrade() {
        return pg;
    }
    let pg = Arc::new(Postgres::start());
    *slot = Arc::downgrade(&pg);
    pg
}

/// An SQL identifier in double quotes.
pub fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// An SQL string literal.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A libpq conninfo value in single quotes.
fn conninfo_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}
