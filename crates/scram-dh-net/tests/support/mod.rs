//! Helpers shared by the net crate's test crates (`http`, `rfc7804`, `metrics`,
//! `hardening`): clients bound to one loopback source address (HTTP and TCP), a
//! TCP login from one, and a buffered reply.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};

use scram_dh::credential::ClientKeys;
use scram_dh::secret::{ClientKey, ServerKey};
use scram_dh::{ClientConfig, ClientSecret, Group};
use scram_dh_net::NetError;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from `127.0.0.<src>`, so that tests can play
/// several peers.
pub async fn connect_from(src: u8, addr: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from(([127, 0, 0, src], 0))).unwrap();
    sock.connect(addr).await.unwrap()
}

/// Keys that belong to no record: a login with them fails at the proof.
pub fn wrong_keys() -> ClientSecret {
    ClientSecret::Keys(ClientKeys {
        client_key: ClientKey::from_bytes([0xAA; 32]),
        server_key: ServerKey::from_bytes([0xBB; 32]),
    })
}

/// A TCP login at `addr` from `127.0.0.<src>`, with an X25519 channel when `channel`.
///
/// # Errors
/// The login's.
pub async fn login_from(
    src: u8,
    addr: SocketAddr,
    user: &str,
    secret: ClientSecret,
    channel: bool,
) -> Result<scram_dh_net::Login<TcpStream>, NetError> {
    let group = channel.then_some(Group::X25519);
    scram_dh_net::login(connect_from(src, addr).await, user, secret, group, ClientConfig::default()).await
}

/// A reqwest client whose connections come from `127.0.0.<src>`, so that tests
/// can play several peers.
pub fn client_from(src: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, src])).build().unwrap()
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The error object's `code`, or "".
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends and reads the whole response.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap().to_vec();
    Reply { status, headers, body }
}
