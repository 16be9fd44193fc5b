//! The HTTP front through the real binary (SPEC 7): `serve --http`, `register
//! --http`, `login --http`, `http`, `logout`, `http --rfc7804`; a tampering
//! relay, the gateway in front of a Python upstream, and the canary password in
//! no HTTP byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use common::{Server, assert_absent, canary, cli, credential_path, ok};

fn url(addr: &str) -> String {
    format!("http://{addr}")
}

fn start(dir: &Path, extra: &[&str]) -> (Server, String) {
    let mut args = vec!["--http", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::start_with(dir, "127.0.0.1:0", &args);
    let http = server.http.clone().expect("serve printed its HTTP address");
    (server, http)
}

fn register_http(config: &Path, base: &str, user: &str, pw: &str, extra: &[&str]) -> String {
    let mut args = vec!["register", user, "--http", base, "--group", "x25519", "--password-stdin"];
    args.extend_from_slice(extra);
    ok(&cli(config, &args, Some(pw)))
}

const PASS: u8 = 0;
const TAMPER_BODY: u8 = 1;
const TAMPER_MAC: u8 = 2;
const TAMPER_INFO: u8 = 3;

/// A TCP relay in front of `target`: records both directions, and in a tamper
/// mode alters server-to-client bytes (the username in a body, or the first
/// character of the `Scram-DH-Mac` value).
struct Relay {
    addr: String,
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<u8>>>,
}

fn tamper(buf: &mut [u8], mode: u8, name: &[u8]) {
    match mode {
        TAMPER_BODY => {
            let n = name.len();
            let mut i = 0;
            while i + n <= buf.len() {
                if &buf[i..i + n] == name {
                    buf[i + n - 1] ^= 0x01;
                }
                i += 1;
            }
        }
        TAMPER_MAC => {
            let lower: Vec<u8> = buf.to_ascii_lowercase();
            let key = b"scram-dh-mac: ";
            if let Some(at) = lower.windows(key.len()).position(|w| w == key) {
                let v = &mut buf[at + key.len()];
                *v = if *v == b'A' { b'B' } else { b'A' };
            }
        }
        TAMPER_INFO => {
            // One base64 character inside the server signature of
            // `authentication-info: sid=<64 hex>, data=<b64 "v=...">`.
            let lower: Vec<u8> = buf.to_ascii_lowercase();
            let key = b"authentication-info: sid=";
            if let Some(at) = lower.windows(key.len()).position(|w| w == key) {
                let v = &mut buf[at + key.len() + 64 + ", data=".len() + 8];
                *v = if *v == b'A' { b'B' } else { b'A' };
            }
        }
        _ => {}
    }
}

impl Relay {
    fn start(target: &str, name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mode = Arc::new(AtomicU8::new(PASS));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (target, name) = (target.to_owned(), name.as_bytes().to_vec());
        let (m, s) = (Arc::clone(&mode), Arc::clone(&seen));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&target) else { return };
                let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_read, mut c_write) = (server, client);
                let (s1, s2) = (Arc::clone(&s), Arc::clone(&s));
                let (m2, name2) = (Arc::clone(&m), name.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        s1.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = s_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        s2.lock().unwrap().extend_from_slice(&buf[..n]);
                        tamper(&mut buf[..n], m2.load(Ordering::SeqCst), &name2);
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Self { addr, mode, seen }
    }
}

#[test]
fn http_register_login_whoami_logout_with_and_without_a_pinned_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let (server, http) = start(dir.path(), &[]);
    let base = url(&http);
    // Trust on first use, recorded in known_hosts under host:port.
    let out = register_http(&config, &base, "alice", "pw-alice", &[]);
    assert!(out.contains("logged in as alice over HTTP"), "{out}");
    let kh = std::fs::read_to_string(config.join("known_hosts")).unwrap();
    assert!(kh.contains(&format!("{http} {}", server.fingerprint)), "{kh}");
    // Pinned out of band.
    let out = register_http(&config, &base, "bob", "pw-bob", &["--fingerprint", &server.fingerprint]);
    assert!(out.contains("registered bob"), "{out}");
    // A wrong pin is refused before the password is sent (exit 3).
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let out = cli(
        &config,
        &[
            "register",
            "carol",
            "--http",
            &base,
            "--group",
            "x25519",
            "--password-stdin",
            "--fingerprint",
            wrong,
        ],
        Some("pw"),
    );
    assert!(!out.status.success());

    let out = ok(&cli(&config, &["login", "alice", "--http", &base], None));
    assert!(out.contains("logged in as alice"), "{out}");
    let session = config.join("http-sessions").join(http.replace(':', "_")).join("alice.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&session).unwrap().permissions().mode() & 0o777, 0o600);
    let who = ok(&cli(&config, &["http", "GET", "/v1/whoami", "--http", &base, "--user", "alice"], None));
    assert!(who.contains("\"username\":\"alice\""), "{who}");
    // Each run takes a fresh seq: the same request again works.
    let again = ok(&cli(&config, &["http", "GET", "/v1/whoami", "--http", &base, "--user", "alice"], None));
    assert_eq!(who, again);
    // passwd over a signed request; the new credential logs in, the old one no longer.
    let cred = credential_path(&config, &http, "alice");
    let old = std::fs::read(&cred).unwrap();
    let out = ok(&cli(&config, &["passwd", "alice", "--http", &base, "--password-stdin"], Some("pw-new")));
    assert!(out.contains("password changed for alice"), "{out}");
    assert_ne!(std::fs::read(&cred).unwrap(), old);
    ok(&cli(&config, &["login", "alice", "--http", &base], None));
    let stale = dir.path().join("old.json");
    std::fs::write(&stale, &old).unwrap();
    let out =
        cli(&config, &["login", "alice", "--http", &base, "--credential", stale.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&cli(&config, &["logout", "--http", &base, "--user", "alice"], None));
    assert!(!session.exists());
    let out = cli(&config, &["http", "GET", "/v1/whoami", "--http", &base, "--user", "alice"], None);
    assert!(!out.status.success(), "no session after logout");
    server.stop();
}

#[test]
fn a_tcp_user_logs_in_over_http_and_an_http_user_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let (server, http) = start(dir.path(), &[]);
    let base = url(&http);
    common::register(&config, &server.addr, "tcpuser", "pw-1", "random");
    let out = ok(&cli(&config, &["login", "tcpuser", "--http", &base, "--server", &server.addr], None));
    assert!(out.contains("logged in as tcpuser"), "{out}");
    register_http(&config, &base, "httpuser", "pw-2", &["--no-login"]);
    let cred = credential_path(&config, &http, "httpuser");
    let out = ok(&cli(
        &config,
        &["login", "httpuser", "--server", &server.addr, "--credential", cred.to_str().unwrap()],
        None,
    ));
    assert!(out.contains("httpuser"), "{out}");
    server.stop();
}

#[test]
fn a_tampered_response_makes_the_client_fail_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let (server, http) = start(dir.path(), &[]);
    let relay = Relay::start(&http, "dave");
    let base = url(&relay.addr);
    register_http(&config, &base, "dave", "pw-dave", &["--no-login"]);
    ok(&cli(&config, &["login", "dave", "--http", &base], None));
    let whoami = ["http", "GET", "/v1/whoami", "--http", &base, "--user", "dave"];
    ok(&cli(&config, &whoami, None));
    for mode in [TAMPER_BODY, TAMPER_MAC] {
        relay.mode.store(mode, Ordering::SeqCst);
        let out = cli(&config, &whoami, None);
        assert_eq!(out.status.code(), Some(3), "mode {mode}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("Scram-DH-Mac"));
    }
    relay.mode.store(PASS, Ordering::SeqCst);
    ok(&cli(&config, &whoami, None));
    server.stop();
}

#[test]
fn the_canary_password_is_in_no_http_byte() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let (server, http) = start(dir.path(), &[]);
    let relay = Relay::start(&http, "erin");
    let base = url(&relay.addr);
    for (user, labels) in [("erin", "random"), ("frank", "rfc")] {
        let pw = canary();
        let out = cli(
            &config,
            &["register", user, "--http", &base, "--group", "x25519", "--labels", labels, "--password-stdin"],
            Some(&pw),
        );
        ok(&out);
        ok(&cli(&config, &["login", user, "--http", &base], None));
        ok(&cli(&config, &["http", "GET", "/v1/whoami", "--http", &base, "--user", user], None));
        let seen = relay.seen.lock().unwrap().clone();
        assert!(common::contains(&seen, b"/v1/registration/password"), "the relay saw the registration");
        assert_absent("the HTTP traffic", &seen, &pw);
    }
    server.stop();
}

/// A Python `http.server` upstream on 127.0.0.1:0 that records, per request, the
/// path and the `X-Scram-DH-User` it got (`-` for none) in `log`, one per line.
fn python_upstream(log: &Path) -> (Child, String) {
    let script = r#"
import http.server, sys
log = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        users = self.headers.get_all("X-Scram-DH-User") or ["-"]
        with open(log, "a") as f:
            f.write(self.path + " " + "|".join(users) + "\n")
        body = ("hello " + users[0]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = handle_one
    do_POST = handle_one
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, format!("127.0.0.1:{}", line.trim()))
}

fn raw_request(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn the_gateway_names_the_user_to_the_upstream_and_nobody_can_forge_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let log = dir.path().join("upstream.log");
    let (mut upstream, up_addr) = python_upstream(&log);
    let (server, http) = start(dir.path(), &["--upstream", &url(&up_addr)]);
    let base = url(&http);
    register_http(&config, &base, "grace", "pw-grace", &["--no-login"]);
    ok(&cli(&config, &["login", "grace", "--http", &base], None));
    let out =
        ok(&cli(&config, &["http", "GET", "/app/signed?x=1", "--http", &base, "--user", "grace"], None));
    assert!(out.contains("hello grace"), "{out}");

    // Unsigned, with and without a forged header: 401 with the error object, never forwarded.
    for extra in ["", "X-Scram-DH-User: mallory\r\n"] {
        let resp = raw_request(
            &http,
            &format!("GET /app/unsigned HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"),
        );
        assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
        assert!(resp.contains("\"type\":\"error\""), "{resp}");
    }

    // Signed, with a forged header added: the upstream sees only the real user.
    let session_file = config.join("http-sessions").join(http.replace(':', "_")).join("grace.json");
    let mut session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&session_file).unwrap()).unwrap();
    let seq = session["next_seq"].as_u64().unwrap();
    session["next_seq"] = (seq + 1).into();
    std::fs::write(&session_file, session.to_string()).unwrap();
    let key: [u8; 32] = {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD
            .decode(session["keys"]["c2s"].as_str().unwrap())
            .unwrap();
        b.try_into().unwrap()
    };
    let k_c2s = scram_dh::secret::SymmetricKey::from_bytes(key);
    let sid = session["session_id"].as_str().unwrap();
    let auth = scram_dh_net::http_auth::Authorization::sign(sid, seq, &k_c2s, "GET", "/app/forged", b"");
    let resp = raw_request(
        &http,
        &format!(
            "GET /app/forged HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nX-Scram-DH-User: mallory\r\n\
             Connection: close\r\n\r\n",
            auth.to_header()
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains("/app/signed?x=1 grace\n"), "{seen}");
    assert!(seen.contains("/app/forged grace\n"), "{seen}");
    assert!(!seen.contains("/app/unsigned"), "{seen}");
    assert!(!seen.contains("mallory"), "{seen}");
    server.stop();
    let _ = upstream.kill();
    let _ = upstream.wait();
}

// `http METHOD PATH --rfc7804`: a password login on that one request (RFC 7804)
// for a user registered with RFC labels; nothing is saved; a wrong password, an
// unknown user and a tampered Authentication-Info exit 3, no server exits 4;
// the password is in no byte on the wire; the gateway is reached too.
#[test]
fn http_rfc7804_logs_in_with_a_password_on_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client");
    let fresh = dir.path().join("fresh");
    let (server, http) = start(dir.path(), &[]);
    let relay = Relay::start(&http, "erin");
    let base = url(&relay.addr);
    let pw = canary();
    register_http(&config, &base, "erin", &pw, &["--labels", "rfc", "--no-login"]);
    let req = |path: &str, user: &str| {
        ["http", "GET", path, "--rfc7804", "--http", &base, "-u", user, "--password-stdin"]
            .map(str::to_owned)
            .to_vec()
    };
    let run = |args: &[String], stdin: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&fresh, &args, Some(stdin))
    };
    for path in ["/v1/whoami", "/v1/auth/token"] {
        let out = ok(&run(&req(path, "erin"), &pw));
        assert_eq!(out.trim(), r#"{"username":"erin"}"#, "{path}");
    }
    assert!(!fresh.join("http-sessions").exists(), "an RFC 7804 request keeps no session");
    for (user, password) in [("erin", "wrong-password"), ("nobody", pw.as_str())] {
        let out = run(&req("/v1/whoami", user), password);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{user}: {stderr}");
        assert!(stderr.contains("invalid-proof"), "{user}: {stderr}");
    }
    relay.mode.store(TAMPER_INFO, Ordering::SeqCst);
    let out = run(&req("/v1/whoami", "erin"), &pw);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("Authentication-Info"), "{stderr}");
    assert!(out.stdout.is_empty(), "a body without a verified signature is not printed");
    relay.mode.store(PASS, Ordering::SeqCst);
    // A signed-only route is refused to an RFC 7804 client (exit 3).
    let mut logout = req("/v1/logout", "erin");
    logout[1] = "POST".into();
    assert_eq!(run(&logout, &pw).status.code(), Some(3));
    // Usage: --rfc7804 needs --http and --user; --password-stdin needs --rfc7804.
    let out = cli(&fresh, &["http", "GET", "/v1/whoami", "--rfc7804", "--http", &base], Some(&pw));
    assert_eq!(out.status.code(), Some(2));
    let out = cli(&fresh, &["http", "GET", "/v1/whoami", "--password-stdin"], Some(&pw));
    assert_eq!(out.status.code(), Some(2));
    let seen = relay.seen.lock().unwrap().clone();
    assert_absent("the RFC 7804 exchanges", &seen, &pw);
    assert!(common::contains(&seen, b"SCRAM-SHA-256 sid="), "the exchange went through the relay");
    let log = server.stop();
    assert!(log.contains("mechanism=\"SCRAM-SHA-256\""), "the login is logged");
    assert_absent("the server log", log.as_bytes(), &pw);
    // Nobody listening: exit 4.
    let gone = url(&http);
    let args = ["http", "GET", "/v1/whoami", "--rfc7804", "--http", &gone, "-u", "erin", "--password-stdin"];
    let out = cli(&fresh, &args, Some(&pw));
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The value of the unlabelled metric `name` in a `GET /metrics` of `http`
/// (`None`: the line is absent).
fn scrape_metric(http: &str, name: &str) -> Option<u64> {
    let text = raw_request(http, "GET /metrics HTTP/1.1\r\nHost: scram-dh\r\nConnection: close\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    common::metric(&text, name)
}

#[test]
fn serve_counts_abandoned_http_handshakes_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = start(dir.path(), &["--ttl", "1"]);
    let (live, expired) = ("scram_dh_handshake_sessions", "scram_dh_handshake_sessions_expired_total");
    assert_eq!(scrape_metric(&http, expired), Some(0), "serve reports the expired total");
    // Two A1s whose A3 never comes.
    for nonce in [0xa1a1, 0xa1a2] {
        let body = common::lone_a1_json(nonce);
        let request = format!(
            "POST /v1/auth/pairing HTTP/1.1\r\nHost: scram-dh\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let reply = raw_request(&http, &request);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    assert_eq!(scrape_metric(&http, live), Some(2));
    assert_eq!(scrape_metric(&http, expired), Some(0));
    // The memory store is this process's own: no shared-store gauge beside it.
    assert_eq!(scrape_metric(&http, "scram_dh_handshake_sessions_shared"), None);
    // Past the 1 s TTL, a scrape of the quiet server finds both expired.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(scrape_metric(&http, live), Some(0));
    assert_eq!(scrape_metric(&http, expired), Some(2));
    server.stop();
}
