//! `VaultStore` for [`SqlStore`]: kept upstream token sets, one per (user, provider), tokens
//! sealed by the core before they get here. A refresh writes with a conditional `UPDATE` on
//! the version it read, so two nodes refreshing the same set cannot overwrite each other.

use crate::backend::on_db;
use crate::query::{Exec, Fetch};
use crate::rows::{id, ts};
use crate::store::SqlStore;
use async_trait::async_trait;
use sqlx::FromRow;
use tessera_core::ids::UserId;
use tessera_core::store::StoreError;
use tessera_core::vault::{KeptTokenSummary, SealedTokenSet, VaultStore};

#[derive(FromRow)]
struct SetRow {
    user_id: String,
    provider: String,
    subject: String,
    access_token: Vec<u8>,
    refresh_token: Option<Vec<u8>>,
    expires_at: Option<i64>,
    scope: Option<String>,
    kept_at: i64,
    refreshed_at: Option<i64>,
    version: i64,
}

impl SetRow {
    fn into_set(self) -> Result<SealedTokenSet, StoreError> {
        Ok(SealedTokenSet {
            user_id: id(&self.user_id)?,
            provider: self.provider,
            subject: self.subject,
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_at: self.expires_at.map(ts).transpose()?,
            scope: self.scope,
            kept_at: ts(self.kept_at)?,
            refreshed_at: self.refreshed_at.map(ts).transpose()?,
            version: self.version,
        })
    }
}

#[derive(FromRow)]
struct SummaryRow {
    provider: String,
    scope: Option<String>,
    expires_at: Option<i64>,
    refreshable: bool,
    kept_at: i64,
    refreshed_at: Option<i64>,
}

const PUT: &str = "\
INSERT INTO upstream_tokens (user_id, provider, subject, access_token, refresh_token, expires_at, scope, kept_at, refreshed_at, version) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 1) \
ON CONFLICT (user_id, provider) DO UPDATE SET subject = excluded.subject, access_token = excluded.access_token, \
  refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, scope = excluded.scope, \
  kept_at = excluded.kept_at, refreshed_at = NULL, version = upstream_tokens.version + 1";

const REFRESHED: &str = "\
UPDATE upstream_tokens SET access_token = $3, refresh_token = $4, expires_at = $5, scope = $6, refreshed_at = $7, \
  version = version + 1 \
WHERE user_id = $1 AND provider = $2 AND version = $8";

#[async_trait]
impl VaultStore for SqlStore {
    async fn put_upstream_tokens(&self, set: &SealedTokenSet) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(PUT)
                .bind(set.user_id.to_string())
                .bind(&set.provider)
                .bind(&set.subject)
                .bind(&set.access_token)
                .bind(set.refresh_token.as_deref())
                .bind(set.expires_at.map(|t| t.unix_timestamp()))
                .bind(set.scope.as_deref())
                .bind(set.kept_at.unix_timestamp())
                .exec(pool)
                .await
        })?;
        Ok(())
    }

    async fn find_upstream_tokens(&self, user: UserId, provider: &str) -> Result<Option<SealedTokenSet>, StoreError> {
        let row: Option<SetRow> = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT user_id, provider, subject, access_token, refresh_token, expires_at, scope, kept_at, refreshed_at, version \
                 FROM upstream_tokens WHERE user_id = $1 AND provider = $2",
            )
            .bind(user.to_string())
            .bind(provider)
            .optional(pool)
            .await
        })?;
        row.map(SetRow::into_set).transpose()
    }

    async fn list_upstream_tokens(&self, user: UserId) -> Result<Vec<KeptTokenSummary>, StoreError> {
        let rows: Vec<SummaryRow> = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT provider, scope, expires_at, (refresh_token IS NOT NULL) AS refreshable, kept_at, refreshed_at \
                 FROM upstream_tokens WHERE user_id = $1 ORDER BY provider",
            )
            .bind(user.to_string())
            .all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(KeptTokenSummary {
                    provider: r.provider,
                    scope: r.scope,
                    expires_at: r.expires_at.map(ts).transpose()?,
                    refreshable: r.refreshable,
                    kept_at: ts(r.kept_at)?,
                    refreshed_at: r.refreshed_at.map(ts).transpose()?,
                })
            })
            .collect()
    }

    async fn update_refreshed_upstream_tokens(&self, set: &SealedTokenSet, expected: i64) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query(REFRESHED)
                .bind(set.user_id.to_string())
                .bind(&set.provider)
                .bind(&set.access_token)
                .bind(set.refresh_token.as_deref())
                .bind(set.expires_at.map(|t| t.unix_timestamp()))
                .bind(set.scope.as_deref())
                .bind(set.refreshed_at.map(|t| t.unix_timestamp()))
                .bind(expected)
                .exec(pool)
                .await
        })?;
        Ok(n == 1)
    }

    async fn delete_upstream_tokens(&self, user: UserId, provider: &str) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM upstream_tokens WHERE user_id = $1 AND provider = $2")
                .bind(user.to_string())
                .bind(provider)
                .exec(pool)
                .await
        })?;
        Ok(n == 1)
    }
}
