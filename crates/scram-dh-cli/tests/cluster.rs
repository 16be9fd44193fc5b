//! `serve --cluster-secret-file` (issue 9): nodes given the same cluster secret
//! and host key answer an unknown user alike (one mock salt), nodes with
//! different secrets do not, and a weak secret file is refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{BIN, Server};

fn secret_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A2's salt for `user` (a fresh A1 over the JSON wire format).
fn salt_for(addr: &str, user: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let nonce: String = (0..32).map(|_| format!("{:02x}", common::rand_u32() as u8)).collect();
    writeln!(stream, r#"{{"type":"auth_pairing","username":"{user}","client_nonce":"{nonce}"}}"#).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    v["salt"].as_str().unwrap_or_else(|| panic!("no salt in {line}")).to_owned()
}

fn node(dir: &Path, name: &str, host_key: &Path, secret: &Path) -> Server {
    let node_dir = dir.join(name);
    std::fs::create_dir_all(&node_dir).unwrap();
    Server::start_with(
        &node_dir,
        "127.0.0.1:0",
        &["--host-key", host_key.to_str().unwrap(), "--cluster-secret-file", secret.to_str().unwrap()],
    )
}

#[test]
fn nodes_sharing_the_cluster_secret_answer_unknown_users_alike() {
    let dir = tempfile::tempdir().unwrap();
    let host_key = dir.path().join("shared.hostkey");
    let a_secret = secret_file(dir.path(), "a.secret", &[7; 32], 0o600);
    let b_secret = secret_file(dir.path(), "b.secret", &[8; 48], 0o600);
    let a = node(dir.path(), "a", &host_key, &a_secret);
    let b = node(dir.path(), "b", &host_key, &a_secret);
    let c = node(dir.path(), "c", &host_key, &b_secret);
    assert_eq!(a.fingerprint, b.fingerprint, "one host key");
    let (sa, sb, sc) = (salt_for(&a.addr, "ghost"), salt_for(&b.addr, "ghost"), salt_for(&c.addr, "ghost"));
    assert_eq!(sa, sb, "same cluster secret: the same mock salt on both nodes");
    assert_ne!(sa, sc, "another cluster secret: another mock salt");
    assert_eq!(sa, salt_for(&a.addr, "ghost"), "stable per node");
}

#[test]
fn a_short_or_readable_cluster_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, mode, says) in
        [("short", &[1u8; 31][..], 0o600, "at least 32"), ("open", &[1u8; 32][..], 0o644, "chmod 600")]
    {
        let path = secret_file(dir.path(), name, bytes, mode);
        let out = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join(format!("{name}.db")))
            .arg("--cluster-secret-file")
            .arg(&path)
            .env_remove("SCRAM_DH_CONFIG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{name}");
    }
}
