//! Embedding scram-dh in a tokio service: your `Service` receives an authenticated,
//! encrypted channel. Run it, then `scram-dh register alice --server 127.0.0.1:7879`.
//!
//! `cargo run -p scram-dh-net --example embed`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use scram_dh::{HostKey, MemorySessionStore, ServerConfig, ServerEngine};
use scram_dh_net::{Limits, Server, ServerChannel, Service};
use scram_dh_store::SqliteCredentialStore;

struct Hello;

impl Service for Hello {
    async fn serve(&self, mut channel: ServerChannel, _stop: tokio::sync::watch::Receiver<bool>) {
        let greeting = format!("hello, {}", channel.username());
        let _ = channel.send(greeting.as_bytes()).await;
        let _ = channel.close().await; // the authenticated end of stream
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteCredentialStore::open("embed-example.db").await?);
    // A real service loads a persisted host key (see `scram-dh serve`); clients pin it.
    let host_key = HostKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
    let mock_secret = scram_dh::crypto::hmac(host_key.to_seed().as_ref(), &[b"mock salt secret"]);
    // `open` reads the records' shapes so unknown users' replies match them.
    let engine =
        ServerEngine::open(ServerConfig::new(host_key, mock_secret), store, MemorySessionStore::default())
            .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:7879").await?;
    println!("listening on {}", listener.local_addr()?);
    Server::new(engine, Hello, Limits::default())
        .run(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
