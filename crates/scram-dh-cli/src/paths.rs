//! Where files live: the client's config directory (credentials, known hosts) and
//! the server's host key. Secret files are written 0600, atomically.

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

/// Writes `data` to `path` with mode 0600 via a temporary file and a rename, so a
/// crash leaves either the old file or the new one, never half of one.
pub fn write_secret_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Directories holding credentials: owner only, best effort on existing ones we created.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".scram-dh-")
        .permissions(secret_permissions())
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn secret_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o600)
}

/// Creates a new file that must not exist, mode 0600 (for provisioning bundles).
pub fn create_secret_file_new(path: &Path, data: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f =
        opts.open(path).with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// The default host key path beside a database: `scram-dh.db` → `scram-dh.hostkey`.
pub fn default_host_key_path(db: &Path) -> PathBuf {
    db.with_extension("hostkey")
}

/// Loads the server's host key, creating it (0600) on first run.
pub fn load_or_create_host_key(path: &Path) -> Result<HostKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = zeroize::Zeroizing::new(
                STANDARD
                    .decode(text.trim())
                    .with_context(|| format!("{}: not a host key file", path.display()))?,
            );
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("{}: a host key is 32 bytes", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "host key file is readable by others; chmod 600 it");
                }
            }
            Ok(HostKey::from_seed(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = HostKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
            let text = zeroize::Zeroizing::new(format!("{}\n", STANDARD.encode(key.to_seed().as_ref())));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            create_secret_file_new(path, text.as_bytes())?;
            tracing::info!(path = %path.display(), fingerprint = %key.fingerprint(), "created a new host key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading host key {}", path.display())),
    }
}
