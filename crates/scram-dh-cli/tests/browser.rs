//! The browser client (issue 11), through the real binary and a real browser:
//! `web/test/browser.mjs` drives headless Debian Chromium (playwright-core)
//! against the page a `scram-dh serve --http` serves — register, login,
//! whoami, a signed request, logout then a refusal, RFC 7804, the CLI and the
//! browser logging in as each other's users, the @noble fallback with
//! WebCrypto's X25519 and ChaCha20-Poly1305 hidden, and no canary password in
//! any request — and writes `target/web-test/after-login.png`.
//!
//! `web/test/client.mjs` (Node.js, `node --test`) hands the same bundle each
//! server reply tampered with in one way and checks each refusal and its code.
//! The JSDoc types check under TypeScript's `--strict`. And the embedded bundle is what its sources build (`web/build.mjs
//! --check`, esbuild as locked). `scripts/peers.sh` installs Chromium and
//! `web/node_modules`; without them these tests fail, never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// Runs `node <args>` in `web/`; panics with its output unless it succeeds.
fn node(args: &[&str], envs: &[(&str, PathBuf)]) -> String {
    let web = root().join("web");
    assert!(
        web.join("node_modules").join("playwright-core").is_dir(),
        "web/node_modules is missing: run scripts/peers.sh (it runs `npm ci` in web/)"
    );
    let mut cmd = Command::new("node");
    cmd.args(args).current_dir(&web);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running node (scripts/peers.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node {} failed:\n{text}", args.join(" "));
    text
}

#[test]
fn bundle_matches_its_sources() {
    let out = node(&["build.mjs", "--check"], &[]);
    assert!(out.contains("matches its sources"), "{out}");
}

/// The JSDoc types of the module and the page hold (`tsc --checkJs --strict`, as
/// locked), and a TypeScript app type-checks against the emitted declarations
/// (`web/dist/types/`), its deliberate misuses refused (`@ts-expect-error`).
#[test]
fn jsdoc_types_check() {
    node(&["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], &[]);
    node(&["node_modules/typescript/bin/tsc", "-p", "tsconfig.consumer.json"], &[]);
}

#[test]
fn client_refuses_tampered_replies() {
    let out = node(
        &["--test", "test/client.mjs"],
        &[("SCRAM_DH_BIN", PathBuf::from(env!("CARGO_BIN_EXE_scram-dh")))],
    );
    assert!(out.contains("# fail 0") && !out.contains("# pass 0"), "{out}");
}

#[test]
fn browser_drives_the_page_against_the_server() {
    let shots = root().join("target").join("web-test");
    let out = node(
        &["test/browser.mjs"],
        &[
            ("SCRAM_DH_BIN", PathBuf::from(env!("CARGO_BIN_EXE_scram-dh"))),
            ("SCRAM_DH_SCREENSHOT_DIR", shots.clone()),
        ],
    );
    println!("{out}");
    assert!(out.contains("# all ") && !out.contains("not ok"), "{out}");
    // Every step the issue names ran (the test names them; a silently shorter run fails here).
    for step in [
        "register in the browser",
        "log in",
        "whoami shows the user",
        "a signed request",
        "after logout the server refuses the session",
        "the CLI logs in",
        "the browser logs in as the user the CLI registered",
        "log in on the fallback path",
        "no request carries a canary password",
    ] {
        assert!(out.contains(&format!(" - {step}")), "step {step:?} did not run:\n{out}");
    }
    let png = std::fs::read(shots.join("after-login.png")).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "the screenshot is not a real PNG");
}
