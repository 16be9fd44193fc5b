//! Server-host commands: `provision` (SPEC 3b) and `users`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use scram_dh::record::Inserted;
use scram_dh::{CredentialStore, Labels};

use crate::paths::{create_secret_file_new, default_host_key_path, load_or_create_host_key};
use crate::serve::open_store;
use crate::usage;

/// `provision` flags.
#[derive(Args, Debug)]
pub struct ProvisionArgs {
    /// The username to create.
    username: String,
    /// The server's SQLite database.
    #[arg(long, env = "SCRAM_DH_DB", default_value = "scram-dh.db")]
    db: PathBuf,
    /// The server's host key file (its fingerprint goes into the bundle).
    #[arg(long, env = "SCRAM_DH_HOST_KEY")]
    host_key: Option<PathBuf>,
    /// The address clients should use, recorded in the bundle.
    #[arg(long, env = "SCRAM_DH_ADVERTISE", default_value = "127.0.0.1:7878")]
    server: String,
    /// Key labels: random, or rfc (the bundle then includes the password, for standard clients).
    #[arg(long, default_value = "random")]
    labels: String,
    /// Iteration count.
    #[arg(long, default_value_t = scram_dh::MIN_ITERATIONS)]
    ic: u32,
    /// Write the bundle to this new file (mode 0600) instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
}

/// `users` flags.
#[derive(Args, Debug)]
pub struct UsersArgs {
    #[command(subcommand)]
    action: UsersAction,
    /// The server's SQLite database.
    #[arg(long, env = "SCRAM_DH_DB", default_value = "scram-dh.db", global = true)]
    db: PathBuf,
}

#[derive(Subcommand, Debug)]
enum UsersAction {
    /// List usernames.
    List,
    /// Show one user's record (never its keys).
    Show {
        /// The username.
        username: String,
    },
    /// Delete a user.
    Delete {
        /// The username.
        username: String,
    },
    /// Export records as PostgreSQL SCRAM verifiers, `username<TAB>verifier` per line.
    Export,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub async fn provision(args: ProvisionArgs) -> Result<()> {
    crate::init_logging("warn", false);
    let labels = Labels::from_name(&args.labels).ok_or_else(|| usage("--labels must be random or rfc"))?;
    if args.ic < scram_dh::MIN_ITERATIONS {
        return Err(usage(format!("--ic must be at least {}", scram_dh::MIN_ITERATIONS)));
    }
    if let Some(out) = &args.output
        && out.exists()
    {
        return Err(usage(format!("{} exists; refusing to overwrite a credential", out.display())));
    }
    let host_key =
        load_or_create_host_key(&args.host_key.clone().unwrap_or_else(|| default_host_key_path(&args.db)))?;
    let store = open_store(&args.db).await?;
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let p = scram_dh::provision::provision(
        &mut rng,
        &args.username,
        args.ic,
        labels,
        now_secs(),
        Some(args.server.clone()),
        Some(host_key.fingerprint()),
    )
    .map_err(|e| usage(e.to_string()))?;
    match store.insert(&p.record).await? {
        Inserted::Inserted => {}
        Inserted::AlreadyExists => {
            bail!("user {} already exists; records are never overwritten", p.record.username)
        }
    }
    let json = zeroize::Zeroizing::new(p.bundle.to_json() + "\n");
    match &args.output {
        Some(out) => {
            if let Err(e) = create_secret_file_new(out, json.as_bytes()) {
                // Do not leave a user nobody holds a credential for.
                let _ = store.delete(&p.record.username).await;
                return Err(e);
            }
            eprintln!("provisioned {}; credential bundle written to {}", p.record.username, out.display());
        }
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(json.as_bytes())?;
            stdout.flush()?;
            eprintln!("provisioned {}; the bundle on stdout is secret: store it 0600", p.record.username);
        }
    }
    Ok(())
}

pub async fn users(args: UsersArgs) -> Result<()> {
    crate::init_logging("warn", false);
    if !args.db.exists() {
        return Err(usage(format!("no database at {}", args.db.display())));
    }
    let store = open_store(&args.db).await?;
    match args.action {
        UsersAction::List => {
            for name in store.list().await? {
                println!("{name}");
            }
        }
        UsersAction::Show { username } => {
            let Some(r) = store.read(&username).await? else { bail!("no such user: {username}") };
            println!(
                "username: {}\nlabels:   {}\nic:       {}\nsalt:     {} bytes\ncreated:  {} (unix)",
                r.username,
                r.labels,
                r.ic,
                r.salt.len(),
                r.created
            );
        }
        UsersAction::Delete { username } => {
            if !store.delete(&username).await? {
                bail!("no such user: {username}");
            }
            println!("deleted {username}");
        }
        UsersAction::Export => {
            for name in store.list().await? {
                if let Some(r) = store.read(&name).await? {
                    println!("{}\t{}", r.username, r.to_postgres_verifier());
                }
            }
        }
    }
    Ok(())
}
