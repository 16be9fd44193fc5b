//! `scram-dh serve`: the TCP server on the embedded SQLite store.
//!
//! Settings come from, in order of precedence: command-line flags, environment
//! variables (`SCRAM_DH_*`), a TOML config file (`--config`), then defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use scram_dh::{Group, MemorySessionStore, ServerConfig, ServerEngine};
use scram_dh_net::{KvService, Limits, Server};
use scram_dh_store::SqliteCredentialStore;
use serde::Deserialize;
use tracing::info;

use crate::paths::{default_host_key_path, load_or_create_host_key};
use crate::usage;

/// Flags of `serve`; every one may also come from the environment or the config file.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML config file with any of the settings below (keys as the flag names, `_` for `-`).
    #[arg(long, env = "SCRAM_DH_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long, env = "SCRAM_DH_LISTEN")]
    listen: Option<String>,
    /// SQLite database, created on first run [default: scram-dh.db].
    #[arg(long, env = "SCRAM_DH_DB")]
    db: Option<PathBuf>,
    /// Ed25519 host key file, created on first run [default: beside the database, .hostkey].
    #[arg(long, env = "SCRAM_DH_HOST_KEY")]
    host_key: Option<PathBuf>,
    /// Comma-separated DH groups offered [default: all: modp2048..modp8192,x25519].
    #[arg(long, env = "SCRAM_DH_GROUPS")]
    groups: Option<String>,
    /// Iteration count for new registrations (at least 4096) [default: 4096].
    #[arg(long, env = "SCRAM_DH_IC")]
    ic: Option<u32>,
    /// Handshake session time to live, seconds [default: 10].
    #[arg(long, env = "SCRAM_DH_TTL")]
    ttl: Option<u64>,
    /// Seconds a client has to finish a handshake [default: 10].
    #[arg(long, env = "SCRAM_DH_HANDSHAKE_TIMEOUT")]
    handshake_timeout: Option<u64>,
    /// Concurrent handshakes, server-wide [default: 1024].
    #[arg(long, env = "SCRAM_DH_MAX_HANDSHAKES")]
    max_handshakes: Option<usize>,
    /// Concurrent handshakes per client IP [default: 32].
    #[arg(long, env = "SCRAM_DH_MAX_HANDSHAKES_PER_PEER")]
    max_handshakes_per_peer: Option<usize>,
    /// Open encrypted channels [default: 10000].
    #[arg(long, env = "SCRAM_DH_MAX_CHANNELS")]
    max_channels: Option<usize>,
    /// In-flight handshake sessions, server-wide [default: 100000].
    #[arg(long, env = "SCRAM_DH_MAX_SESSIONS")]
    max_sessions: Option<usize>,
    /// Registration pairings per second per client IP [default: 2].
    #[arg(long, env = "SCRAM_DH_REGISTRATIONS_PER_SEC")]
    registrations_per_sec: Option<f64>,
    /// Registration pairing burst per client IP [default: 10].
    #[arg(long, env = "SCRAM_DH_REGISTRATION_BURST")]
    registration_burst: Option<f64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SCRAM_DH_LOG_FORMAT")]
    log_format: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    db: Option<PathBuf>,
    host_key: Option<PathBuf>,
    groups: Option<String>,
    ic: Option<u32>,
    ttl: Option<u64>,
    handshake_timeout: Option<u64>,
    max_handshakes: Option<usize>,
    max_handshakes_per_peer: Option<usize>,
    max_channels: Option<usize>,
    max_sessions: Option<usize>,
    registrations_per_sec: Option<f64>,
    registration_burst: Option<f64>,
    log_format: Option<String>,
}

/// Settings after merging.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub db: PathBuf,
    pub host_key: PathBuf,
    pub groups: Vec<Group>,
    pub ic: u32,
    pub ttl: Duration,
    pub limits: Limits,
    pub max_sessions: usize,
    pub json_logs: bool,
}

fn parse_groups(s: &str) -> Result<Vec<Group>> {
    s.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            Group::from_name(g).ok_or_else(|| {
                usage(format!(
                    "unknown group {g:?}; known: modp2048, modp3072, modp4096, modp6144, modp8192, x25519"
                ))
            })
        })
        .collect()
}

impl ServeArgs {
    fn settings(self) -> Result<Settings> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&text).map_err(|e| usage(format!("config {}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        let defaults = Limits::default();
        let db = self.db.or(file.db).unwrap_or_else(|| PathBuf::from("scram-dh.db"));
        let host_key = self.host_key.or(file.host_key).unwrap_or_else(|| default_host_key_path(&db));
        let groups = match self.groups.or(file.groups) {
            Some(g) => parse_groups(&g)?,
            None => Group::ALL.to_vec(),
        };
        if groups.is_empty() {
            return Err(usage("--groups must name at least one group"));
        }
        let ic = self.ic.or(file.ic).unwrap_or(scram_dh::MIN_ITERATIONS);
        if ic < scram_dh::MIN_ITERATIONS {
            return Err(usage(format!("--ic must be at least {}", scram_dh::MIN_ITERATIONS)));
        }
        let log_format = self.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        let json_logs = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => return Err(usage(format!("--log-format must be text or json, not {other:?}"))),
        };
        let positive = |name: &str, v: usize| {
            if v == 0 { Err(usage(format!("--{name} must be positive"))) } else { Ok(v) }
        };
        let limits = Limits {
            max_handshakes: positive(
                "max-handshakes",
                self.max_handshakes.or(file.max_handshakes).unwrap_or(defaults.max_handshakes),
            )?,
            max_handshakes_per_peer: positive(
                "max-handshakes-per-peer",
                self.max_handshakes_per_peer
                    .or(file.max_handshakes_per_peer)
                    .unwrap_or(defaults.max_handshakes_per_peer),
            )?,
            max_channels: positive(
                "max-channels",
                self.max_channels.or(file.max_channels).unwrap_or(defaults.max_channels),
            )?,
            handshake_timeout: Duration::from_secs(
                self.handshake_timeout
                    .or(file.handshake_timeout)
                    .unwrap_or(defaults.handshake_timeout.as_secs())
                    .max(1),
            ),
            registrations_per_sec: self
                .registrations_per_sec
                .or(file.registrations_per_sec)
                .unwrap_or(defaults.registrations_per_sec)
                .max(0.0),
            registration_burst: self
                .registration_burst
                .or(file.registration_burst)
                .unwrap_or(defaults.registration_burst)
                .max(1.0),
            ..defaults
        };
        Ok(Settings {
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:7878".into()),
            db,
            host_key,
            groups,
            ic,
            ttl: Duration::from_secs(self.ttl.or(file.ttl).unwrap_or(10).max(1)),
            limits,
            max_sessions: positive(
                "max-sessions",
                self.max_sessions.or(file.max_sessions).unwrap_or(100_000),
            )?,
            json_logs,
        })
    }
}

/// Builds the server's engine configuration: the mock-salt secret is derived from
/// the host key, so unknown users keep the same salt across restarts.
pub fn server_config(settings: &Settings, host_key: scram_dh::HostKey) -> ServerConfig {
    let mock = scram_dh::crypto::hmac(host_key.to_seed().as_ref(), &[b"scram-dh mock salt secret"]);
    let mut config = ServerConfig::new(host_key, mock);
    config.ic = settings.ic;
    config.groups = settings.groups.clone();
    config.session_ttl_ms = u64::try_from(settings.ttl.as_millis()).unwrap_or(u64::MAX);
    config
}

pub async fn open_store(db: &Path) -> Result<SqliteCredentialStore> {
    SqliteCredentialStore::open(db).await.with_context(|| format!("opening database {}", db.display()))
}

/// Builds the server on `listener` (for `serve` and `demo`).
pub async fn build(
    settings: &Settings,
) -> Result<(
    Server<Arc<SqliteCredentialStore>, MemorySessionStore, KvService<SqliteCredentialStore>>,
    scram_dh::Fingerprint,
)> {
    let host_key = load_or_create_host_key(&settings.host_key)?;
    let fingerprint = host_key.fingerprint();
    // Build each offered group's fixed-base table now, not on the first request.
    let groups = settings.groups.clone();
    tokio::task::spawn_blocking(move || {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        for g in groups {
            let _ = g.generate(&mut rng);
        }
    })
    .await?;
    let store = Arc::new(open_store(&settings.db).await?);
    let sessions =
        MemorySessionStore::new(settings.max_sessions, settings.limits.max_handshakes_per_peer.max(1) * 4);
    let engine = ServerEngine::new(server_config(settings, host_key), Arc::clone(&store), sessions)?;
    let service = KvService::new(store);
    Ok((Server::new(engine, service, settings.limits.clone()), fingerprint))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received"),
                    _ = int.recv() => info!("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let settings = args.settings()?;
    crate::init_logging("info", settings.json_logs);
    let (server, fingerprint) = build(&settings).await?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    info!(
        %addr,
        db = %settings.db.display(),
        host_key = %fingerprint,
        ic = settings.ic,
        groups = %settings.groups.iter().map(|g| g.name()).collect::<Vec<_>>().join(","),
        "scram-dh server listening"
    );
    // A line on stdout for people and scripts (tests read the address from it).
    println!("listening on {addr} host key {fingerprint}");
    server.run(listener, shutdown_signal()).await?;
    Ok(())
}
