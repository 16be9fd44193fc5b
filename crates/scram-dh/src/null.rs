//! The null protocol: a login of the same message count, JSON shapes and sizes as
//! a real one (SPEC 7, section 4, without a channel), with no cryptography and no
//! storage. **For benchmarks only**: a server in null mode lets every login in.
//!
//! With [`ServerConfig::null_protocol`](crate::ServerConfig::null_protocol) set,
//! [`ServerEngine::handle`](crate::ServerEngine::handle) answers here instead of
//! running the protocol: A1 gets an A2 (a fixed 32-byte salt, the configured ic,
//! the client's nonce joined to a counter-based server nonce) and A3 an A4 (a
//! fixed 32-byte signature), touching neither the credential store nor the
//! session store, and calling no HMAC, PBKDF2, DH, AEAD or random number
//! generator. Everything around the engine (framing, admission, JSON parsing,
//! outcome handling) runs as for a real login, so `scram-dh bench --mode null`
//! against it measures that path alone, and the real protocol's cost shows as
//! the ratio of the two. A1 asking for a channel and registration messages are
//! refused (`unsupported`).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::auth::server::Authenticated;
use crate::config::ServerConfig;
use crate::engine::Outcome;
use crate::error::Error;
use crate::message::{
    AuthClientProof, AuthPairing, AuthPairingReply, AuthProof, ClientMessage, ServerMessage,
};
use crate::nonce::{CombinedNonce, Nonce};

/// The username every null-protocol login authenticates as (the server never
/// learns the real one at A3: it keeps no session).
pub const NULL_USERNAME: &str = "null-protocol";

/// The salt and signature the null server sends (the real ones' sizes).
const DUMMY_32: [u8; 32] = [0x5a; 32];

/// Counter for the server halves of the combined nonces.
static SERVER_NONCES: AtomicU64 = AtomicU64::new(0);

/// A server nonce from the counter: 24 zero bytes, then the count big-endian.
fn server_nonce() -> Nonce {
    let mut b = [0u8; 32];
    let n = SERVER_NONCES.fetch_add(1, Ordering::Relaxed);
    b[24..].copy_from_slice(&n.to_be_bytes());
    Nonce::from_bytes(b)
}

/// The null server's answer to one client message.
pub(crate) fn handle(msg: ClientMessage, config: &ServerConfig) -> Outcome {
    match msg {
        ClientMessage::AuthPairing(m) => pairing(&m, config),
        ClientMessage::AuthClientProofGeneration(m) => proof(&m),
        ClientMessage::RegistrationPairing(_) | ClientMessage::RegistrationSendPassword(_) => {
            Outcome::failed(Error::Unsupported("null protocol server: no registration".into()), None)
        }
    }
}

fn pairing(m: &AuthPairing, config: &ServerConfig) -> Outcome {
    if m.public_key.is_some() || m.group.is_some() {
        return Outcome::failed(Error::Unsupported("null protocol server: no channel".into()), None);
    }
    let client = match Nonce::parse(&m.client_nonce) {
        Ok(n) => n,
        Err(e) => return Outcome::failed(e, None),
    };
    let nonce = CombinedNonce { client, server: server_nonce() }.to_wire();
    Outcome::Continue(ServerMessage::AuthPairing(AuthPairingReply {
        salt: DUMMY_32.to_vec().into(),
        ic: config.ic,
        nonce,
        public_key: None,
    }))
}

fn proof(m: &AuthClientProof) -> Outcome {
    if let Err(e) = CombinedNonce::parse(&m.nonce) {
        return Outcome::failed(e, None);
    }
    if m.client_proof.as_bytes().len() != DUMMY_32.len() {
        return Outcome::failed(Error::invalid("client_proof must be 32 bytes"), None);
    }
    Outcome::Authenticated {
        reply: ServerMessage::AuthProof(AuthProof {
            server_signature: DUMMY_32.to_vec().into(),
            session_id: None,
        }),
        auth: Authenticated::null(NULL_USERNAME.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn config() -> ServerConfig {
        ServerConfig::new(crate::HostKey::from_seed(&[7; 32]), [1; 32])
    }

    /// A2 and A4 have the real messages' shapes and sizes; the A2 nonce starts with
    /// the client's; every A1 gets a fresh server nonce.
    #[test]
    fn answers_a1_and_a3_with_real_shapes() {
        let c = config();
        let client = "ab".repeat(32);
        let a1 = ClientMessage::from_json(&format!(
            r#"{{"type":"auth_pairing","username":"alice","client_nonce":"{client}"}}"#
        ))
        .unwrap();
        let Outcome::Continue(ServerMessage::AuthPairing(a2)) = handle(a1.clone(), &c) else { panic!() };
        assert_eq!(a2.salt.as_bytes().len(), 32);
        assert_eq!(a2.ic, c.ic);
        assert!(a2.nonce.starts_with(&format!("{client}-")));
        assert_eq!(a2.nonce.len(), 129);
        let Outcome::Continue(ServerMessage::AuthPairing(again)) = handle(a1, &c) else { panic!() };
        assert_ne!(again.nonce, a2.nonce);
        let a3 = ClientMessage::AuthClientProofGeneration(AuthClientProof {
            client_proof: vec![0; 32].into(),
            nonce: a2.nonce,
        });
        let Outcome::Authenticated { reply: ServerMessage::AuthProof(a4), auth } = handle(a3, &c) else {
            panic!()
        };
        assert_eq!(a4.server_signature.as_bytes().len(), 32);
        assert_eq!(auth.username(), NULL_USERNAME);
        assert!(auth.session_keys().is_none());
    }

    /// Registration, channels, bad nonces and short proofs are refused by code.
    #[test]
    fn refuses_what_it_does_not_do() {
        let c = config();
        let code = |o: Outcome| match o {
            Outcome::Failed { error, .. } => error.code(),
            other => panic!("{other:?}"),
        };
        let r1 = ClientMessage::from_json(&format!(
            r#"{{"type":"registration_pairing","username":"a","group":"x25519","public_key":"{}","client_nonce":"{}","labels":"random"}}"#,
            "A".repeat(43) + "=",
            "00".repeat(32)
        ))
        .unwrap();
        assert_eq!(code(handle(r1, &c)), crate::ErrorCode::Unsupported);
        let with_channel = ClientMessage::AuthPairing(AuthPairing {
            username: "a".into(),
            client_nonce: "00".repeat(32),
            group: Some("x25519".into()),
            public_key: Some(vec![9; 32].into()),
        });
        assert_eq!(code(handle(with_channel, &c)), crate::ErrorCode::Unsupported);
        let bad_nonce = ClientMessage::AuthPairing(AuthPairing {
            username: "a".into(),
            client_nonce: "zz".into(),
            group: None,
            public_key: None,
        });
        assert_eq!(code(handle(bad_nonce, &c)), crate::ErrorCode::InvalidMessage);
        let short = ClientMessage::AuthClientProofGeneration(AuthClientProof {
            client_proof: vec![0; 31].into(),
            nonce: format!("{}-{}", "00".repeat(32), "11".repeat(32)),
        });
        assert_eq!(code(handle(short, &c)), crate::ErrorCode::InvalidMessage);
    }
}
