//! `scram-dh`: run a scram-dh server on SQLite, register, log in, change a
//! password, provision users out of band, manage the user database, or watch a
//! demonstration of the whole protocol.
//!
//! Exit codes: 0 success, 1 other error, 2 usage error, 3 authentication
//! failure (wrong credential, unknown user, host key refused), 4 connection failure.

#![forbid(unsafe_code)]

mod admin;
mod bench;
mod client_cmds;
mod demo;
mod http_cmds;
mod paths;
mod serve;
mod store;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Password authentication where the password never crosses the wire:
/// SCRAM-SHA-256 with an ephemeral Diffie-Hellman registration.
#[derive(Parser, Debug)]
#[command(name = "scram-dh", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server on an SQLite database (created on first run).
    Serve(Box<serve::ServeArgs>),
    /// Register a new user over the network (in-band, SPEC 3a), then log in once.
    Register(client_cmds::RegisterArgs),
    /// Log in with a saved credential (or, for RFC-labels records, the password); optionally run one command over the encrypted channel.
    Login(client_cmds::LoginArgs),
    /// Change a password: log in, then replace the credential over the encrypted channel.
    Passwd(client_cmds::PasswdArgs),
    /// On the server host: create a user with a random password and print its credential bundle.
    Provision(admin::ProvisionArgs),
    /// On the server host: list, show, delete or export users.
    Users(admin::UsersArgs),
    /// Start a throwaway server, register, provision, log in, and show every message.
    Demo(demo::DemoArgs),
    /// One signed request over a saved HTTP session (`login --http`); prints the body.
    Http(http_cmds::HttpArgs),
    /// End a saved HTTP session (`POST /v1/logout`) and remove its file.
    Logout(http_cmds::LogoutArgs),
    /// Load generator: logins or registrations per second against a throwaway loopback server.
    Bench(bench::BenchArgs),
}

/// Client-side options shared by register, login and passwd.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// Server address (host:port). Defaults to the credential's server, else 127.0.0.1:7878.
    #[arg(long, short = 's', env = "SCRAM_DH_SERVER")]
    pub(crate) server: Option<String>,
    /// Directory for credentials and known_hosts (default: ~/.config/scram-dh).
    #[arg(long, env = "SCRAM_DH_CONFIG_DIR")]
    pub(crate) config_dir: Option<PathBuf>,
    /// Seconds to wait for the server: to connect, and for each whole exchange.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: u64,
    /// Refuse server iteration counts above this.
    #[arg(long, default_value_t = scram_dh::credential::DEFAULT_MAX_ITERATIONS)]
    pub(crate) max_iterations: u32,
}

/// Exit codes.
pub mod exit {
    /// Another error.
    pub const OTHER: u8 = 1;
    /// Usage error (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// Authentication failed.
    pub const AUTH: u8 = 3;
    /// Could not connect / connection broke.
    pub const CONNECTION: u8 = 4;
}

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Exit {
    /// The code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Usage error helper.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Exit { code: exit::USAGE, message: message.into() }.into()
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<Exit>() {
            return x.code;
        }
        if let Some(h) = cause.downcast_ref::<scram_dh_net::http_client::HttpError>() {
            if h.is_auth_failure() {
                return exit::AUTH;
            }
            if h.is_connection_failure() {
                return exit::CONNECTION;
            }
        }
        if let Some(n) = cause.downcast_ref::<scram_dh_net::NetError>() {
            if n.is_auth_failure() {
                return exit::AUTH;
            }
            if n.is_connection_failure() {
                return exit::CONNECTION;
            }
        }
        if cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::AddrNotAvailable
            )
        }) {
            return exit::CONNECTION;
        }
    }
    exit::OTHER
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` sizes its runtime from its settings (`--workers`), so they are read
    // first; `bench --threads` sizes the load generator's.
    let (command, workers) = match cli.command {
        Command::Serve(a) => match serve::settings(*a) {
            Ok(s) => {
                let workers = s.workers;
                (Run::Serve(Box::new(s)), workers)
            }
            Err(e) => return fail(&e),
        },
        Command::Bench(a) => match a.threads() {
            Ok(threads) => (Run::Other(Box::new(Command::Bench(a))), threads),
            Err(e) => return fail(&e),
        },
        other => (Run::Other(Box::new(other)), None),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scram-dh: cannot start the async runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    let result = runtime.block_on(async move {
        let command = match command {
            Run::Serve(s) => return serve::run(*s).await,
            Run::Other(c) => *c,
        };
        match command {
            Command::Serve(a) => serve::run(serve::settings(*a)?).await,
            Command::Register(a) => client_cmds::register(a).await,
            Command::Login(a) => client_cmds::login(a).await,
            Command::Passwd(a) => client_cmds::passwd(a).await,
            Command::Provision(a) => admin::provision(a).await,
            Command::Users(a) => admin::users(a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::Bench(a) => bench::run(a).await,
            Command::Http(a) => http_cmds::http(a).await,
            Command::Logout(a) => http_cmds::logout(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// What `main` runs: `serve` with its settings read, or another command.
enum Run {
    Serve(Box<serve::Settings>),
    Other(Box<Command>),
}

/// Prints the error and gives its exit code.
fn fail(e: &anyhow::Error) -> ExitCode {
    // Not eprintln!: on a full disk a stderr redirected to a file fails, and the
    // error must still end in its exit code, not a panic.
    let _ = writeln!(std::io::stderr(), "scram-dh: {}", render_error(e));
    ExitCode::from(exit_code(e))
}

/// The error chain as `outer: inner: ...`, with every message escaped by
/// [`term::escape`] except our own [`Exit`] texts (built from escaped parts, and
/// allowed several lines): a server's error message must not reach the terminal raw.
fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        if !out.is_empty() {
            out.push_str(": ");
        }
        match cause.downcast_ref::<Exit>() {
            Some(x) => out.push_str(&x.message),
            None => out.push_str(&term::escape(&cause.to_string())),
        }
    }
    out
}

/// Showing peer-controlled text on a terminal.
/// Peer text on the terminal (finding L12): every string a server sends (error
/// messages, reply users, results, errors) goes through the same escaping as the
/// server's logs before it is printed.
pub mod term {
    pub use scram_dh_net::log::escape;

    #[cfg(test)]
    mod tests {
        use super::escape;

        #[test]
        fn l12_peer_text_is_escaped() {
            assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
            assert_eq!(
                escape("\u{1b}[31mred\nINFO forged\r\tx\u{7f}\u{0}"),
                "\\x1b[31mred\\nINFO forged\\r\\tx\\x7f\\x00"
            );
            assert_eq!(escape("\u{9b}2J \u{202e}abc \u{2028}"), "\\u{9b}2J \\u{202e}abc \\u{2028}");
            assert_eq!(escape("a\\x1b"), "a\\\\x1b", "a literal backslash cannot pass for an escape");
            for c in (0u32..0x110000).filter_map(char::from_u32) {
                let e = escape(c.encode_utf8(&mut [0; 4])).into_owned();
                assert!(!e.chars().any(|c| c.is_control()), "{c:?} -> {e:?}");
            }
        }
    }
}

/// Logging to stderr; `RUST_LOG` overrides `default`.
pub fn init_logging(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: a log file holds no escape sequences at all.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
