//! Connecting to SQLite or PostgreSQL, and the few things that differ between them: pool
//! shapes, pragmas, how a write transaction begins, and error classification.
//!
//! Errors are classified by their codes, never their wording: SQLSTATE on PostgreSQL, the
//! result code on SQLite (whose unique-violation message is only read for the column it
//! names, since SQLite reports no constraint name). A unique violation is
//! [`StoreError::Conflict`] naming what was taken; a transaction rolled back for a deadlock
//! or serialisation failure, or a lock not granted in time, is [`StoreError::Contention`];
//! an error that means "the database is out of reach for now" (connection refused or lost,
//! no connection within the acquire timeout, disk full, I/O error) is
//! [`StoreError::Unavailable`]. A lock not granted in time counts as unavailable too
//! ([`StoreError::is_unavailable`]). A writer connection that comes back from a failed transaction
//! still inside one (SQLite rolls back by itself on SQLITE_FULL, after which sqlx's own
//! `ROLLBACK` fails and its transaction depth stays 1) is closed, never reused, so one failed
//! write cannot poison the next. [`WriteHealth`] remembers whether the last write failed for
//! such a reason, for readiness.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Database, Postgres, Sqlite, Transaction};
use std::path::PathBuf;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tessera_core::store::{ConflictKind, Contention, StoreError};

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(String),
}

impl DatabaseKind {
    /// Parses `sqlite://PATH`, `sqlite:PATH`, `postgres://…` or `postgresql://…`.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() {
                return Err("the SQLite URL names no file".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "unsupported database URL {:?}: use sqlite://PATH or postgres://…",
            url.split('@').next_back().unwrap_or(url)
        ))
    }
}

/// Pool sizes and timeouts.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Largest PostgreSQL pool, or SQLite reader pool.
    pub max_connections: u32,
    /// How long to wait for a connection or a lock before answering "unavailable". While
    /// PostgreSQL is down, connection attempts are retried within this time (backoff capped
    /// at a fifth of it), so a request waits at most this long and the first request after
    /// the database returns connects at once.
    pub acquire_timeout: Duration,
}

/// Default of [`ConnectOptions::acquire_timeout`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for ConnectOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self {
            max_connections: u32::try_from(cores * 4).unwrap_or(8).clamp(4, 32),
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

/// Whether the last write failed because the database was out of reach (disk full,
/// locked, down: [`StoreError::is_unavailable`]); cleared by the next successful write. Readiness checks it.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth(AtomicBool);

impl WriteHealth {
    /// Runs one write intent and records how it ended.
    pub(crate) async fn track<T>(&self, write: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let result = write.await;
        match &result {
            Ok(_) => self.0.store(false, Ordering::Relaxed),
            Err(e) if e.is_unavailable() => self.0.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
        result
    }

    /// Whether the last write failed for want of the database.
    pub(crate) fn failing(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub(crate) enum Pools {
    Sqlite { write: SqlitePool, read: SqlitePool },
    Postgres(PgPool),
}

pub(crate) async fn connect(kind: &DatabaseKind, opts: &ConnectOptions) -> Result<Pools, StoreError> {
    match kind {
        DatabaseKind::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display()).into()))?;
            }
            let base = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: an acknowledged write survives a crash or power loss.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(opts.acquire_timeout)
                .statement_cache_capacity(256);
            // One writer: SQLite serialises writes anyway; a single connection avoids
            // SQLITE_BUSY between our own writers. Readers run concurrently under WAL.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                // A transaction that failed (e.g. SQLITE_FULL at COMMIT) may leave the
                // connection inside a transaction that sqlx can no longer roll back; the
                // queued rollback runs before the ping, then such a connection is closed and
                // the pool opens a fresh one.
                .after_release(|conn, _| {
                    Box::pin(async move {
                        sqlx::Connection::ping(conn).await?;
                        let clean = !sqlx::Connection::is_in_transaction(conn);
                        if !clean {
                            tracing::warn!("discarding the SQLite writer connection left inside a failed transaction");
                        }
                        Ok(clean)
                    })
                })
                .connect_with(base.clone())
                .await
                .map_err(db)?;
            let read = SqlitePoolOptions::new()
                .max_connections(opts.max_connections)
                .min_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(base.read_only(true))
                .await
                .map_err(db)?;
            Ok(Pools::Sqlite { write, read })
        }
        DatabaseKind::Postgres(url) => {
            let options = PgConnectOptions::from_str(url).map_err(db)?.statement_cache_capacity(256);
            // test_before_acquire (on by default) drops connections that died with the server.
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.acquire_timeout)
                .test_before_acquire(true)
                .connect_with(options)
                .await
                .map_err(db)?;
            Ok(Pools::Postgres(pool))
        }
    }
}

/// How each backend begins a transaction that will write.
pub(crate) trait WritePool {
    type Db: Database;
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, StoreError>;
    /// A statement that serialises writers of the security event log within a transaction,
    /// so that sequence order is commit order (SQLite has a single writer already).
    fn event_log_lock(&self) -> Option<&'static str>;
}

impl WritePool for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        // writes fails with SQLITE_BUSY without waiting when another process (the CLI) writes.
        self.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }
    fn event_log_lock(&self) -> Option<&'static str> {
        None
    }
}

impl WritePool for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.begin().await.map_err(db)
    }
    fn event_log_lock(&self) -> Option<&'static str> {
        Some("SELECT pg_advisory_xact_lock(7317002)")
    }
}

/// What a database error means for callers, decided from its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Conflict(ConflictKind),
    Contention(Contention),
    Unavailable,
    Other,
}

/// The unique keys callers tell apart, as each backend names them: the PostgreSQL
/// constraint name, and the `table.column` SQLite reports (it does not report constraint
/// names; its unique-violation message is `UNIQUE constraint failed: <table>.<column>`).
/// Any other unique key is [`ConflictKind::Key`].
const UNIQUE_KEYS: [(&str, &str, ConflictKind); 4] = [
    ("users_username_canonical_key", "users.username_canonical", ConflictKind::Username),
    ("users_email_canonical_key", "users.email_canonical", ConflictKind::Email),
    ("sessions_handle_key", "sessions.handle", ConflictKind::SessionHandle),
    ("passkeys_credential_id_key", "passkeys.credential_id", ConflictKind::PasskeyCredential),
];

fn conflict(matches: impl Fn(&(&str, &str, ConflictKind)) -> bool) -> Class {
    Class::Conflict(UNIQUE_KEYS.iter().find(|k| matches(k)).map_or(ConflictKind::Key, |k| k.2))
}

// SQLite primary result codes (the low byte of the extended code sqlx reports).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_NOMEM: i32 = 7;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_PROTOCOL: i32 = 15;

fn classify_sqlite(e: &sqlx::sqlite::SqliteError) -> Class {
    let extended = e.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
    match extended & 0xff {
        SQLITE_BUSY | SQLITE_LOCKED => Class::Contention(Contention::LockTimeout),
        SQLITE_NOMEM | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN | SQLITE_PROTOCOL => Class::Unavailable,
        _ if e.kind() == ErrorKind::UniqueViolation => {
            let target = e.message().strip_prefix("UNIQUE constraint failed: ").unwrap_or("");
            conflict(|k| k.1 == target)
        }
        _ => Class::Other,
    }
}

fn classify_postgres(e: &PgDatabaseError) -> Class {
    match e.code() {
        // serialization_failure, deadlock_detected: PostgreSQL rolled the transaction back.
        "40001" | "40P01" => Class::Contention(Contention::RolledBack),
        "55P03" => Class::Contention(Contention::LockTimeout),
        // Server shutting down or starting up; classes 08 (connection), 53 (insufficient
        // resources: disk full, out of memory, too many connections), 58 (system, I/O).
        "57P01" | "57P02" | "57P03" => Class::Unavailable,
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("58") => Class::Unavailable,
        _ if e.kind() == ErrorKind::UniqueViolation => {
            let name = e.constraint().unwrap_or("");
            conflict(|k| k.0 == name)
        }
        _ => Class::Other,
    }
}

fn classify(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Class::Unavailable
        }
        sqlx::Error::Database(d) => {
            if let Some(e) = d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                classify_sqlite(e)
            } else if let Some(e) = d.try_downcast_ref::<PgDatabaseError>() {
                classify_postgres(e)
            } else {
                Class::Other
            }
        }
        _ => Class::Other,
    }
}

/// Maps a database error to a [`StoreError`] by its codes: a unique violation names what
/// was taken, contention and unavailability keep the driver's error as their cause.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    match classify(&e) {
        Class::Conflict(kind) => StoreError::Conflict(kind),
        Class::Contention(how) => StoreError::Contention(how, Box::new(e)),
        Class::Unavailable => StoreError::Unavailable(Box::new(e)),
        Class::Other => StoreError::Database(Box::new(e)),
    }
}

/// Runs `$body` with `$pool` bound to the backend's pool: the reader pool for `read`, the
/// writer for `write` (PostgreSQL has one pool for both). The body is the same SQL for both.
macro_rules! on_db {
    ($self:expr, read, |$pool:ident| $body:expr) => {
        match &$self.pools {
            $crate::backend::Pools::Sqlite { read: $pool, .. } => $body,
            $crate::backend::Pools::Postgres($pool) => $body,
        }
    };
    // The body runs inside an async block (so `?` and `return` end the write intent, not
    // the caller) whose outcome feeds the store's write health.
    ($self:expr, write, |$pool:ident| $body:expr) => {
        $self
            .write_health
            .track(async {
                match &$self.pools {
                    $crate::backend::Pools::Sqlite { write: $pool, .. } => $body,
                    $crate::backend::Pools::Postgres($pool) => $body,
                }
            })
            .await
    };
}
pub(crate) use on_db;

#[cfg(test)]
mod tests;
