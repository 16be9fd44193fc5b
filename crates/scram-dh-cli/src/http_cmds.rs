//! The client side over HTTP (SPEC 7): `register --http`, `login --http`,
//! `http METHOD PATH`, `logout --http`, and `http METHOD PATH --rfc7804`: one
//! request logged in with a password by standard SCRAM-SHA-256 (RFC 7804), no
//! session file.
//!
//! `login --http` logs in with a saved credential, or with the password itself
//! (`--password`, `--password-stdin`: records with RFC labels, such as the
//! browser page registers), and keeps the HTTP session (id, keys, next seq) in a 0600 file at
//! `<config>/http-sessions/<server>/<user>.json`. Each request takes its seq under
//! an exclusive lock on `<file>.lock` and saves the bumped seq *before* sending, so
//! two runs never sign two requests with one seq.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use scram_dh::{ClientConfig, ClientCredential, ClientSecret, ErrorCode, Group};
use scram_dh_net::NetError;
use scram_dh_net::client::RegisterOptions;
use scram_dh_net::http_client::{HttpClient, HttpError, HttpSession};

use crate::paths::{config_dir, credential_path, ensure_private_dirs, http_session_path, write_secret_file};
use crate::term::escape;
use crate::{ClientOpts, Exit, exit, usage};

/// `http` flags.
#[derive(Args, Debug)]
pub struct HttpArgs {
    /// HTTP method (GET, POST, …).
    method: String,
    /// Path and query, e.g. `/v1/whoami` or `/app/items?x=1`.
    path: String,
    /// Request body.
    #[arg(long, short = 'd')]
    data: Option<String>,
    /// Whose session to use (default: the only one saved for the server).
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Server base URL (http://host:port) [default: the only server with a saved session].
    #[arg(long)]
    http: Option<String>,
    /// Directory for credentials and sessions (default: ~/.config/scram-dh).
    #[arg(long, env = "SCRAM_DH_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Seconds to wait for the response.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Log in on this request with a password by standard SCRAM-SHA-256 over HTTP
    /// (RFC 7804) instead of a saved session; needs --http and --user.
    #[arg(long, requires_all = ["http", "user"])]
    rfc7804: bool,
    /// With --rfc7804: read the password from the first line of stdin instead of a prompt.
    #[arg(long, requires = "rfc7804")]
    password_stdin: bool,
    /// With --rfc7804: refuse server iteration counts above this.
    #[arg(long, requires = "rfc7804", default_value_t = scram_dh::credential::DEFAULT_MAX_ITERATIONS)]
    max_iterations: u32,
}

/// `logout` flags.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Server base URL (http://host:port).
    #[arg(long)]
    http: Option<String>,
    /// Whose session to end (default: the only one saved for the server).
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Directory for credentials and sessions (default: ~/.config/scram-dh).
    #[arg(long, env = "SCRAM_DH_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Seconds to wait for the response.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

fn http_error(e: HttpError) -> anyhow::Error {
    match e {
        HttpError::BadResponseMac { .. } | HttpError::BadAuthenticationInfo { .. } => {
            Exit { code: exit::AUTH, message: e.to_string() }.into()
        }
        HttpError::Net(n) => anyhow::Error::new(n),
        e if e.is_connection_failure() => {
            Exit { code: exit::CONNECTION, message: escape(&e.to_string()).into_owned() }.into()
        }
        e => anyhow::Error::new(e),
    }
}

fn client(url: &str, timeout: u64) -> Result<HttpClient> {
    HttpClient::new(url, Duration::from_secs(timeout)).map_err(|e| usage(e.to_string()))
}

/// What a registration over HTTP asks for besides the name and the password.
pub struct HttpRegistration {
    /// DH group of R1/R2.
    pub group: Group,
    /// Key-derivation kind.
    pub labels: scram_dh::Labels,
    /// Skip the login after registering.
    pub no_login: bool,
}

/// `register NAME --http URL`: SPEC 3a over HTTP, the credential saved (first
/// provisionally, before R3) under the server's `host:port`.
pub async fn register(
    url: &str,
    username: &str,
    opts: &ClientOpts,
    fingerprint: Option<scram_dh::Fingerprint>,
    password: scram_dh::Password,
    how: HttpRegistration,
) -> Result<()> {
    let HttpRegistration { group, labels, no_login } = how;
    let http = client(url, opts.timeout)?;
    let server = http.server_name().to_owned();
    let dir = config_dir(opts.config_dir.as_deref())?;
    let path = credential_path(&dir, &server, username);
    ensure_private_dirs(&dir, &path)?;
    if path.exists() {
        return Err(usage(format!(
            "a credential for {username} at {server} exists already at {}; log in, or move it away",
            path.display()
        )));
    }
    let known_hosts = scram_dh_net::KnownHosts::new(dir.join("known_hosts"));
    let policy = match fingerprint {
        Some(fp) => scram_dh_net::HostKeyPolicy::Fingerprint(fp),
        None => scram_dh_net::HostKeyPolicy::KnownHosts { file: known_hosts, server: server.clone() },
    };
    let config = ClientConfig { max_iterations: opts.max_iterations };
    let options = RegisterOptions { group, labels, policy, config };
    let saved = std::cell::Cell::new(false);
    let save_provisional = crate::client_cmds::provisional_saver(&path, &server, &saved);
    let mut cred = match http.register(username, password, &options, save_provisional).await {
        Ok(c) => c,
        Err(HttpError::Net(e @ NetError::Protocol(scram_dh::Error::Peer { .. }))) if saved.get() => {
            let _ = std::fs::remove_file(&path);
            return Err(anyhow::Error::new(e));
        }
        Err(e) if saved.get() => {
            return Err(http_error(e).context(format!(
                "the registration was cut off after the password was sent; the unconfirmed credential \
                 is kept at {}",
                path.display()
            )));
        }
        Err(e) => return Err(http_error(e)),
    };
    cred.server = Some(server.clone());
    cred.unconfirmed = false;
    write_secret_file(&path, cred.to_json().as_bytes())?;
    println!("registered {username} at {url}");
    println!("server host key {}", cred.host_key.map(|f| f.to_string()).unwrap_or_default());
    println!("credential saved to {}", path.display());
    if !no_login {
        let session = login_with(&http, &cred.username, cred.secret(), config, &dir).await?;
        println!("logged in as {} over HTTP", escape(&session.username));
    }
    Ok(())
}

/// What `login --http` logs in with.
pub enum Login<'a> {
    /// The saved credential of `username` (or the file `file`).
    Credential {
        /// The name given on the command line.
        username: &'a str,
        /// `--credential FILE`.
        file: Option<&'a PathBuf>,
    },
    /// The password itself (`--password`, `--password-stdin`): no credential is
    /// read or written; only records with RFC labels accept it.
    Password {
        /// SASLprep-normalised.
        username: String,
        /// The password.
        password: scram_dh::Password,
    },
}

/// `login NAME --http URL`: A1..A4, then the session saved and checked with whoami.
pub async fn login(url: &str, opts: &ClientOpts, how: Login<'_>) -> Result<()> {
    let http = client(url, opts.timeout)?;
    let dir = config_dir(opts.config_dir.as_deref())?;
    let config = ClientConfig { max_iterations: opts.max_iterations };
    let session = match how {
        Login::Password { username, password } => {
            login_with(&http, &username, ClientSecret::Password(password), config, &dir)
                .await
                .map_err(crate::client_cmds::password_hint)?
        }
        Login::Credential { username, file } => {
            // The credential of this HTTP server's name, or of `--server` (a user
            // registered over TCP logs in over HTTP with the same record).
            let path = match file {
                Some(p) => p.clone(),
                None => credential_path(&dir, opts.server.as_deref().unwrap_or(http.server_name()), username),
            };
            let cred = crate::client_cmds::read_credential(&path, username)?;
            let session = login_with(&http, &cred.username, cred.secret(), config, &dir).await?;
            if cred.unconfirmed {
                let confirmed = ClientCredential { unconfirmed: false, ..cred.clone() };
                write_secret_file(&path, confirmed.to_json().as_bytes())?;
            }
            session
        }
    };
    println!("logged in as {} at {url}", escape(&session.username));
    println!("session saved to {}", http_session_path(&dir, http.server_name(), &session.username).display());
    Ok(())
}

async fn login_with(
    http: &HttpClient,
    username: &str,
    secret: ClientSecret,
    config: ClientConfig,
    dir: &Path,
) -> Result<HttpSession> {
    let mut session = http.login(username, secret, Group::X25519, config).await.map_err(http_error)?;
    let path = http_session_path(dir, http.server_name(), &session.username);
    ensure_private_dirs(dir, &path)?;
    let _lock = lock(&path)?;
    // The seq whoami uses is saved as taken before the request.
    let seq = session.take_seq();
    save(&path, &session)?;
    let r = session.request_with_seq(seq, "GET", "/v1/whoami", b"").await.map_err(http_error)?;
    if r.status != 200 {
        anyhow::bail!("whoami after login: status {}", r.status);
    }
    Ok(session)
}

fn save(path: &Path, session: &HttpSession) -> Result<()> {
    let json = zeroize::Zeroizing::new(serde_json::to_string(session)?);
    write_secret_file(path, json.as_bytes())
}

/// An exclusive lock on `<path>.lock`, held while the seq is taken and saved.
fn lock(path: &Path) -> Result<std::fs::File> {
    let lock_path = path.with_extension("json.lock");
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let f = opts.open(&lock_path).with_context(|| format!("opening {}", lock_path.display()))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {}", lock_path.display()))?;
    Ok(f)
}

/// The session file for `--http URL` / `--user NAME`, either of them found from
/// what is saved when there is only one.
fn find_session(dir: &Path, url: Option<&str>, user: Option<&str>) -> Result<PathBuf> {
    let root = dir.join("http-sessions");
    let server = match url {
        Some(u) => Some(client(u, 1)?.server_name().to_owned()),
        None => None,
    };
    if let (Some(server), Some(user)) = (&server, user) {
        let user = scram_dh::username::normalize(user).map_err(|e| usage(e.to_string()))?;
        return Ok(http_session_path(dir, server, &user));
    }
    let mut found = Vec::new();
    let servers: Vec<PathBuf> = match &server {
        Some(s) => vec![http_session_path(dir, s, "x").parent().map(Path::to_path_buf).unwrap_or_default()],
        None => std::fs::read_dir(&root).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default(),
    };
    for sdir in servers {
        for e in std::fs::read_dir(&sdir).map(|r| r.flatten().collect::<Vec<_>>()).unwrap_or_default() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                if user.is_none_or(|u| {
                    crate::paths::credential_path(dir, "s", u)
                        .file_stem()
                        .is_some_and(|f| f.to_string_lossy() == stem)
                }) {
                    found.push(p);
                }
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(usage("no saved HTTP session: run `scram-dh login NAME --http URL` first")),
        _ => Err(usage("several saved HTTP sessions: pick one with --http URL and --user NAME")),
    }
}

fn load(path: &Path, timeout: u64) -> Result<HttpSession> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "no HTTP session at {} ({e}): run `scram-dh login NAME --http URL` first",
            path.display()
        ))
    })?);
    let mut session: HttpSession =
        serde_json::from_str(&text).with_context(|| format!("{} is not an HTTP session", path.display()))?;
    session.attach(Duration::from_secs(timeout)).map_err(|e| usage(e.to_string()))?;
    Ok(session)
}

/// Takes the next seq of the session at `path` and saves the file bumped, under
/// the lock, before anything is sent.
fn take_seq(path: &Path, timeout: u64) -> Result<(HttpSession, u64)> {
    let _lock = lock(path)?;
    let mut session = load(path, timeout)?;
    let seq = session.take_seq();
    save(path, &session)?;
    Ok((session, seq))
}

/// `http METHOD PATH [--data BODY]`: one signed request (or with `--rfc7804`, one
/// RFC 7804 request); prints the body (escaped).
pub async fn http(args: HttpArgs) -> Result<()> {
    crate::init_logging("warn", false);
    if args.rfc7804 {
        return rfc7804(args).await;
    }
    let dir = config_dir(args.config_dir.as_deref())?;
    let path = find_session(&dir, args.http.as_deref(), args.user.as_deref())?;
    let (session, seq) = take_seq(&path, args.timeout)?;
    let body = args.data.unwrap_or_default();
    let r =
        session.request_with_seq(seq, &args.method, &args.path, body.as_bytes()).await.map_err(http_error)?;
    print_answer(r.status, &r.body)
}

/// `http METHOD PATH --rfc7804 --http URL -u USER [--password-stdin]`: the
/// password from a prompt or stdin, two round trips, the server's
/// `Authentication-Info` checked (exit 3 when it is missing or wrong).
async fn rfc7804(args: HttpArgs) -> Result<()> {
    let (Some(url), Some(user)) = (args.http.as_deref(), args.user.as_deref()) else {
        return Err(usage("--rfc7804 needs --http URL and --user NAME"));
    };
    let http = client(url, args.timeout)?;
    let password =
        crate::client_cmds::read_password(args.password_stdin, &format!("Password for {user}: "), false)?;
    let config = ClientConfig { max_iterations: args.max_iterations };
    let body = args.data.unwrap_or_default();
    let r = http
        .rfc7804_request(&args.method, &args.path, body.as_bytes(), user, &password, &config)
        .await
        .map_err(http_error)?;
    print_answer(r.status, &r.body)
}

/// Prints a verified answer's body, escaped line by line (its own line breaks
/// stay line breaks, nothing else a server sends can drive the terminal); a
/// non-2xx status is an error with its exit code.
fn print_answer(status: u16, body: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(body);
    let mut out = std::io::stdout().lock();
    for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
        let _ = writeln!(out, "{}", escape(line.strip_suffix('\r').unwrap_or(line)));
    }
    if (200..300).contains(&status) {
        return Ok(());
    }
    let code = match serde_json::from_slice::<scram_dh::message::ServerMessage>(body) {
        Ok(scram_dh::message::ServerMessage::Error(e)) if e.code == ErrorCode::AuthenticationFailed => {
            exit::AUTH
        }
        _ if status == 401 => exit::AUTH,
        _ => exit::OTHER,
    };
    Err(Exit { code, message: format!("server answered status {status}") }.into())
}

/// `logout --http URL [--user NAME]`: `POST /v1/logout`, then the session file goes.
pub async fn logout(args: LogoutArgs) -> Result<()> {
    crate::init_logging("warn", false);
    let dir = config_dir(args.config_dir.as_deref())?;
    let path = find_session(&dir, args.http.as_deref(), args.user.as_deref())?;
    let (session, seq) = take_seq(&path, args.timeout)?;
    let r = session.request_with_seq(seq, "POST", "/v1/logout", b"").await.map_err(http_error)?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    let _ = std::fs::remove_file(path.with_extension("json.lock"));
    if (200..300).contains(&r.status) {
        println!("logged out {} at {}", escape(&session.username), escape(&session.base_url));
        Ok(())
    } else {
        // The server no longer knows the session (expired, logged out): it is gone either way.
        println!("session of {} was already over (status {}); removed", escape(&session.username), r.status);
        Ok(())
    }
}

/// `passwd NAME --http URL`: log in over HTTP, then a signed `POST /v1/passwd`
/// with the new record's public half (computed as the TCP `passwd` does); the new
/// credential is on disk (`.json.new`) before the server switches.
pub async fn passwd(
    url: &str,
    opts: &ClientOpts,
    cred: &ClientCredential,
    path: &Path,
    new_password: &scram_dh::Password,
) -> Result<()> {
    let http = client(url, opts.timeout)?;
    let dir = config_dir(opts.config_dir.as_deref())?;
    let config = ClientConfig { max_iterations: opts.max_iterations };
    let mut session = login_with(&http, &cred.username, cred.secret(), config, &dir).await?;
    let (body, mut updated) =
        scram_dh_net::http_client::PasswdBody::new(cred, new_password).map_err(http_error)?;
    updated.unconfirmed = false;
    let pending = path.with_extension("json.new");
    write_secret_file(&pending, updated.to_json().as_bytes())?;
    let spath = http_session_path(&dir, http.server_name(), &session.username);
    let seq = {
        let _lock = lock(&spath)?;
        let seq = session.take_seq();
        save(&spath, &session)?;
        seq
    };
    let bytes = serde_json::to_vec(&body)?;
    let r = session.request_with_seq(seq, "POST", "/v1/passwd", &bytes).await.map_err(http_error)?;
    if r.status != 200 {
        let _ = std::fs::remove_file(&pending);
        anyhow::bail!("server refused (status {}): {}", r.status, escape(&String::from_utf8_lossy(&r.body)));
    }
    write_secret_file(path, updated.to_json().as_bytes())?;
    let _ = std::fs::remove_file(&pending);
    println!("password changed for {}; credential updated at {}", escape(&session.username), path.display());
    Ok(())
}
