//! `register`, `login`, `passwd`: the client side over TCP.

use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use scram_dh::{
    ClientConfig, ClientCredential, ClientSecret, ErrorCode, Fingerprint, Group, Labels, Password,
};
use scram_dh_net::client::{RegisterOptions, register_with};
use scram_dh_net::{HostKeyPolicy, KnownHosts, NetError, Reply, Request, SecureChannel};
use tokio::net::TcpStream;

use crate::paths::{
    config_dir, credential_path, ensure_private_dirs, tighten_private_file, write_secret_file,
};
use crate::term::escape;
use crate::{ClientOpts, Exit, exit, usage};

const DEFAULT_SERVER: &str = "127.0.0.1:7878";

/// `register` flags.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// The username to register.
    username: String,
    #[command(flatten)]
    opts: ClientOpts,
    /// DH group for the registration key exchange.
    #[arg(long, default_value = "modp6144")]
    group: String,
    /// Key labels: `random` (only this credential can log in) or `rfc` (standard
    /// SCRAM clients that know the password can log in too).
    #[arg(long, default_value = "random")]
    labels: String,
    /// Read the password from the first line of standard input (for scripts).
    #[arg(long)]
    password_stdin: bool,
    /// Pin the server's host key fingerprint (SHA256:...) instead of trust-on-first-use.
    #[arg(long)]
    fingerprint: Option<String>,
    /// Do not log in after registering.
    #[arg(long)]
    no_login: bool,
    /// Register over HTTP at this base URL (http://host:port) instead of TCP.
    #[arg(long, value_name = "URL")]
    http: Option<String>,
}

/// `login` flags.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The username (its saved credential is used, unless --password or --password-stdin).
    username: String,
    #[command(flatten)]
    opts: ClientOpts,
    /// Use this credential file (e.g. a provisioning bundle) instead of the saved one.
    #[arg(long)]
    credential: Option<PathBuf>,
    /// Authenticate only, without an encrypted channel.
    #[arg(long)]
    no_channel: bool,
    /// DH group for the channel.
    #[arg(long, default_value = "x25519")]
    group: String,
    /// One command to run over the channel, e.g. "set color blue" (default: whoami).
    #[arg(long, short = 'c')]
    command: Option<String>,
    /// Log in over HTTP at this base URL (http://host:port) and keep the HTTP session.
    #[arg(long, value_name = "URL", conflicts_with_all = ["no_channel", "command"])]
    http: Option<String>,
    /// Log in with standard SCRAM-SHA-256 and the password (RFC 5802, GNU SASL's
    /// line framing) at this HOST:PORT: a `serve --sasl` listener, or any standard
    /// server speaking that framing (e.g. `gsasl --server` behind socat).
    #[arg(
        long,
        value_name = "HOST:PORT",
        conflicts_with_all = ["http", "credential", "command", "no_channel"]
    )]
    sasl: Option<String>,
    /// Log in with the password (prompted) instead of a saved credential, over TCP
    /// or, with --http, over HTTP (the session is saved as with a credential). Only
    /// records registered with `--labels rfc` (as the browser page at /v1/ui/
    /// registers) accept the password itself; one with random labels answers
    /// authentication_failed.
    #[arg(long, conflicts_with = "credential")]
    password: bool,
    /// Read the password from the first line of standard input: with --sasl, or
    /// as --password does, instead of a saved credential (RFC labels only).
    #[arg(long, conflicts_with = "credential")]
    password_stdin: bool,
    /// With --sasl: TLS 1.3, and SCRAM-SHA-256-PLUS bound to it (tls-exporter, RFC 9266).
    #[arg(long, requires_all = ["sasl", "tls_ca"])]
    tls: bool,
    /// With --tls: the PEM file of the CA (or self-signed certificate) to trust.
    #[arg(long, value_name = "PEM", requires = "tls")]
    tls_ca: Option<PathBuf>,
    /// With --tls: the name the server's certificate must carry [default: the host of --sasl].
    #[arg(long, requires = "tls")]
    tls_name: Option<String>,
}

/// `passwd` flags.
#[derive(Args, Debug)]
pub struct PasswdArgs {
    /// The username.
    username: String,
    #[command(flatten)]
    opts: ClientOpts,
    /// Use this credential file instead of the saved one (it is updated in place).
    #[arg(long)]
    credential: Option<PathBuf>,
    /// Read the new password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// DH group for the channel the new credential travels over.
    #[arg(long, default_value = "x25519")]
    group: String,
    /// Change it over HTTP at this base URL (a signed `POST /v1/passwd`).
    #[arg(long, value_name = "URL")]
    http: Option<String>,
}

fn group(name: &str) -> Result<Group> {
    Group::from_name(name).ok_or_else(|| usage(format!("unknown group {name:?}")))
}

pub(crate) fn read_password(from_stdin: bool, prompt: &str, confirm: bool) -> Result<Password> {
    let pw = if from_stdin {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        Password::new(line.trim_end_matches(['\n', '\r']))
    } else {
        let first = Password::new(
            rpassword::prompt_password(prompt)
                .context("reading the password (no terminal? use --password-stdin)")?,
        );
        if confirm {
            let again = Password::new(rpassword::prompt_password("Again: ")?);
            if first != again {
                return Err(usage("passwords do not match"));
            }
        }
        first
    };
    if pw.expose().is_empty() {
        return Err(usage("empty password"));
    }
    Ok(pw)
}

async fn connect(server: &str, timeout: u64) -> Result<TcpStream> {
    let stream = tokio::time::timeout(Duration::from_secs(timeout), TcpStream::connect(server))
        .await
        .map_err(|_| NetError::Timeout)
        .and_then(|r| r.map_err(NetError::Io))
        .with_context(|| format!("connecting to {server}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn explain(e: NetError, server: &str, known_hosts: &std::path::Path) -> anyhow::Error {
    if let NetError::Protocol(scram_dh::Error::HostKeyMismatch { expected, presented }) = &e {
        let msg = format!(
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
             @    WARNING: SERVER HOST KEY HAS CHANGED!                 @\n\
             @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
             Someone could be intercepting this connection (man-in-the-middle),\n\
             or the server's host key was replaced.\n\
             Server {server} presented {presented};\n\
             {} pins {expected}.\n\
             Registration refused; no password material was sent.\n\
             If the change is legitimate, remove the line for {server} from that file.",
            known_hosts.display()
        );
        return Exit { code: exit::AUTH, message: msg }.into();
    }
    anyhow::Error::new(e)
}

async fn timed<T>(
    secs: u64,
    fut: impl std::future::Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    tokio::time::timeout(Duration::from_secs(secs), fut).await.map_err(|_| NetError::Timeout)?
}

pub async fn register(args: RegisterArgs) -> Result<()> {
    crate::init_logging("warn", false);
    let group = group(&args.group)?;
    let labels = Labels::from_name(&args.labels).ok_or_else(|| usage("--labels must be random or rfc"))?;
    let username = scram_dh::username::normalize(&args.username).map_err(|e| usage(e.to_string()))?;
    if let Some(url) = &args.http {
        let fingerprint = match &args.fingerprint {
            Some(fp) => Some(fp.parse::<Fingerprint>().map_err(|e| usage(e.to_string()))?),
            None => None,
        };
        let password = read_password(args.password_stdin, &format!("Password for {username}: "), true)?;
        let how = crate::http_cmds::HttpRegistration { group, labels, no_login: args.no_login };
        return crate::http_cmds::register(url, &username, &args.opts, fingerprint, password, how).await;
    }
    let server = args.opts.server.clone().unwrap_or_else(|| DEFAULT_SERVER.into());
    let dir = config_dir(args.opts.config_dir.as_deref())?;
    let path = credential_path(&dir, &server, &username);
    ensure_private_dirs(&dir, &path)?;
    let known_hosts = KnownHosts::new(dir.join("known_hosts"));
    tighten_private_file(known_hosts.path())?;
    let policy = match &args.fingerprint {
        Some(fp) => HostKeyPolicy::Fingerprint(fp.parse::<Fingerprint>().map_err(|e| usage(e.to_string()))?),
        None => HostKeyPolicy::KnownHosts { file: known_hosts.clone(), server: server.clone() },
    };
    let config = ClientConfig { max_iterations: args.opts.max_iterations };

    // An earlier attempt that saved its provisional credential and then lost the
    // connection (SPEC 7, L10): the server either committed it or never will.
    if let Some(earlier) = unconfirmed_credential(&path, &username, &server)? {
        if recover(&args.opts, &earlier, &server, config, &path).await? {
            if let (HostKeyPolicy::KnownHosts { file, server }, Some(fp)) = (&policy, earlier.host_key)
                && file.lookup(server)?.is_none()
            {
                file.add(server, &fp)?;
            }
            println!(
                "recovered {username} at {server}: the earlier registration had completed on the server"
            );
            println!("server host key {}", earlier.host_key.map(|f| f.to_string()).unwrap_or_default());
            println!("credential confirmed at {}", path.display());
            if !args.no_login {
                login_after_register(&args.opts, &earlier, &server, group, config).await?;
            }
            return Ok(());
        }
        let _ = writeln!(
            std::io::stderr(),
            "scram-dh: the earlier registration of {username} never completed; registering afresh"
        );
    }

    let password = read_password(args.password_stdin, &format!("Password for {username}: "), true)?;
    let stream = connect(&server, args.opts.timeout).await?;
    let options = RegisterOptions { group, labels, policy, config };
    let saved = std::cell::Cell::new(false);
    let save_provisional = crate::client_cmds::provisional_saver(&path, &server, &saved);
    let result =
        timed(args.opts.timeout, register_with(stream, &username, password, &options, save_provisional))
            .await;
    let mut cred = match result {
        Ok(cred) => cred,
        // The server answered R3 with an error: it committed nothing.
        Err(e @ NetError::Protocol(scram_dh::Error::Peer { .. })) if saved.get() => {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            return Err(explain(e, &server, known_hosts.path()));
        }
        Err(e) if saved.get() => {
            return Err(explain(e, &server, known_hosts.path()).context(format!(
                "the registration of {username} was cut off after the password was sent, so the server \
                 may hold it; the unconfirmed credential is kept at {}: run `scram-dh register {username}` \
                 again to recover it (or to register afresh if the server never got it)",
                path.display()
            )));
        }
        Err(e) => return Err(explain(e, &server, known_hosts.path())),
    };
    cred.server = Some(server.clone());
    cred.unconfirmed = false;
    write_secret_file(&path, cred.to_json().as_bytes())?;
    println!("registered {username} at {server}");
    println!("server host key {}", cred.host_key.map(|f| f.to_string()).unwrap_or_default());
    println!("credential saved to {}", path.display());
    if !args.no_login {
        login_after_register(&args.opts, &cred, &server, group, config).await?;
    }
    Ok(())
}

/// The hook that saves the provisional credential (SPEC 7, L10) at `path`, marked
/// unconfirmed, before R3 is sent; `saved` records that it did.
pub(crate) fn provisional_saver<'a>(
    path: &'a Path,
    server: &'a str,
    saved: &'a std::cell::Cell<bool>,
) -> impl FnOnce(&ClientCredential) -> Result<(), NetError> + 'a {
    move |provisional: &ClientCredential| {
        let mut provisional = provisional.clone();
        provisional.server = Some(server.to_owned());
        write_secret_file(path, provisional.to_json().as_bytes())
            .map_err(|e| NetError::Local(format!("saving the provisional credential: {e:#}")))?;
        saved.set(true);
        Ok(())
    }
}

/// The unconfirmed credential left at `path` by an earlier `register`, if any. A
/// confirmed one is never replaced by a new registration: the server would refuse
/// the name anyway, and the file is the user's only way in.
fn unconfirmed_credential(path: &Path, username: &str, server: &str) -> Result<Option<ClientCredential>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => zeroize::Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let cred = ClientCredential::from_json(&text).map_err(|e| {
        usage(format!(
            "{} exists and is not a credential ({e}); move it away to register again",
            path.display()
        ))
    })?;
    if cred.username != username {
        return Err(usage(format!(
            "{} holds a credential for {:?}, not {username:?}; move it away to register again",
            path.display(),
            cred.username
        )));
    }
    if !cred.unconfirmed {
        return Err(usage(format!(
            "{username} is registered at {server} already, with the credential at {}; log in with \
             `scram-dh login {username}`, or remove that file to register again",
            path.display()
        )));
    }
    Ok(Some(cred))
}

/// Logs in once with an unconfirmed credential. `true`: it works, and the file is
/// rewritten confirmed. `false`: the server refused it (`authentication_failed`),
/// so the earlier attempt never committed and the file is deleted. Anything else
/// (no connection, a timeout) is an error and the file is kept.
async fn recover(
    opts: &ClientOpts,
    cred: &ClientCredential,
    server: &str,
    config: ClientConfig,
    path: &Path,
) -> Result<bool> {
    let stream = connect(server, opts.timeout).await?;
    let attempt =
        timed(opts.timeout, scram_dh_net::login(stream, &cred.username, cred.secret(), None, config));
    match attempt.await {
        Ok(_) => {
            confirm(cred, path)?;
            Ok(true)
        }
        Err(NetError::Protocol(scram_dh::Error::Peer { code: ErrorCode::AuthenticationFailed, .. })) => {
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
            Ok(false)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "checking the unconfirmed credential at {} with the server (kept for another try)",
            path.display()
        ))),
    }
}

/// Rewrites an unconfirmed credential confirmed (after a successful login with it).
fn confirm(cred: &ClientCredential, path: &Path) -> Result<()> {
    if cred.unconfirmed {
        let confirmed = ClientCredential { unconfirmed: false, ..cred.clone() };
        write_secret_file(path, confirmed.to_json().as_bytes())
            .with_context(|| format!("marking the credential at {} confirmed", path.display()))?;
    }
    Ok(())
}

async fn login_after_register(
    opts: &ClientOpts,
    cred: &ClientCredential,
    server: &str,
    group: Group,
    config: ClientConfig,
) -> Result<()> {
    let stream = connect(server, opts.timeout).await?;
    let mut session =
        timed(opts.timeout, scram_dh_net::login(stream, &cred.username, cred.secret(), Some(group), config))
            .await?;
    let channel = session.channel.as_mut().ok_or_else(|| anyhow!("server did not open a channel"))?;
    let reply = call(channel, Request { cmd: "whoami".into(), args: vec![] }).await?;
    println!("logged in as {} over an encrypted channel", escape(&reply.result.unwrap_or_default()));
    Ok(())
}

/// Reads the credential file at `path` and checks it is `username`'s (after SASLprep).
pub(crate) fn read_credential(path: &Path, username: &str) -> Result<ClientCredential> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "no credential for {username} at {} ({e}); register first, pass --credential FILE, or log \
             in with --password (records registered with --labels rfc only)",
            path.display()
        ))
    })?);
    let cred = ClientCredential::from_json(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let wanted = scram_dh::username::normalize(username).map_err(|e| usage(e.to_string()))?;
    if cred.username != wanted {
        return Err(usage(format!(
            "{} holds a credential for {:?}, not {wanted:?}",
            path.display(),
            cred.username
        )));
    }
    Ok(cred)
}

fn load_credential(
    opts: &ClientOpts,
    file: Option<&PathBuf>,
    username: &str,
) -> Result<(ClientCredential, PathBuf, String)> {
    let dir = config_dir(opts.config_dir.as_deref())?;
    let path = match file {
        Some(p) => p.clone(),
        None => {
            let path = credential_path(&dir, opts.server.as_deref().unwrap_or(DEFAULT_SERVER), username);
            // Config dirs left 0755 by older versions are tightened on use too (L14).
            if path.exists() {
                ensure_private_dirs(&dir, &path)?;
            }
            path
        }
    };
    let cred = read_credential(&path, username)?;
    let server = opts.server.clone().or_else(|| cred.server.clone()).unwrap_or_else(|| DEFAULT_SERVER.into());
    Ok((cred, path, server))
}

async fn call<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    channel: &mut SecureChannel<S>,
    req: Request,
) -> Result<Reply> {
    channel.send(&serde_json::to_vec(&req)?).await?;
    let bytes = channel.recv().await?.ok_or(NetError::Closed)?;
    serde_json::from_slice(&bytes).context("server sent a malformed reply")
}

async fn open(
    opts: &ClientOpts,
    username: &str,
    secret: ClientSecret,
    server: &str,
    channel: Option<Group>,
) -> Result<scram_dh_net::Login<TcpStream>> {
    let config = ClientConfig { max_iterations: opts.max_iterations };
    let stream = connect(server, opts.timeout).await?;
    Ok(timed(opts.timeout, scram_dh_net::login(stream, username, secret, channel, config)).await?)
}

/// With the password itself, `authentication_failed` may also mean a record with
/// random labels, which only its saved credential opens: say so (the exit code stays 3).
pub(crate) fn password_hint(e: anyhow::Error) -> anyhow::Error {
    let auth = e.chain().any(|c| {
        c.downcast_ref::<NetError>().is_some_and(NetError::is_auth_failure)
            || c.downcast_ref::<scram_dh_net::http_client::HttpError>()
                .is_some_and(scram_dh_net::http_client::HttpError::is_auth_failure)
    });
    if auth {
        e.context(
            "logging in with the password (only records registered with --labels rfc accept it; \
             others log in with their saved credential)",
        )
    } else {
        e
    }
}

/// `login --sasl`: standard SCRAM-SHA-256 with a password, optionally over TLS
/// with channel binding.
async fn login_sasl(args: &LoginArgs, server: &str) -> Result<()> {
    use scram_dh::sasl::ClientChannel;
    let password = read_password(args.password_stdin, &format!("Password for {}: ", args.username), false)?;
    let config = ClientConfig { max_iterations: args.opts.max_iterations };
    let timeout = Duration::from_secs(args.opts.timeout);
    let stream = connect(server, args.opts.timeout).await?;
    let done = if args.tls {
        let ca = args.tls_ca.as_deref().ok_or_else(|| usage("--tls needs --tls-ca PEM"))?;
        let tls_config = scram_dh_net::sasl::tls_client_config(ca).map_err(|e| usage(e.to_string()))?;
        let host = match &args.tls_name {
            Some(name) => name.clone(),
            None => server.rsplit_once(':').map_or(server, |(h, _)| h).trim_matches(['[', ']']).to_owned(),
        };
        let (tls, exporter) =
            timed(args.opts.timeout, scram_dh_net::sasl::connect_tls(stream, &host, tls_config))
                .await
                .with_context(|| format!("TLS to {server}"))?;
        scram_dh_net::sasl::sasl_login(
            tls,
            &args.username,
            &password,
            ClientChannel::TlsExporter(exporter),
            &config,
            timeout,
        )
        .await?
    } else {
        scram_dh_net::sasl::sasl_login(
            stream,
            &args.username,
            &password,
            ClientChannel::Unsupported,
            &config,
            timeout,
        )
        .await?
    };
    println!(
        "authenticated as {} (server signature verified{})",
        escape(&args.username),
        if done.channel_bound { ", channel binding tls-exporter" } else { "" }
    );
    Ok(())
}

pub async fn login(args: LoginArgs) -> Result<()> {
    crate::init_logging("warn", false);
    if let Some(server) = &args.sasl {
        return login_sasl(&args, server).await;
    }
    // `--password` / `--password-stdin`: the password itself, no saved credential.
    let password = if args.password || args.password_stdin {
        let username = scram_dh::username::normalize(&args.username).map_err(|e| usage(e.to_string()))?;
        Some((read_password(args.password_stdin, &format!("Password for {username}: "), false)?, username))
    } else {
        None
    };
    if let Some(url) = &args.http {
        let login = match password {
            Some((pw, username)) => crate::http_cmds::Login::Password { username, password: pw },
            None => crate::http_cmds::Login::Credential {
                username: &args.username,
                file: args.credential.as_ref(),
            },
        };
        return crate::http_cmds::login(url, &args.opts, login).await;
    }
    if args.no_channel && args.command.is_some() {
        return Err(usage("--command needs the encrypted channel; drop --no-channel"));
    }
    let channel = if args.no_channel { None } else { Some(group(&args.group)?) };
    let (mut session, server) = match password {
        Some((pw, username)) => {
            let server = args.opts.server.clone().unwrap_or_else(|| DEFAULT_SERVER.into());
            let session = open(&args.opts, &username, ClientSecret::Password(pw), &server, channel)
                .await
                .map_err(password_hint)?;
            (session, server)
        }
        None => {
            let (cred, path, server) = load_credential(&args.opts, args.credential.as_ref(), &args.username)?;
            let session = open(&args.opts, &cred.username, cred.secret(), &server, channel).await?;
            // The first login with a provisional credential (L10) confirms it.
            confirm(&cred, &path)?;
            (session, server)
        }
    };
    if args.no_channel {
        println!("authenticated as {} at {server} (no channel)", session.username);
        return Ok(());
    }
    let channel = session.channel.as_mut().ok_or_else(|| anyhow!("server did not open a channel"))?;
    let line = args.command.unwrap_or_else(|| "whoami".into());
    let mut words = line.split_whitespace().map(str::to_owned);
    let cmd = words.next().ok_or_else(|| usage("empty --command"))?;
    if cmd == "passwd" {
        return Err(usage("use `scram-dh passwd` to change a password"));
    }
    let reply = call(channel, Request { cmd, args: words.collect() }).await?;
    if reply.ok {
        println!("{}", escape(&reply.result.unwrap_or_default()));
        Ok(())
    } else {
        Err(anyhow!("server ({}): {}", escape(&reply.user), escape(&reply.error.unwrap_or_default())))
    }
}

pub async fn passwd(args: PasswdArgs) -> Result<()> {
    crate::init_logging("warn", false);
    let mut opts = args.opts.clone();
    if let (Some(url), None) = (&args.http, &opts.server) {
        opts.server = Some(url.trim_end_matches('/').trim_start_matches("http://").to_owned());
    }
    let (cred, path, server) = load_credential(&opts, args.credential.as_ref(), &args.username)?;
    let new_password =
        read_password(args.password_stdin, &format!("New password for {}: ", cred.username), true)?;
    if let Some(url) = &args.http {
        return crate::http_cmds::passwd(url, &args.opts, &cred, &path, &new_password).await;
    }
    let mut session =
        open(&args.opts, &cred.username, cred.secret(), &server, Some(group(&args.group)?)).await?;
    confirm(&cred, &path)?;
    let channel = session.channel.as_mut().ok_or_else(|| anyhow!("server did not open a channel"))?;
    let (request, mut updated) =
        scram_dh_net::passwd_request(&mut rand_core::UnwrapErr(getrandom::SysRng), &cred, &new_password)?;
    // Installed only once the server says so, below.
    updated.unconfirmed = false;
    // Keep the new credential on disk before the server switches, so a crash in
    // between never leaves the user with neither.
    let pending = path.with_extension("json.new");
    write_secret_file(&pending, updated.to_json().as_bytes())?;
    let reply = call(channel, request).await?;
    if !reply.ok {
        let _ = std::fs::remove_file(&pending);
        return Err(anyhow!("server refused: {}", escape(&reply.error.unwrap_or_default())));
    }
    // Atomic and durable (the directory is synced too); the pending copy then goes.
    write_secret_file(&path, updated.to_json().as_bytes())?;
    let _ = std::fs::remove_file(&pending);
    println!("password changed for {}; credential updated at {}", escape(&reply.user), path.display());
    Ok(())
}
