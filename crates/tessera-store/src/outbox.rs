//! `OutboxStore` for [`SqlStore`], and the statements other intents use to write outbox
//! events inside their own transactions (`record_event!`, `record_revoked!` in `in_tx`).
//!
//! An event is one `outbox` row (a `grants-revoked` event also copies its grants into
//! `outbox_grants`, since a deleted user's grants are gone from `grants`). Claiming sets
//! `claimed_until` by a conditional `UPDATE` (one claimant wins on either backend); applying
//! deletes the row, in the same transaction as the effects where the effects are ours.

use crate::backend::{WritePool, db, on_db};
use crate::in_tx::{ALL_SESSIONS_ENDED, CREDENTIALS_CHANGED, GRANTS_REVOKED, SESSION_ENDED, lock_events, record_revoked, revoke_grants};
use crate::oauth::{GrantRow, grant_columns};
use crate::rows::id;
use crate::store::SqlStore;
use async_trait::async_trait;
use sqlx::FromRow;
use tessera_core::ids::{OutboxId, SessionHandle, UserId};
use tessera_core::oauth::model::{Grant, NewSecurityEvent};
use tessera_core::outbox::{DomainEvent, OutboxEntry, OutboxStore, Revocation};
use tessera_core::store::StoreError;
use time::OffsetDateTime;


/// Claims event $1 until $3 unless a claim runs past $2.
const CLAIM: &str = "UPDATE outbox SET claimed_until = $3, attempts = attempts + 1 \
     WHERE id = $1 AND (claimed_until IS NULL OR claimed_until <= $2) RETURNING id, kind, user_id, session, attempts";
/// Events written by $1 that no claim running past $2 holds, oldest first, at most $3.
const PENDING: &str = "SELECT id FROM outbox WHERE written_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $2) ORDER BY id LIMIT $3";

#[derive(FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    user_id: Option<String>,
    session: Option<String>,
    attempts: i64,
}

impl EventRow {
    fn user(&self) -> Result<UserId, StoreError> {
        self.user_id.as_deref().map(id).transpose()?.ok_or_else(|| StoreError::Corrupt(format!("outbox event {} has no user", self.id)))
    }

    fn into_entry(self, grants: Vec<Grant>) -> Result<OutboxEntry, StoreError> {
        let event = match self.kind.as_str() {
            SESSION_ENDED => {
                let session = self.session.as_deref().map(id::<SessionHandle>).transpose()?;
                let session = session.ok_or_else(|| StoreError::Corrupt(format!("outbox event {} has no session", self.id)))?;
                DomainEvent::SessionEnded { user: self.user()?, session }
            }
            ALL_SESSIONS_ENDED => DomainEvent::AllSessionsEnded { user: self.user()? },
            CREDENTIALS_CHANGED => DomainEvent::CredentialsChanged { user: self.user()? },
            GRANTS_REVOKED => DomainEvent::GrantsRevoked { grants },
            other => return Err(StoreError::Corrupt(format!("outbox event kind {other:?}"))),
        };
        Ok(OutboxEntry { id: OutboxId::new(self.id), event, attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX) })
    }
}

fn grants(rows: Vec<GrantRow>) -> Result<Vec<Grant>, StoreError> {
    rows.into_iter().map(GrantRow::into_grant).collect()
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn claim_event(&self, event: OutboxId, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<Option<OutboxEntry>, StoreError> {
        let row: Option<EventRow> = on_db!(self, write, |pool| {
            sqlx::query_as(CLAIM)
                .bind(event.get())
                .bind(now.unix_timestamp())
                .bind(lease_until.unix_timestamp())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        let Some(row) = row else { return Ok(None) };
        let copied: Vec<GrantRow> = if row.kind == GRANTS_REVOKED {
            on_db!(self, read, |pool| {
                sqlx::query_as(concat!("SELECT ", grant_columns!(), " FROM outbox_grants WHERE outbox_id = $1"))
                    .bind(row.id)
                    .fetch_all(pool)
                    .await
                    .map_err(db)
            })?
        } else {
            Vec::new()
        };
        row.into_entry(grants(copied)?).map(Some)
    }

    async fn claim_pending_events(
        &self,
        written_by: OffsetDateTime,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let ids: Vec<i64> = on_db!(self, read, |pool| {
            sqlx::query_scalar(PENDING)
                .bind(written_by.unix_timestamp())
                .bind(now.unix_timestamp())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(db)
        })?;
        let mut claimed = Vec::with_capacity(ids.len());
        for i in ids {
            // Another consumer may claim it first: then it is not ours.
            if let Some(entry) = self.claim_event(OutboxId::new(i), now, lease_until).await? {
                claimed.push(entry);
            }
        }
        Ok(claimed)
    }

    async fn find_session_grants(&self, sid: SessionHandle) -> Result<Vec<Grant>, StoreError> {
        let rows: Vec<GrantRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", grant_columns!(), " FROM grants WHERE sid = $1 AND revoked_at IS NULL"))
                .bind(sid.to_string())
                .fetch_all(pool)
                .await
                .map_err(db)
        })?;
        grants(rows)
    }

    async fn apply_revocation(
        &self,
        event: OutboxId,
        revoke: &Revocation,
        security_event: &NewSecurityEvent,
        now: OffsetDateTime,
    ) -> Result<Option<OutboxId>, StoreError> {
        let t = now.unix_timestamp();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            lock_events!(pool, tx);
            // Done is the row gone: of two applications, the second finds nothing to do.
            let done = sqlx::query("DELETE FROM outbox WHERE id = $1").bind(event.get()).execute(&mut *tx).await.map_err(db)?.rows_affected();
            if done == 0 {
                return Ok(None);
            }
            let rows: Vec<GrantRow> = match revoke {
                Revocation::Grants(ids) => {
                    let mut rows = Vec::with_capacity(ids.len());
                    for g in ids {
                        rows.extend(revoke_grants!(
                            tx,
                            concat!("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING ", grant_columns!()),
                            g.to_string(),
                            t
                        ));
                    }
                    rows
                }
                Revocation::EveryGrantOf(user) => revoke_grants!(
                    tx,
                    concat!("UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL RETURNING ", grant_columns!()),
                    user.to_string(),
                    t
                ),
            };
            sqlx::query("INSERT INTO security_events (at, kind, subject, session) VALUES ($1, $2, $3, $4)")
                .bind(t)
                .bind(security_event.kind.as_str())
                .bind(&security_event.subject)
                .bind(security_event.session.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let follow_up = record_revoked!(tx, &rows, t);
            tx.commit().await.map_err(db)?;
            Ok::<_, StoreError>(follow_up)
        })
    }

    async fn complete_event(&self, event: OutboxId) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM outbox WHERE id = $1").bind(event.get()).execute(pool).await.map(|r| r.rows_affected()).map_err(db)
        })?;
        Ok(n == 1)
    }
}
