//! An existing small axum app (a notes board) that adds scram-dh login to its
//! routes. The lines marked `// scram-dh` are all it takes (13 lines): build the
//! front, merge its `/v1/` routes, put its layer on the app's routes, and take
//! `ScramDhUser` in a handler.
//!
//! Run: `cargo run -p scram-dh-net --example axum_app`, then register and log in
//! with `scram-dh register --http` / `scram-dh login --http`, and call
//! `scram-dh http GET /notes`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use scram_dh::{HostKey, MemoryCredentialStore, MemorySessionStore, ServerConfig, ServerEngine}; // scram-dh
use scram_dh_net::http::{HttpFront, HttpOptions, ScramDhUser}; // scram-dh
use scram_dh_net::{Admission, KvLimits, Limits}; // scram-dh

type Notes = Arc<Mutex<Vec<String>>>;

async fn list(State(notes): State<Notes>) -> String {
    notes.lock().map(|n| n.join("\n")).unwrap_or_default()
}

async fn add(State(notes): State<Notes>, user: ScramDhUser, body: String) -> &'static str {
    // scram-dh (user)
    if let Ok(mut n) = notes.lock() {
        n.push(format!("{}: {body}", user.username)); // scram-dh (user.username)
    }
    "noted\n"
}

fn app(notes: Notes) -> Router {
    Router::new().route("/notes", get(list).post(add)).with_state(notes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host_key = HostKey::from_seed(&[42; 32]); // scram-dh (use a stored host key in earnest)
    let config = ServerConfig::new(host_key, [7; 32]); // scram-dh
    let engine =
        ServerEngine::new(config, MemoryCredentialStore::default(), MemorySessionStore::new(10_000, 100))?; // scram-dh
    let (admission, bounds) = (Admission::new(Limits::default()), KvLimits::default().passwd_bounds()); // scram-dh
    let front = HttpFront::new(Arc::new(engine), admission, bounds, HttpOptions::default()); // scram-dh
    let app = app(Notes::default()).layer(front.layer()).merge(front.router()); // scram-dh
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("notes on http://{}", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?; // scram-dh (peer address)
    Ok(())
}
