//! Registers a user in-band over modp6144, authenticates with an encrypted
//! channel, and prints every message exchanged. Deterministic: a seeded RNG and a
//! fixed clock, so the output is the same on every run.
//!
//! `cargo run --release -p scram-dh --example transcript`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scram_dh::pair::{Direction, Pair};
use scram_dh::{Group, Labels};

fn main() -> Result<(), scram_dh::Error> {
    let mut pair = Pair::new(2026);
    let password = "correct horse battery staple";
    let cred = pair.register("alice", password, Group::Modp6144, Labels::Random)?;
    let (client, server) = pair.login("alice", cred.secret(), Some(Group::Modp6144))?;
    for (dir, msg) in &pair.transcript {
        let arrow = match dir {
            Direction::ClientToServer => "C -> S",
            Direction::ServerToClient => "S -> C",
        };
        let shown = if msg.len() > 220 {
            format!("{}… ({} bytes)", scram_dh::message::truncate_chars(msg, 220), msg.len())
        } else {
            msg.clone()
        };
        println!("{arrow}  {shown}\n");
    }
    let wire: String = pair.transcript.iter().map(|(_, m)| m.as_str()).collect();
    assert!(!wire.contains(password), "the password must never be on the wire");
    println!("registered and authenticated {:?}; server agrees: {}", client.username(), server.username());
    println!("host key {}", pair.engine.config().host_key.fingerprint());
    println!(
        "channel keys agree on both sides: {}",
        client.session_keys().is_some() && client.session_keys() == server.session_keys()
    );
    println!("the password appears in none of the {} bytes on the wire", wire.len());
    Ok(())
}
