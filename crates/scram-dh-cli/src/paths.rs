//! Where files live: the client's config directory (credentials, known hosts) and
//! the server's host key.
//!
//! Every file is written atomically (a temporary file in the same directory,
//! written, fsynced, renamed over the target, then the directory fsynced), so a
//! crash or a full disk leaves the old file or the new one, never part of one.
//! Secret files are 0600; the config directory and everything under it that holds
//! credentials is 0700.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scram_dh::HostKey;

/// The client's config directory: `--config-dir`, `$SCRAM_DH_CONFIG_DIR`,
/// `$XDG_CONFIG_HOME/scram-dh`, or `~/.config/scram-dh`.
pub fn config_dir(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p).join("scram-dh"));
    }
    match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("scram-dh")),
        None => bail!("cannot find a config directory: set HOME, XDG_CONFIG_HOME or --config-dir"),
    }
}

/// `<config>/credentials/<server>/<user>.json`, with the server name made file-safe.
pub fn credential_path(config: &Path, server: &str, username: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' }).collect()
    };
    config.join("credentials").join(safe(server)).join(format!("{}.json", safe(username)))
}

/// `<config>/http-sessions/<server>/<user>.json`: an HTTP session (id, keys, next
/// seq) beside the credentials, made file-safe the same way.
pub fn http_session_path(config: &Path, server: &str, username: &str) -> PathBuf {
    let cred = credential_path(config, server, username);
    let rel = cred.strip_prefix(config.join("credentials")).map(Path::to_path_buf).unwrap_or_default();
    config.join("http-sessions").join(rel)
}

/// Makes `config` and every directory from it down to `path`'s parent private
/// (0700): missing ones are created so, existing ones we own are tightened. The
/// directories above `config` are created with the usual mode if missing, as SSH
/// does for `~/.ssh`. A directory owned by someone else is left alone: its owner
/// can replace our files anyway, and chmod-ing it would change their setup.
///
/// # Errors
/// When a directory cannot be created or tightened, or `path` is not under `config`.
pub fn ensure_private_dirs(config: &Path, path: &Path) -> Result<()> {
    if let Some(parent) = config.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    private_dir(config)?;
    let below = path.parent().unwrap_or(config).strip_prefix(config).map_err(|_| {
        anyhow::anyhow!("{} is not inside the config directory {}", path.display(), config.display())
    })?;
    let mut dir = config.to_path_buf();
    for part in below.components() {
        dir.push(part);
        private_dir(&dir)?;
    }
    Ok(())
}

/// Creates `dir` with mode 0700, or tightens it to 0700 if it exists and is ours.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 && meta.uid() == rustix::process::geteuid().as_raw() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o7700))
            .with_context(|| format!("making {} private (chmod 700)", dir.display()))?;
    }
    Ok(())
}

/// Tightens an existing file of ours to 0600 (a known_hosts file an older version
/// or an editor left 0644); a missing file or someone else's is left alone.
///
/// # Errors
/// When the file exists but cannot be read or changed.
pub fn tighten_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if meta.is_file() && mode & 0o077 != 0 && meta.uid() == rustix::process::geteuid().as_raw() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("making {} private (chmod 600)", path.display()))?;
    }
    Ok(())
}

/// Writes `data` to `path` with mode 0600, atomically, replacing any old file.
/// The directory must exist (see [`ensure_private_dirs`]) or is created with the
/// usual mode; its permissions are not changed here.
///
/// # Errors
/// When the directory or the file cannot be written (a full disk included); the
/// old file, if any, is then untouched and no temporary file is left.
pub fn write_secret_file(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic(path, data, false)
}

/// Creates `path`, which must not exist, with mode 0600, atomically: it appears
/// complete or not at all (for provisioning bundles and host keys).
///
/// # Errors
/// When `path` exists ([`std::io::ErrorKind::AlreadyExists`] in the chain) or
/// cannot be written.
pub fn create_secret_file_new(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic(path, data, true)
}

fn write_atomic(path: &Path, data: &[u8], no_clobber: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".scram-dh-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    // On any error below, dropping `tmp` deletes the temporary file.
    let written = tmp.write_all(data).and_then(|()| tmp.as_file().sync_all());
    written.with_context(|| format!("writing {}", path.display()))?;
    let persisted = if no_clobber { tmp.persist_noclobber(path) } else { tmp.persist(path) };
    persisted.map_err(|e| e.error).with_context(|| {
        if no_clobber {
            format!("creating {} (it must not exist yet)", path.display())
        } else {
            format!("writing {}", path.display())
        }
    })?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))?;
    Ok(())
}

/// The default host key path beside a database: `scram-dh.db` → `scram-dh.hostkey`.
pub fn default_host_key_path(db: &Path) -> PathBuf {
    db.with_extension("hostkey")
}

/// Loads the server's host key, creating it (0600, atomically) on first run.
///
/// An empty file is what an interrupted first start of an older version left
/// behind (it wrote in place): it never held a key anyone could have pinned, so it
/// is replaced instead of refusing to start.
pub fn load_or_create_host_key(path: &Path) -> Result<HostKey> {
    // Two tries: a concurrent first start may create the file between our read
    // and our create, and then its key is the one to use.
    for _ in 0..2 {
        match std::fs::read_to_string(path) {
            Ok(text) if text.is_empty() => {
                tracing::warn!(path = %path.display(), "host key file is empty (an interrupted first start?); replacing it");
                return create_host_key(path, false);
            }
            Ok(text) => return parse_host_key(path, &zeroize::Zeroizing::new(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create_host_key(path, true) {
                Err(e) if is_already_exists(&e) => continue,
                other => return other,
            },
            Err(e) => return Err(e).with_context(|| format!("reading host key {}", path.display())),
        }
    }
    bail!("{}: host key file keeps changing", path.display())
}

fn is_already_exists(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::AlreadyExists)
    })
}

fn parse_host_key(path: &Path, text: &str) -> Result<HostKey> {
    let bytes = zeroize::Zeroizing::new(
        STANDARD.decode(text.trim()).with_context(|| format!("{}: not a host key file", path.display()))?,
    );
    let seed: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: a host key is 32 bytes", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "host key file is readable by others; chmod 600 it");
        }
    }
    Ok(HostKey::from_seed(&seed))
}

fn create_host_key(path: &Path, no_clobber: bool) -> Result<HostKey> {
    let key = HostKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
    let text = zeroize::Zeroizing::new(format!("{}\n", STANDARD.encode(key.to_seed().as_ref())));
    write_atomic(path, text.as_bytes(), no_clobber).context("creating the host key")?;
    tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(), "created a new host key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn l11_writes_are_whole_private_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        write_secret_file(&f, b"one").unwrap();
        write_secret_file(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(mode(&f), 0o600);
        let n = dir.path().join("new.cred");
        create_secret_file_new(&n, b"bundle").unwrap();
        let again = create_secret_file_new(&n, b"other").unwrap_err();
        assert!(is_already_exists(&again), "{again:#}");
        assert_eq!(std::fs::read(&n).unwrap(), b"bundle", "never overwritten");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn l11_host_key_created_once_and_an_empty_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.hostkey");
        let first = load_or_create_host_key(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_or_create_host_key(&path).unwrap().fingerprint(), first.fingerprint());
        // What an interrupted first start of an older version left.
        std::fs::write(&path, b"").unwrap();
        let replaced = load_or_create_host_key(&path).unwrap();
        assert_ne!(replaced.fingerprint(), first.fingerprint());
        assert_eq!(load_or_create_host_key(&path).unwrap().fingerprint(), replaced.fingerprint());
        // A damaged key is refused, never replaced silently.
        std::fs::write(&path, b"not base64!\n").unwrap();
        assert!(format!("{:#}", load_or_create_host_key(&path).unwrap_err()).contains("not a host key"));
        std::fs::write(&path, format!("{}\n", STANDARD.encode([7u8; 31]))).unwrap();
        assert!(format!("{:#}", load_or_create_host_key(&path).unwrap_err()).contains("32 bytes"));
    }

    #[test]
    fn l14_private_dirs() {
        let base = tempfile::tempdir().unwrap();
        let config = base.path().join("x").join("scram-dh");
        let cred = credential_path(&config, "h:1", "u");
        ensure_private_dirs(&config, &cred).unwrap();
        assert_eq!(mode(&config), 0o700);
        assert_eq!(mode(&config.join("credentials")), 0o700);
        assert_eq!(mode(cred.parent().unwrap()), 0o700);
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o775)).unwrap();
        ensure_private_dirs(&config, &cred).unwrap();
        assert_eq!(mode(&config), 0o700, "an existing dir of ours is tightened");
        assert!(ensure_private_dirs(&config, &base.path().join("elsewhere").join("f")).is_err());
        let file = config.join("known_hosts");
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        tighten_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        tighten_private_file(&config.join("missing")).unwrap();
    }
}
