//! `scram-dh bench`: the project's load generator. Logs in (or registers) as fast
//! as `--concurrency` connections allow, for a bounded time and count, and reports
//! throughput and latency. Without `--server` it starts its own throwaway server
//! on loopback (temporary SQLite database), so it measures this build end to end.
//! Point `--server` only at a server you run. With `--http URL` it logs in over
//! the HTTP front instead (each login is two requests, A1 and A3), e.g. through
//! the load balancer of `scripts/cluster.sh`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use scram_dh::{ClientConfig, ClientCredential, Group, Labels, Password};
use scram_dh_net::HostKeyPolicy;
use tokio::net::TcpStream;

use crate::serve::{Settings, build};

/// `bench` flags.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A running server to load (default: start one in-process on 127.0.0.1).
    #[arg(long)]
    server: Option<String>,
    /// Log in over HTTP at this base URL of a running server (or load balancer)
    /// instead: `login` mode only, an X25519 channel key per login.
    #[arg(long, value_name = "URL", conflicts_with = "server")]
    http: Option<String>,
    /// What each operation is: `login` (no channel), `login-channel` (X25519 channel
    /// plus one request), or `register` (in-band over --group).
    #[arg(long, default_value = "login")]
    mode: String,
    /// Group for `register` mode.
    #[arg(long, default_value = "x25519")]
    group: String,
    /// Connections in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Stop after this many operations.
    #[arg(long, default_value_t = 1_000_000)]
    max_ops: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Login,
    LoginChannel,
    Register(Group),
}

async fn one(
    server: &str,
    mode: Mode,
    cred: &ClientCredential,
    n: u64,
    fp: Option<scram_dh::Fingerprint>,
) -> Result<()> {
    let stream = TcpStream::connect(server).await?;
    let _ = stream.set_nodelay(true);
    let config = ClientConfig::default();
    match mode {
        Mode::Login => {
            scram_dh_net::login(stream, &cred.username, cred.secret(), None, config).await?;
        }
        Mode::LoginChannel => {
            let mut s =
                scram_dh_net::login(stream, &cred.username, cred.secret(), Some(Group::X25519), config)
                    .await?;
            if let Some(ch) = s.channel.as_mut() {
                ch.send(br#"{"cmd":"whoami"}"#).await?;
                ch.recv().await?;
            }
        }
        Mode::Register(group) => {
            let fp = fp.context("register mode needs the host key")?;
            let name = format!("bench-{}-{n}-{}", std::process::id(), started_nonce());
            scram_dh_net::register(
                stream,
                &name,
                Password::new("bench"),
                group,
                Labels::Random,
                &HostKeyPolicy::Fingerprint(fp),
                config,
            )
            .await?;
        }
    }
    Ok(())
}

fn started_nonce() -> String {
    scram_dh::nonce::Nonce::random(&mut rand_core::UnwrapErr(getrandom::SysRng)).to_hex()[..8].to_owned()
}

pub async fn run(args: BenchArgs) -> Result<()> {
    crate::init_logging("error", false);
    let mode = match args.mode.as_str() {
        "login" => Mode::Login,
        "login-channel" => Mode::LoginChannel,
        "register" => {
            Mode::Register(Group::from_name(&args.group).ok_or_else(|| crate::usage("unknown --group"))?)
        }
        other => {
            return Err(crate::usage(format!(
                "--mode must be login, login-channel or register, not {other:?}"
            )));
        }
    };
    if args.concurrency == 0 || args.concurrency > 4096 {
        return Err(crate::usage("--concurrency must be 1..=4096"));
    }
    if let Some(url) = &args.http {
        if mode != Mode::Login {
            return Err(crate::usage("--http measures --mode login only"));
        }
        return run_http(url, &args).await;
    }
    let dir = tempfile::tempdir()?;
    let mut local = None;
    let (server, fingerprint) = match &args.server {
        Some(s) => (s.clone(), None),
        None => {
            // The load generator is one peer on purpose: lift the per-peer limits
            // that would otherwise (rightly) throttle it.
            let limits = scram_dh_net::Limits {
                max_connections_per_peer: args.concurrency * 2 + 16,
                max_handshakes_per_peer: args.concurrency * 2,
                max_channels_per_peer: args.concurrency * 2,
                max_channels_per_user: args.concurrency * 2,
                dh_per_sec: 1e9,
                dh_burst: 1e9,
                registrations_per_sec: 1e9,
                registration_burst: 1e9,
                ..scram_dh_net::Limits::default()
            };
            let settings =
                Settings { limits, max_sessions: 1_000_000, ..Settings::local(dir.path(), "bench") };
            let (srv, fp) = build(&settings).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?.to_string();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            local = Some((
                tx,
                tokio::spawn(srv.run(listener, async {
                    let _ = rx.await;
                })),
            ));
            (addr, Some(fp))
        }
    };
    // One user to log in as.
    let stream = TcpStream::connect(&server).await.with_context(|| format!("connecting to {server}"))?;
    // Against an outside server, trust its key on first use (a throwaway known_hosts).
    let policy = match fingerprint {
        Some(fp) => HostKeyPolicy::Fingerprint(fp),
        None => HostKeyPolicy::KnownHosts {
            file: scram_dh_net::KnownHosts::new(dir.path().join("known_hosts")),
            server: server.clone(),
        },
    };
    let name = format!("bench-user-{}-{}", std::process::id(), started_nonce());
    let cred = scram_dh_net::register(
        stream,
        &name,
        Password::new("bench"),
        Group::X25519,
        Labels::Random,
        &policy,
        ClientConfig::default(),
    )
    .await?;
    let fp = cred.host_key.context("registration returned no host key")?;

    let (elapsed, mut lat, failures) = drive(&args, move |n| {
        let (server, cred) = (server.clone(), cred.clone());
        async move { one(&server, mode, &cred, n, Some(fp)).await }
    })
    .await?;
    report(&args, elapsed, &mut lat, failures);
    if let Some((tx, task)) = local {
        let _ = tx.send(());
        let _ = task.await;
    }
    if failures > 0 {
        bail!("{failures} operations failed");
    }
    Ok(())
}

/// Runs `op(n)` from `--concurrency` tasks until `--duration` or `--max-ops`:
/// the wall time, each success's latency, and the failures.
async fn drive<F, Fut>(args: &BenchArgs, op: F) -> Result<(Duration, Vec<Duration>, u64)>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (op, counter, max) = (op.clone(), std::sync::Arc::clone(&counter), args.max_ops);
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut failures) = (Vec::new(), 0u64);
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= max || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                match op(n).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(_) => failures += 1,
                }
            }
            (lat, failures)
        }));
    }
    let (mut lat, mut failures) = (Vec::new(), 0);
    for t in tasks {
        let (l, f) = t.await?;
        lat.extend(l);
        failures += f;
    }
    Ok((started.elapsed(), lat, failures))
}

/// Prints throughput and latency percentiles of one run.
fn report(args: &BenchArgs, elapsed: Duration, lat: &mut [Duration], failures: u64) {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "mode {}{} concurrency {} over {:.1} s: {} ok, {} failed, {:.0} ops/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.mode,
        if args.http.is_some() { " (http)" } else { "" },
        args.concurrency,
        elapsed.as_secs_f64(),
        lat.len(),
        failures,
        lat.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// `--http URL`: registers one user over HTTP (trusting the server's key on first
/// use), then logs in as it from `--concurrency` tasks.
async fn run_http(url: &str, args: &BenchArgs) -> Result<()> {
    use scram_dh_net::http_client::HttpClient;
    let dir = tempfile::tempdir()?;
    let client = HttpClient::new(url, Duration::from_secs(30)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = HostKeyPolicy::KnownHosts {
        file: scram_dh_net::KnownHosts::new(dir.path().join("known_hosts")),
        server: client.server_name().to_owned(),
    };
    let options = scram_dh_net::RegisterOptions {
        group: Group::X25519,
        labels: Labels::Random,
        policy,
        config: ClientConfig::default(),
    };
    let name = format!("bench-user-{}-{}", std::process::id(), started_nonce());
    let cred = client
        .register(&name, Password::new("bench"), &options, |_| Ok(()))
        .await
        .with_context(|| format!("registering a bench user at {url}"))?;
    let (elapsed, mut lat, failures) = drive(args, move |_| {
        let (client, cred) = (client.clone(), cred.clone());
        async move {
            client.login(&cred.username, cred.secret(), Group::X25519, ClientConfig::default()).await?;
            Ok(())
        }
    })
    .await?;
    report(args, elapsed, &mut lat, failures);
    if failures > 0 {
        bail!("{failures} operations failed");
    }
    Ok(())
}
