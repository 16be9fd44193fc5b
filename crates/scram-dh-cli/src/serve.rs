//! `scram-dh serve`: the TCP server on the embedded SQLite store.
//!
//! Settings come from, in order of precedence: command-line flags, environment
//! variables (`SCRAM_DH_*`), a TOML config file (`--config`), then defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use scram_dh::cluster::HttpSessionStore;
use scram_dh::{Group, ServerConfig, ServerEngine};
use scram_dh_net::admission::Admission;
use scram_dh_net::http::{HttpFront, HttpOptions};
use scram_dh_net::metrics::SessionCounts;
use scram_dh_net::sasl::{SaslServer, tls_server_config};
use scram_dh_net::{KvLimits, KvService, Limits, Penalties, Server};
use serde::Deserialize;
use tracing::info;

use crate::paths::{default_host_key_path, load_or_create_host_key};
use crate::usage;

/// Flags of `serve`; every one may also come from the environment or the config file.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML config file with any of the settings below (keys as the flag names, `_`
    /// for `-`), plus a `[limits]` table with every admission limit (see README).
    #[arg(long, env = "SCRAM_DH_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long, env = "SCRAM_DH_LISTEN")]
    listen: Option<String>,
    /// SQLite database, created on first run, or a `postgres://user:pass@host/db` URL
    /// (records shared by several nodes; needs --host-key), or `memory` (records gone at
    /// exit: benchmarks, tests) [default: scram-dh.db].
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
    /// Highest iteration count a record may have (passwd, imports) [default: 100000].
    #[arg(long, env = "SCRAM_DH_MAX_IC")]
    max_ic: Option<u32>,
    /// In-band registration: `open`, or `closed` (users only by `provision`) [default: open].
    #[arg(long, env = "SCRAM_DH_REGISTRATION")]
    registration: Option<String>,
    /// Handshake session time to live, seconds [default: 10].
    #[arg(long, env = "SCRAM_DH_TTL")]
    ttl: Option<u64>,
    /// Seconds a client has to finish a handshake [default: 10].
    #[arg(long, env = "SCRAM_DH_HANDSHAKE_TIMEOUT")]
    handshake_timeout: Option<u64>,
    /// Open connections, server-wide (checked against the open-file limit) [default: 8192].
    #[arg(long, env = "SCRAM_DH_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Open connections per client address (IPv6: per /64) [default: 64].
    #[arg(long, env = "SCRAM_DH_MAX_CONNECTIONS_PER_PEER")]
    max_connections_per_peer: Option<usize>,
    /// Concurrent handshakes, server-wide [default: 1024].
    #[arg(long, env = "SCRAM_DH_MAX_HANDSHAKES")]
    max_handshakes: Option<usize>,
    /// Concurrent handshakes per client address [default: 32].
    #[arg(long, env = "SCRAM_DH_MAX_HANDSHAKES_PER_PEER")]
    max_handshakes_per_peer: Option<usize>,
    /// Open encrypted channels [default: 4096].
    #[arg(long, env = "SCRAM_DH_MAX_CHANNELS")]
    max_channels: Option<usize>,
    /// Open encrypted channels per user [default: 16].
    #[arg(long, env = "SCRAM_DH_MAX_CHANNELS_PER_USER")]
    max_channels_per_user: Option<usize>,
    /// Seconds an encrypted channel may sit idle before the server closes it [default: 300].
    #[arg(long, env = "SCRAM_DH_CHANNEL_IDLE_TIMEOUT")]
    channel_idle_timeout: Option<f64>,
    /// In-flight handshake sessions, server-wide [default: 100000].
    #[arg(long, env = "SCRAM_DH_MAX_SESSIONS")]
    max_sessions: Option<usize>,
    /// DH-costing steps (registrations, logins with a channel) per second per address [default: 20].
    #[arg(long, env = "SCRAM_DH_DH_PER_SEC")]
    dh_per_sec: Option<f64>,
    /// Burst of DH-costing steps per address [default: 40].
    #[arg(long, env = "SCRAM_DH_DH_BURST")]
    dh_burst: Option<f64>,
    /// Registration pairings per second per client address [default: 2].
    #[arg(long, env = "SCRAM_DH_REGISTRATIONS_PER_SEC")]
    registrations_per_sec: Option<f64>,
    /// Registration pairing burst per client address [default: 10].
    #[arg(long, env = "SCRAM_DH_REGISTRATION_BURST")]
    registration_burst: Option<f64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SCRAM_DH_LOG_FORMAT")]
    log_format: Option<String>,
    /// Also serve the HTTP front (SPEC 7) on this address, over the same engine and limits.
    #[arg(long, env = "SCRAM_DH_HTTP")]
    http: Option<String>,
    /// Gateway: forward signed HTTP requests outside /v1/ to this http:// URL, with X-Scram-DH-User.
    #[arg(long, env = "SCRAM_DH_UPSTREAM")]
    upstream: Option<String>,
    /// Gateway: seconds the whole upstream exchange may take (connect, send, read the
    /// response) before the client gets 504 [default: 30].
    #[arg(long, env = "SCRAM_DH_UPSTREAM_TIMEOUT")]
    upstream_timeout: Option<f64>,
    /// HTTP front: largest signed request body, and largest upstream response the
    /// gateway buffers to MAC it, bytes [default: 1048576].
    #[arg(long, env = "SCRAM_DH_HTTP_MAX_BODY")]
    http_max_body: Option<usize>,
    /// Seconds an HTTP session may go unused [default: 900].
    #[arg(long, env = "SCRAM_DH_HTTP_IDLE_TIMEOUT")]
    http_idle_timeout: Option<f64>,
    /// Seconds an HTTP session lasts at most [default: 43200].
    #[arg(long, env = "SCRAM_DH_HTTP_LIFETIME")]
    http_lifetime: Option<f64>,
    /// Live HTTP sessions, all users [default: 100000].
    #[arg(long, env = "SCRAM_DH_HTTP_MAX_SESSIONS")]
    http_max_sessions: Option<usize>,
    /// Live HTTP sessions of one user [default: 64].
    #[arg(long, env = "SCRAM_DH_HTTP_MAX_SESSIONS_PER_USER")]
    http_max_sessions_per_user: Option<usize>,
    /// Also serve standard SCRAM-SHA-256 (RFC 5802, GNU SASL's line framing) on this
    /// address, over the same records and limits: users with `rfc` labels log in
    /// from any standard client.
    #[arg(long, env = "SCRAM_DH_SASL")]
    sasl: Option<String>,
    /// Also serve standard SCRAM over TLS 1.3 on this address, offering
    /// SCRAM-SHA-256-PLUS with channel binding tls-exporter (needs --tls-cert, --tls-key).
    #[arg(long, env = "SCRAM_DH_SASL_TLS")]
    sasl_tls: Option<String>,
    /// PEM certificate chain for --sasl-tls.
    #[arg(long, env = "SCRAM_DH_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --sasl-tls.
    #[arg(long, env = "SCRAM_DH_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// A secret every node of a cluster shares (a file of at least 32 random bytes,
    /// as `head -c 32 /dev/urandom` makes, mode 0600): unknown users' mock salts and
    /// the key sealing handshake sessions derive from it, so that nodes behind one
    /// load balancer answer alike and open each other's sessions. Without it they
    /// derive from the host key.
    #[arg(long, env = "SCRAM_DH_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// Where in-flight handshakes, HTTP sessions and guessing penalties live:
    /// `memory` (this process; the default) or a `redis://[:PASSWORD@]HOST:PORT/[DB]`
    /// URL that every node behind one load balancer shares (with --db postgres://…,
    /// --host-key and --cluster-secret-file).
    #[arg(long, env = "SCRAM_DH_SESSIONS")]
    sessions: Option<String>,
    /// A proxy (load balancer) whose `X-Forwarded-For` the HTTP front believes, as
    /// an address or CIDR (repeatable; e.g. 127.0.0.1/32 for nginx on the same
    /// host). Requests from other addresses are attributed to their own address.
    #[arg(long = "trusted-proxy", env = "SCRAM_DH_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<String>,
    /// Do not serve the Prometheus metrics on GET /metrics of the HTTP front
    /// (config file: `metrics = false`). They are served by default, unsigned:
    /// counts and gauges only, no usernames or addresses.
    #[arg(long)]
    no_metrics: bool,
    /// Do not serve the browser page (GET /v1/ui/, and GET / without --upstream)
    /// on the HTTP front (config file: `ui = false`). It is served by default,
    /// unsigned: static files with the host key fingerprint in the page.
    #[arg(long)]
    no_ui: bool,
    /// Worker threads of the async runtime, 1..=1024 [default: one per CPU]. Fewer
    /// leave CPUs to other processes on the host (a load generator, a database).
    #[arg(long, env = "SCRAM_DH_WORKERS")]
    workers: Option<usize>,
    /// BENCHMARKS ONLY: every login succeeds. Answer TCP logins with the null
    /// protocol (real message shapes and sizes, no cryptography, no stores), the
    /// baseline of `bench --mode null`. Not with --http, --sasl or --sasl-tls.
    #[arg(long)]
    null_protocol: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    db: Option<PathBuf>,
    host_key: Option<PathBuf>,
    groups: Option<String>,
    ic: Option<u32>,
    max_ic: Option<u32>,
    registration: Option<String>,
    ttl: Option<u64>,
    handshake_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_peer: Option<usize>,
    max_handshakes: Option<usize>,
    max_handshakes_per_peer: Option<usize>,
    max_channels: Option<usize>,
    max_channels_per_user: Option<usize>,
    channel_idle_timeout: Option<f64>,
    max_sessions: Option<usize>,
    dh_per_sec: Option<f64>,
    dh_burst: Option<f64>,
    registrations_per_sec: Option<f64>,
    registration_burst: Option<f64>,
    log_format: Option<String>,
    http: Option<String>,
    upstream: Option<String>,
    upstream_timeout: Option<f64>,
    http_max_body: Option<usize>,
    http_idle_timeout: Option<f64>,
    http_lifetime: Option<f64>,
    http_max_sessions: Option<usize>,
    http_max_sessions_per_user: Option<usize>,
    sasl: Option<String>,
    sasl_tls: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    cluster_secret_file: Option<PathBuf>,
    sessions: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    metrics: Option<bool>,
    ui: Option<bool>,
    workers: Option<usize>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    service: ServiceFile,
}

/// The `[limits]` table: every admission limit (durations in seconds).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    connection_reserve: Option<usize>,
    reserve_peer_max: Option<usize>,
    max_handshakes_per_connection: Option<u32>,
    first_line_timeout: Option<f64>,
    max_channels_per_peer: Option<usize>,
    ipv6_prefix: Option<u8>,
    shutdown_grace: Option<f64>,
    peer_free_failures: Option<u32>,
    account_free_failures: Option<u32>,
    penalty_base: Option<f64>,
    penalty_max_peer: Option<f64>,
    penalty_max_account: Option<f64>,
    penalty_forget_after: Option<f64>,
    trust_for: Option<f64>,
    max_tracked: Option<usize>,
}

/// The `[service]` table: bounds of the example key-value service.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    max_key: Option<usize>,
    max_value: Option<usize>,
    max_entries_per_user: Option<usize>,
    max_total_bytes: Option<usize>,
}

/// Settings after merging.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub db: PathBuf,
    pub host_key: PathBuf,
    pub groups: Vec<Group>,
    pub ic: u32,
    pub max_ic: u32,
    pub registration_open: bool,
    pub ttl: Duration,
    pub limits: Limits,
    pub kv: KvLimits,
    pub max_sessions: usize,
    pub json_logs: bool,
    /// The HTTP front's address, if it is served.
    pub http: Option<String>,
    /// Its session expiry and gateway upstream.
    pub http_options: HttpOptions,
    /// The standard SCRAM listener's address, if it is served.
    pub sasl: Option<String>,
    /// The standard SCRAM over TLS listener: address, certificate, key.
    pub sasl_tls: Option<(String, PathBuf, PathBuf)>,
    /// The cluster secret file, if nodes share one.
    pub cluster_secret_file: Option<PathBuf>,
    /// `memory` or a Redis URL (see `--sessions`).
    pub sessions: String,
    /// `--null-protocol` (benchmarks only: every login succeeds).
    pub null_protocol: bool,
    /// The runtime's worker threads (`None`: one per CPU).
    pub workers: Option<usize>,
}

impl Settings {
    /// Settings for a throwaway loopback server in `dir` (demo, bench).
    pub fn local(dir: &Path, name: &str) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            db: dir.join(format!("{name}.db")),
            host_key: dir.join(format!("{name}.hostkey")),
            groups: Group::ALL.to_vec(),
            ic: scram_dh::MIN_ITERATIONS,
            max_ic: scram_dh::config::DEFAULT_MAX_IC,
            registration_open: true,
            ttl: Duration::from_secs(10),
            limits: Limits::default(),
            kv: KvLimits::default(),
            max_sessions: 100_000,
            json_logs: false,
            http: None,
            http_options: HttpOptions::default(),
            sasl: None,
            sasl_tls: None,
            cluster_secret_file: None,
            sessions: "memory".into(),
            null_protocol: false,
            workers: None,
        }
    }
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

fn seconds(name: &str, v: Option<f64>, default: Duration) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(usage(format!("{name} must be a positive number of seconds, not {s}"))),
    }
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
        let d = Limits::default();
        let db = self.db.or(file.db).unwrap_or_else(|| PathBuf::from("scram-dh.db"));
        let host_key = match self.host_key.or(file.host_key) {
            Some(path) => path,
            // A database URL has no directory to keep the host key beside; and every
            // node sharing that database must be given the same key anyway.
            None if crate::store::is_postgres(&db) => {
                return Err(usage("--db postgres://… needs --host-key FILE (the same file on every node)"));
            }
            None => default_host_key_path(&db),
        };
        let groups = match self.groups.or(file.groups) {
            Some(g) => parse_groups(&g)?,
            None => Group::ALL.to_vec(),
        };
        if groups.is_empty() {
            return Err(usage("--groups must name at least one group"));
        }
        let ic = self.ic.or(file.ic).unwrap_or(scram_dh::MIN_ITERATIONS);
        let max_ic = self.max_ic.or(file.max_ic).unwrap_or(scram_dh::config::DEFAULT_MAX_IC.max(ic));
        if ic < scram_dh::MIN_ITERATIONS || max_ic < ic {
            return Err(usage(format!(
                "--ic must be at least {} and at most --max-ic",
                scram_dh::MIN_ITERATIONS
            )));
        }
        let registration_open = match self.registration.or(file.registration).as_deref() {
            None | Some("open") => true,
            Some("closed") => false,
            Some(other) => {
                return Err(usage(format!("--registration must be open or closed, not {other:?}")));
            }
        };
        let log_format = self.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        let json_logs = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => return Err(usage(format!("--log-format must be text or json, not {other:?}"))),
        };
        let lf = file.limits;
        let p = &d.penalties;
        let penalties = Penalties {
            peer_free_failures: lf.peer_free_failures.unwrap_or(p.peer_free_failures),
            account_free_failures: lf.account_free_failures.unwrap_or(p.account_free_failures),
            base: seconds("penalty_base", lf.penalty_base, p.base)?,
            max_peer: seconds("penalty_max_peer", lf.penalty_max_peer, p.max_peer)?,
            max_account: seconds("penalty_max_account", lf.penalty_max_account, p.max_account)?,
            forget_after: seconds("penalty_forget_after", lf.penalty_forget_after, p.forget_after)?,
            trust_for: seconds("trust_for", lf.trust_for, p.trust_for)?,
            max_tracked: lf.max_tracked.unwrap_or(p.max_tracked),
        };
        let limits = Limits {
            max_connections: self.max_connections.or(file.max_connections).unwrap_or(d.max_connections),
            max_connections_per_peer: self
                .max_connections_per_peer
                .or(file.max_connections_per_peer)
                .unwrap_or(d.max_connections_per_peer),
            connection_reserve: lf.connection_reserve.unwrap_or(d.connection_reserve),
            reserve_peer_max: lf.reserve_peer_max.unwrap_or(d.reserve_peer_max),
            max_handshakes: self.max_handshakes.or(file.max_handshakes).unwrap_or(d.max_handshakes),
            max_handshakes_per_peer: self
                .max_handshakes_per_peer
                .or(file.max_handshakes_per_peer)
                .unwrap_or(d.max_handshakes_per_peer),
            max_handshakes_per_connection: lf
                .max_handshakes_per_connection
                .unwrap_or(d.max_handshakes_per_connection),
            first_line_timeout: seconds("first_line_timeout", lf.first_line_timeout, d.first_line_timeout)?,
            handshake_timeout: Duration::from_secs(
                self.handshake_timeout
                    .or(file.handshake_timeout)
                    .unwrap_or(d.handshake_timeout.as_secs())
                    .max(1),
            ),
            dh_per_sec: self.dh_per_sec.or(file.dh_per_sec).unwrap_or(d.dh_per_sec),
            dh_burst: self.dh_burst.or(file.dh_burst).unwrap_or(d.dh_burst),
            registrations_per_sec: self
                .registrations_per_sec
                .or(file.registrations_per_sec)
                .unwrap_or(d.registrations_per_sec),
            registration_burst: self
                .registration_burst
                .or(file.registration_burst)
                .unwrap_or(d.registration_burst),
            max_channels: self.max_channels.or(file.max_channels).unwrap_or(d.max_channels),
            max_channels_per_peer: lf.max_channels_per_peer.unwrap_or(d.max_channels_per_peer),
            max_channels_per_user: self
                .max_channels_per_user
                .or(file.max_channels_per_user)
                .unwrap_or(d.max_channels_per_user),
            channel_idle_timeout: seconds(
                "channel-idle-timeout",
                self.channel_idle_timeout.or(file.channel_idle_timeout),
                d.channel_idle_timeout,
            )?,
            ipv6_prefix: lf.ipv6_prefix.unwrap_or(d.ipv6_prefix),
            penalties,
            shutdown_grace: seconds("shutdown_grace", lf.shutdown_grace, d.shutdown_grace)?,
        };
        // Consistency now; the open-file limit is checked once it has been raised.
        limits.check(u64::MAX).map_err(usage)?;
        let dk = KvLimits::default();
        let sf = file.service;
        let kv = KvLimits {
            max_key: sf.max_key.unwrap_or(dk.max_key),
            max_value: sf.max_value.unwrap_or(dk.max_value),
            max_entries_per_user: sf.max_entries_per_user.unwrap_or(dk.max_entries_per_user),
            max_total_bytes: sf.max_total_bytes.unwrap_or(dk.max_total_bytes),
            passwd_salt_len: dk.passwd_salt_len,
            passwd_ic: scram_dh::MIN_ITERATIONS..=max_ic,
        };
        let max_sessions = self.max_sessions.or(file.max_sessions).unwrap_or(100_000);
        if max_sessions == 0 {
            return Err(usage("--max-sessions must be positive"));
        }
        let mut http_options = HttpOptions::default();
        http_options.upstream_timeout = seconds(
            "upstream_timeout",
            self.upstream_timeout.or(file.upstream_timeout),
            http_options.upstream_timeout,
        )?;
        http_options.idle_timeout = seconds(
            "http_idle_timeout",
            self.http_idle_timeout.or(file.http_idle_timeout),
            http_options.idle_timeout,
        )?;
        http_options.lifetime =
            seconds("http_lifetime", self.http_lifetime.or(file.http_lifetime), http_options.lifetime)?;
        let count = |name: &str, v: Option<usize>, d: usize| -> Result<usize> {
            match v {
                None => Ok(d),
                Some(n) if n > 0 => Ok(n),
                Some(_) => Err(usage(format!("{name} must be positive"))),
            }
        };
        http_options.max_body =
            count("http_max_body", self.http_max_body.or(file.http_max_body), http_options.max_body)?;
        http_options.max_sessions = count(
            "http_max_sessions",
            self.http_max_sessions.or(file.http_max_sessions),
            http_options.max_sessions,
        )?;
        http_options.max_sessions_per_user = count(
            "http_max_sessions_per_user",
            self.http_max_sessions_per_user.or(file.http_max_sessions_per_user),
            http_options.max_sessions_per_user,
        )?;
        http_options.metrics = !self.no_metrics && file.metrics.unwrap_or(true);
        http_options.ui = !self.no_ui && file.ui.unwrap_or(true);
        // The server alone on its HTTP port: `/` is the page too (without an upstream).
        http_options.ui_at_root = true;
        http_options.upstream = self.upstream.or(file.upstream);
        if let Some(u) = &http_options.upstream
            && !u.starts_with("http://")
        {
            return Err(usage(format!("--upstream must be an http:// URL, not {u:?}")));
        }
        let trusted = if self.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            self.trusted_proxies
        };
        http_options.trusted_proxies = trusted
            .iter()
            .map(|t| t.parse().map_err(|e| usage(format!("--trusted-proxy {t:?}: {e}"))))
            .collect::<Result<_>>()?;
        let sessions = self.sessions.or(file.sessions).unwrap_or_else(|| "memory".into());
        crate::store::check_sessions(&sessions)?;
        let http = self.http.or(file.http);
        if http.is_none() && http_options.upstream.is_some() {
            return Err(usage("--upstream needs --http ADDR"));
        }
        let sasl_tls = match (
            self.sasl_tls.or(file.sasl_tls),
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (None, None, None) => None,
            (Some(addr), Some(cert), Some(key)) => Some((addr, cert, key)),
            (Some(_), _, _) => return Err(usage("--sasl-tls needs --tls-cert and --tls-key")),
            (None, _, _) => return Err(usage("--tls-cert and --tls-key are for --sasl-tls ADDR")),
        };
        let sasl = self.sasl.or(file.sasl);
        if self.null_protocol && (http.is_some() || sasl.is_some() || sasl_tls.is_some()) {
            return Err(usage(
                "--null-protocol is for the TCP front only: not with --http, --sasl or --sasl-tls",
            ));
        }
        let workers = self.workers.or(file.workers);
        if workers.is_some_and(|n| !(1..=1024).contains(&n)) {
            return Err(usage("--workers must be 1..=1024"));
        }
        Ok(Settings {
            null_protocol: self.null_protocol,
            workers,
            http,
            http_options,
            sasl,
            sasl_tls,
            cluster_secret_file: self.cluster_secret_file.or(file.cluster_secret_file),
            sessions,
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:7878".into()),
            db,
            host_key,
            groups,
            ic,
            max_ic,
            registration_open,
            ttl: Duration::from_secs(self.ttl.or(file.ttl).unwrap_or(10).max(1)),
            limits,
            kv,
            max_sessions,
            json_logs,
        })
    }
}

/// The shortest cluster secret accepted, in bytes.
pub const MIN_CLUSTER_SECRET: usize = 32;

/// Reads a cluster secret file: at least 32 bytes, not readable by group or others.
fn read_cluster_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading cluster secret {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(usage(format!(
            "cluster secret {} is readable by group or others; chmod 600 it",
            path.display()
        )));
    }
    let secret = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading cluster secret {}", path.display()))?,
    );
    if secret.len() < MIN_CLUSTER_SECRET {
        return Err(usage(format!(
            "cluster secret {} holds {} bytes; it needs at least {MIN_CLUSTER_SECRET} random bytes \
             (head -c 32 /dev/urandom > FILE)",
            path.display(),
            secret.len()
        )));
    }
    Ok(secret)
}

/// Builds the server's engine configuration. The mock-salt secret (and the
/// session seal key the core derives from it) comes from the cluster secret when
/// there is one, else from the host key: either way unknown users keep the same
/// salt across restarts, and nodes sharing the secret answer alike.
///
/// # Errors
/// A cluster secret file that cannot be read, is too short or is readable by others.
pub fn server_config(settings: &Settings, host_key: scram_dh::HostKey) -> Result<ServerConfig> {
    let mock = match &settings.cluster_secret_file {
        Some(path) => {
            let secret = read_cluster_secret(path)?;
            scram_dh::crypto::hmac(&secret, &[b"scram-dh cluster mock salt secret"])
        }
        None => scram_dh::crypto::hmac(host_key.to_seed().as_ref(), &[b"scram-dh mock salt secret"]),
    };
    let mut config = ServerConfig::new(host_key, mock);
    config.ic = settings.ic;
    config.max_ic = settings.max_ic;
    config.registration_open = settings.registration_open;
    config.groups = settings.groups.clone();
    config.session_ttl_ms = u64::try_from(settings.ttl.as_millis()).unwrap_or(u64::MAX);
    config.null_protocol = settings.null_protocol;
    Ok(config)
}

pub use crate::store::open_store;
use crate::store::{AnySessions, AnyStore};

/// The server `build_all` makes, with what its HTTP front needs besides.
pub struct Built {
    /// The TCP server (engine, admission, service).
    pub server: Server<Arc<AnyStore>, AnySessions, KvService<AnyStore>>,
    /// The host key's fingerprint.
    pub fingerprint: scram_dh::Fingerprint,
    /// The shared HTTP session store, when `--sessions` names one.
    pub http_sessions: Option<Arc<dyn HttpSessionStore>>,
}

/// Builds the server (for `serve`, `demo` and `bench`).
pub async fn build(
    settings: &Settings,
) -> Result<(Server<Arc<AnyStore>, AnySessions, KvService<AnyStore>>, scram_dh::Fingerprint)> {
    let built = build_all(settings).await?;
    Ok((built.server, built.fingerprint))
}

/// Builds the server and opens its stores: credentials (`--db`) and sessions
/// (`--sessions`).
pub async fn build_all(settings: &Settings) -> Result<Built> {
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
    // Half-open handshakes a peer may leave behind (each lives for the TTL).
    let backends = crate::store::open_sessions(
        &settings.sessions,
        settings.max_sessions,
        settings.limits.max_handshakes_per_peer.max(1) * 4,
        settings.http_options.session_limits(),
    )
    .await?;
    // `open` reads the records' shapes, so unknown users' replies match them (M6).
    let engine = Arc::new(
        ServerEngine::open(server_config(settings, host_key)?, Arc::clone(&store), backends.handshakes)
            .await?,
    );
    // `scram_dh_handshake_sessions` and `..._expired_total`: the memory store
    // counts both; Redis counts the expired sessions this node dropped (the nodes'
    // totals add up), and cannot say which live ones are this node's.
    scram_dh_net::metrics::watch_session_counts(&engine, |sessions: &AnySessions| match sessions {
        AnySessions::Memory(m) => Some(SessionCounts::of_memory(m)),
        AnySessions::Redis(r) => {
            Some(SessionCounts { live: None, expired_total: Some(r.sessions_expired_total()) })
        }
    });
    let service = KvService::with_limits(store, settings.kv.clone());
    let admission = match backends.penalties {
        Some(penalties) => Admission::with_penalty_store(settings.limits.clone(), penalties),
        None => Admission::new(settings.limits.clone()),
    };
    Ok(Built {
        server: Server::from_parts(engine, service, admission),
        fingerprint,
        http_sessions: backends.http,
    })
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

/// The merged settings of `serve` (before the runtime starts: they choose its size).
///
/// # Errors
/// A flag, variable or config value out of range; an unreadable config file.
pub fn settings(args: ServeArgs) -> Result<Settings> {
    args.settings()
}

pub async fn run(settings: Settings) -> Result<()> {
    crate::init_logging("info", settings.json_logs);
    // Finding H1: run out of descriptors later, never silently: raise the soft
    // limit to the hard one and check every cap against what is granted.
    let fd_limit = scram_dh_net::admission::raise_fd_limit().context("reading the open-file limit")?;
    settings.limits.check(fd_limit).map_err(usage)?;
    if settings.null_protocol {
        tracing::warn!("--null-protocol: every login succeeds, with no proof; for benchmarks only");
    }
    let Built { server, fingerprint, http_sessions } = build_all(&settings).await?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    info!(
        %addr,
        db = %crate::store::display(&settings.db),
        sessions = %crate::store::display_sessions(&settings.sessions),
        host_key = %fingerprint,
        ic = settings.ic,
        max_ic = settings.max_ic,
        groups = %settings.groups.iter().map(|g| g.name()).collect::<Vec<_>>().join(","),
        registration = if settings.registration_open { "open" } else { "closed" },
        fd_limit,
        max_connections = settings.limits.max_connections,
        modexp = scram_dh::dh::modexp_engine(),
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "scram-dh server listening"
    );
    // One signal stops both fronts.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // A line on stdout for people and scripts (tests read the addresses from it):
    // "listening on ADDR host key FP [http ADDR] [sasl ADDR] [sasl-tls ADDR]".
    let mut announce = format!("listening on {addr} host key {fingerprint}");
    let mut fronts = tokio::task::JoinSet::new();
    if let Some(http_addr) = &settings.http {
        let http_listener = tokio::net::TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("listening for HTTP on {http_addr}"))?;
        let http_local = http_listener.local_addr()?;
        // The same engine (stores, sessions) and the same admission layer as TCP.
        let (engine, admission) = (server.engine_arc(), Arc::clone(server.admission()));
        let (bounds, options) = (settings.kv.passwd_bounds(), settings.http_options.clone());
        let front = match &http_sessions {
            Some(store) => {
                HttpFront::with_session_store(engine, admission, bounds, options, Arc::clone(store))
            }
            None => HttpFront::new(engine, admission, bounds, options),
        };
        info!(http = %http_local, upstream = ?settings.http_options.upstream, "scram-dh HTTP front listening");
        if settings.http_options.ui {
            info!(page = %format!("http://{http_local}{}", scram_dh_net::http::ui::UI_PATH), "browser page served");
        }
        announce.push_str(&format!(" http {http_local}"));
        fronts.spawn(front.run(http_listener, stopped(stop_rx.clone())));
    }
    if let Some(sasl_addr) = &settings.sasl {
        let sasl_listener = tokio::net::TcpListener::bind(sasl_addr)
            .await
            .with_context(|| format!("listening for standard SCRAM on {sasl_addr}"))?;
        let local = sasl_listener.local_addr()?;
        let front = SaslServer::new(server.engine_arc(), Arc::clone(server.admission()));
        info!(sasl = %local, "standard SCRAM-SHA-256 listening");
        announce.push_str(&format!(" sasl {local}"));
        fronts.spawn(front.run(sasl_listener, stopped(stop_rx.clone())));
    }
    if let Some((tls_addr, cert, key)) = &settings.sasl_tls {
        let config = tls_server_config(cert, key).map_err(|e| usage(e.to_string()))?;
        let tls_listener = tokio::net::TcpListener::bind(tls_addr)
            .await
            .with_context(|| format!("listening for standard SCRAM over TLS on {tls_addr}"))?;
        let local = tls_listener.local_addr()?;
        let front = SaslServer::with_tls(server.engine_arc(), Arc::clone(server.admission()), config);
        info!(sasl_tls = %local, "standard SCRAM-SHA-256(-PLUS) over TLS 1.3 listening");
        announce.push_str(&format!(" sasl-tls {local}"));
        fronts.spawn(front.run(tls_listener, stopped(stop_rx.clone())));
    }
    println!("{announce}");
    server.run(listener, stopped(stop_rx)).await?;
    while let Some(done) = fronts.join_next().await {
        done.context("a front panicked")??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn settings(args: &[&str]) -> Settings {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap()
            .serve
            .settings()
            .unwrap()
    }

    // Issue 10: the metrics are on by default, off with the flag or the config key.
    #[test]
    fn metrics_flag_and_config_key() {
        assert!(settings(&[]).http_options.metrics);
        assert!(!settings(&["--no-metrics"]).http_options.metrics);
        let dir = tempfile::tempdir().unwrap();
        let off = dir.path().join("off.toml");
        std::fs::write(&off, "metrics = false\n").unwrap();
        assert!(!settings(&["--config", off.to_str().unwrap()]).http_options.metrics);
        let on = dir.path().join("on.toml");
        std::fs::write(&on, "metrics = true\n").unwrap();
        assert!(settings(&["--config", on.to_str().unwrap()]).http_options.metrics);
        assert!(
            !settings(&["--config", on.to_str().unwrap(), "--no-metrics"]).http_options.metrics,
            "the flag wins"
        );
    }

    // Issue 11: the browser page is on by default, off with the flag or the config key.
    #[test]
    fn ui_flag_and_config_key() {
        assert!(settings(&[]).http_options.ui);
        assert!(!settings(&["--no-ui"]).http_options.ui);
        let dir = tempfile::tempdir().unwrap();
        let off = dir.path().join("off.toml");
        std::fs::write(&off, "ui = false\n").unwrap();
        assert!(!settings(&["--config", off.to_str().unwrap()]).http_options.ui);
        let on = dir.path().join("on.toml");
        std::fs::write(&on, "ui = true\n").unwrap();
        assert!(settings(&["--config", on.to_str().unwrap()]).http_options.ui);
        assert!(!settings(&["--config", on.to_str().unwrap(), "--no-ui"]).http_options.ui, "the flag wins");
        assert!(settings(&["--no-metrics"]).http_options.ui, "independent of the metrics");
    }
}
