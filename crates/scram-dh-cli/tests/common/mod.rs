//! Helpers shared by the end-to-end test crates (`e2e`, `sigkill`, `capture`, `bench`, …):
//! the real server binary on loopback, the real client binary, canaries and the
//! search for a secret in every encoding.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

pub const BIN: &str = env!("CARGO_BIN_EXE_scram-dh");

/// The real `scram-dh serve` on `<dir>/server.db`, trace-level logs in a file.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub fingerprint: String,
    pub log: PathBuf,
    /// The HTTP front's address, when started with `--http`.
    pub http: Option<String>,
    /// The whole `listening on …` line (with `sasl ADDR`, `sasl-tls ADDR` when served).
    pub announce: String,
}

impl Server {
    pub fn start(dir: &Path, listen: &str) -> Self {
        Self::start_with(dir, listen, &[])
    }

    /// Starts with `extra` flags; panics with the server's log if it does not
    /// print its `listening on ADDR host key FP` line.
    pub fn start_with(dir: &Path, listen: &str, extra: &[&str]) -> Self {
        Self::try_start(dir, listen, extra).unwrap_or_else(|log| panic!("{log}"))
    }

    /// As [`Server::start_with`], returning the log instead of panicking.
    pub fn try_start(dir: &Path, listen: &str, extra: &[&str]) -> Result<Self, String> {
        let log = dir.join(format!("server-{}-{:08x}.log", std::process::id(), rand_u32()));
        // Every test client is 127.0.0.1, like users behind one NAT: lift the per-peer
        // failed-proof penalties that a run of deliberate wrong logins would trigger
        // (they have tests of their own in the net crate and tests/hardening.rs).
        let limits = dir.join("test-limits.toml");
        std::fs::write(&limits, "[limits]\npeer_free_failures = 1000000\naccount_free_failures = 1000000\n")
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", listen, "--config"]).arg(&limits);
        // `<dir>/server.db` unless the caller names a database (e.g. PostgreSQL).
        if !extra.contains(&"--db") {
            cmd.arg("--db").arg(dir.join("server.db"));
        }
        let mut child = cmd
            .args(["--registrations-per-sec", "1000", "--registration-burst", "1000"])
            .args(["--max-handshakes-per-peer", "500", "--max-handshakes", "1000"])
            .args(["--max-connections-per-peer", "500", "--dh-per-sec", "1000", "--dh-burst", "1000"])
            .args(extra)
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
        if !line.starts_with("listening on ") || words.len() < 6 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "server said: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        // "... http 127.0.0.1:PORT" with `--http`.
        let http = (words.len() >= 8 && words[6] == "http").then(|| words[7].to_owned());
        Ok(Self {
            addr: words[2].to_owned(),
            fingerprint: words[5].to_owned(),
            announce: line.trim_end().to_owned(),
            child,
            log,
            http,
        })
    }

    /// SIGTERM and wait: a graceful shutdown must exit 0. Returns the log.
    pub fn stop(mut self) -> String {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "server exit status {exit:?}");
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL and wait.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TCP address a `serve` child announces on its first stdout line
/// (`listening on ADDR host key FP …`); the child's stdout is taken.
pub fn announced_addr(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    line.split_whitespace().nth(2).unwrap().to_owned()
}

pub fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    u32::from_le_bytes(b)
}

pub fn canary() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    format!("canary-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// The client binary with `--config-dir config`; `stdin` is one line (a password).
pub fn cli_command(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--config-dir")
        .arg(config)
        .env_remove("SCRAM_DH_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Feeds `stdin` (one line) to a child spawned from [`cli_command`].
pub fn feed(child: &mut Child, stdin: Option<&str>) {
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        let _ = input.write_all(s.as_bytes());
        let _ = input.write_all(b"\n");
    }
}

pub fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = cli_command(config, args).spawn().unwrap();
    feed(&mut child, stdin);
    child.wait_with_output().unwrap()
}

pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn register(config: &Path, server: &str, user: &str, password: &str, labels: &str) -> String {
    ok(&cli(
        config,
        &["register", user, "--server", server, "--group", "x25519", "--labels", labels, "--password-stdin"],
        Some(password),
    ))
}

/// Where the client keeps `user`'s credential for `server` (as `paths::credential_path`).
pub fn credential_path(config: &Path, server: &str, user: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' }).collect()
    };
    config.join("credentials").join(safe(server)).join(format!("{}.json", safe(user)))
}

/// `secret` as it could appear if it leaked: raw, hex, HEX, base64 and base64url
/// (padded or not, and starting 1 or 2 bytes into a longer base64 blob).
pub fn encodings(secret: &str) -> Vec<(&'static str, Vec<u8>)> {
    byte_encodings(secret.as_bytes())
}

/// [`encodings`] of any bytes (keys, salted passwords).
pub fn byte_encodings(b: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let mut out = vec![
        ("raw", b.to_vec()),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_uppercase().into_bytes()),
        ("base64", STANDARD.encode(b).into_bytes()),
        ("base64-nopad", STANDARD_NO_PAD.encode(b).into_bytes()),
        ("base64url", URL_SAFE.encode(b).into_bytes()),
        ("base64url-nopad", URL_SAFE_NO_PAD.encode(b).into_bytes()),
    ];
    // Inside a longer blob the secret may start at byte 1 or 2 of a 3-byte group:
    // then only the groups made of secret bytes alone are predictable.
    for (offset, name) in [(1, "base64+1"), (2, "base64+2")] {
        let shifted = [vec![0u8; offset], b.to_vec()].concat();
        let end = shifted.len() / 3 * 4;
        out.push((name, STANDARD_NO_PAD.encode(&shifted).as_bytes()[4..end].to_vec()));
        let url = URL_SAFE_NO_PAD.encode(&shifted);
        out.push((if offset == 1 { "base64url+1" } else { "base64url+2" }, url.as_bytes()[4..end].to_vec()));
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn assert_absent(what: &str, haystack: &[u8], secret: &str) {
    for (name, needle) in encodings(secret) {
        assert!(!contains(haystack, &needle), "password ({name}) found in {what}");
    }
}

/// The JSON of an A1 (`POST /v1/auth/pairing`) for the unknown user `nobody` with
/// client nonce `n` (as 64 hex digits), for tests that never follow it up: the
/// server answers with a mock reply and keeps a handshake session all the same.
/// HTTP wants channel keys; the X25519 base point will do.
pub fn lone_a1_json(n: u32) -> String {
    let key = "CQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    format!(
        r#"{{"type":"auth_pairing","username":"nobody","client_nonce":"{n:064x}","group":"x25519","public_key":"{key}"}}"#
    )
}

/// The value of the unlabelled metric `name` in a Prometheus text exposition
/// (`None`: the line is absent).
pub fn metric(text: &str, name: &str) -> Option<u64> {
    let prefix = format!("{name} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.trim().parse().unwrap())
}
