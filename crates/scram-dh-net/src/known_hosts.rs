//! A known-hosts file for host key pinning, as SSH keeps one: one line per server,
//! `<server> <fingerprint>`; `#` starts a comment. Trust on first use, then refuse
//! a changed key.

use std::io::Write;
use std::path::{Path, PathBuf};

use scram_dh::Fingerprint;

use crate::error::NetError;

/// A known-hosts file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// The file at `path` (it need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pinned fingerprint for `server`, if any.
    ///
    /// # Errors
    /// [`NetError::Local`] when the file cannot be read or has a malformed line.
    pub fn lookup(&self, server: &str) -> Result<Option<Fingerprint>, NetError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NetError::Local(format!("reading {}: {e}", self.path.display()))),
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(fp), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(NetError::Local(format!("{}:{}: malformed line", self.path.display(), i + 1)));
            };
            if name == server {
                let fp = fp.parse().map_err(|_| {
                    NetError::Local(format!("{}:{}: malformed fingerprint", self.path.display(), i + 1))
                })?;
                return Ok(Some(fp));
            }
        }
        Ok(None)
    }

    /// Records `server`'s fingerprint (appends; creates the file 0600 and its directory).
    ///
    /// # Errors
    /// [`NetError::Local`] when the file cannot be written.
    pub fn add(&self, server: &str, fingerprint: &Fingerprint) -> Result<(), NetError> {
        if server.split_whitespace().count() != 1 {
            return Err(NetError::Local("server name must be one word".into()));
        }
        let err = |e: std::io::Error| NetError::Local(format!("writing {}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&self.path).map_err(err)?;
        writeln!(f, "{server} {fingerprint}").map_err(err)?;
        f.sync_all().map_err(err)
    }
}
