//! The server `bench` loads when it is given none: this very binary's `serve`,
//! started as a child process on loopback (so its CPU time and memory are its
//! own, read from `/proc`), with the per-peer limits lifted for the one peer the
//! load generator is, and stopped at the end.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use scram_dh::Fingerprint;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// What the child server is started with.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `sqlite` (a file in the temporary directory) or `memory`.
    pub db: String,
    /// `serve --null-protocol`.
    pub null: bool,
    /// Serve the HTTP front too.
    pub http: bool,
    /// The gateway's upstream.
    pub upstream: Option<String>,
    /// The load generator's concurrency (the per-peer caps follow it).
    pub concurrency: usize,
    /// Handshake sessions it must be able to hold (half-open runs).
    pub sessions: usize,
    /// Source addresses the load comes from (the per-peer session cap is shared
    /// among them).
    pub peers: usize,
    /// Handshake session TTL, seconds.
    pub ttl: u64,
    /// Its log level (`RUST_LOG`); its stderr goes to `server.log` in the directory.
    pub log: String,
    /// Its `--workers` (`None`: its default).
    pub workers: Option<usize>,
}

/// The running child.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The TCP front.
    pub tcp: String,
    /// The HTTP front's base URL, when it serves one.
    pub http: Option<String>,
    /// Its host key.
    pub fingerprint: Fingerprint,
}

/// Open connections the child allows (the default of `serve`), below the
/// open-file limit it raises itself to.
const MAX_CONNECTIONS: usize = 8192;

impl Spec {
    /// `serve`'s flags and the `[limits]` table of its config file.
    fn args(&self, dir: &Path) -> Result<Vec<String>> {
        let config = dir.join("serve.toml");
        let per_peer = (self.concurrency * 2 + 16).min(MAX_CONNECTIONS);
        let channels = per_peer.min(4096);
        // The memory session store caps each peer at 4 × max-handshakes-per-peer.
        let handshakes_per_peer =
            per_peer.max(self.sessions.div_ceil(self.peers.max(1)).div_ceil(4) + 16).min(MAX_CONNECTIONS);
        std::fs::write(&config, format!("[limits]\nmax_channels_per_peer = {channels}\n"))
            .with_context(|| format!("writing {}", config.display()))?;
        let db = match self.db.as_str() {
            "memory" => "memory".to_owned(),
            "sqlite" => dir.join("bench.db").display().to_string(),
            other => bail!("--db must be sqlite or memory, not {other:?}"),
        };
        let mut a: Vec<String> = vec!["serve".into(), "--config".into(), config.display().to_string()];
        let mut flag = |k: &str, v: String| {
            a.push(format!("--{k}"));
            a.push(v);
        };
        flag("listen", "127.0.0.1:0".into());
        flag("db", db);
        flag("host-key", dir.join("bench.hostkey").display().to_string());
        flag("max-connections", MAX_CONNECTIONS.to_string());
        flag("max-connections-per-peer", per_peer.to_string());
        flag("max-handshakes", handshakes_per_peer.max(1024).to_string());
        flag("max-handshakes-per-peer", handshakes_per_peer.to_string());
        flag("max-channels-per-user", channels.to_string());
        flag("max-sessions", (self.sessions + 1024).max(100_000).to_string());
        flag("ttl", self.ttl.to_string());
        for k in ["dh-per-sec", "dh-burst", "registrations-per-sec", "registration-burst"] {
            flag(k, "1000000000".into());
        }
        if self.http {
            flag("http", "127.0.0.1:0".into());
            flag("http-max-sessions", "1000000".into());
            flag("http-max-sessions-per-user", "1000000".into());
        }
        if let Some(u) = &self.upstream {
            flag("upstream", u.clone());
        }
        if self.null {
            a.push("--null-protocol".into());
        }
        if let Some(n) = self.workers {
            a.push("--workers".into());
            a.push(n.to_string());
        }
        Ok(a)
    }

    /// Starts `current_exe() serve …` and waits for its "listening on" line.
    pub async fn start(&self, dir: &Path) -> Result<Server> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let log_path = dir.join("server.log");
        let log =
            std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = Command::new(exe)
            .args(self.args(dir)?)
            .env("RUST_LOG", &self.log)
            .env_remove("SCRAM_DH_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the bench server (scram-dh serve)")?;
        let pid = child.id().context("the bench server has no pid")?;
        let stdout = child.stdout.take().context("the bench server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
        let line = match line {
            Ok(Ok(Some(line))) => line,
            _ => {
                let _ = child.kill().await;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("the bench server did not start; its log:\n{log}");
            }
        };
        // The rest of stdout is drained so the child never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // "listening on ADDR host key FP [http ADDR] …"
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |w: &str| words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1)).copied();
        let tcp = after("on").context("no address in the server's announce line")?.to_owned();
        let fingerprint: Fingerprint =
            after("key").context("no host key in the server's announce line")?.parse()?;
        let http = after("http").map(|a| format!("http://{a}"));
        Ok(Server { child, pid, tcp, http, fingerprint })
    }
}

impl Server {
    /// SIGTERM, then up to 10 s for a clean exit, then SIGKILL.
    pub async fn stop(mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid.cast_signed()) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// User plus system CPU seconds of process `pid` so far (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second();
    Some((utime + stime) as f64 / ticks as f64)
}

/// Resident set size of process `pid`, KiB (`/proc/PID/status` `VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// This process's own figures read back: CPU time is a number, RSS non-zero.
    #[test]
    fn reads_proc_of_this_process() {
        let me = std::process::id();
        assert!(super::cpu_seconds(me).unwrap() >= 0.0);
        assert!(super::rss_kib(me).unwrap() > 0);
        assert!(super::rss_kib(u32::MAX).is_none());
    }

    /// `--server-workers` reaches the child's command line, and only when given.
    #[test]
    fn workers_reach_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = super::Spec {
            db: "memory".into(),
            null: false,
            http: false,
            upstream: None,
            concurrency: 4,
            sessions: 0,
            peers: 1,
            ttl: 10,
            log: "warn".into(),
            workers: Some(1),
        };
        let args = spec.args(dir.path()).unwrap();
        assert!(args.windows(2).any(|w| w[0] == "--workers" && w[1] == "1"), "{args:?}");
        spec.workers = None;
        assert!(!spec.args(dir.path()).unwrap().iter().any(|a| a == "--workers"));
    }
}
