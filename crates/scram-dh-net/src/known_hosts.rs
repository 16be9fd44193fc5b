//! A known-hosts file for host key pinning, as SSH keeps one: one line per server,
//! `<server> <fingerprint>`; `#` starts a comment. Trust on first use, then refuse
//! a changed key.
//!
//! The file is mode 0600 in a 0700 directory and is only ever replaced whole
//! (temporary file, fsync, rename, fsync of the directory), so a crash or a full
//! disk never leaves a truncated line behind.

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

    fn local(&self, e: impl std::fmt::Display) -> NetError {
        NetError::Local(format!("{}: {e}", self.path.display()))
    }

    fn read(&self) -> Result<String, NetError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(self.local(format_args!("reading: {e}"))),
        }
    }

    fn find(&self, text: &str, server: &str) -> Result<Option<Fingerprint>, NetError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(fp), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(self.local(format_args!("line {}: malformed line", i + 1)));
            };
            if name == server {
                let fp = fp
                    .parse()
                    .map_err(|_| self.local(format_args!("line {}: malformed fingerprint", i + 1)))?;
                return Ok(Some(fp));
            }
        }
        Ok(None)
    }

    /// The pinned fingerprint for `server`, if any.
    ///
    /// # Errors
    /// [`NetError::Local`] when the file cannot be read or has a malformed line.
    pub fn lookup(&self, server: &str) -> Result<Option<Fingerprint>, NetError> {
        let text = self.read()?;
        self.find(&text, server)
    }

    /// Records `server`'s fingerprint: the file is rewritten atomically with the
    /// line appended (created 0600, its directory 0700, when missing). Recording a
    /// fingerprint that is already there does nothing.
    ///
    /// Two clients adding at once cannot lose a line: each re-reads the file after
    /// its rename and tries again if its line is missing.
    ///
    /// # Errors
    /// [`NetError::Local`] when the file cannot be written, the server name is not
    /// one word, or the file pins another key for `server` already.
    pub fn add(&self, server: &str, fingerprint: &Fingerprint) -> Result<(), NetError> {
        if server.split_whitespace().count() != 1 || server.starts_with('#') {
            return Err(NetError::Local("server name must be one word".into()));
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| NetError::Local(format!("creating {}: {e}", dir.display())))?;
        }
        for _ in 0..10 {
            let mut text = self.read()?;
            match self.find(&text, server)? {
                Some(fp) if fp == *fingerprint => return Ok(()),
                Some(fp) => {
                    return Err(self.local(format_args!("already pins {fp} for {server}, not {fingerprint}")));
                }
                None => {}
            }
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{server} {fingerprint}\n"));
            self.replace(text.as_bytes())?;
            if self.find(&self.read()?, server)?.is_some_and(|fp| fp == *fingerprint) {
                return Ok(());
            }
        }
        Err(self.local("changed by someone else on every attempt; try again"))
    }

    /// Replaces the whole file: temporary file beside it (0600, exclusive), write,
    /// fsync, rename, fsync the directory.
    fn replace(&self, data: &[u8]) -> Result<(), NetError> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|e| NetError::Local(format!("random: {e}")))?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = dir.join(format!(".{name}.{}.{tag}.tmp", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let result = opts
            .open(&tmp)
            .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.local(format_args!("writing: {e}")));
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| NetError::Local(format!("syncing {}: {e}", dir.display())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fp(byte: u8) -> Fingerprint {
        Fingerprint::of(&[byte; 32])
    }

    #[test]
    fn add_is_atomic_private_and_idempotent() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("kh-test-{}-{:x}", std::process::id(), rand_tag()));
        let kh = KnownHosts::new(base.join("cfg").join("known_hosts"));
        kh.add("a:1", &fp(1)).unwrap();
        kh.add("b:2", &fp(2)).unwrap();
        kh.add("a:1", &fp(1)).unwrap();
        assert!(kh.add("a:1", &fp(3)).is_err(), "a second key for a pinned server");
        assert!(kh.add("two words", &fp(3)).is_err());
        assert_eq!(kh.lookup("a:1").unwrap(), Some(fp(1)));
        assert_eq!(kh.lookup("b:2").unwrap(), Some(fp(2)));
        assert_eq!(std::fs::read_to_string(kh.path()).unwrap().lines().count(), 2);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(kh.path()), 0o600);
        assert_eq!(mode(&base.join("cfg")), 0o700);
        let leftovers: Vec<_> = std::fs::read_dir(base.join("cfg")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left");
        std::fs::write(kh.path(), "a:1 not-a-fingerprint\n").unwrap();
        assert!(kh.lookup("a:1").is_err());
        let _ = std::fs::remove_dir_all(&base);
    }

    fn rand_tag() -> u64 {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        u64::from_le_bytes(b)
    }
}
