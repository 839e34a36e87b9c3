//! `ConsentStore` for [`SqlStore`]: consent screens waiting for an answer, each taken once
//! with `DELETE … RETURNING` by the session it was shown in.

use crate::backend::on_db;
use crate::query::{Exec, Fetch, take_by_hash};
use crate::rows::{id, ts};
use crate::store::SqlStore;
use async_trait::async_trait;
use sqlx::FromRow;
use tessera_core::ids::{SessionHandle, UserId};
use tessera_core::oauth::client::ClientId;
use tessera_core::oauth::consent::{ConsentStore, PendingConsent};
use tessera_core::secret::TokenHash;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

#[derive(FromRow)]
struct PendingConsentRow {
    hash: Vec<u8>,
    sid: String,
    user_id: String,
    client_id: String,
    request: String,
    created_at: i64,
    expires_at: i64,
}

impl PendingConsentRow {
    fn into_consent(self) -> Result<PendingConsent, StoreError> {
        Ok(PendingConsent {
            hash: TokenHash::from_bytes(&self.hash).ok_or_else(|| StoreError::Corrupt("consent hash".into()))?,
            sid: SessionHandle::from_uuid(id(&self.sid)?),
            user_id: UserId::from_uuid(id(&self.user_id)?),
            client_id: ClientId::new(self.client_id),
            request: serde_json::from_str(&self.request).map_err(|e| StoreError::Corrupt(format!("consent request: {e}")))?,
            created_at: ts(self.created_at)?,
            expires_at: ts(self.expires_at)?,
        })
    }
}

#[async_trait]
impl ConsentStore for SqlStore {
    async fn create_pending_consent(&self, c: &PendingConsent) -> Result<(), StoreError> {
        let request = serde_json::to_string(&c.request).map_err(|e| StoreError::Corrupt(format!("consent request: {e}")))?;
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO pending_consents (hash, sid, user_id, client_id, request, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(c.hash.as_bytes().as_slice())
            .bind(c.sid.to_string())
            .bind(c.user_id.to_string())
            .bind(c.client_id.as_str())
            .bind(&request)
            .bind(c.created_at.unix_timestamp())
            .bind(c.expires_at.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(())
    }

    async fn take_pending_consent(&self, hash: &TokenHash, sid: SessionHandle, now: OffsetDateTime) -> Result<Option<PendingConsent>, StoreError> {
        let row: Option<PendingConsentRow> = on_db!(self, write, |pool| {
            take_by_hash(
                "DELETE FROM pending_consents WHERE hash = $1 AND expires_at > $2 AND sid = $3 \
                 RETURNING hash, sid, user_id, client_id, request, created_at, expires_at",
                hash,
                now,
            )
            .bind(sid.to_string())
            .optional(pool)
            .await
        })?;
        row.map(PendingConsentRow::into_consent).transpose()
    }

    async fn purge_expired_consents(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM pending_consents WHERE expires_at <= $1")
                .bind(now.unix_timestamp())
                .exec(pool)
                .await
        })
    }
}
