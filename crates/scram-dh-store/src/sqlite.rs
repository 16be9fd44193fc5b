//! A credential store in an embedded SQLite file.
//!
//! The file holds StoredKey and ServerKey for every user: verifier material that
//! lets its holder impersonate the server and mount an offline guessing attack
//! (SPEC 3a). It is therefore created with mode 0600, and SQLite's `-wal`/`-shm`
//! files inherit that mode.
//!
//! Every SQLite call runs on Tokio's blocking pool, so the async runtime never waits
//! on disk. Writes go through one connection behind an async mutex; reads use a
//! small pool of read-only connections, which WAL mode lets run while a write is
//! being committed, so a login's record lookup never queues behind an fsync.

use core::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior, params};
use scram_dh::record::{CredentialStore, Inserted, Labels, Record, RecordShapes, StoreError};
use scram_dh::secret::{ServerKey, StoredKey};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};

/// How many read-only connections a store keeps at most.
const READERS: usize = 4;

/// How long a statement waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, applied in order; after step `i` the database's
/// `PRAGMA user_version` is `i + 1`. Append only: never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: the user record of SPEC 3. The CHECKs refuse records no protocol step
    // could have made (SPEC 2: ic >= 4096; 32-byte keys), so a bug elsewhere
    // cannot persist one.
    "CREATE TABLE users (
        username   TEXT    PRIMARY KEY NOT NULL,
        salt       BLOB    NOT NULL CHECK (length(salt) > 0),
        ic         INTEGER NOT NULL CHECK (ic >= 4096 AND ic <= 4294967295),
        stored_key BLOB    NOT NULL CHECK (length(stored_key) = 32),
        server_key BLOB    NOT NULL CHECK (length(server_key) = 32),
        labels     TEXT    NOT NULL CHECK (labels IN ('random', 'rfc')),
        created    INTEGER NOT NULL CHECK (created >= 0)
    ) STRICT;",
];

/// The schema version this build creates and understands.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const SELECT_RECORD: &str =
    "SELECT username, salt, ic, stored_key, server_key, labels, created FROM users WHERE username = ?1";

/// What went wrong, before it is flattened into a [`StoreError`] message.
/// No variant carries key material.
#[derive(Debug, thiserror::Error)]
enum SqliteError {
    #[error("sqlite credential store: {context}: {source}")]
    Db { context: &'static str, source: rusqlite::Error },
    #[error("sqlite credential store: {context} {path}: {source}")]
    Io { context: &'static str, path: PathBuf, source: std::io::Error },
    #[error("sqlite credential store: {0} is a directory, not a database file")]
    IsDirectory(PathBuf),
    #[error("sqlite credential store: {0} is not a regular file")]
    NotAFile(PathBuf),
    #[error("sqlite credential store: could not enable WAL journal mode (got {0:?})")]
    NoWal(String),
    #[error(
        "sqlite credential store: database schema version {found} is newer than this build \
         understands ({known}); refusing to open it (upgrade scram-dh)"
    )]
    FutureSchema { found: i64, known: i64 },
    #[error("sqlite credential store: database schema version {0} is not one of ours")]
    UnknownSchema(i64),
    #[error("sqlite credential store: {field} out of range for user {username:?}")]
    OutOfRange { field: &'static str, username: String },
    #[error("sqlite credential store: corrupt record for user {username:?}: {what}")]
    Corrupt { username: String, what: &'static str },
    #[error("sqlite credential store: worker task failed: {0}")]
    Task(String),
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        StoreError(e.to_string())
    }
}

/// Attaches a description of what was being done to a rusqlite error.
fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> SqliteError {
    move |source| SqliteError::Db { context, source }
}

/// A [`CredentialStore`] backed by a SQLite database file.
///
/// Cloning is cheap and clones share the connections: hand one to each task.
/// Opening the same file from several processes is safe (SQLite's locks and a
/// 5-second busy timeout), but the writes of each process are serialised.
#[derive(Clone)]
pub struct SqliteCredentialStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Absolute path of the database file.
    path: PathBuf,
    /// The one connection that writes. An async mutex, so queued writers wait
    /// without holding a blocking-pool thread.
    writer: Arc<AsyncMutex<Connection>>,
    /// One permit per reader connection that may exist.
    reader_permits: Arc<Semaphore>,
    /// Reader connections not in use; opened lazily, at most [`READERS`].
    idle_readers: Mutex<Vec<Connection>>,
}

impl fmt::Debug for SqliteCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCredentialStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl SqliteCredentialStore {
    /// Opens the store at `path`, creating the file (mode 0600) and its schema on
    /// first use and applying any pending schema migrations.
    ///
    /// Async because it touches disk: the work runs on Tokio's blocking pool, so
    /// this must be awaited inside a Tokio runtime.
    ///
    /// The connection uses WAL journaling, `synchronous=FULL` (a committed insert
    /// survives power loss, so a registration is acknowledged only once durable),
    /// a 5-second busy timeout, foreign keys on and `secure_delete` (replaced and
    /// deleted keys are overwritten, not left in free pages).
    ///
    /// # Errors
    /// [`StoreError`] if `path` is a directory or not a regular file, the file
    /// cannot be created or opened, it is not a SQLite database, WAL mode cannot be
    /// enabled, its schema version is newer than this build knows, or a migration
    /// fails (a failed migration is rolled back whole).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = std::path::absolute(path.as_ref()).map_err(|source| SqliteError::Io {
            context: "resolving",
            path: path.as_ref().to_path_buf(),
            source,
        })?;
        let inner = tokio::task::spawn_blocking(move || open_blocking(path))
            .await
            .map_err(|e| SqliteError::Task(e.to_string()))??;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The database file's absolute path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection, on the blocking pool.
    async fn with_writer<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let mut conn = Arc::clone(&self.inner.writer).lock_owned().await;
        // If the caller's future is dropped now, the closure still runs to the end
        // (commit or rollback) and only then releases the writer.
        let out = tokio::task::spawn_blocking(move || f(&mut conn))
            .await
            .map_err(|e| SqliteError::Task(e.to_string()))??;
        Ok(out)
    }

    /// Runs `f` on a pooled read-only connection, on the blocking pool.
    async fn with_reader<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.reader_permits)
            .acquire_owned()
            .await
            .map_err(|e| SqliteError::Task(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        let out = tokio::task::spawn_blocking(move || {
            let pooled = inner.idle_readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&inner.path)?,
            };
            let out = f(&conn);
            // Back to the pool before the permit goes, so at most READERS exist.
            inner.idle_readers.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
            drop(permit);
            out
        })
        .await
        .map_err(|e| SqliteError::Task(e.to_string()))??;
        Ok(out)
    }
}

impl CredentialStore for SqliteCredentialStore {
    async fn read(&self, username: &str) -> Result<Option<Record>, StoreError> {
        let username = username.to_owned();
        self.with_reader(move |conn| {
            let mut stmt = conn.prepare_cached(SELECT_RECORD).map_err(db("preparing a read"))?;
            let mut rows = stmt.query([&username]).map_err(db("reading a record"))?;
            match rows.next().map_err(db("reading a record"))? {
                Some(row) => record_from_row(row).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn insert(&self, record: &Record) -> Result<Inserted, StoreError> {
        let record = record.clone();
        self.with_writer(move |conn| {
            let (ic, created) = integer_fields(&record)?;
            // IMMEDIATE takes the write lock up front: of two processes inserting the
            // same username, the second waits and then sees the first's row.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("beginning an insert"))?;
            let changed = tx
                .prepare_cached(
                    "INSERT INTO users (username, salt, ic, stored_key, server_key, labels, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (username) DO NOTHING",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        record.username,
                        record.salt,
                        ic,
                        record.stored_key.expose(),
                        record.server_key.expose(),
                        record.labels.as_str(),
                        created,
                    ])
                })
                .map_err(db("inserting a record"))?;
            // Dropping `tx` on an error above rolls back: nothing half-written stays.
            tx.commit().map_err(db("committing an insert"))?;
            Ok(if changed == 1 { Inserted::Inserted } else { Inserted::AlreadyExists })
        })
        .await
    }

    async fn replace(&self, record: &Record) -> Result<bool, StoreError> {
        let record = record.clone();
        self.with_writer(move |conn| {
            let (ic, created) = integer_fields(&record)?;
            let changed = conn
                .prepare_cached(
                    "UPDATE users SET salt = ?2, ic = ?3, stored_key = ?4, server_key = ?5,
                                      labels = ?6, created = ?7
                     WHERE username = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        record.username,
                        record.salt,
                        ic,
                        record.stored_key.expose(),
                        record.server_key.expose(),
                        record.labels.as_str(),
                        created,
                    ])
                })
                .map_err(db("replacing a record"))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete(&self, username: &str) -> Result<bool, StoreError> {
        let username = username.to_owned();
        self.with_writer(move |conn| {
            let changed = conn
                .prepare_cached("DELETE FROM users WHERE username = ?1")
                .and_then(|mut stmt| stmt.execute([&username]))
                .map_err(db("deleting a record"))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        self.with_reader(|conn| {
            // BINARY collation orders by UTF-8 bytes, the same order as `str`'s `Ord`.
            let mut stmt = conn
                .prepare_cached("SELECT username FROM users ORDER BY username")
                .map_err(db("preparing a listing"))?;
            let names = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .and_then(Iterator::collect)
                .map_err(db("listing usernames"))?;
            Ok(names)
        })
        .await
    }

    async fn record_shapes(&self) -> Result<RecordShapes, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(SELECT_SHAPES).map_err(db("preparing a shape count"))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                })
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(db("counting record shapes"))?;
            let mut shapes = RecordShapes::new();
            for (ic, salt_len, count) in rows {
                let corrupt =
                    || SqliteError::Corrupt { username: String::new(), what: "record shape out of range" };
                let (shape, count) = crate::shape_row(ic, salt_len, count).ok_or_else(corrupt)?;
                shapes.insert(shape, count);
            }
            Ok(shapes)
        })
        .await
    }
}

/// The histogram of record shapes in one aggregate query. `length()` of a BLOB is
/// its size in bytes (of TEXT it would count characters; the schema keeps salts
/// BLOBs).
const SELECT_SHAPES: &str = "SELECT ic, length(salt), count(*) FROM users GROUP BY ic, length(salt)";

/// `ic` and `created` as SQLite integers (i64).
fn integer_fields(record: &Record) -> Result<(i64, i64), SqliteError> {
    let created = i64::try_from(record.created)
        .map_err(|_| SqliteError::OutOfRange { field: "created", username: record.username.clone() })?;
    Ok((i64::from(record.ic), created))
}

/// Decodes a `SELECT_RECORD` row, refusing anything the schema should have kept
/// out (the file may have been edited by hand or damaged).
fn record_from_row(row: &Row<'_>) -> Result<Record, SqliteError> {
    let column = |idx: usize| row.get_ref(idx).map_err(db("reading a record"));
    let username = column(0)?
        .as_str()
        .map_err(|_| SqliteError::Corrupt { username: String::new(), what: "username is not text" })?
        .to_owned();
    let corrupt = |what: &'static str| SqliteError::Corrupt { username: username.clone(), what };

    let salt = column(1)?.as_blob().map_err(|_| corrupt("salt is not a blob"))?.to_vec();
    if salt.is_empty() {
        return Err(corrupt("salt is empty"));
    }
    let ic = integer(column(2)?)
        .and_then(|v| u32::try_from(v).ok())
        .filter(|&ic| ic >= scram_dh::MIN_ITERATIONS)
        .ok_or_else(|| corrupt("iteration count out of range"))?;
    // from_slice copies straight out of SQLite's buffer: no stray copy of the key.
    let stored_key = column(3)?
        .as_blob()
        .ok()
        .and_then(StoredKey::from_slice)
        .ok_or_else(|| corrupt("stored_key is not a 32-byte blob"))?;
    let server_key = column(4)?
        .as_blob()
        .ok()
        .and_then(ServerKey::from_slice)
        .ok_or_else(|| corrupt("server_key is not a 32-byte blob"))?;
    let labels = column(5)?
        .as_str()
        .ok()
        .and_then(Labels::from_name)
        .ok_or_else(|| corrupt("labels is neither 'random' nor 'rfc'"))?;
    let created = integer(column(6)?)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| corrupt("created is not a non-negative integer"))?;

    Ok(Record { username, salt, ic, stored_key, server_key, created, labels })
}

fn integer(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(v) => Some(v),
        _ => None,
    }
}

/// Creates or opens the file, configures the writer connection and migrates.
fn open_blocking(path: PathBuf) -> Result<Inner, SqliteError> {
    create_file(&path)?;

    // No SQLITE_OPEN_CREATE: the file exists now, with our mode.
    let mut writer = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db("opening the database"))?;
    writer.busy_timeout(BUSY_TIMEOUT).map_err(db("setting busy_timeout"))?;
    let mode: String = writer
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db("enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteError::NoWal(mode));
    }
    // FULL, not WAL's usual NORMAL: a commit is fsynced before insert returns,
    // and the server sends its final registration message only after that.
    writer.pragma_update(None, "synchronous", "FULL").map_err(db("setting synchronous"))?;
    writer.pragma_update(None, "foreign_keys", "ON").map_err(db("enabling foreign keys"))?;
    writer.pragma_update(None, "secure_delete", "ON").map_err(db("enabling secure_delete"))?;

    migrate(&mut writer)?;

    // One reader now, so a file the readers cannot open fails here, not at login.
    let reader = open_reader(&path)?;
    tracing::debug!(path = %path.display(), schema_version = SCHEMA_VERSION, "opened sqlite credential store");
    Ok(Inner {
        path,
        writer: Arc::new(AsyncMutex::new(writer)),
        reader_permits: Arc::new(Semaphore::new(READERS)),
        idle_readers: Mutex::new(vec![reader]),
    })
}

/// Creates the database file with mode 0600 before SQLite sees it, so verifier
/// material is never world-readable, not even for a moment.
fn create_file(path: &Path) -> Result<(), SqliteError> {
    let io = |context| move |source| SqliteError::Io { context, path: path.to_path_buf(), source };
    if path.is_dir() {
        return Err(SqliteError::IsDirectory(path.to_path_buf()));
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(io("creating"))?;
    let meta = file.metadata().map_err(io("inspecting"))?;
    if !meta.is_file() {
        return Err(SqliteError::NotAFile(path.to_path_buf()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "credential store file is readable by group or others; it holds verifier keys"
            );
        }
    }
    Ok(())
}

/// Opens a read-only connection (WAL readers do not block the writer).
fn open_reader(path: &Path) -> Result<Connection, SqliteError> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(db("opening a reader"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db("setting busy_timeout"))?;
    Ok(conn)
}

/// Applies the pending steps of [`MIGRATIONS`], one transaction each.
///
/// The version is read inside each IMMEDIATE transaction, so two processes opening
/// a fresh file at once apply each step exactly once.
fn migrate(conn: &mut Connection) -> Result<(), SqliteError> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("beginning a migration"))?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(db("reading user_version"))?;
        if found > SCHEMA_VERSION {
            return Err(SqliteError::FutureSchema { found, known: SCHEMA_VERSION });
        }
        let Ok(index) = usize::try_from(found) else {
            return Err(SqliteError::UnknownSchema(found));
        };
        let Some(step) = MIGRATIONS.get(index) else {
            return Ok(());
        };
        tx.execute_batch(step).map_err(db("applying a migration"))?;
        tx.pragma_update(None, "user_version", found + 1).map_err(db("setting user_version"))?;
        tx.commit().map_err(db("committing a migration"))?;
        tracing::info!(from = found, to = found + 1, "migrated sqlite credential store schema");
    }
}
