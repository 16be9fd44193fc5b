//! Byte-exactness: an independent client written from SPEC.md alone
//! (`interop/spec_client.py`, Python + `cryptography`) registers, logs in and uses
//! the channel against the real binary. Needs python3 with venv and PyPI: the
//! script installs what it needs and this test fails loudly if it cannot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn independent_spec_client_against_the_server() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("interop/run.sh"))
        .env("SCRAM_DH_BIN", env!("CARGO_BIN_EXE_scram-dh"))
        .current_dir(&root)
        .output()
        .expect("run interop/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "interop failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "closing line: {last:?}");
    let passed: u32 = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed > 100, "the spec client ran its checks ({passed})");
}
