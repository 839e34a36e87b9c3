//! `LifecycleStore` for [`SqlStore`]: disabling and deleting users and deleting clients, each
//! in one transaction together with the revocation of the grants they end, the security
//! events that publish it and the outbox event that sends back-channel logouts. Like every
//! transaction that revokes grants, each takes the event-log lock first (PostgreSQL; SQLite
//! has one writer). The macros they share with other intents are in `in_tx`.

use crate::backend::{WritePool, db, on_db};
use crate::oauth::{GrantRow, grant_columns};
use crate::in_tx::{lock_events, record_revoked, revoke_grants};
use crate::rows::{SessionRow, session_columns};
use crate::store::SqlStore;
use async_trait::async_trait;
use tessera_core::ids::{OutboxId, SessionHandle, UserId};
use tessera_core::oauth::client::ClientId;
use tessera_core::oauth::grant_policy::LifecycleStore;
use tessera_core::oauth::model::Grant;
use tessera_core::session::Session;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

/// Records that event $1 concerns every grant of user $2 (before the user's grants are deleted).
const USER_EVENT_PARTIES: &str = "INSERT INTO security_event_parties (seq, client_id, audience) \
     SELECT $1, client_id, audience FROM grants WHERE user_id = $2";
const SESSION_REVOKED_EVENT: &str = "INSERT INTO security_events (at, kind, subject, session) VALUES ($1, 'session-revoked', $2, $3)";
/// [`SESSION_REVOKED_EVENT`] answering its sequence number.
const SESSION_REVOKED_EVENT_SEQ: &str =
    "INSERT INTO security_events (at, kind, subject, session) VALUES ($1, 'session-revoked', $2, $3) RETURNING seq";


/// Records every unexpired access token of the grants `$filter` names (`g.user_id = $1` or
/// `g.client_id = $1`) as revoked, so they stay refused once the grants' rows are deleted.
macro_rules! revoke_access_tokens {
    ($tx:expr, $filter:expr, $key:expr, $t:expr) => {{
        sqlx::query(concat!(
            "INSERT INTO token_revocations (jti, expires_at) SELECT a.jti, a.expires_at FROM access_tokens a \
             JOIN grants g ON g.id = a.grant_id WHERE ",
            $filter,
            " AND a.expires_at > $2 ON CONFLICT (jti) DO NOTHING"
        ))
        .bind($key)
        .bind($t)
        .execute(&mut *$tx)
        .await
        .map_err(db)?;
    }};
}

fn grants(rows: Vec<GrantRow>) -> Result<Vec<Grant>, StoreError> {
    rows.into_iter().map(GrantRow::into_grant).collect()
}

#[async_trait]
impl LifecycleStore for SqlStore {
    async fn find_session_by_handle(&self, handle: SessionHandle) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", session_columns!(), " FROM sessions WHERE handle = $1"))
                .bind(handle.to_string())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        row.map(SessionRow::into_session).transpose()
    }

    async fn disable_user_revoking_grants(&self, id: UserId, now: OffsetDateTime) -> Result<Option<OutboxId>, StoreError> {
        let (t, user) = (now.unix_timestamp(), id.to_string());
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            lock_events!(pool, tx);
            let n = sqlx::query("UPDATE users SET disabled = TRUE, updated_at = $2 WHERE id = $1")
                .bind(&user)
                .bind(t)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(&user).execute(&mut *tx).await.map_err(db)?;
            let rows = revoke_grants!(
                tx,
                concat!("UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING ", grant_columns!()),
                &user,
                t
            );
            sqlx::query(SESSION_REVOKED_EVENT).bind(t).bind(&user).bind(None::<String>).execute(&mut *tx).await.map_err(db)?;
            let logouts = record_revoked!(tx, &rows, t);
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>(logouts)
        })
    }

    async fn delete_user_revoking_grants(&self, id: UserId, now: OffsetDateTime) -> Result<Option<OutboxId>, StoreError> {
        let (t, user) = (now.unix_timestamp(), id.to_string());
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            lock_events!(pool, tx);
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM users WHERE id = $1").bind(&user).fetch_optional(&mut *tx).await.map_err(db)?;
            if found.is_none() {
                return Err(StoreError::NotFound);
            }
            let rows = revoke_grants!(
                tx,
                concat!("UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING ", grant_columns!()),
                &user,
                t
            );
            revoke_access_tokens!(tx, "g.user_id = $1", &user, t);
            let seq: i64 = sqlx::query_scalar(SESSION_REVOKED_EVENT_SEQ)
                .bind(t)
                .bind(&user)
                .bind(None::<String>)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query(USER_EVENT_PARTIES).bind(seq).bind(&user).execute(&mut *tx).await.map_err(db)?;
            // Copied before the user's grants go with the user.
            let logouts = record_revoked!(tx, &rows, t);
            sqlx::query("DELETE FROM users WHERE id = $1").bind(&user).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>(logouts)
        })
    }

    async fn delete_client_revoking_grants(&self, id: &ClientId, now: OffsetDateTime) -> Result<Vec<Grant>, StoreError> {
        let t = now.unix_timestamp();
        let rows = on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            lock_events!(pool, tx);
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM clients WHERE id = $1").bind(id.as_str()).fetch_optional(&mut *tx).await.map_err(db)?;
            if found.is_none() {
                return Err(StoreError::NotFound);
            }
            let rows = revoke_grants!(
                tx,
                concat!("UPDATE grants SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL RETURNING ", grant_columns!()),
                id.as_str(),
                t
            );
            revoke_access_tokens!(tx, "g.client_id = $1", id.as_str(), t);
            sqlx::query("DELETE FROM clients WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>(rows)
        })?;
        grants(rows)
    }
}
