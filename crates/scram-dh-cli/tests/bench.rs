//! `scram-dh bench`, the load generator, run for real and briefly: its own child
//! server in several modes, `--json` parsed, failures counted by code against a
//! server that refuses, half-open sessions counted. Nothing here asserts on
//! speed (the figures are for BENCHMARKS.md); only on counts and shapes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use common::BIN;

fn bench(args: &[&str]) -> Output {
    Command::new(BIN).arg("bench").args(args).env_remove("SCRAM_DH_CONFIG").output().unwrap()
}

/// Runs `bench … --json` and parses its one line of stdout.
fn bench_json(args: &[&str]) -> (bool, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = bench(&all);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.lines().count(), 1, "one JSON line on stdout: {stdout:?} / {stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?} / {stderr}"));
    (out.status.success(), v)
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_f64().unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

/// The latency percentiles are present and ordered; the server's figures were
/// read from /proc (the bench's own child runs on this host).
fn check_figures(v: &Value) {
    let p = |q: &str| num(v, &["latency_ms", q]);
    assert!(p("p50") > 0.0, "{v}");
    assert!(p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("p99_9") && p("p99_9") <= p("max"));
    assert!(num(v, &["server_cpu_s"]) >= 0.0, "{v}");
    assert!(num(v, &["server_rss_kib", "after"]) > 0.0, "{v}");
    assert!(num(v, &["ops_per_s"]) > 0.0);
}

#[test]
fn null_mode_runs_the_null_protocol_against_its_own_child() {
    let (ok, v) = bench_json(&["--mode", "null", "--count", "300", "--concurrency", "4"]);
    assert!(ok, "{v}");
    assert_eq!(v["mode"], "null");
    assert_eq!(v["server"], "child");
    assert_eq!(num(&v, &["ok"]), 300.0, "{v}");
    assert_eq!(num(&v, &["failed"]), 0.0);
    assert_eq!(v["errors"], serde_json::json!({}));
    assert_eq!(num(&v, &["kinds", "null", "ok"]), 300.0);
    check_figures(&v);
}

#[test]
fn login_mode_with_memory_and_sqlite_stores() {
    for db in ["memory", "sqlite"] {
        let (ok, v) = bench_json(&["--mode", "login", "--db", db, "--count", "100", "--concurrency", "3"]);
        assert!(ok, "{v}");
        assert_eq!(v["db"], db);
        assert_eq!(num(&v, &["ok"]), 100.0, "{v}");
        check_figures(&v);
    }
    // A generator on one thread against a child on one worker (a shared 2-CPU host).
    let (ok, v) = bench_json(&["--count", "50", "--threads", "1", "--server-workers", "1"]);
    assert!(ok, "{v}");
    assert_eq!((num(&v, &["threads"]), num(&v, &["server_workers"])), (1.0, 1.0), "{v}");
    assert_eq!(num(&v, &["ok"]), 50.0, "{v}");
    // The text report, for people.
    let out = bench(&["--mode", "login-channel", "--count", "20", "--concurrency", "2"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("mode login-channel (child server, sqlite)"), "{text}");
    assert!(text.contains(": 20 ok, 0 failed,"), "{text}");
    assert!(text.contains("latency ms: p50 "), "{text}");
    assert!(text.contains("server: ") && text.contains("µs/op"), "{text}");
}

#[test]
fn mixed_register_and_gateway_modes() {
    let (ok, v) = bench_json(&[
        "--mode",
        "mixed",
        "--mix",
        "login=2,register=1",
        "--count",
        "30",
        "--concurrency",
        "3",
    ]);
    assert!(ok, "{v}");
    assert_eq!(num(&v, &["kinds", "login", "ok"]), 20.0, "{v}");
    assert_eq!(num(&v, &["kinds", "register", "ok"]), 10.0, "{v}");
    let (ok, v) = bench_json(&["--mode", "register", "--group", "modp2048", "--count", "4"]);
    assert!(ok, "{v}");
    assert_eq!(num(&v, &["ok"]), 4.0);
    // Signed requests through the gateway to the bench's own upstream, and the
    // same request straight to it.
    for mode in ["gateway", "direct"] {
        let (ok, v) = bench_json(&["--mode", mode, "--count", "40", "--concurrency", "2"]);
        assert!(ok, "{mode}: {v}");
        assert_eq!(num(&v, &["ok"]), 40.0, "{mode}: {v}");
    }
}

#[test]
fn half_open_sessions_are_counted_with_the_servers_memory() {
    let (ok, v) = bench_json(&["--mode", "half-open", "--count", "200", "--concurrency", "4"]);
    assert!(ok, "{v}");
    assert_eq!(num(&v, &["half_open", "sessions"]), 200.0, "{v}");
    assert!(num(&v, &["half_open", "rss_before_kib"]) > 0.0, "{v}");
    assert!(num(&v, &["half_open", "rss_after_kib"]) > 0.0, "{v}");
    assert!(num(&v, &["half_open", "bytes_per_session"]) >= 0.0, "{v}");
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real server (not in null mode): its address.
fn serve(dir: &std::path::Path) -> (Serve, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("s.db"))
        .env("RUST_LOG", "warn")
        .env_remove("SCRAM_DH_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = common::announced_addr(&mut child);
    (Serve(child), addr)
}

/// Against an outside server: registrations work, and null-protocol logins are
/// refused (it is no null server): every one is counted under the
/// code the server sent (`authentication_failed`, or `busy` once its penalties
/// for the failures start), and the run exits non-zero after its report.
#[test]
fn refusals_are_counted_by_code() {
    let dir = tempfile::tempdir().unwrap();
    let (_srv, addr) = serve(dir.path());
    // Registrations against an outside server learn its key first (trust on
    // first use); before the failures below, which the server penalises.
    let (ok, v) = bench_json(&["--mode", "register", "--server", &addr, "--count", "3"]);
    assert!(ok, "{v}");
    assert_eq!(num(&v, &["ok"]), 3.0, "{v}");
    let (ok, v) = bench_json(&["--mode", "null", "--server", &addr, "--count", "6", "--concurrency", "1"]);
    assert!(!ok, "{v}");
    assert_eq!(v["server"], "outside");
    assert_eq!(num(&v, &["ok"]), 0.0, "{v}");
    assert_eq!(num(&v, &["failed"]), 6.0, "{v}");
    let errors = v["errors"].as_object().unwrap();
    assert!(errors.keys().all(|k| k == "authentication_failed" || k == "busy"), "{v}");
    assert!(num(&v, &["errors", "authentication_failed"]) >= 1.0, "{v}");
    // No --server-pid: the server's figures are unknown, not made up.
    assert!(v["server_cpu_s"].is_null() && v["server_rss_kib"]["after"].is_null(), "{v}");
}

/// `serve --null-protocol` is for the TCP front alone; bad bench flags are usage errors.
#[test]
fn null_protocol_and_bench_flags_are_checked() {
    let out = Command::new(BIN)
        .args([
            "serve",
            "--null-protocol",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--db",
            "memory",
        ])
        .env_remove("SCRAM_DH_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--null-protocol is for the TCP front only"));
    for args in [
        &["--mode", "nope"][..],
        &["--mode", "mixed", "--mix", "null=1"],
        &["--mode", "gateway", "--http", "http://127.0.0.1:9"],
        &["--concurrency", "0"],
        &["--rate", "-1"],
        &["--threads", "0"],
        &["--server-workers", "0"],
        &["--server-workers", "1", "--server", "127.0.0.1:9"],
    ] {
        let out = bench(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
