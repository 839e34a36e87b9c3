//! [`SqlStore`]: the `Store` implementation. Each method is one SQL intent, written once.

use crate::backend::{ConnectOptions, DatabaseKind, Pools, WriteHealth, WritePool, connect, db, on_db};
use crate::attempts::RESERVE_ATTEMPT;
use crate::migrate;
use crate::in_tx::{ALL_SESSIONS_ENDED, CREDENTIALS_CHANGED, SESSION_ENDED, record_event};
use crate::rows::{AuditRow, SessionRow, UserRow, session_columns, ts, user_columns};
use async_trait::async_trait;
use tessera_core::audit::AuditEvent;
use tessera_core::ids::{OutboxId, SessionHandle, UserId};
use tessera_core::secret::TokenHash;
use tessera_core::session::{NewSession, Session};
use tessera_core::store::{AttemptReservation, AttemptRule, AuditQuery, Store, StoreError, UserCredentials};
use tessera_core::user::{NewUser, ROLE_ADMIN, User, UserUpdate};
use time::OffsetDateTime;

/// SQLite or PostgreSQL storage.
pub struct SqlStore {
    pub(crate) pools: Pools,
    pub(crate) write_health: WriteHealth,
    kind: DatabaseKind,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.kind {
            DatabaseKind::Sqlite(_) => "sqlite",
            DatabaseKind::Postgres(_) => "postgres",
        };
        f.debug_struct("SqlStore").field("backend", &backend).finish()
    }
}

impl SqlStore {
    /// Connects to the database a URL names (see [`DatabaseKind::parse`]).
    pub async fn connect(url: &str, opts: &ConnectOptions) -> Result<Self, StoreError> {
        let kind = DatabaseKind::parse(url).map_err(|e| StoreError::Database(e.into()))?;
        let pools = connect(&kind, opts).await?;
        Ok(Self { pools, write_health: WriteHealth::default(), kind })
    }

    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate(&self, now: OffsetDateTime) -> Result<Vec<i64>, StoreError> {
        migrate::run(&self.pools, now.unix_timestamp()).await
    }

    /// Which backend this is.
    pub fn kind(&self) -> &DatabaseKind {
        &self.kind
    }

    /// Closes every connection (waits for in-flight queries).
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(p) => p.close().await,
        }
    }
}

/// SQL condition: no enabled user holds the role bound as `$3` (as `% role %`).
macro_rules! no_admin {
    () => {
        "NOT EXISTS (SELECT 1 FROM users WHERE disabled = FALSE AND (' ' || roles || ' ') LIKE $3)"
    };
}

fn roles_text(roles: &[String]) -> String {
    let mut r: Vec<&str> = roles.iter().map(String::as_str).filter(|r| !r.trim().is_empty()).collect();
    r.sort_unstable();
    r.dedup();
    r.join(" ")
}

fn user_of(row: Option<UserRow>) -> Result<Option<User>, StoreError> {
    row.map(|r| r.into_user().map(|(u, _)| u)).transpose()
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, read, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()).map_err(db))?;
        // Cheap while writes work; after a write failed for want of the database, a real
        // one-row write says whether they work again (and clears the flag when they do).
        if self.write_health.failing() {
            on_db!(self, write, |pool| {
                sqlx::query("UPDATE write_probe SET n = n + 1 WHERE id = 1").execute(pool).await.map(|r| r.rows_affected()).map_err(db)
            })?;
        }
        Ok(())
    }

    async fn create_user(&self, user: &NewUser, now: OffsetDateTime) -> Result<User, StoreError> {
        let id = UserId::new();
        let roles = roles_text(&user.roles);
        let row: UserRow = on_db!(self, write, |pool| {
            sqlx::query_as(concat!(
                "INSERT INTO users (id, username, username_canonical, email, email_canonical, display_name, \
                 password_hash, roles, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, $9) RETURNING ",
                user_columns!()
            ))
            .bind(id.to_string())
            .bind(user.username.as_str())
            .bind(user.username.canonical())
            .bind(user.email.as_ref().map(|e| e.as_str()))
            .bind(user.email.as_ref().map(|e| e.canonical()))
            .bind(user.display_name.as_ref().map(|n| n.as_str()))
            .bind(user.password_hash.as_deref())
            .bind(&roles)
            .bind(now.unix_timestamp())
            .fetch_one(pool)
            .await
            .map_err(db)
        })?;
        Ok(row.into_user()?.0)
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        user_of(row)
    }

    async fn find_user_credentials_by_login(&self, canonical_login: &str) -> Result<Option<UserCredentials>, StoreError> {
        let row: Option<UserRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE username_canonical = $1 OR email_canonical = $1"
            ))
            .bind(canonical_login)
            .fetch_optional(pool)
            .await
            .map_err(db)
        })?;
        row.map(|r| r.into_user().map(|(user, password_hash)| UserCredentials { user, password_hash }))
            .transpose()
    }

    async fn find_password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        let hash: Option<Option<String>> = on_db!(self, read, |pool| {
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        Ok(hash.flatten())
    }

    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE id > $1 ORDER BY id LIMIT $2"))
                .bind(after.map(|a| a.to_string()).unwrap_or_default())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(db)
        })?;
        rows.into_iter().map(|r| r.into_user().map(|(u, _)| u)).collect()
    }

    async fn update_user(&self, id: UserId, update: &UserUpdate, now: OffsetDateTime) -> Result<User, StoreError> {
        // $2..$7: a flag saying whether to change a column, then the value.
        let row: Option<UserRow> = on_db!(self, write, |pool| {
            sqlx::query_as(concat!(
                "UPDATE users SET \
                   username = CASE WHEN $2 THEN $3 ELSE username END, \
                   username_canonical = CASE WHEN $2 THEN $4 ELSE username_canonical END, \
                   email = CASE WHEN $5 THEN $6 ELSE email END, \
                   email_canonical = CASE WHEN $5 THEN $7 ELSE email_canonical END, \
                   email_verified_at = CASE WHEN $5 AND email_canonical IS DISTINCT FROM $7 THEN NULL ELSE email_verified_at END, \
                   display_name = CASE WHEN $8 THEN $9 ELSE display_name END, \
                   updated_at = $10 \
                 WHERE id = $1 RETURNING ",
                user_columns!()
            ))
            .bind(id.to_string())
            .bind(update.username.is_some())
            .bind(update.username.as_ref().map(|u| u.as_str().to_owned()))
            .bind(update.username.as_ref().map(|u| u.canonical()))
            .bind(update.email.is_some())
            .bind(update.email.as_ref().and_then(|e| e.as_ref().map(|e| e.as_str().to_owned())))
            .bind(update.email.as_ref().and_then(|e| e.as_ref().map(|e| e.canonical())))
            .bind(update.display_name.is_some())
            .bind(update.display_name.as_ref().and_then(|n| n.as_ref().map(|n| n.as_str().to_owned())))
            .bind(now.unix_timestamp())
            .fetch_optional(pool)
            .await
            .map_err(db)
        })?;
        user_of(row)?.ok_or(StoreError::NotFound)
    }

    async fn set_user_disabled(&self, id: UserId, disabled: bool, now: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1")
                .bind(id.to_string())
                .bind(disabled)
                .bind(now.unix_timestamp())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                record_event!(tx, ALL_SESSIONS_ENDED, Some(id.to_string()), None::<String>, now.unix_timestamp());
            }
            tx.commit().await.map_err(db)
        })
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id.to_string()).execute(pool).await.map(|r| r.rows_affected()).map_err(db)
        })?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn upgrade_password_hash(&self, id: UserId, old_hash: &str, new_hash: &str) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
                .bind(id.to_string())
                .bind(old_hash)
                .bind(new_hash)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(db)
        })?;
        Ok(n == 1)
    }

    async fn change_password(
        &self,
        id: UserId,
        new_hash: &str,
        keep_session: Option<&TokenHash>,
        now: OffsetDateTime,
    ) -> Result<(u64, OutboxId), StoreError> {
        let keep: &[u8] = keep_session.map(|h| h.as_bytes().as_slice()).unwrap_or(&[]);
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id.to_string())
                .bind(new_hash)
                .bind(now.unix_timestamp())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
                .bind(id.to_string())
                .bind(keep)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            let event = record_event!(tx, CREDENTIALS_CHANGED, Some(id.to_string()), None::<String>, now.unix_timestamp());
            tx.commit().await.map_err(db)?;
            Ok((ended, event))
        })
    }

    async fn add_user_role(&self, id: UserId, role: &str) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let roles: Option<String> = sqlx::query_scalar("SELECT roles FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let Some(roles) = roles else { return Err(StoreError::NotFound) };
            let mut all: Vec<String> = roles.split_whitespace().map(str::to_owned).collect();
            all.push(role.to_owned());
            sqlx::query("UPDATE users SET roles = $2 WHERE id = $1")
                .bind(id.to_string())
                .bind(roles_text(&all))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn any_user_with_role(&self, role: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = on_db!(self, read, |pool| {
            sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM users WHERE disabled = FALSE AND (' ' || roles || ' ') LIKE $1 LIMIT 1")
                .bind(format!("% {role} %"))
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        Ok(found.is_some())
    }

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let x = &s.session;
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO sessions (id_hash, handle, user_id, created_at, last_seen_at, expires_at, auth_time, ip, user_agent, amr) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(s.id_hash.as_bytes().as_slice())
            .bind(x.handle.to_string())
            .bind(x.user_id.to_string())
            .bind(x.created_at.unix_timestamp())
            .bind(x.last_seen_at.unix_timestamp())
            .bind(x.expires_at.unix_timestamp())
            .bind(x.auth_time.unix_timestamp())
            .bind(x.ip.as_deref())
            .bind(x.user_agent.as_deref())
            .bind(x.amr.join(" "))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
        })?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id_hash = $1"))
                .bind(id_hash.as_bytes().as_slice())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        row.map(SessionRow::into_session).transpose()
    }

    async fn touch_session(
        &self,
        id_hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $2, ip = COALESCE($3, ip), user_agent = COALESCE($4, user_agent) \
                 WHERE id_hash = $1",
            )
            .bind(id_hash.as_bytes().as_slice())
            .bind(last_seen_at.unix_timestamp())
            .bind(ip)
            .bind(user_agent)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
        })?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &TokenHash, now: OffsetDateTime) -> Result<Option<(Session, OutboxId)>, StoreError> {
        let ended = on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<SessionRow> = sqlx::query_as(concat!("DELETE FROM sessions WHERE id_hash = $1 RETURNING ", session_columns!()))
                .bind(id_hash.as_bytes().as_slice())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            let Some(row) = row else { return Ok(None) };
            let event = record_event!(tx, SESSION_ENDED, Some(row.user_id.clone()), Some(row.handle.clone()), now.unix_timestamp());
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>(Some((row, event)))
        })?;
        ended.map(|(row, event)| Ok((row.into_session()?, event))).transpose()
    }

    async fn delete_user_session(&self, user_id: UserId, handle: SessionHandle, now: OffsetDateTime) -> Result<Option<OutboxId>, StoreError> {
        let (user, handle) = (user_id.to_string(), handle.to_string());
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND handle = $2")
                .bind(&user)
                .bind(&handle)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                return Ok(None);
            }
            let event = record_event!(tx, SESSION_ENDED, Some(user), Some(handle), now.unix_timestamp());
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>(Some(event))
        })
    }

    async fn delete_user_sessions(&self, user_id: UserId, now: OffsetDateTime) -> Result<(u64, OutboxId), StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            let event = record_event!(tx, ALL_SESSIONS_ENDED, Some(user_id.to_string()), None::<String>, now.unix_timestamp());
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>((n, event))
        })
    }

    async fn list_user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        let rows: Vec<SessionRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                session_columns!(),
                " FROM sessions WHERE user_id = $1 ORDER BY last_seen_at DESC, created_at DESC LIMIT 200"
            ))
            .bind(user_id.to_string())
            .fetch_all(pool)
            .await
            .map_err(db)
        })?;
        rows.into_iter().map(SessionRow::into_session).collect()
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime, idle_cutoff: OffsetDateTime) -> Result<Vec<OutboxId>, StoreError> {
        let t = now.unix_timestamp();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let ended: Vec<(String, String)> = sqlx::query_as("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2 RETURNING handle, user_id")
                .bind(t)
                .bind(idle_cutoff.unix_timestamp())
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let mut events = Vec::with_capacity(ended.len());
            for (handle, user) in ended {
                events.push(record_event!(tx, SESSION_ENDED, Some(user), Some(handle), t));
            }
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>(events)
        })
    }

    async fn replace_setup_token(&self, hash: &TokenHash, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM setup_tokens").execute(&mut *tx).await.map_err(db)?;
            sqlx::query("INSERT INTO setup_tokens (hash, expires_at) VALUES ($1, $2)")
                .bind(hash.as_bytes().as_slice())
                .bind(expires_at.unix_timestamp())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn consume_setup_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            // The link works only while no (enabled) administrator exists, however one was made.
            sqlx::query(concat!("DELETE FROM setup_tokens WHERE hash = $1 AND expires_at > $2 AND ", no_admin!()))
                .bind(hash.as_bytes().as_slice())
                .bind(now.unix_timestamp())
                .bind(format!("% {ROLE_ADMIN} %"))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(db)
        })?;
        Ok(n == 1)
    }

    async fn setup_token_valid(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError> {
        let found: Option<i64> = on_db!(self, read, |pool| {
            sqlx::query_scalar(concat!("SELECT expires_at FROM setup_tokens WHERE hash = $1 AND expires_at > $2 AND ", no_admin!()))
                .bind(hash.as_bytes().as_slice())
                .bind(now.unix_timestamp())
                .bind(format!("% {ROLE_ADMIN} %"))
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        Ok(found.is_some())
    }

    async fn reserve_attempt(&self, key: &str, rule: &AttemptRule, now: OffsetDateTime) -> Result<AttemptReservation, StoreError> {
        let row: (i64, i64, i64, i64) = on_db!(self, write, |pool| {
            sqlx::query_as(RESERVE_ATTEMPT)
                .bind(key)
                .bind(now.unix_timestamp())
                .bind(rule.window_start.unix_timestamp())
                .bind(rule.free)
                .bind(rule.first_delay.whole_seconds().max(1))
                .bind(rule.max_delay.whole_seconds().max(1))
                .bind(i64::from(rule.proof))
                .fetch_one(pool)
                .await
                .map_err(db)
        })?;
        let (attempts, last, blocked, admitted) = row;
        Ok(AttemptReservation { admitted: admitted == 1, attempts, last_attempt_at: ts(last)?, blocked_until: ts(blocked)? })
    }

    async fn release_attempt(&self, key: &str) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("UPDATE login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0")
                .bind(key)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(db)
        })?;
        Ok(())
    }

    async fn clear_failure_counter(&self, key: &str) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(key).execute(pool).await.map(|r| r.rows_affected()).map_err(db)
        })?;
        Ok(())
    }

    async fn record_once(&self, key: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("INSERT INTO assertion_jtis (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(expires_at.unix_timestamp())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(db)
        })?;
        Ok(n == 1)
    }

    async fn append_audit_event(&self, e: &AuditEvent) -> Result<(), StoreError> {
        let detail = serde_json::to_string(&e.detail).map_err(|x| StoreError::Corrupt(x.to_string()))?;
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO audit_events (id, at, kind, user_id, ip, user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.id.to_string())
            .bind(e.at.unix_timestamp())
            .bind(&e.kind)
            .bind(e.user_id.map(|u| u.to_string()))
            .bind(e.ip.as_deref())
            .bind(e.user_agent.as_deref())
            .bind(&detail)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
        })?;
        Ok(())
    }

    async fn find_audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = if q.limit == 0 { 100 } else { q.limit.min(10_000) };
        let rows: Vec<AuditRow> = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT id, at, kind, user_id, ip, user_agent, detail FROM audit_events \
                 WHERE ($1 IS NULL OR user_id = $1) AND at >= $2 AND at < $3 \
                 ORDER BY at DESC, id DESC LIMIT $4",
            )
            .bind(q.user_id.map(|u| u.to_string()))
            .bind(q.since.map_or(i64::MIN, |t| t.unix_timestamp()))
            .bind(q.until.map_or(i64::MAX, |t| t.unix_timestamp()))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db)
        })?;
        rows.into_iter().map(AuditRow::into_event).collect()
    }
}
