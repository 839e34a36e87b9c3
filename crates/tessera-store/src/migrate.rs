//! Forward-only migrations, embedded in the binary and applied at start, each in its own
//! transaction. A small runner of our own (instead of `sqlx::migrate!`) because the two
//! backends need different DDL and the macro would need `sqlx`'s compile-time machinery.

use crate::backend::{Pools, WritePool, db};
use tessera_core::store::StoreError;

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "oauth",
        sqlite: include_str!("../migrations/sqlite/0002_oauth.sql"),
        postgres: include_str!("../migrations/postgres/0002_oauth.sql"),
    },
    Migration {
        version: 3,
        name: "security_events",
        sqlite: include_str!("../migrations/sqlite/0003_security_events.sql"),
        postgres: include_str!("../migrations/postgres/0003_security_events.sql"),
    },
    Migration {
        version: 4,
        name: "throttle",
        sqlite: include_str!("../migrations/sqlite/0004_throttle.sql"),
        postgres: include_str!("../migrations/postgres/0004_throttle.sql"),
    },
    Migration {
        version: 5,
        name: "mfa",
        sqlite: include_str!("../migrations/sqlite/0005_mfa.sql"),
        postgres: include_str!("../migrations/postgres/0005_mfa.sql"),
    },
    Migration {
        version: 6,
        name: "consent_introspection",
        sqlite: include_str!("../migrations/sqlite/0006_consent_introspection.sql"),
        postgres: include_str!("../migrations/postgres/0006_consent_introspection.sql"),
    },
    Migration {
        version: 7,
        name: "admin_grants",
        sqlite: include_str!("../migrations/sqlite/0007_admin_grants.sql"),
        postgres: include_str!("../migrations/postgres/0007_admin_grants.sql"),
    },
    Migration {
        version: 8,
        name: "attempt_reservations",
        sqlite: include_str!("../migrations/sqlite/0008_attempt_reservations.sql"),
        postgres: include_str!("../migrations/postgres/0008_attempt_reservations.sql"),
    },
    Migration {
        version: 10,
        name: "write_probe",
        sqlite: include_str!("../migrations/sqlite/0010_write_probe.sql"),
        postgres: include_str!("../migrations/postgres/0010_write_probe.sql"),
    },
    Migration {
        version: 11,
        name: "event_parties",
        sqlite: include_str!("../migrations/sqlite/0011_event_parties.sql"),
        postgres: include_str!("../migrations/postgres/0011_event_parties.sql"),
    },
    Migration {
        version: 12,
        name: "outbox",
        sqlite: include_str!("../migrations/sqlite/0012_outbox.sql"),
        postgres: include_str!("../migrations/postgres/0012_outbox.sql"),
    },
    Migration {
        version: 13,
        name: "federation",
        sqlite: include_str!("../migrations/sqlite/0013_federation.sql"),
        postgres: include_str!("../migrations/postgres/0013_federation.sql"),
    },
    Migration {
        version: 14,
        name: "email",
        sqlite: include_str!("../migrations/sqlite/0014_email.sql"),
        postgres: include_str!("../migrations/postgres/0014_email.sql"),
    },
    Migration {
        version: 15,
        name: "vault",
        sqlite: include_str!("../migrations/sqlite/0015_vault.sql"),
        postgres: include_str!("../migrations/postgres/0015_vault.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tessera_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

pub(crate) async fn run(pools: &Pools, now_unix: i64) -> Result<Vec<i64>, StoreError> {
    let mut applied = Vec::new();
    match pools {
        Pools::Sqlite { write, .. } => {
            sqlx::raw_sql(CREATE_TABLE).execute(write).await.map_err(db)?;
            for m in MIGRATIONS {
                let mut tx = write.begin_write().await?;
                let done: Option<i64> = sqlx::query_scalar("SELECT version FROM tessera_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                if done.is_none() {
                    sqlx::raw_sql(m.sqlite).execute(&mut *tx).await.map_err(db)?;
                    sqlx::query("INSERT INTO tessera_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                        .bind(m.version)
                        .bind(m.name)
                        .bind(now_unix)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    applied.push(m.version);
                }
                tx.commit().await.map_err(db)?;
            }
        }
        Pools::Postgres(pool) => {
            let mut tx = pool.begin_write().await?;
            // One node migrates at a time; the others wait, then find nothing to do.
            sqlx::query("SELECT pg_advisory_xact_lock(7317001)").execute(&mut *tx).await.map_err(db)?;
            sqlx::raw_sql(CREATE_TABLE).execute(&mut *tx).await.map_err(db)?;
            for m in MIGRATIONS {
                let done: Option<i64> = sqlx::query_scalar("SELECT version FROM tessera_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                if done.is_none() {
                    sqlx::raw_sql(m.postgres).execute(&mut *tx).await.map_err(db)?;
                    sqlx::query("INSERT INTO tessera_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                        .bind(m.version)
                        .bind(m.name)
                        .bind(now_unix)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    applied.push(m.version);
                }
            }
            tx.commit().await.map_err(db)?;
        }
    }
    Ok(applied)
}

