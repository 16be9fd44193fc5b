//! `scram-dh demo`: a throwaway server on an ephemeral loopback port with a
//! temporary SQLite database; registers a user in-band, provisions another out of
//! band, logs both in, runs commands over the encrypted channel, prints every
//! message that crossed the wire (through a recording relay), and checks that the
//! password appears in none of those bytes in any encoding.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use clap::Args;
use scram_dh::{ClientConfig, Group, Labels, Password};
use scram_dh_net::{HostKeyPolicy, KnownHosts, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::serve::{Settings, build};

/// `demo` flags.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// DH group for the registration (modp6144 is the original's and the default).
    #[arg(long, default_value = "modp6144")]
    group: String,
    /// Print whole messages instead of shortening long ones.
    #[arg(long)]
    full: bool,
}

type Capture = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

/// A relay between client and server that records every chunk in both directions.
async fn relay(listener: TcpListener, server: std::net::SocketAddr, capture: Capture) {
    while let Ok((client, _)) = listener.accept().await {
        let capture = Arc::clone(&capture);
        tokio::spawn(async move {
            let Ok(upstream) = TcpStream::connect(server).await else { return };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = upstream.into_split();
            let c1 = Arc::clone(&capture);
            let up = async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if let Ok(mut c) = c1.lock() {
                        c.push((true, buf[..n].to_vec()));
                    }
                }
                let _ = sw.shutdown().await;
            };
            let down = async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if let Ok(mut c) = capture.lock() {
                        c.push((false, buf[..n].to_vec()));
                    }
                }
                let _ = cw.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

fn show(capture: &Capture, from: usize, full: bool) -> usize {
    let Ok(c) = capture.lock() else { return from };
    for (c2s, bytes) in &c[from..] {
        let arrow = if *c2s { "C -> S" } else { "S -> C" };
        match std::str::from_utf8(bytes) {
            Ok(text) if text.starts_with('{') => {
                for line in text.lines() {
                    let shown = if !full && line.len() > 200 {
                        format!("{}… ({} bytes)", scram_dh::message::truncate_chars(line, 200), line.len())
                    } else {
                        line.to_owned()
                    };
                    println!("  {arrow}  {shown}");
                }
            }
            _ => println!("  {arrow}  [encrypted channel record, {} bytes]", bytes.len()),
        }
    }
    c.len()
}

pub async fn run(args: DemoArgs) -> Result<()> {
    // The refusals in step 4 are expected; keep the server's warnings out of the show.
    crate::init_logging("error", false);
    let group = Group::from_name(&args.group)
        .ok_or_else(|| crate::usage(format!("unknown group {:?}", args.group)))?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let settings = Settings { max_sessions: 1000, ..Settings::local(dir.path(), "demo") };
    let (server, fingerprint) = build(&settings).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let server_addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(server.run(listener, async {
        let _ = stop_rx.await;
    }));
    let relay_listener = TcpListener::bind("127.0.0.1:0").await?;
    let relay_addr = relay_listener.local_addr()?;
    let capture: Capture = Arc::default();
    tokio::spawn(relay(relay_listener, server_addr, Arc::clone(&capture)));

    println!(
        "scram-dh demo: server on {server_addr} (SQLite at {}), host key {fingerprint}",
        settings.db.display()
    );
    println!("every byte below passed through a recording relay on {relay_addr}\n");

    let password_text = format!(
        "demo-{}",
        scram_dh::nonce::Nonce::random(&mut rand_core::UnwrapErr(getrandom::SysRng)).to_hex()
    );
    let config = ClientConfig::default();
    let server = relay_addr.to_string();

    println!("1. alice registers in-band over {group} (SPEC 3a); the host key is trusted on first use:");
    let policy = HostKeyPolicy::KnownHosts {
        file: KnownHosts::new(dir.path().join("known_hosts")),
        server: server.clone(),
    };
    let stream = TcpStream::connect(&server).await?;
    let cred = scram_dh_net::register(
        stream,
        "alice",
        Password::new(password_text.clone()),
        group,
        Labels::Random,
        &policy,
        config,
    )
    .await?;
    let mut seen = show(&capture, 0, args.full);
    println!(
        "   -> alice's credential: ClientKey and ServerKey (no password kept); host key {}\n",
        fingerprint
    );

    println!("2. alice logs in with an X25519 channel and runs commands over it (SPEC 4, 7):");
    let stream = TcpStream::connect(&server).await?;
    let mut session =
        scram_dh_net::login(stream, "alice", cred.secret(), Some(Group::X25519), config).await?;
    let channel = session.channel.as_mut().ok_or_else(|| anyhow!("no channel"))?;
    let mut replies = Vec::new();
    for (cmd, a) in [
        ("whoami", vec![]),
        ("set", vec!["color".to_owned(), "blue".to_owned()]),
        ("get", vec!["color".to_owned()]),
    ] {
        channel.send(&serde_json::to_vec(&Request { cmd: cmd.into(), args: a })?).await?;
        let reply = channel.recv().await?.ok_or_else(|| anyhow!("channel closed"))?;
        replies.push(String::from_utf8_lossy(&reply).into_owned());
    }
    drop(session);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    seen = show(&capture, seen, args.full);
    for r in &replies {
        println!("   decrypted reply: {r}");
    }
    println!();

    println!("3. bob is provisioned out of band (SPEC 3b) and logs in with his bundle, no channel:");
    let store = crate::serve::open_store(&settings.db).await?;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let p = scram_dh::provision::provision(
        &mut rng,
        "bob",
        4096,
        Labels::Random,
        0,
        Some(server.clone()),
        Some(fingerprint),
    )?;
    scram_dh::CredentialStore::insert(&store, &p.record).await?;
    println!("   bundle for bob: username, salt, ic, ClientKey, ServerKey, server, host key fingerprint");
    let stream = TcpStream::connect(&server).await?;
    let bob = scram_dh_net::login(stream, "bob", p.bundle.secret(), None, config).await?;
    seen = show(&capture, seen, args.full);
    println!("   -> authenticated {}\n", bob.username);

    println!("4. a wrong credential fails, indistinguishably from an unknown user:");
    let stream = TcpStream::connect(&server).await?;
    let wrong = scram_dh_net::login(stream, "alice", p.bundle.secret(), None, config).await;
    let stream = TcpStream::connect(&server).await?;
    let unknown = scram_dh_net::login(stream, "mallory", p.bundle.secret(), None, config).await;
    let _ = show(&capture, seen, args.full);
    println!(
        "   alice with bob's keys: {}",
        wrong.as_ref().err().map(ToString::to_string).unwrap_or_default()
    );
    println!(
        "   unknown user mallory:  {}\n",
        unknown.as_ref().err().map(ToString::to_string).unwrap_or_default()
    );
    if wrong.is_ok() || unknown.is_ok() {
        bail!("a wrong credential was accepted");
    }

    let wire: Vec<u8> = capture
        .lock()
        .map_err(|_| anyhow!("capture poisoned"))?
        .iter()
        .flat_map(|(_, b)| b.clone())
        .collect();
    let pw = password_text.as_bytes();
    let hex: String = pw.iter().map(|b| format!("{b:02x}")).collect();
    let encodings: Vec<(&str, Vec<u8>)> = vec![
        ("raw", pw.to_vec()),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_uppercase().into_bytes()),
        ("base64", STANDARD.encode(pw).into_bytes()),
        ("base64 unpadded", STANDARD_NO_PAD.encode(pw).into_bytes()),
        ("base64url", URL_SAFE.encode(pw).into_bytes()),
        ("base64url unpadded", URL_SAFE_NO_PAD.encode(pw).into_bytes()),
    ];
    let found: Vec<&str> = encodings
        .iter()
        .filter(|(_, e)| wire.windows(e.len()).any(|w| w == e.as_slice()))
        .map(|(n, _)| *n)
        .collect();
    let db_bytes = std::fs::read(&settings.db).unwrap_or_default();
    let in_db = db_bytes.windows(pw.len()).any(|w| w == pw);
    println!("alice's password was {password_text:?}.");
    println!(
        "It appears in none of the {} bytes on the wire (checked raw, hex, base64 and base64url): {}",
        wire.len(),
        if found.is_empty() { "confirmed" } else { "FAILED" }
    );
    println!("Nor in the server's database: {}", if in_db { "FAILED" } else { "confirmed" });
    let _ = stop_tx.send(());
    let _ = server_task.await;
    if !found.is_empty() || in_db {
        bail!("the password leaked ({found:?}, database: {in_db})");
    }
    println!("\ndemo complete.");
    Ok(())
}
