//! # scram-dh
//!
//! SCRAM-SHA-256 (RFC 5802, RFC 7677) with an ephemeral Diffie-Hellman
//! registration: a password that never crosses the wire, nothing an eavesdropper
//! records can be replayed, both sides prove themselves, and the connection can
//! become an encrypted channel afterwards.
//!
//! This crate is the sans-IO protocol core: typed client and server steps for
//! registration ([`register`]) and authentication ([`auth`]), standard
//! SCRAM-SHA-256 for password clients (RFC 5802 text, `tls-exporter` channel
//! binding: [`sasl`]), the DH groups
//! ([`dh`]), the wire messages ([`message`]), the credential and session store
//! traits with in-memory implementations ([`record`], [`session`], [`cluster`]), and a server
//! driver over those traits ([`engine`]). It reads no clock and no OS randomness:
//! time and an RNG are arguments, so [`pair::Pair`] replays exact transcripts.
//!
//! ```
//! use scram_dh::pair::Pair;
//! use scram_dh::{Group, Labels};
//!
//! let mut pair = Pair::new(1);
//! let cred = pair.register("alice", "correct horse", Group::X25519, Labels::Random)?;
//! let (client, server) = pair.login("alice", cred.secret(), None)?;
//! assert_eq!(client.username(), server.username());
//! # Ok::<(), scram_dh::Error>(())
//! ```
//!
//! ## Features
//! None: this crate has no optional behaviour. Storage backends live in
//! `scram-dh-store`, sockets and HTTP in `scram-dh-net`.

pub mod auth;
pub mod cluster;
mod codec;
pub mod config;
pub mod credential;
pub mod crypto;
pub mod dh;
pub mod engine;
pub mod error;
pub mod hostkey;
pub mod keys;
pub mod message;
pub mod mock;
pub mod nonce;
pub mod null;
pub mod pair;
pub mod provision;
pub mod record;
pub mod register;
pub mod sasl;
pub mod secret;
pub mod session;
pub mod step;
pub mod username;

/// Entry points for the fuzz targets and property tests outside this crate;
/// not an API. They return only whether parsing succeeded, never a state.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `data` as stored session state of every kind; `true` if any parses.
    #[must_use]
    pub fn session_state(data: &[u8]) -> bool {
        let auth = crate::auth::server::PendingAuth::from_bytes(data).is_ok();
        let reg = crate::register::server::PendingRegistration::from_bytes(data).is_ok();
        let sasl = crate::sasl::server::PendingSasl::from_bytes(data).is_ok();
        auth || reg || sasl
    }
}

pub use config::ServerConfig;
pub use credential::{ClientCredential, ClientSecret};
pub use dh::Group;
pub use engine::{Outcome, ServerEngine};
pub use error::{Error, ErrorCode, Result};
pub use hostkey::{Fingerprint, HostKey};
pub use keys::{ClientConfig, ClientKeys, MIN_ITERATIONS};
pub use record::{CredentialStore, Labels, MemoryCredentialStore, Record};
pub use secret::{Password, SessionKeys};
pub use session::{MemorySessionStore, SessionStore};
pub use step::Step;
