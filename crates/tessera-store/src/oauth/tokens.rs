//! Access-token revocation, replay records of client assertions, and the purge of
//! everything expired.

use crate::backend::{WritePool, on_db};
use crate::query::{Exec, Fetch, commit};
use crate::store::SqlStore;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

pub(super) async fn revoke_access_token(store: &SqlStore, jti: &str, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError> {
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        let n = sqlx::query("INSERT INTO token_revocations (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at.unix_timestamp())
            .exec(&mut *tx)
            .await?;
        if n == 1 {
            if let Some(lock) = pool.event_log_lock() {
                sqlx::query(lock).exec(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO security_events (at, kind, subject, session) VALUES ($1, 'token-revoked', $2, NULL)")
                .bind(now.unix_timestamp())
                .bind(jti)
                .exec(&mut *tx)
                .await?;
        }
        commit(tx).await
    })
}

pub(super) async fn access_token_revoked(store: &SqlStore, jti: &str) -> Result<bool, StoreError> {
    let hit: Option<i64> = on_db!(store, read, |pool| {
        sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM token_revocations WHERE jti = $1 \
             UNION ALL SELECT CAST(1 AS BIGINT) FROM access_tokens a JOIN grants g ON g.id = a.grant_id \
             WHERE a.jti = $1 AND g.revoked_at IS NOT NULL LIMIT 1",
        )
        .bind(jti)
        .optional(pool)
        .await
    })?;
    Ok(hit.is_some())
}

pub(super) async fn record_assertion_jti(store: &SqlStore, key: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
    tessera_core::store::Store::record_once(store, key, expires_at).await
}

pub(super) async fn purge_expired_oauth(store: &SqlStore, now: OffsetDateTime) -> Result<u64, StoreError> {
    let t = now.unix_timestamp();
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        let mut n = 0;
        for sql in [
            // Used codes stay a little past expiry so a replay is still recognised.
            "DELETE FROM authorization_codes WHERE expires_at < $1 - 600",
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
            "DELETE FROM access_tokens WHERE expires_at < $1",
            "DELETE FROM token_revocations WHERE expires_at < $1",
            "DELETE FROM assertion_jtis WHERE expires_at < $1",
            "DELETE FROM security_events WHERE at < $1 - 604800",
            "DELETE FROM security_event_parties WHERE NOT EXISTS (SELECT 1 FROM security_events e WHERE e.seq = security_event_parties.seq)",
            "DELETE FROM login_failures WHERE last_failure_at < $1 - 86400",
        ] {
            n += sqlx::query(sql).bind(t).exec(&mut *tx).await?;
        }
        commit(tx).await?;
        Ok(n)
    })
}
