//! A throwaway PostgreSQL 15 cluster: initdb as `postgres` (runuser as root, else
//! `sudo -n`) in a tempdir chowned to it, on a free loopback port, host logins by
//! SCRAM-SHA-256 only, local (Unix-socket) administration trusted. Stopped on drop.
//! It never skips: when PostgreSQL cannot start, the test panics with the reason
//! (`scripts/peers.sh` installs PostgreSQL 15).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The login role the stores use, and its password (URL-safe characters only).
pub const ROLE: &str = "scram_store";
pub const PASSWORD: &str = "S3cret-Store-Pass";

pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(what: &str, out: &Output) -> String {
    format!("{what}: {:?}\nstdout:\n{}\nstderr:\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

fn as_postgres(args: &[&str]) -> Command {
    let uid = Command::new("id").arg("-u").output().map(|o| text(&o.stdout)).unwrap_or_default();
    let mut cmd = if uid.trim() == "0" {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "-u", "postgres", "--"]);
        c
    };
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    assert!(out.status.success(), "PostgreSQL test cluster: {}", show(what, &out));
    out
}

impl Cluster {
    /// initdb, start, and create [`ROLE`] with [`PASSWORD`].
    pub fn start() -> Self {
        let initdb = format!("{PG_BIN}/initdb");
        assert!(
            Path::new(&initdb).exists(),
            "{initdb} is missing: PostgreSQL 15 is needed for these tests (run scripts/peers.sh); \
             they never skip"
        );
        let dir = tempfile::Builder::new().prefix("scram-dh-store-pg-").tempdir().unwrap();
        let uid = run(Command::new("id").args(["-u", "postgres"]), "id -u postgres");
        let uid: u32 = text(&uid.stdout).trim().parse().expect("uid of postgres");
        std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
        let data = dir.path().join("data");
        run(
            &mut as_postgres(&[
                &initdb,
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-sync",
            ]),
            "initdb (as postgres)",
        );
        let port = scram_dh_testkit::free_port();
        let cluster = Self { dir, port };
        cluster.pg_ctl_start();
        let create = format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'");
        cluster.psql(&create);
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_owned()
    }

    /// `pg_ctl start -w` (also after [`kill`](Self::kill): crash recovery runs).
    pub fn pg_ctl_start(&self) {
        let dir = self.dir.path().to_str().unwrap();
        // fsync off: a throwaway cluster needs no durability, and tests go faster.
        let opts = format!(
            "-p {} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port
        );
        let log = format!("{dir}/postgres.log");
        let out = as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            &self.data(),
            "-o",
            &opts,
            "-l",
            &log,
            "-w",
            "start",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run pg_ctl start: {e}"));
        assert!(
            out.status.success(),
            "PostgreSQL test cluster: {}\nserver log:\n{}",
            show("pg_ctl start", &out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m immediate`: every backend dies at once, as in a crash.
    pub fn kill(&self) {
        run(
            &mut as_postgres(&[
                &format!("{PG_BIN}/pg_ctl"),
                "-D",
                &self.data(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ]),
            "pg_ctl stop -m immediate",
        );
    }

    /// One SQL command as the superuser over the Unix socket (psql).
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = run(
            &mut as_postgres(&[
                "psql",
                "-X",
                "-h",
                self.dir.path().to_str().unwrap(),
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ]),
            &format!("psql -c {sql:?}"),
        );
        text(&out.stdout)
    }

    /// One SQL command as the superuser over the Unix socket, from async code.
    pub async fn admin(&self, sql: &str) {
        let client = self.connect_superuser("postgres").await;
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// A superuser connection to `dbname` over the Unix socket (trusted).
    pub async fn connect_superuser(&self, dbname: &str) -> tokio_postgres::Client {
        let conninfo =
            format!("host={} port={} user=postgres dbname={dbname}", self.dir.path().display(), self.port);
        let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("superuser connection to the test cluster: {e:?}"));
        tokio::spawn(conn);
        client
    }

    /// The role's password URL for `dbname` over TCP (SCRAM).
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://{ROLE}:{PASSWORD}@127.0.0.1:{}/{dbname}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(&[&format!("{PG_BIN}/pg_ctl"), "-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The cluster of this test process: started by the first test that asks,
/// stopped when the last one holding it is done.
pub fn shared() -> Arc<Cluster> {
    static CLUSTER: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut slot = CLUSTER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(cluster) = slot.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(Cluster::start());
    *slot = Arc::downgrade(&cluster);
    cluster
}
