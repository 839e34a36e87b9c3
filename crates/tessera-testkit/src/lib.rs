//! Test support: a fresh database per test on SQLite or PostgreSQL, a macro that runs one
//! test body against both backends, a controllable clock, and small fixtures.

use std::path::PathBuf;
use std::sync::Arc;
use tessera_core::accounts::{Accounts, MfaSettings, PasswordRules};
use tessera_core::jose::KeySealer;
use tessera_core::mfa::passkey::Passkeys;
use tessera_core::clock::{Clock, ManualClock, SharedClock};
use tessera_core::password::{ArgonCost, PasswordHasher};
use tessera_core::session::SessionPolicy;
use tessera_core::store::Store;
use tessera_store::{ConnectOptions, SqlStore};
use time::OffsetDateTime;

pub use tessera_core;
pub use tessera_store;

/// The PostgreSQL server tests use: `TESSERA_TEST_POSTGRES_URL`, default the local server.
pub fn postgres_admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A fresh, migrated database that is removed when dropped.
pub struct TestDb {
    /// The store, migrated.
    pub store: Arc<SqlStore>,
    /// The URL it was opened with (to open it again, e.g. from a spawned server).
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    _cleanup: Cleanup,
}

/// What a test database leaves behind to remove.
pub enum Cleanup {
    Dir(PathBuf),
    PgDatabase(String),
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("url", &self.url).finish()
    }
}

/// A unique scratch directory under the system temp dir.
pub fn scratch_dir(tag: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tessera-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl TestDb {
    /// A fresh database on `backend`.
    pub async fn new(backend: Backend) -> anyhow::Result<Self> {
        let (url, cleanup) = Self::fresh_url(backend).await?;
        let store = SqlStore::connect(&url, &ConnectOptions::default()).await?;
        store.migrate(OffsetDateTime::now_utc()).await?;
        Ok(Self { store: Arc::new(store), url, backend, _cleanup: cleanup })
    }

    /// Creates an empty database and returns its URL, without connecting to it.
    pub async fn fresh_url(backend: Backend) -> anyhow::Result<(String, CleanupGuard)> {
        match backend {
            Backend::Sqlite => {
                let dir = scratch_dir("db")?;
                let url = format!("sqlite://{}", dir.join("tessera.db").display());
                Ok((url, Cleanup::Dir(dir)))
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let admin = postgres_admin_url();
                let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
                conn.close().await?;
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
                Ok((format!("{base}/{name}"), Cleanup::PgDatabase(name)))
            }
        }
    }

    /// The store as the trait object the core uses.
    pub fn dyn_store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

/// What to remove when a test database is dropped.
pub type CleanupGuard = Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PgDatabase(name) => {
                let name = name.clone();
                // Drop runs inside the test's runtime; use a thread with its own runtime.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                    rt.block_on(async move {
                        use sqlx::Connection;
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// A clock at a fixed, realistic instant.
pub fn manual_clock() -> ManualClock {
    ManualClock::new(OffsetDateTime::now_utc())
}

/// A password hasher with low cost, for tests that do not measure hashing.
pub fn cheap_hasher() -> PasswordHasher {
    #[allow(clippy::expect_used)]
    PasswordHasher::new(ArgonCost { memory_kib: 1024, iterations: 1, parallelism: 1 }, 4).expect("valid parameters")
}

/// Strong-authentication settings for tests: a fixed sealing key, passkeys for
/// `http://localhost`, and the default re-authentication window (ten minutes).
pub fn mfa_settings() -> MfaSettings {
    #[allow(clippy::expect_used)]
    let sealer = KeySealer::new(&[42u8; 32]).expect("valid key");
    MfaSettings {
        sealer: Arc::new(sealer),
        passkeys: Passkeys::for_issuer("http://localhost", "Tessera").ok(),
        reauth_window: time::Duration::minutes(10),
        totp_issuer: "Tessera".into(),
    }
}

/// Account flows over `store` with a cheap hasher and the given clock.
pub fn accounts(store: Arc<dyn Store>, clock: impl Clock) -> Accounts {
    let clock: SharedClock = Arc::new(clock);
    Accounts::new(store, cheap_hasher(), clock, SessionPolicy::default(), PasswordRules::default(), mfa_settings())
}

/// Runs `sql` (one or more statements) on the database at `url`, beside any store using it:
/// for tests that inject faults into a database a server runs on (e.g. a trigger that refuses
/// a write) or read state no API exposes.
pub async fn execute_sql(url: &str, sql: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await?;
        conn.close().await?;
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await?;
        conn.close().await?;
    }
    Ok(())
}

/// The first column of the one row `sql` answers on the database at `url` (a count, say).
pub async fn query_i64(url: &str, sql: &str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        let n = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
        conn.close().await?;
        Ok(n)
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let n = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
        conn.close().await?;
        Ok(n)
    }
}

/// Runs each named `async fn NAME(db: TestDb)` against a fresh SQLite database and a fresh
/// PostgreSQL database, as `sqlite::NAME` and `postgres::NAME`. Neither is ever skipped:
/// if PostgreSQL is unreachable the test fails.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDb::new($crate::Backend::Sqlite).await.expect("fresh SQLite database");
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDb::new($crate::Backend::Postgres).await.expect("fresh PostgreSQL database");
                    super::$name(db).await;
                }
            )*
        }
    };
}

/// An RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s steps) for a base32 secret at `unix`:
/// an implementation independent of the one the server uses (`totp-rs`), for tests.
pub fn totp_code(secret_base32: &str, unix: u64) -> String {
    use aws_lc_rs::hmac;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut key = Vec::new();
    let (mut bits, mut n) = (0u64, 0u32);
    for c in secret_base32.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase()) else { continue };
        bits = (bits << 5) | v as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            key.push(u8::try_from((bits >> n) & 0xff).unwrap_or(0));
            bits &= (1 << n) - 1;
        }
    }
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key), &(unix / 30).to_be_bytes());
    let t = tag.as_ref();
    let off = usize::from(t.get(19).copied().unwrap_or(0) & 0x0f);
    let b = |i: usize| t.get(off + i).copied().unwrap_or(0);
    let bin = u32::from_be_bytes([b(0) & 0x7f, b(1), b(2), b(3)]);
    format!("{:06}", bin % 1_000_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn totp_code_matches_rfc_6238_appendix_b() {
        // Secret "12345678901234567890" in base32.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(super::totp_code(secret, 59), "287082");
        assert_eq!(super::totp_code(secret, 1_111_111_109), "081804");
        assert_eq!(super::totp_code(secret, 20_000_000_000), "353130");
    }
}
