//! An existing small axum app (a notes board) that adds scram-dh login to its
//! routes. The lines marked `// scram-dh` are all it takes on the server (13
//! lines): build the front, merge its `/v1/` routes, put its layer on the app's
//! routes, and take `ScramDhUser` in a handler. Its home page (`GET /`, the
//! `PAGE` below) imports the browser client from `/v1/ui/scram-dh.js`, logs in
//! and reads and adds notes through the signed `session.fetch`.
//!
//! Run: `cargo run -p scram-dh-net --example axum_app`, then open
//! <http://127.0.0.1:8080/>; or register and log in with `scram-dh register
//! --http` / `scram-dh login --http`, and call `scram-dh http GET /notes`.
//! `crates/scram-dh-net/tests/embed_page.rs` drives the page in headless Chromium.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::Html;
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

/// The app's home page: plain HTML, and a module script that uses the browser
/// client the front serves. Every call to `/notes` goes through `session.fetch`.
const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Notes</title></head>
<body>
<h1>Notes</h1>
<form id="account">
  <input id="username" placeholder="username" autocomplete="username">
  <input id="password" type="password" placeholder="password" autocomplete="current-password">
  <button id="login">Log in</button> <button id="register" type="button">Register</button>
</form>
<p><input id="note" placeholder="a note"> <button id="add">Add</button></p>
<pre id="notes"></pre>
<p id="status">loading</p>
<script type="module">
  import { ScramDhClient } from '/v1/ui/scram-dh.js';
  const client = new ScramDhClient();
  const $ = (id) => document.getElementById(id);
  let session = null;
  async function step(name, action) {
    try {
      await action();
      $('status').textContent = `${name}: ok`;
    } catch (e) {
      $('status').textContent = `${name}: error ${e.code ?? e.message}`;
    }
  }
  async function refresh() {
    $('notes').textContent = await (await session.fetch('/notes')).text();
  }
  $('account').addEventListener('submit', (ev) => {
    ev.preventDefault();
    step('login', async () => {
      session = await client.login($('username').value, $('password').value);
      await refresh();
    });
  });
  $('register').addEventListener('click', () =>
    step('register', () => client.register($('username').value, $('password').value)));
  $('add').addEventListener('click', () =>
    step('add', async () => {
      await session.fetch('/notes', { method: 'POST', body: $('note').value });
      await refresh();
    }));
  $('status').textContent = 'ready: ok';
</script>
</body></html>
"#;

fn app(notes: Notes) -> Router {
    Router::new().route("/notes", get(list).post(add)).with_state(notes)
}

/// The whole app: the page, the notes under the front's layer, the front's routes.
pub(crate) fn notes_app() -> Result<Router, scram_dh::Error> {
    let host_key = HostKey::from_seed(&[42; 32]); // scram-dh (use a stored host key in earnest)
    let config = ServerConfig::new(host_key, [7; 32]); // scram-dh
    let engine =
        ServerEngine::new(config, MemoryCredentialStore::default(), MemorySessionStore::new(10_000, 100))?; // scram-dh
    let (admission, bounds) = (Admission::new(Limits::default()), KvLimits::default().passwd_bounds()); // scram-dh
    let front = HttpFront::new(Arc::new(engine), admission, bounds, HttpOptions::default()); // scram-dh
    let notes = app(Notes::default()).layer(front.layer()); // scram-dh
    Ok(Router::new().route("/", get(|| async { Html(PAGE) })).merge(notes).merge(front.router())) // scram-dh
}

#[allow(dead_code)] // the embedding test includes this file for `notes_app` alone
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("notes on http://{}", listener.local_addr()?);
    axum::serve(listener, notes_app()?.into_make_service_with_connect_info::<SocketAddr>()).await?; // scram-dh (peer address)
    Ok(())
}
