//! The client of the null protocol ([`scram_dh::null`]): a login of the real
//! message count, shapes and sizes (A1 without a channel, A3) with no
//! cryptography, against a server started with `serve --null-protocol`.
//! **For benchmarks only**: it proves nothing and checks nothing but the shapes.

use std::sync::atomic::{AtomicU64, Ordering};

use scram_dh::message::{AuthClientProof, AuthPairing, ClientMessage, ServerMessage};
use scram_dh::nonce::Nonce;
use tokio::io::BufReader;
use tokio::net::TcpStream;

use crate::error::NetError;
use crate::framing::{read_line, write_line};

/// Counter for the client nonces (24 zero bytes, then the count).
static CLIENT_NONCES: AtomicU64 = AtomicU64::new(0);

fn client_nonce() -> Nonce {
    let mut b = [0u8; 32];
    // The process id keeps two bench processes' nonces apart.
    b[..4].copy_from_slice(&std::process::id().to_be_bytes());
    b[24..].copy_from_slice(&CLIENT_NONCES.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    Nonce::from_bytes(b)
}

async fn exchange(io: &mut BufReader<TcpStream>, msg: &ClientMessage) -> Result<ServerMessage, NetError> {
    write_line(io, &msg.to_json()).await?;
    let line = read_line(io).await?.ok_or(NetError::Closed)?;
    Ok(ServerMessage::from_json(&line)?)
}

/// One null-protocol login as `username`: A1 → A2, A3 (a dummy 32-byte proof and
/// A2's nonce) → A4, whose signature must be 32 bytes.
///
/// # Errors
/// The server's refusal as [`NetError::Protocol`] ([`scram_dh::Error::Peer`] with
/// its code: `busy`, `unsupported` from a server not in null mode, …); a reply of
/// the wrong shape; I/O errors.
pub async fn null_login(stream: TcpStream, username: &str) -> Result<(), NetError> {
    let mut io = BufReader::new(stream);
    let a1 = ClientMessage::AuthPairing(AuthPairing {
        username: username.to_owned(),
        client_nonce: client_nonce().to_hex(),
        group: None,
        public_key: None,
    });
    let a2 = exchange(&mut io, &a1).await?.into_auth_pairing()?;
    let a3 = ClientMessage::AuthClientProofGeneration(AuthClientProof {
        client_proof: vec![0xa5; 32].into(),
        nonce: a2.nonce,
    });
    let a4 = exchange(&mut io, &a3).await?.into_auth_proof()?;
    if a4.server_signature.as_bytes().len() != 32 {
        return Err(scram_dh::Error::InvalidMessage("server_signature must be 32 bytes".into()).into());
    }
    Ok(())
}
