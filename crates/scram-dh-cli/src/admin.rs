//! Server-host commands: `provision` (SPEC 3b) and `users`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
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
    /// The server's SQLite database, or a `postgres://` URL.
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
    /// The server's SQLite database, or a `postgres://` URL.
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
    /// Import PostgreSQL SCRAM-SHA-256 verifiers (`SCRAM-SHA-256$<ic>:<salt>$<StoredKey>:<ServerKey>`,
    /// as `pg_authid.rolpassword` holds them) as records with rfc labels: one
    /// user from the arguments, or every `username<TAB>verifier` line of --file.
    /// A malformed verifier is an error, never taken for a password; a file with one
    /// bad line imports nothing.
    ImportVerifier {
        /// The username.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        username: Option<String>,
        /// The verifier (quote it: it contains `$`).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        verifier: Option<String>,
        /// A file of `username<TAB>verifier` lines (`-` for standard input), e.g. `users export`'s output.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Replace existing users' records instead of refusing.
        #[arg(long)]
        replace: bool,
        /// Highest iteration count accepted.
        #[arg(long, default_value_t = scram_dh::config::DEFAULT_MAX_IC)]
        max_ic: u32,
    },
    /// Copy every record from one store to another (`sqlite:PATH` or a path, or a
    /// `postgres://` URL), byte for byte. Records already in the destination
    /// unchanged are skipped, so a rerun is harmless; a user whose record differs
    /// there stops the copy before anything is written, unless --replace. The
    /// source is left as it was.
    Migrate {
        /// The store to read (`sqlite:PATH`, `PATH` or `postgres://…`).
        #[arg(long)]
        from: String,
        /// The store to write (`sqlite:PATH`, `PATH` or `postgres://…`).
        #[arg(long)]
        to: String,
        /// Overwrite destination records that differ.
        #[arg(long)]
        replace: bool,
        /// Only report what would be copied.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `sqlite:PATH`, a bare path, or a PostgreSQL URL, as `--db` takes it.
fn store_location(spec: &str) -> PathBuf {
    PathBuf::from(spec.strip_prefix("sqlite:").unwrap_or(spec))
}

/// `users migrate`: reads the whole source, checks the destination, then copies.
async fn migrate(from: &str, to: &str, replace: bool, dry_run: bool) -> Result<()> {
    let (from, to) = (store_location(from), store_location(to));
    if !crate::store::is_postgres(&from) && !from.exists() {
        return Err(usage(format!("no database at {}", from.display())));
    }
    if crate::store::display(&from) == crate::store::display(&to) {
        return Err(usage("--from and --to name the same store"));
    }
    let source = open_store(&from).await?;
    let dest = open_store(&to).await?;
    let mut records = Vec::new();
    for name in source.list().await? {
        // A record deleted between list and read is simply not copied.
        if let Some(r) = source.read(&name).await? {
            records.push(r);
        }
    }
    let (mut copy, mut same, mut differ) = (Vec::new(), 0usize, Vec::new());
    for r in records {
        match dest.read(&r.username).await? {
            None => copy.push(r),
            Some(existing) if existing == r => same += 1,
            Some(_) => differ.push(r),
        }
    }
    if !differ.is_empty() && !replace {
        let names: Vec<_> = differ.iter().take(5).map(|r| crate::term::escape(&r.username)).collect();
        bail!(
            "{} user(s) exist in {} with another record ({}{}); nothing copied (use --replace to overwrite)",
            differ.len(),
            crate::store::display(&to),
            names.join(", "),
            if differ.len() > 5 { ", …" } else { "" }
        );
    }
    let (new, replaced) = (copy.len(), differ.len());
    if !dry_run {
        for r in &copy {
            if store_insert_or_same(&dest, r).await? {
                continue;
            }
            bail!("user {} appeared in the destination meanwhile with another record; stopped", r.username);
        }
        for r in &differ {
            if !dest.replace(r).await? {
                bail!("user {} vanished from the destination meanwhile; stopped", r.username);
            }
        }
    }
    println!(
        "{}{new} copied, {replaced} replaced, {same} already there, from {} to {}",
        if dry_run { "dry run: " } else { "" },
        crate::store::display(&from),
        crate::store::display(&to)
    );
    Ok(())
}

/// Inserts `r`; `true` also when an identical record is already there.
async fn store_insert_or_same(store: &crate::store::AnyStore, r: &scram_dh::Record) -> Result<bool> {
    Ok(match store.insert(r).await? {
        Inserted::Inserted => true,
        Inserted::AlreadyExists => store.read(&r.username).await?.as_ref() == Some(r),
    })
}

/// Parses and checks verifiers: every line or none.
fn parse_verifiers(lines: &[(String, String)], max_ic: u32) -> Result<Vec<scram_dh::Record>> {
    let mut seen = std::collections::HashSet::new();
    let mut records = Vec::with_capacity(lines.len());
    for (i, (username, verifier)) in lines.iter().enumerate() {
        let at = if lines.len() > 1 { format!("line {}: ", i + 1) } else { String::new() };
        let record = scram_dh::Record::from_postgres_verifier(username, verifier, now_secs())
            .map_err(|e| usage(format!("{at}{}: {e}", crate::term::escape(username))))?;
        // The bounds every record made here keeps, so unknown users' replies can
        // imitate this one too (finding M6).
        scram_dh::config::check_record_shape(record.salt.len(), record.ic, max_ic)
            .map_err(|e| usage(format!("{at}{}: {e}", record.username)))?;
        if !seen.insert(record.username.clone()) {
            return Err(usage(format!("{at}{} appears twice", record.username)));
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(usage("no verifiers to import"));
    }
    Ok(records)
}

fn read_verifier_lines(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading verifiers from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((user, verifier)) = line.split_once('\t') else {
            return Err(usage(format!("line {}: expected username<TAB>verifier", i + 1)));
        };
        out.push((user.to_owned(), verifier.to_owned()));
    }
    Ok(out)
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
    let host_key = load_or_create_host_key(&match args.host_key.clone() {
        Some(path) => path,
        None if crate::store::is_postgres(&args.db) => {
            return Err(usage("--db postgres://… needs --host-key FILE (the servers' host key)"));
        }
        None => default_host_key_path(&args.db),
    })?;
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
    let db = args.db;
    // An import may start a new database; every other action needs an existing one.
    let existing = || async {
        if !crate::store::is_postgres(&db) && !db.exists() {
            return Err(usage(format!("no database at {}", db.display())));
        }
        open_store(&db).await
    };
    match args.action {
        UsersAction::Migrate { from, to, replace, dry_run } => migrate(&from, &to, replace, dry_run).await?,
        UsersAction::List => {
            for name in existing().await?.list().await? {
                println!("{name}");
            }
        }
        UsersAction::Show { username } => {
            let Some(r) = existing().await?.read(&username).await? else { bail!("no such user: {username}") };
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
            if !existing().await?.delete(&username).await? {
                bail!("no such user: {username}");
            }
            println!("deleted {username}");
        }
        UsersAction::ImportVerifier { username, verifier, file, replace, max_ic } => {
            let store = open_store(&db).await?;
            let lines = match (file, username, verifier) {
                (Some(path), _, _) => read_verifier_lines(&path)?,
                (None, Some(u), Some(v)) => vec![(u, v)],
                _ => return Err(usage("give USERNAME VERIFIER, or --file PATH")),
            };
            let records = parse_verifiers(&lines, max_ic)?;
            if !replace {
                for r in &records {
                    if store.read(&r.username).await?.is_some() {
                        bail!("user {} exists; nothing imported (use --replace to overwrite)", r.username);
                    }
                }
            }
            for r in &records {
                let done = match store.insert(r).await? {
                    Inserted::Inserted => true,
                    Inserted::AlreadyExists if replace => store.replace(r).await?,
                    Inserted::AlreadyExists => false,
                };
                if !done {
                    bail!("user {} appeared meanwhile; records before it were imported", r.username);
                }
                println!("imported {}", r.username);
            }
        }
        UsersAction::Export => {
            let store = existing().await?;
            for name in store.list().await? {
                if let Some(r) = store.read(&name).await? {
                    println!("{}\t{}", r.username, r.to_postgres_verifier());
                }
            }
        }
    }
    Ok(())
}
