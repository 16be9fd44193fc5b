//! `scram-dh bench`: the project's load generator.
//!
//! It runs one kind of operation (`--mode`), or a weighted mix (`--mode mixed
//! --mix …`), from `--concurrency` client tasks for `--duration` seconds or
//! `--count` operations, as fast as they go (closed loop) or at a fixed `--rate`
//! (open loop: an operation that finds every task busy counts its latency from
//! when it was due, so a server that falls behind shows it; give enough tasks). At the end: operations per second, latency
//! percentiles from an HDR histogram (p50/p90/p99/p99.9/max), failures by code
//! (see [`ops`]), and the server's CPU seconds per operation and its memory when
//! it runs on this host; `--json` prints one JSON object on stdout instead.
//!
//! The server is, by default, this binary's `serve` started as a child process
//! on loopback (a temporary SQLite database, or `--db memory`; `--null-protocol`
//! for `--mode null`; the HTTP front for the HTTP modes; `--upstream` at the
//! bench's own tiny upstream for `--mode gateway`), with the per-peer limits
//! lifted for the single peer the load generator is, and stopped at the end.
//! `--server ADDR` / `--http URL` load a running server instead (point them only
//! at a server you run; `--server-pid` for its figures).
//!
//! Modes:
//! - `login`, `login-channel` (X25519 channel and one `whoami`), `register` (a new
//!   user per operation over `--group`): over TCP; `login` over HTTP with `--http`
//!   and no `--server` (or `http-login`).
//! - `null`: the null protocol ([`scram_dh::null`]): a login's messages with no
//!   cryptography and no storage, through the same server path; the baseline
//!   `login` is compared with.
//! - `signed-request`: each task logs in over HTTP once, then sends signed
//!   `GET /v1/ping` in a loop, checking each response's MAC; `unsigned`: plain
//!   `GET /v1/ping`.
//! - `gateway`: signed `GET /bench/ping` through the gateway to the bench's own
//!   upstream (which answers `pong`); `direct`: the same GET straight to it.
//! - `half-open`: `--count` (default 10,000) A1 messages for distinct sessions,
//!   each connection dropped after A2, with the child's caps and TTL raised to
//!   hold them; reports the server's RSS before and after and the bytes per live
//!   handshake session.
//! - `mixed`: operations drawn in turn from `--mix NAME=WEIGHT,…` (default
//!   `login=8,register=1,signed-request=1`: mostly logins, some sign-ups, some API
//!   calls), any of the modes above but `null` and `half-open`.

mod child;
mod ops;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use scram_dh::{ClientConfig, Group, Labels, Password};
use scram_dh_net::HostKeyPolicy;
use scram_dh_net::http_client::HttpClient;
use serde_json::json;

use ops::{Ctx, Kind, Worker};

/// `bench` flags.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// A running server's TCP front to load [default: start `scram-dh serve` as a
    /// child process on 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    server: Option<String>,
    /// A running server's HTTP front (base URL), for the HTTP modes; with no
    /// --server, `--mode login` logs in over it.
    #[arg(long, value_name = "URL")]
    http: Option<String>,
    /// The process id of the --server/--http server, when it runs on this host:
    /// its CPU seconds per operation and its RSS are reported.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// login, login-channel, register, null, signed-request, unsigned, gateway,
    /// direct, half-open, http-login or mixed.
    #[arg(long, default_value = "login")]
    mode: String,
    /// Group for `register`.
    #[arg(long, default_value = "x25519")]
    group: String,
    /// The child server's credential store: `sqlite` (a temporary file) or `memory`.
    #[arg(long, default_value = "sqlite")]
    db: String,
    /// `--mode mixed`: NAME=WEIGHT pairs.
    #[arg(long, default_value = "login=8,register=1,signed-request=1")]
    mix: String,
    /// Client tasks, each with one operation in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Stop after this many seconds [default: 5; `half-open`: when --count is reached].
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many operations (`half-open`: the sessions to open
    /// [default: 10000]).
    #[arg(long, alias = "max-ops")]
    count: Option<u64>,
    /// Open loop: start this many operations per second (an operation started
    /// late because every task was busy counts from when it was due), instead of
    /// as fast as the tasks go; give --concurrency well above rate × latency.
    #[arg(long, value_name = "OPS")]
    rate: Option<f64>,
    /// Print one JSON object on stdout (no progress bar).
    #[arg(long)]
    json: bool,
    /// Seconds one operation may take before it counts as `timeout`.
    #[arg(long, default_value_t = 30.0)]
    op_timeout: f64,
    /// The child server's log level (its log is kept in the temporary directory
    /// and shown if it fails to start).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Worker threads of the load generator's own runtime, 1..=1024 [default: one
    /// per CPU]. On a host it shares with the server, fewer leave the server CPUs.
    #[arg(long)]
    threads: Option<usize>,
    /// The child server's `--workers` [default: its own default, one per CPU].
    #[arg(long, value_name = "N")]
    server_workers: Option<usize>,
}

impl BenchArgs {
    /// `--threads`, checked, for the runtime `main` builds before [`run`].
    ///
    /// # Errors
    /// A usage error outside 1..=1024.
    pub fn threads(&self) -> Result<Option<usize>> {
        if self.threads.is_some_and(|n| !(1..=1024).contains(&n)) {
            return Err(crate::usage("--threads must be 1..=1024"));
        }
        Ok(self.threads)
    }
}

/// Which operation number `n` is.
struct Plan {
    /// Each kind repeated by its weight; operation `n` is `schedule[n % len]`.
    schedule: Vec<Kind>,
}

impl Plan {
    fn kind(&self, n: u64) -> Kind {
        self.schedule[(n % self.schedule.len() as u64) as usize]
    }

    fn kinds(&self) -> Vec<Kind> {
        let mut k = self.schedule.clone();
        k.dedup();
        k
    }
}

fn plan(args: &BenchArgs) -> Result<Plan> {
    let group = Group::from_name(&args.group).ok_or_else(|| crate::usage("unknown --group"))?;
    let login_over_http = args.http.is_some() && args.server.is_none();
    let one = |name: &str| -> Result<Kind> {
        match Kind::parse(name, group) {
            Some(Kind::Login) if login_over_http => Ok(Kind::HttpLogin),
            Some(k) => Ok(k),
            None => Err(crate::usage(format!(
                "unknown mode {name:?}: login, login-channel, register, null, signed-request, unsigned, \
                 gateway, direct, half-open, http-login or mixed"
            ))),
        }
    };
    if args.mode != "mixed" {
        return Ok(Plan { schedule: vec![one(&args.mode)?] });
    }
    let mut schedule = Vec::new();
    for part in args.mix.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| crate::usage(format!("--mix wants NAME=WEIGHT, not {part:?}")))?;
        let weight: usize = weight
            .parse()
            .ok()
            .filter(|w| (1..=1000).contains(w))
            .ok_or_else(|| crate::usage(format!("--mix weight must be 1..=1000, not {weight:?}")))?;
        let kind = one(name)?;
        if matches!(kind, Kind::Null | Kind::HalfOpen) {
            return Err(crate::usage("--mix takes neither null nor half-open"));
        }
        schedule.extend(std::iter::repeat_n(kind, weight));
    }
    if schedule.is_empty() {
        return Err(crate::usage("--mix is empty"));
    }
    Ok(Plan { schedule })
}

/// What a run measured.
struct Run {
    elapsed: Duration,
    ok: u64,
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    by_kind: BTreeMap<&'static str, (u64, u64)>,
}

/// The server's CPU seconds and RSS (KiB) at one moment, when they can be read.
#[derive(Clone, Copy, Default)]
struct Probe {
    cpu: Option<f64>,
    rss: Option<u64>,
}

fn probe(pid: Option<u32>) -> Probe {
    pid.map_or_else(Probe::default, |p| Probe { cpu: child::cpu_seconds(p), rss: child::rss_kib(p) })
}

pub async fn run(args: BenchArgs) -> Result<()> {
    crate::init_logging("error", false);
    let plan = plan(&args)?;
    if args.concurrency == 0 || args.concurrency > 4096 {
        return Err(crate::usage("--concurrency must be 1..=4096"));
    }
    if args.duration.is_some_and(|d| !(d.is_finite() && d > 0.0 && d < 1e9)) {
        return Err(crate::usage("--duration must be a positive number of seconds"));
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(crate::usage("--rate must be a positive number of operations per second"));
    }
    if !(args.op_timeout.is_finite() && args.op_timeout > 0.0) {
        return Err(crate::usage("--op-timeout must be positive"));
    }
    if args.server_workers.is_some_and(|n| !(1..=1024).contains(&n)) {
        return Err(crate::usage("--server-workers must be 1..=1024"));
    }
    let kinds = plan.kinds();
    let half_open = kinds == [Kind::HalfOpen];
    let mut args = args;
    args.duration = Some(args.duration.unwrap_or(if half_open { 86_400.0 } else { 5.0 }));
    let count = match args.count {
        Some(0) => return Err(crate::usage("--count must be positive")),
        Some(c) => Some(c),
        None if half_open => Some(10_000),
        None => None,
    };
    let external = args.server.is_some() || args.http.is_some();
    let needs_upstream = kinds.iter().any(|k| matches!(k, Kind::Gateway | Kind::Direct));
    if external && needs_upstream {
        return Err(crate::usage(
            "gateway and direct run against the bench's own server, not --server/--http",
        ));
    }
    if external {
        if kinds.iter().any(|k| k.tcp()) && args.server.is_none() {
            return Err(crate::usage(format!("--mode {} needs --server ADDR (TCP)", args.mode)));
        }
        if kinds.iter().any(|k| k.http()) && args.http.is_none() {
            return Err(crate::usage(format!("--mode {} needs --http URL", args.mode)));
        }
    } else if args.server_pid.is_some() {
        return Err(crate::usage("--server-pid is for an outside --server/--http"));
    }
    if external && args.server_workers.is_some() {
        return Err(crate::usage("--server-workers sizes the child server, not --server/--http"));
    }
    let null = kinds.contains(&Kind::Null);
    if null && kinds.len() > 1 {
        return Err(crate::usage("null runs alone"));
    }

    let dir = tempfile::tempdir()?;
    let upstream = if needs_upstream { Some(ops::start_upstream().await?) } else { None };
    let mut server = None;
    let (tcp, http_url, fingerprint, pid) = if external {
        (args.server.clone(), args.http.clone(), None, args.server_pid)
    } else if kinds == [Kind::Direct] {
        // Straight to the bench's own upstream: no server at all.
        (None, None, None, None)
    } else {
        let sessions = usize::try_from(count.unwrap_or(0)).unwrap_or(usize::MAX);
        let spec = child::Spec {
            db: args.db.clone(),
            null,
            http: kinds.iter().any(|k| k.http() || *k == Kind::Gateway),
            upstream: kinds.contains(&Kind::Gateway).then(|| upstream.clone()).flatten(),
            concurrency: args.concurrency,
            sessions: if half_open { sessions } else { 0 },
            peers: HALF_OPEN_SOURCES,
            // Half-open sessions must outlive the run.
            ttl: if half_open { 3600 } else { 10 },
            log: args.server_log.clone(),
            workers: args.server_workers,
        };
        let s = spec.start(dir.path()).await?;
        let t = (Some(s.tcp.clone()), s.http.clone(), Some(s.fingerprint), Some(s.pid));
        server = Some(s);
        t
    };
    let result = bench(&args, &plan, dir.path(), tcp, http_url, fingerprint, upstream, pid, count).await;
    if let Some(s) = server {
        s.stop().await;
    }
    let failed = result?;
    if failed > 0 {
        bail!("{failed} operations failed");
    }
    Ok(())
}

/// Source addresses half-open connections are spread over (127.0.0.2…), so the
/// per-peer session cap, shared among them, holds 100,000 sessions.
const HALF_OPEN_SOURCES: usize = 8;

/// Registers the user, sets the tasks up, runs, reports. Returns the failures.
#[allow(clippy::too_many_arguments)]
async fn bench(
    args: &BenchArgs,
    plan: &Plan,
    dir: &std::path::Path,
    tcp: Option<String>,
    http_url: Option<String>,
    fingerprint: Option<scram_dh::Fingerprint>,
    upstream: Option<String>,
    pid: Option<u32>,
    count: Option<u64>,
) -> Result<u64> {
    let kinds = plan.kinds();
    let timeout = Duration::from_secs_f64(args.op_timeout);
    let http = match &http_url {
        Some(u) => Some(HttpClient::new(u, timeout).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let run_id = format!("{}-{}", std::process::id(), &started_nonce()[..8]);
    // The user every login is for, registered once (X25519) over TCP if there is
    // a TCP front, else over HTTP; an outside server's key is trusted on first use.
    let mut fingerprint = fingerprint;
    // Registrations pin the host key: an outside server's is learnt (trust on
    // first use) by registering the bench user first.
    let registers = kinds.iter().any(|k| matches!(k, Kind::Register(_)));
    let cred = if kinds.iter().any(|k| k.user()) || (registers && fingerprint.is_none()) {
        let name = format!("bench-user-{run_id}");
        let cred = match (&tcp, &http) {
            (Some(addr), _) => {
                let policy = match fingerprint {
                    Some(fp) => HostKeyPolicy::Fingerprint(fp),
                    None => HostKeyPolicy::KnownHosts {
                        file: scram_dh_net::KnownHosts::new(dir.join("known_hosts")),
                        server: addr.clone(),
                    },
                };
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("connecting to {addr}"))?;
                scram_dh_net::register(
                    stream,
                    &name,
                    Password::new("bench"),
                    Group::X25519,
                    Labels::Random,
                    &policy,
                    ClientConfig::default(),
                )
                .await
                .with_context(|| format!("registering the bench user at {addr}"))?
            }
            (None, Some(client)) => {
                let options = scram_dh_net::RegisterOptions {
                    group: Group::X25519,
                    labels: Labels::Random,
                    policy: HostKeyPolicy::KnownHosts {
                        file: scram_dh_net::KnownHosts::new(dir.join("known_hosts")),
                        server: client.server_name().to_owned(),
                    },
                    config: ClientConfig::default(),
                };
                client
                    .register(&name, Password::new("bench"), &options, |_| Ok(()))
                    .await
                    .with_context(|| format!("registering the bench user at {}", client.base_url()))?
            }
            (None, None) => bail!("no server to register the bench user at"),
        };
        fingerprint = fingerprint.or(cred.host_key);
        Some(cred)
    } else {
        None
    };
    if registers && fingerprint.is_none() {
        bail!("the server gave no host key at registration");
    }
    let half_open = kinds == [Kind::HalfOpen];
    let loopback = tcp
        .as_deref()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .is_some_and(|a| matches!(a.ip(), IpAddr::V4(v4) if v4.is_loopback()));
    let sources = if half_open && loopback {
        (0..HALF_OPEN_SOURCES).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8))).collect()
    } else {
        Vec::new()
    };
    let plain = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?;
    let ctx = Arc::new(Ctx { tcp, http, plain, upstream, cred, fingerprint, run_id, sources });

    // Each task that signs requests logs in first, outside the measurement.
    let mut workers = Vec::with_capacity(args.concurrency);
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (ctx, wants) = (Arc::clone(&ctx), kinds.iter().any(|k| k.session()));
        logins.spawn(async move {
            let mut w = Worker::default();
            if wants {
                w.session = Some(ctx.http_session().await?);
            }
            Ok::<_, String>(w)
        });
    }
    while let Some(w) = logins.join_next().await {
        workers.push(w?.map_err(|code| anyhow::anyhow!("logging in over HTTP failed: {code}"))?);
    }

    if half_open {
        // Let the set-up settle before the baseline.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let before = probe(pid);
    let run = drive(args, &ctx, plan, workers, count).await?;
    if half_open {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after = probe(pid);
    report(args, &run, before, after, half_open, pid.is_some());
    Ok(run.errors.values().sum())
}

fn started_nonce() -> String {
    scram_dh::nonce::Nonce::random(&mut rand_core::UnwrapErr(getrandom::SysRng)).to_hex()
}

/// Runs the plan from one task per worker until `--duration` or `count`.
async fn drive(
    args: &BenchArgs,
    ctx: &Arc<Ctx>,
    plan: &Plan,
    workers: Vec<Worker>,
    count: Option<u64>,
) -> Result<Run> {
    let max = count.unwrap_or(u64::MAX);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let op_timeout = Duration::from_secs_f64(args.op_timeout);
    let schedule = Arc::new(Plan { schedule: plan.schedule.clone() });
    let bar = progress(args, count);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration.unwrap_or(5.0));
    let rate = args.rate;
    let mut tasks = tokio::task::JoinSet::new();
    for mut worker in workers {
        let (ctx, next, done, plan) =
            (Arc::clone(ctx), Arc::clone(&next), Arc::clone(&done), Arc::clone(&schedule));
        tasks.spawn(async move {
            let mut hist = new_histogram();
            let mut errors = BTreeMap::<String, u64>::new();
            let mut by_kind = BTreeMap::<&'static str, (u64, u64)>::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    break;
                }
                let due = match rate {
                    Some(r) => started + Duration::from_secs_f64(n as f64 / r),
                    None => Instant::now(),
                };
                if due >= deadline {
                    break;
                }
                // Early: wait, then start when the timer lets us (its lag, up to a
                // millisecond tick, is the generator's, not the server's). Late (every
                // task was busy: the server is behind): the latency counts from when
                // the operation was due, so the backlog shows.
                let start = if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                } else {
                    due
                };
                let kind = plan.kind(n);
                let r = tokio::time::timeout(op_timeout, ctx.run(&mut worker, kind, n))
                    .await
                    .unwrap_or_else(|_| Err("timeout".into()));
                let entry = by_kind.entry(kind.name()).or_default();
                match r {
                    Ok(()) => {
                        hist.saturating_record(
                            u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
                        );
                        entry.0 += 1;
                        done.0.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(code) => {
                        *errors.entry(code).or_default() += 1;
                        entry.1 += 1;
                        done.1.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (hist, errors, by_kind)
        });
    }
    let ticker = {
        let (bar, done) = (bar.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let (ok, failed) = (done.0.load(Ordering::Relaxed), done.1.load(Ordering::Relaxed));
                let secs = started.elapsed().as_secs_f64();
                bar.set_position(if count.is_some() {
                    ok + failed
                } else {
                    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
                });
                bar.set_message(format!("{ok} ok, {failed} failed, {:.0}/s", ok as f64 / secs.max(1e-9)));
            }
        })
    };
    let mut run = Run {
        elapsed: Duration::ZERO,
        ok: 0,
        hist: new_histogram(),
        errors: BTreeMap::new(),
        by_kind: BTreeMap::new(),
    };
    while let Some(t) = tasks.join_next().await {
        let (hist, errors, by_kind) = t?;
        run.hist.add(&hist).context("merging latency histograms")?;
        for (code, n) in errors {
            *run.errors.entry(code).or_default() += n;
        }
        for (kind, (ok, failed)) in by_kind {
            let e = run.by_kind.entry(kind).or_default();
            e.0 += ok;
            e.1 += failed;
        }
    }
    run.elapsed = started.elapsed();
    run.ok = run.hist.len();
    ticker.abort();
    bar.finish_and_clear();
    Ok(run)
}

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// A bar on stderr while the run lasts: over `count` operations, or over the
/// duration in milliseconds; hidden with `--json` or when stderr is no terminal.
fn progress(args: &BenchArgs, count: Option<u64>) -> ProgressBar {
    if args.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let len = count.unwrap_or((args.duration.unwrap_or(5.0) * 1000.0) as u64);
    let bar = ProgressBar::new(len);
    let template = if count.is_some() {
        "{bar:40} {pos}/{len} ops  {msg}"
    } else {
        "{bar:40} {elapsed}/{duration}  {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Prints the run.
fn report(args: &BenchArgs, run: &Run, before: Probe, after: Probe, half_open: bool, known: bool) {
    use std::io::Write as _;
    // A closed stdout (`| head`) ends the report, not the process.
    let _ = std::io::stdout().write_all(render(args, run, before, after, half_open, known).as_bytes());
}

/// The report's text: one JSON object with `--json`, else a few lines.
fn render(args: &BenchArgs, run: &Run, before: Probe, after: Probe, half_open: bool, known: bool) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    macro_rules! println {
        ($($t:tt)*) => {{
            let _ = writeln!(text, $($t)*);
        }};
    }
    let ms = |q: f64| run.hist.value_at_quantile(q) as f64 / 1000.0;
    let failed: u64 = run.errors.values().sum();
    let secs = run.elapsed.as_secs_f64();
    let cpu = match (before.cpu, after.cpu) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let cpu_per_op = cpu.filter(|_| run.ok > 0).map(|c| c / run.ok as f64);
    let per_session = match (before.rss, after.rss) {
        (Some(a), Some(b)) if half_open && run.ok > 0 => {
            Some(b.saturating_sub(a) as f64 * 1024.0 / run.ok as f64)
        }
        _ => None,
    };
    let server = if args.server.is_some() || args.http.is_some() {
        "outside"
    } else if run.by_kind.keys().eq(["direct"].iter()) {
        "none"
    } else {
        "child"
    };
    if args.json {
        let obj = json!({
            "mode": args.mode,
            "kinds": run.by_kind.iter().map(|(k, (ok, failed))| (k.to_string(), json!({"ok": ok, "failed": failed}))).collect::<serde_json::Map<_, _>>(),
            "server": server,
            "db": (server == "child").then_some(&args.db),
            "concurrency": args.concurrency,
            "rate": args.rate,
            "threads": tokio::runtime::Handle::current().metrics().num_workers(),
            "server_workers": args.server_workers,
            "elapsed_s": secs,
            "ok": run.ok,
            "failed": failed,
            "ops_per_s": run.ok as f64 / secs,
            "latency_ms": {
                "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p99_9": ms(0.999),
                "max": run.hist.max() as f64 / 1000.0, "mean": run.hist.mean() / 1000.0,
            },
            "errors": run.errors,
            "server_cpu_s": cpu,
            "server_cpu_s_per_op": cpu_per_op,
            "server_rss_kib": {"before": before.rss, "after": after.rss},
            "half_open": half_open.then(|| json!({
                "sessions": run.ok,
                "rss_before_kib": before.rss,
                "rss_after_kib": after.rss,
                "bytes_per_session": per_session,
            })),
        });
        return format!("{obj}\n");
    }
    let db = if server == "child" { format!(", {}", args.db) } else { String::new() };
    let rate = args.rate.map(|r| format!(" at {r:.0}/s")).unwrap_or_default();
    println!(
        "mode {} ({server} server{db}) concurrency {}{rate} over {secs:.1} s: {} ok, {failed} failed, {:.0} ops/s",
        args.mode,
        args.concurrency,
        run.ok,
        run.ok as f64 / secs
    );
    if run.by_kind.len() > 1 {
        let parts: Vec<String> =
            run.by_kind.iter().map(|(k, (ok, f))| format!("{k} {ok} ok/{f} failed")).collect();
        println!("  by kind: {}", parts.join(", "));
    }
    println!(
        "  latency ms: p50 {:.3}, p90 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        run.hist.max() as f64 / 1000.0
    );
    if !run.errors.is_empty() {
        let parts: Vec<String> = run.errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!("  errors: {}", parts.join(", "));
    }
    if let (Some(c), Some(per), Some(b), Some(a)) = (cpu, cpu_per_op, before.rss, after.rss) {
        println!("  server: {c:.2} CPU s ({:.1} µs/op), RSS {:.1} → {:.1} MiB", per * 1e6, mib(b), mib(a));
    } else if !known && server == "outside" {
        println!("  server: CPU and RSS unknown (give --server-pid for a server on this host)");
    }
    if let Some(p) = per_session {
        println!(
            "  half-open: {} live handshake sessions, {p:.0} bytes each (server RSS {:.1} MiB)",
            run.ok,
            mib(after.rss.unwrap_or(0))
        );
    }
    text
}
