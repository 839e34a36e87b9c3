//! The error classifier on real errors: each provoked on a real SQLite file or PostgreSQL
//! database with the migrated schema, then mapped by [`db`].

use super::*;
use crate::store::SqlStore;
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use time::OffsetDateTime;

fn postgres_admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A migrated database, removed when dropped.
struct Scratch {
    store: SqlStore,
    url: String,
    drop_database: Option<String>,
    dir: Option<PathBuf>,
}

impl Scratch {
    async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-classify-{}", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let store = SqlStore::connect(&url, &ConnectOptions::default()).await.unwrap();
        store.migrate(OffsetDateTime::now_utc()).await.unwrap();
        Self { store, url, drop_database: None, dir: Some(dir) }
    }

    async fn postgres() -> Self {
        let name = format!("tessera_classify_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&postgres_admin_url()).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        let base = postgres_admin_url();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        let store = SqlStore::connect(&url, &ConnectOptions::default()).await.unwrap();
        store.migrate(OffsetDateTime::now_utc()).await.unwrap();
        Self { store, url, drop_database: Some(name), dir: None }
    }

    /// Runs one statement on the writer; the error it fails with, mapped.
    async fn fail(&self, sql: &'static str) -> StoreError {
        let result = match &self.store.pools {
            Pools::Sqlite { write, .. } => sqlx::raw_sql(sql).execute(write).await.map(drop),
            Pools::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        };
        db(result.expect_err(sql))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.drop_database.take() {
            // Drop runs inside the test's runtime; use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&postgres_admin_url()).await {
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut conn).await;
                    }
                });
            })
            .join();
        }
    }
}

const USER_A: &str = "INSERT INTO users (id, username, username_canonical, email, email_canonical, created_at, updated_at) \
     VALUES ('u1', 'A', 'a', 'a@x', 'a@x', 0, 0)";
const SESSION_A: &str = "INSERT INTO sessions (id_hash, handle, user_id, created_at, last_seen_at, expires_at, auth_time) \
     VALUES ('h1', 's1', 'u1', 0, 0, 0, 0)";
const PASSKEY_A: &str = "INSERT INTO passkeys (id, user_id, credential_id, name, data, created_at) VALUES ('p1', 'u1', 'c1', 'n', 'd', 0)";

/// Every unique key callers tell apart is named, on the real schema; others are `Key`.
async fn unique_violations_name_what_was_taken(s: Scratch) {
    let sqlite = s.dir.is_some();
    // SQLite BLOB and PostgreSQL BYTEA literals differ; the text literals cast on PostgreSQL.
    let (session_a, passkey_a) = if sqlite {
        (SESSION_A.replace("'h1'", "X'01'"), PASSKEY_A.replace("'c1'", "X'01'"))
    } else {
        (SESSION_A.to_owned(), PASSKEY_A.to_owned())
    };
    let run = |sql: String| {
        let pools = &s.store.pools;
        async move {
            match pools {
                Pools::Sqlite { write, .. } => sqlx::raw_sql(AssertSqlSafe(sql)).execute(write).await.map(drop),
                Pools::Postgres(pool) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(pool).await.map(drop),
            }
        }
    };
    run(USER_A.to_owned()).await.unwrap();
    run(session_a.clone()).await.unwrap();
    run(passkey_a.clone()).await.unwrap();

    let conflict = |r: Result<(), sqlx::Error>| match db(r.expect_err("a unique violation")) {
        StoreError::Conflict(kind) => kind,
        other => panic!("expected a conflict, got {other:?}"),
    };
    let username = USER_A.replace("'u1'", "'u2'").replace("'a@x', 'a@x'", "'b@x', 'b@x'");
    assert_eq!(conflict(run(username).await), ConflictKind::Username);
    let email = USER_A.replace("'u1'", "'u2'").replace("'A', 'a'", "'B', 'b'");
    assert_eq!(conflict(run(email).await), ConflictKind::Email);
    let primary_key = USER_A.replace("'A', 'a', 'a@x', 'a@x'", "'B', 'b', 'b@x', 'b@x'");
    assert_eq!(conflict(run(primary_key).await), ConflictKind::Key);
    let handle = if sqlite { session_a.replace("X'01'", "X'02'") } else { session_a.replace("'h1'", "'h2'") };
    assert_eq!(conflict(run(handle).await), ConflictKind::SessionHandle);
    assert_eq!(conflict(run(session_a.replace("'s1'", "'s2'")).await), ConflictKind::Key);
    assert_eq!(conflict(run(passkey_a.replace("'p1'", "'p2'")).await), ConflictKind::PasskeyCredential);

    // Not a unique violation: another database error.
    assert!(matches!(s.fail("SELECT * FROM no_such_table").await, StoreError::Database(_)));
    let unknown_user = if sqlite { session_a.replace("X'01'", "X'09'") } else { session_a.replace("'h1'", "'h9'") };
    let unknown_user = unknown_user.replace("'s1'", "'s9'").replace("'u1'", "'nobody'");
    let e = db(run(unknown_user).await.expect_err("a foreign key violation"));
    assert!(matches!(e, StoreError::Database(_)), "a foreign key violation is no conflict: {e:?}");
}

#[tokio::test]
async fn sqlite_unique_violations_name_what_was_taken() {
    unique_violations_name_what_was_taken(Scratch::sqlite().await).await;
}

#[tokio::test]
async fn postgres_unique_violations_name_what_was_taken() {
    unique_violations_name_what_was_taken(Scratch::postgres().await).await;
}

/// Another process holding SQLite's write lock past the busy timeout: a lock not granted in
/// time, which counts as unavailable and is not retried at once.
#[tokio::test]
async fn sqlite_busy_is_a_lock_timeout() {
    let s = Scratch::sqlite().await;
    let path = s.url.trim_start_matches("sqlite://").to_owned();
    let opts = SqliteConnectOptions::new().filename(&path).busy_timeout(Duration::from_millis(50));
    let mut holder = SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let mut other = SqliteConnection::connect_with(&opts).await.unwrap();
    let e = db(sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.unwrap_err());
    assert!(matches!(e, StoreError::Contention(Contention::LockTimeout, _)), "{e:?}");
    assert!(e.is_unavailable() && !e.is_retryable());
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
}

/// A missing directory cannot be opened (SQLITE_CANTOPEN): unavailable.
#[tokio::test]
async fn sqlite_cannot_open_is_unavailable() {
    let path = std::env::temp_dir().join(format!("tessera-missing-{}", uuid::Uuid::new_v4().simple())).join("t.db");
    let e = db(SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path)).await.unwrap_err());
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
}

async fn pg(s: &Scratch) -> PgConnection {
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS contended (id INT PRIMARY KEY, v INT NOT NULL); \
                   INSERT INTO contended VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// PostgreSQL contention: a lock refused (55P03) is a lock timeout; a serialisation failure
/// (40001) and a deadlock (40P01) roll the transaction back and may be retried.
#[tokio::test]
async fn postgres_contention_is_classified_by_sqlstate() {
    let s = Scratch::postgres().await;
    let mut a = pg(&s).await;
    let mut b = pg(&s).await;

    sqlx::raw_sql("BEGIN; SELECT * FROM contended WHERE id = 1 FOR UPDATE").execute(&mut a).await.unwrap();
    let e = db(sqlx::raw_sql("SELECT * FROM contended WHERE id = 1 FOR UPDATE NOWAIT").execute(&mut b).await.unwrap_err());
    assert!(matches!(e, StoreError::Contention(Contention::LockTimeout, _)), "{e:?}");
    assert!(e.is_unavailable() && !e.is_retryable());
    sqlx::raw_sql("ROLLBACK").execute(&mut a).await.unwrap();

    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT v FROM contended WHERE id = 1").execute(&mut a).await.unwrap();
    sqlx::raw_sql("UPDATE contended SET v = v + 1 WHERE id = 1").execute(&mut b).await.unwrap();
    let e = db(sqlx::raw_sql("UPDATE contended SET v = v + 1 WHERE id = 1").execute(&mut a).await.unwrap_err());
    assert!(matches!(e, StoreError::Contention(Contention::RolledBack, _)), "{e:?}");
    assert!(e.is_retryable() && !e.is_unavailable());
    sqlx::raw_sql("ROLLBACK").execute(&mut a).await.unwrap();

    // Each locks one row, then wants the other's: PostgreSQL aborts one of them.
    sqlx::raw_sql("BEGIN; UPDATE contended SET v = 0 WHERE id = 1").execute(&mut a).await.unwrap();
    sqlx::raw_sql("BEGIN; UPDATE contended SET v = 0 WHERE id = 2").execute(&mut b).await.unwrap();
    let (ra, rb) = tokio::join!(
        sqlx::raw_sql("UPDATE contended SET v = 1 WHERE id = 2").execute(&mut a),
        sqlx::raw_sql("UPDATE contended SET v = 1 WHERE id = 1").execute(&mut b),
    );
    let e = db(ra.err().or(rb.err()).expect("one transaction is the deadlock victim"));
    assert!(matches!(e, StoreError::Contention(Contention::RolledBack, _)), "{e:?}");
    sqlx::raw_sql("ROLLBACK").execute(&mut a).await.unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut b).await.unwrap();
}

/// A connection the server ends (57P01, or the socket closing under it), a refused
/// connection and a pool out of connections are all unavailability.
#[tokio::test]
async fn postgres_lost_connections_are_unavailable() {
    let s = Scratch::postgres().await;
    let mut victim = pg(&s).await;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut victim).await.unwrap();
    let mut admin = pg(&s).await;
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&mut admin).await.unwrap();
    let e = db(sqlx::raw_sql("SELECT 1").execute(&mut victim).await.unwrap_err());
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");

    let e = db(PgConnection::connect("postgres://postgres@127.0.0.1:1/postgres").await.unwrap_err());
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");

    // Long enough for the first connection on a loaded machine; the second acquire waits it out.
    let pool = PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(2)).connect(&s.url).await.unwrap();
    let _held = pool.acquire().await.unwrap();
    let e = db(pool.acquire().await.unwrap_err());
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
}
