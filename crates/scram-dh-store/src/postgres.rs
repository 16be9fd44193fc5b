//! A credential store in a PostgreSQL database, shared by every server node.
//!
//! Records live in one table, `scram_dh_users`, whose constraints are the rules of
//! SPEC 2 and 3: the username is the primary key (so the database, not this code,
//! decides which of two concurrent registrations of one name wins), `ic >= 4096`,
//! both keys exactly 32 bytes, a non-empty salt, `labels` one of `random`/`rfc`.
//! The table holds StoredKey and ServerKey for every user: verifier material that
//! lets its holder impersonate the server and mount an offline guessing attack
//! (SPEC 3a), so grant the role only to the servers.
//!
//! Connections come from a [`deadpool_postgres`] pool over plain TCP (`NoTls`:
//! point it at loopback, a Unix-socket proxy or a private network). Every write is
//! one statement, committed on its own, so a database that goes away mid-call
//! leaves the old record or the new one, never half of one. Calls that fail for a
//! reason that may pass (connection refused or reset, pool timeout, serialization
//! failure, deadlock, administrator or crash shutdown) are retried with exponential
//! backoff, a bounded number of times ([`PgOptions`]); after that the call returns a
//! [`StoreError`] and the next call tries again, so service resumes by itself once
//! the database is back, with no new store object.
//!
//! The schema is created and migrated by [`PostgresCredentialStore::connect`]: the
//! steps are numbered in the one-row table `scram_dh_schema`, each runs in its own
//! transaction under a transaction-scoped advisory lock, so several nodes starting
//! at once apply each step exactly once.
//!
//! ```no_run
//! use std::time::Duration;
//! use scram_dh_store::CredentialStore;
//! use scram_dh_store::postgres::{PgOptions, PostgresCredentialStore};
//!
//! # async fn demo() -> Result<(), scram_dh_store::StoreError> {
//! let options = PgOptions::default().with_pool_size(8).with_connect_timeout(Duration::from_secs(3));
//! let store =
//!     PostgresCredentialStore::connect("postgres://scram:secret@127.0.0.1:5432/scram", options).await?;
//! for username in store.list().await? {
//!     println!("{username}");
//! }
//! # Ok(())
//! # }
//! ```

use core::fmt;
use core::future::Future;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use scram_dh::record::{CredentialStore, Inserted, Labels, Record, RecordShapes, StoreError};
use scram_dh::secret::{ServerKey, StoredKey};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// Schema migrations, applied in order; after step `i` the row in
/// `scram_dh_schema` says `version = i + 1`. Append only: never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: the user record of SPEC 3. The CHECKs refuse records no protocol step could
    // have made (SPEC 2: ic >= 4096; 32-byte keys), so a bug elsewhere, or a hand
    // edit, cannot persist one. `ic` is a bigint because the record's iteration count
    // is a u32 (PostgreSQL's integer stops at 2^31 - 1). COLLATE "C": usernames
    // compare and sort by UTF-8 bytes, as Rust's `str` does, whatever the database's
    // locale.
    "CREATE TABLE scram_dh_users (
        username   text COLLATE \"C\" PRIMARY KEY,
        salt       bytea  NOT NULL CHECK (octet_length(salt) > 0),
        ic         bigint NOT NULL CHECK (ic >= 4096 AND ic <= 4294967295),
        stored_key bytea  NOT NULL CHECK (octet_length(stored_key) = 32),
        server_key bytea  NOT NULL CHECK (octet_length(server_key) = 32),
        created    bigint NOT NULL CHECK (created >= 0),
        labels     text   NOT NULL CHECK (labels IN ('random', 'rfc'))
    )",
];

/// The schema version this build creates and understands.
const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The key of the advisory lock that serialises migrations (`"scram-dh"` in ASCII).
const MIGRATION_LOCK: i64 = 0x7363_7261_6d2d_6468;

const SELECT_RECORD: &str = "SELECT username, salt, ic, stored_key, server_key, created, labels
                             FROM scram_dh_users WHERE username = $1";

const INSERT_RECORD: &str =
    "INSERT INTO scram_dh_users (username, salt, ic, stored_key, server_key, created, labels)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (username) DO NOTHING";

const UPDATE_RECORD: &str = "UPDATE scram_dh_users
                             SET salt = $2, ic = $3, stored_key = $4, server_key = $5,
                                 created = $6, labels = $7
                             WHERE username = $1";

/// The histogram of record shapes in one aggregate query.
const SELECT_SHAPES: &str =
    "SELECT ic, octet_length(salt)::bigint, count(*) FROM scram_dh_users GROUP BY 1, 2";

/// How a [`PostgresCredentialStore`] connects and how hard it tries.
///
/// ```
/// use std::time::Duration;
/// use scram_dh_store::postgres::PgOptions;
/// let options = PgOptions::default().with_pool_size(4).with_retries(5, Duration::from_millis(20));
/// assert_eq!(options.pool_size(), 4);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    pool_size: usize,
    connect_timeout: Duration,
    retry_attempts: u32,
    retry_backoff: Duration,
}

impl Default for PgOptions {
    /// 16 connections, a 5-second connect timeout, 3 attempts, 50 ms first backoff.
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            retry_attempts: 3,
            retry_backoff: Duration::from_millis(50),
        }
    }
}

impl PgOptions {
    /// At most `n` connections (at least 1).
    #[must_use]
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How long opening one connection, or waiting for a free one, may take.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Tries a call at most `attempts` times in all (at least 1), sleeping `backoff`
    /// after the first failure and doubling it after each further one.
    #[must_use]
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.retry_attempts = attempts.max(1);
        self.retry_backoff = backoff;
        self
    }

    /// The pool's maximum number of connections.
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The connect (and pool wait) timeout.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Attempts per call, first try included.
    #[must_use]
    pub fn retry_attempts(&self) -> u32 {
        self.retry_attempts
    }

    /// The sleep after the first failed attempt.
    #[must_use]
    pub fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }
}

/// What went wrong, before it is flattened into a [`StoreError`] message.
/// No variant carries key material or the connection password.
#[derive(Debug, thiserror::Error)]
enum PgError {
    #[error("postgres credential store: invalid connection URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("postgres credential store ({target}): {context}: {reason}")]
    Db { target: String, context: &'static str, reason: String },
    #[error(
        "postgres credential store ({target}): database schema version {found} is newer than \
         this build understands ({known}); refusing to use it (upgrade scram-dh)"
    )]
    FutureSchema { target: String, found: i32, known: i32 },
    #[error("postgres credential store ({target}): {field} out of range for user {username:?}")]
    OutOfRange { target: String, field: &'static str, username: String },
    #[error("postgres credential store ({target}): corrupt record for user {username:?}: {what}")]
    Corrupt { target: String, username: String, what: &'static str },
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        StoreError(e.to_string())
    }
}

/// One failed attempt: whether trying again may help, and what to say.
struct Failure {
    transient: bool,
    /// Whether the statement may have reached the server (and committed) before
    /// the failure: then a retried insert must check what it finds.
    maybe_applied: bool,
    error: PgError,
}

/// A [`CredentialStore`] backed by a PostgreSQL database.
///
/// Cloning is cheap and clones share the pool: hand one to each task. Any number
/// of processes may use one database at once.
#[derive(Clone)]
pub struct PostgresCredentialStore {
    pool: Pool,
    /// `user@host:port/dbname`, for messages; never the password.
    target: String,
    /// The password, to scrub from any message that might echo it.
    password: Option<String>,
    options: PgOptions,
}

impl fmt::Debug for PostgresCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCredentialStore")
            .field("target", &self.target)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PostgresCredentialStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// or libpq's `key=value` form), creates the schema on first use and applies any
    /// pending migration.
    ///
    /// Must be awaited inside a Tokio runtime (the pool spawns each connection's
    /// task on it). TLS is not used (`sslmode=require` fails).
    ///
    /// # Errors
    /// [`StoreError`] if `url` does not parse, the database cannot be reached within
    /// the retry budget of `options`, the login is refused, the schema version is
    /// newer than this build knows, or a migration fails (a failed step is rolled
    /// back whole). No message contains the password.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let password_hint = url_password(url);
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| PgError::BadUrl {
            url: redact(url, password_hint.as_deref()),
            reason: redact(&e.to_string(), password_hint.as_deref()),
        })?;
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("scram-dh");
        }
        let password =
            config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).or(password_hint);
        let target = describe(&config);
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| PgError::Db {
                target: target.clone(),
                context: "building the connection pool",
                reason: e.to_string(),
            })?;
        let store = Self { pool, target, password, options };
        store.retrying("migrating the schema", |s| async move { s.migrate().await }).await?;
        tracing::debug!(target = %store.target, schema_version = SCHEMA_VERSION, "opened postgres credential store");
        Ok(store)
    }

    /// The options the store was made with.
    #[must_use]
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry budget is
    /// spent, sleeping `retry_backoff`, then twice that, and so on, between tries.
    async fn retrying<'a, T, F, Fut>(&'a self, what: &'static str, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut(&'a Self) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut backoff = self.options.retry_backoff;
        let mut tries = 1;
        loop {
            match attempt(self).await {
                Ok(v) => return Ok(v),
                Err(f) if f.transient && tries < self.options.retry_attempts => {
                    tracing::debug!(%what, attempt = tries, error = %f.error, "retrying postgres call");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    tries += 1;
                }
                Err(f) => {
                    let msg = f.error.to_string();
                    let msg =
                        if f.transient { format!("{msg} (gave up after {tries} attempts)") } else { msg };
                    return Err(StoreError(redact(&msg, self.password.as_deref())));
                }
            }
        }
    }

    /// A pooled connection, or the failure to get one.
    async fn client(&self, context: &'static str) -> Result<deadpool_postgres::Client, Failure> {
        self.pool.get().await.map_err(|e| {
            let transient = match &e {
                PoolError::Timeout(_) => true,
                PoolError::Backend(e) => is_transient(e),
                _ => false,
            };
            Failure {
                transient,
                maybe_applied: false,
                error: PgError::Db { target: self.target.clone(), context, reason: describe_pool_error(&e) },
            }
        })
    }

    /// A failure from running a statement: it may have been applied if the
    /// connection broke after it was sent.
    fn failed(&self, context: &'static str, e: &tokio_postgres::Error) -> Failure {
        Failure {
            transient: is_transient(e),
            maybe_applied: e.as_db_error().is_none(),
            error: PgError::Db { target: self.target.clone(), context, reason: describe_db_error(e) },
        }
    }

    fn permanent(error: PgError) -> Failure {
        Failure { transient: false, maybe_applied: false, error }
    }

    /// One pass of the migration loop: apply every pending step, each in its own
    /// transaction under the advisory lock.
    async fn migrate(&self) -> Result<(), Failure> {
        let mut client = self.client("connecting").await?;
        loop {
            let tx = client.transaction().await.map_err(|e| self.failed("beginning a migration", &e))?;
            // Serialises concurrent migrators, including the CREATE TABLE IF NOT EXISTS
            // below (two of which would otherwise race on the catalog); released at
            // commit or rollback.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(|e| self.failed("taking the migration lock", &e))?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS scram_dh_schema (
                    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                    version   integer NOT NULL CHECK (version >= 0)
                 );
                 INSERT INTO scram_dh_schema (version) VALUES (0) ON CONFLICT DO NOTHING;",
            )
            .await
            .map_err(|e| self.failed("creating the schema version table", &e))?;
            let found: i32 = tx
                .query_one("SELECT version FROM scram_dh_schema", &[])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| self.failed("reading the schema version", &e))?;
            if found > SCHEMA_VERSION {
                return Err(Self::permanent(PgError::FutureSchema {
                    target: self.target.clone(),
                    found,
                    known: SCHEMA_VERSION,
                }));
            }
            let Some(step) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
                tx.commit().await.map_err(|e| self.failed("committing the schema check", &e))?;
                return Ok(());
            };
            tx.batch_execute(step).await.map_err(|e| self.failed("applying a migration", &e))?;
            tx.execute("UPDATE scram_dh_schema SET version = $1", &[&(found + 1)])
                .await
                .map_err(|e| self.failed("setting the schema version", &e))?;
            tx.commit().await.map_err(|e| self.failed("committing a migration", &e))?;
            tracing::info!(target = %self.target, from = found, to = found + 1, "migrated postgres credential store schema");
        }
    }

    /// `ic` and `created` as PostgreSQL bigints.
    fn integer_fields(&self, record: &Record) -> Result<(i64, i64), PgError> {
        let created = i64::try_from(record.created).map_err(|_| PgError::OutOfRange {
            target: self.target.clone(),
            field: "created",
            username: record.username.clone(),
        })?;
        Ok((i64::from(record.ic), created))
    }

    /// Runs one write statement with the record's fields; rows affected.
    async fn write(&self, sql: &'static str, context: &'static str, record: &Record) -> Result<u64, Failure> {
        let (ic, created) = self.integer_fields(record).map_err(Self::permanent)?;
        let client = self.client("connecting").await?;
        let stmt = client.prepare_cached(sql).await.map_err(|e| self.failed("preparing a write", &e))?;
        client
            .execute(
                &stmt,
                &[
                    &record.username,
                    &record.salt,
                    &ic,
                    &record.stored_key.expose().as_slice(),
                    &record.server_key.expose().as_slice(),
                    &created,
                    &record.labels.as_str(),
                ],
            )
            .await
            .map_err(|e| self.failed(context, &e))
    }

    async fn read_once(&self, username: &str) -> Result<Option<Record>, Failure> {
        let client = self.client("connecting").await?;
        let stmt =
            client.prepare_cached(SELECT_RECORD).await.map_err(|e| self.failed("preparing a read", &e))?;
        let row =
            client.query_opt(&stmt, &[&username]).await.map_err(|e| self.failed("reading a record", &e))?;
        row.map(|row| self.record_from_row(&row)).transpose().map_err(Self::permanent)
    }

    /// Decodes a `SELECT_RECORD` row, refusing anything the schema should have kept
    /// out (the table may have been altered by hand).
    fn record_from_row(&self, row: &tokio_postgres::Row) -> Result<Record, PgError> {
        let username: String = row.try_get(0).map_err(|_| PgError::Corrupt {
            target: self.target.clone(),
            username: String::new(),
            what: "username is not text",
        })?;
        let corrupt = |what: &'static str| PgError::Corrupt {
            target: self.target.clone(),
            username: username.clone(),
            what,
        };
        let salt: Vec<u8> = row.try_get(1).map_err(|_| corrupt("salt is not bytea"))?;
        if salt.is_empty() {
            return Err(corrupt("salt is empty"));
        }
        let ic = row
            .try_get::<_, i64>(2)
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&ic| ic >= scram_dh::MIN_ITERATIONS)
            .ok_or_else(|| corrupt("iteration count out of range"))?;
        // Borrowed straight from the row buffer: no stray copy of the key.
        let stored_key = row
            .try_get::<_, &[u8]>(3)
            .ok()
            .and_then(StoredKey::from_slice)
            .ok_or_else(|| corrupt("stored_key is not 32 bytes"))?;
        let server_key = row
            .try_get::<_, &[u8]>(4)
            .ok()
            .and_then(ServerKey::from_slice)
            .ok_or_else(|| corrupt("server_key is not 32 bytes"))?;
        let created = row
            .try_get::<_, i64>(5)
            .ok()
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| corrupt("created is not a non-negative integer"))?;
        let labels = row
            .try_get::<_, &str>(6)
            .ok()
            .and_then(Labels::from_name)
            .ok_or_else(|| corrupt("labels is neither 'random' nor 'rfc'"))?;
        Ok(Record { username, salt, ic, stored_key, server_key, created, labels })
    }
}

impl CredentialStore for PostgresCredentialStore {
    async fn read(&self, username: &str) -> Result<Option<Record>, StoreError> {
        self.retrying("read", |s| s.read_once(username)).await
    }

    async fn insert(&self, record: &Record) -> Result<Inserted, StoreError> {
        // Reject out-of-range fields with their own message, before any I/O.
        self.integer_fields(record)?;
        let maybe_applied = AtomicBool::new(false);
        let changed = self
            .retrying("insert", |s| {
                let maybe_applied = &maybe_applied;
                async move {
                    s.write(INSERT_RECORD, "inserting a record", record).await.inspect_err(|f| {
                        if f.maybe_applied {
                            maybe_applied.store(true, Ordering::Relaxed);
                        }
                    })
                }
            })
            .await?;
        if changed == 1 {
            return Ok(Inserted::Inserted);
        }
        let maybe_applied = maybe_applied.into_inner();
        // An earlier attempt may have committed before its connection broke: then
        // the row found is ours (a fresh random salt and keys make a collision with
        // another registration of this name impossible in practice).
        if maybe_applied && self.read(&record.username).await?.as_ref() == Some(record) {
            return Ok(Inserted::Inserted);
        }
        Ok(Inserted::AlreadyExists)
    }

    async fn replace(&self, record: &Record) -> Result<bool, StoreError> {
        self.integer_fields(record)?;
        // Idempotent: a retry after an unseen commit writes the same values again.
        let changed =
            self.retrying("replace", |s| s.write(UPDATE_RECORD, "replacing a record", record)).await?;
        Ok(changed == 1)
    }

    async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        // A retry after a delete that committed unseen reports `false`; the user is
        // gone either way.
        let changed = self
            .retrying("delete", |s| async move {
                let client = s.client("connecting").await?;
                let stmt = client
                    .prepare_cached("DELETE FROM scram_dh_users WHERE username = $1")
                    .await
                    .map_err(|e| s.failed("preparing a delete", &e))?;
                client.execute(&stmt, &[&username]).await.map_err(|e| s.failed("deleting a record", &e))
            })
            .await?;
        Ok(changed == 1)
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        self.retrying("list", |s| async move {
            let client = s.client("connecting").await?;
            // The column's "C" collation orders by UTF-8 bytes, as `str`'s `Ord`.
            let rows = client
                .query("SELECT username FROM scram_dh_users ORDER BY username", &[])
                .await
                .map_err(|e| s.failed("listing usernames", &e))?;
            rows.iter()
                .map(|row| row.try_get::<_, String>(0).map_err(|e| s.failed("listing usernames", &e)))
                .collect()
        })
        .await
    }

    async fn record_shapes(&self) -> Result<RecordShapes, StoreError> {
        self.retrying("record_shapes", |s| async move {
            let client = s.client("connecting").await?;
            let rows =
                client.query(SELECT_SHAPES, &[]).await.map_err(|e| s.failed("counting record shapes", &e))?;
            let mut shapes = RecordShapes::new();
            for row in rows {
                let corrupt = || {
                    Self::permanent(PgError::Corrupt {
                        target: s.target.clone(),
                        username: String::new(),
                        what: "record shape out of range",
                    })
                };
                let (ic, salt_len, count): (i64, i64, i64) = (
                    row.try_get(0).map_err(|_| corrupt())?,
                    row.try_get(1).map_err(|_| corrupt())?,
                    row.try_get(2).map_err(|_| corrupt())?,
                );
                let (shape, count) = crate::shape_row(ic, salt_len, count).ok_or_else(corrupt)?;
                shapes.insert(shape, count);
            }
            Ok(shapes)
        })
        .await
    }
}

/// Whether an error may pass if the call is tried again: the connection failed or
/// broke (no server-side error), or the server reports a condition that ends by
/// itself.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(code) => [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code),
    }
}

/// A tokio-postgres error with its cause (tokio-postgres's own `Display` often
/// stops at "error connecting to server" and keeps "connection refused" in the
/// source).
fn describe_db_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

fn describe_pool_error(e: &PoolError) -> String {
    match e {
        PoolError::Backend(e) => describe_db_error(e),
        PoolError::Timeout(_) => "timed out waiting for a database connection".to_owned(),
        other => other.to_string(),
    }
}

/// `user@host:port/dbname` of a parsed configuration (never its password).
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or("?"),
        if hosts.is_empty() { "localhost".to_owned() } else { hosts.join(",") },
        if ports.is_empty() { "5432".to_owned() } else { ports.join(",") },
        config.get_dbname().unwrap_or("?"),
    )
}

/// The password of a `postgres://user:PASS@…` URL as written (percent-encoded),
/// to scrub even when the URL does not parse.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let userinfo = authority.rsplit_once('@')?.0;
    let pass = userinfo.split_once(':')?.1;
    (!pass.is_empty()).then(|| pass.to_owned())
}

/// A database URL fit for logs and messages: its password (in the userinfo or a
/// `password=` parameter) replaced by `***`, as every error of this store does.
///
/// ```
/// use scram_dh_store::postgres::redact_url;
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/users"), "postgres://app:***@db:5432/users");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    redact(url, url_password(url).as_deref())
}

/// `msg` with every URL password (`scheme://user:PASS@`), every `password=…` of a
/// key-value connection string and every occurrence of `password` (when at least
/// four characters long, to keep short ones from mangling the text) replaced by
/// `***`.
#[must_use]
fn redact(msg: &str, password: Option<&str>) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    // scheme://user:PASS@ (the userinfo ends at the last '@' before the path).
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c == '/' || c == '?' || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        crate::push_redacted_authority(&mut out, authority);
        rest = &tail[end..];
    }
    out.push_str(rest);
    // key=value form: password=VALUE or password='quoted value'.
    let mut scrubbed = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("password=") {
        let (head, tail) = rest.split_at(at + "password=".len());
        scrubbed.push_str(head);
        scrubbed.push_str("***");
        let end = if let Some(quoted) = tail.strip_prefix('\'') {
            quoted.find('\'').map_or(tail.len(), |i| i + 2)
        } else {
            tail.find(char::is_whitespace).unwrap_or(tail.len())
        };
        rest = &tail[end..];
    }
    scrubbed.push_str(rest);
    match password {
        Some(p) if p.chars().count() >= 4 => scrubbed.replace(p, "***"),
        _ => scrubbed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_scrubs_url_and_keyvalue_passwords() {
        assert_eq!(
            redact("bad postgres://scram:s3cr%40t@127.0.0.1:5/db?x=1 here", None),
            "bad postgres://scram:***@127.0.0.1:5/db?x=1 here"
        );
        assert_eq!(redact("postgres://u@h/db", None), "postgres://u@h/db");
        assert_eq!(redact("postgres://u:p@ss@h/db", None), "postgres://u:***@h/db");
        assert_eq!(redact("host=h password=hunter2 user=u", None), "host=h password=*** user=u");
        assert_eq!(redact("host=h password='a b c' user=u", None), "host=h password=*** user=u");
        assert_eq!(redact("said hunter2 twice: hunter2", Some("hunter2")), "said *** twice: ***");
        assert_eq!(redact("a short one", Some("a")), "a short one");
    }

    #[test]
    fn url_password_is_found_as_written() {
        assert_eq!(url_password("postgres://u:p%40ss@h:1/db").as_deref(), Some("p%40ss"));
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("host=h"), None);
    }

    #[test]
    fn options_clamp_to_at_least_one() {
        let o = PgOptions::default().with_pool_size(0).with_retries(0, Duration::ZERO);
        assert_eq!((o.pool_size(), o.retry_attempts()), (1, 1));
    }
}
