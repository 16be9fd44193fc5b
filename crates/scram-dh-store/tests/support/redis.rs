//! A throwaway Redis server: `redis-server` from PATH (or /usr/bin) on a free
//! loopback port, no persistence, in a tempdir, with a password. Killed on drop.
//! It never skips: when Redis cannot start, the test panics with the reason
//! (`scripts/peers.sh` installs redis-server). [`Server::stop`] and
//! [`Server::start`] kill it and bring it back on the same port and directory,
//! for outage tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The server's password (URL-safe characters only).
pub const PASSWORD: &str = "S3cret-Redis-Pass";

pub struct Server {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Mutex<Option<Child>>,
}

fn binary() -> PathBuf {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|d| d.join("redis-server")).find(|p| p.is_file())
    });
    let path = from_path.unwrap_or_else(|| PathBuf::from("/usr/bin/redis-server"));
    assert!(
        path.is_file(),
        "redis-server is missing (not on PATH, nor /usr/bin/redis-server): the Redis store tests need it \
         (run scripts/peers.sh); they never skip"
    );
    path
}

impl Server {
    /// A new server on a free port, answering PING.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("scram-dh-store-redis-").tempdir().unwrap();
        let port = scram_dh_testkit::free_port();
        let server = Self { dir, port, child: Mutex::new(None) };
        server.start();
        server
    }

    /// The URL with the password, database 0.
    pub fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}/0", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts redis-server (again, after [`stop`](Self::stop)) and waits until it
    /// answers PING; panics with its log when it does not within 10 s.
    pub fn start(&self) {
        let mut slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(slot.is_none(), "redis-server already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new(binary())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", self.dir.path().to_str().unwrap()])
            .args(["--requirepass", PASSWORD])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        *slot = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping() {
                return;
            }
            if let Some(status) = slot.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("redis-server exited at start ({status}); log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 10 s; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL, as in a crash) and waits for it to be gone.
    pub fn stop(&self) {
        let mut slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut child) = slot.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server without closing its sockets (SIGSTOP): calls get no
    /// answer at all, as from a hung server or a dropped network path.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`freeze`](Self::freeze)d server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = slot.as_ref().expect("redis-server not running").id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(status.success(), "kill {sig} {pid}: {status}");
    }

    fn thaw_quietly(&self) {
        let slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(child) = slot.as_ref() {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
        }
    }

    /// AUTH + PING over a raw socket: whether the server answers `+PONG`.
    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let msg = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{PASSWORD}\r\n*1\r\n$4\r\nPING\r\n", PASSWORD.len());
        if s.write_all(msg.as_bytes()).is_err() {
            return false;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"+PONG\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.starts_with(b"-") {
                return false;
            }
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.thaw_quietly();
        self.stop();
    }
}

/// The server of this test process: started by the first test that asks,
/// stopped when the last one holding it is done. Tests that kill a server make
/// their own with [`Server::new`].
pub fn shared() -> Arc<Server> {
    static SERVER: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut slot = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(Server::new());
    *slot = Arc::downgrade(&server);
    server
}
