//! # scram-dh-net
//!
//! The scram-dh protocol over tokio TCP: handshake framing (one JSON message per
//! line, 16 KiB at most), a server with deadlines, caps and rate limits, client
//! drivers for registration and login with host key pinning, and the encrypted
//! channel that follows an authentication with a channel; and the HTTP front
//! ([`http`]): the same handshake as JSON over `POST`, MAC-signed requests with
//! an anti-replay window, an extractor and a layer for axum apps, a gateway
//! in front of any HTTP service, and standard SCRAM-SHA-256 over HTTP (RFC 7804)
//! for password clients on the same records ([`http_client::HttpClient::rfc7804_request`]). Both fronts can share one engine and one
//! admission layer ([`Server::from_parts`], [`http::HttpFront::new`]); several
//! nodes behind a load balancer share the HTTP sessions and the failed-proof
//! penalties through stores ([`http::HttpFront::with_session_store`],
//! [`Admission::with_penalty_store`], the traits of [`scram_dh::cluster`]).
//! Every front counts into one process-global set of Prometheus metrics
//! ([`metrics`]), which the HTTP front serves on `GET /metrics`.
//! The HTTP front also serves the browser client and its page at `/v1/ui/`
//! ([`http::ui`]; the bundle is `web/dist/scram-dh.js`, built from `web/src/`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), scram_dh_net::NetError> {
//! use scram_dh::{ClientConfig, Group};
//! use scram_dh_net::client::login;
//!
//! let cred = scram_dh::ClientCredential::from_json(&std::fs::read_to_string("alice.cred").unwrap())?;
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:7878").await?;
//! let session = login(stream, &cred.username, cred.secret(), Some(Group::X25519), ClientConfig::default()).await?;
//! let mut channel = session.channel.expect("asked for a channel");
//! channel.send(br#"{"cmd":"whoami"}"#).await?;
//! let reply = channel.recv().await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//! None.

#![forbid(unsafe_code)]

pub mod admission;
pub mod channel;
pub mod client;
pub mod error;
pub mod framing;
mod handshake;
pub mod http;
pub mod http_auth;
pub mod http_client;
pub mod known_hosts;
pub mod log;
pub mod metrics;
pub mod null_client;
pub mod passwd;
pub mod sasl;
pub mod server;
pub mod service;
pub mod stream;

pub use admission::{Admission, Limits, LoginOutcome, PeerKey, Penalties, Refusal};
pub use channel::{Role, SecureChannel};
pub use client::{HostKeyPolicy, Login, RegisterOptions, login, register, register_with};
pub use error::NetError;
pub use known_hosts::KnownHosts;
pub use null_client::null_login;
pub use passwd::{PasswdBounds, PasswdError, PasswdRequest, replace_credential};
pub use server::{Server, ServerChannel, Service};
pub use service::{KvLimits, KvService, Reply, Request, passwd_body, passwd_request};
pub use stream::SecureStream;
