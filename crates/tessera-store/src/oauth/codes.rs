//! Authorization codes: issued once, consumed once; a replayed code revokes the grant it
//! produced (RFC 6749 §4.1.2, RFC 9700 §4.5).

use super::grants::{REVOKE_GRANT, grant_events, lock_event_log};
use crate::in_tx::DELETE_GRANT_REFRESH_TOKENS;
use super::{corrupt, json_list, parse_list, uuid};
use crate::backend::{WritePool, on_db};
use crate::query::{Exec, Fetch, commit};
use crate::rows::ts;
use crate::store::SqlStore;
use sqlx::FromRow;
use tessera_core::ids::{SessionHandle, UserId};
use tessera_core::oauth::client::ClientId;
use tessera_core::oauth::model::{AuthorizationCode, CodeConsumption};
use tessera_core::secret::TokenHash;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

#[derive(FromRow)]
struct CodeRow {
    hash: Vec<u8>,
    client_id: String,
    user_id: String,
    sid: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: String,
    auth_time: i64,
    amr: String,
    acr: Option<String>,
    audience: String,
    expires_at: i64,
}

macro_rules! code_columns {
    () => {
        "hash, client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge, auth_time, amr, acr, audience, expires_at"
    };
}

impl CodeRow {
    fn into_code(self) -> Result<AuthorizationCode, StoreError> {
        Ok(AuthorizationCode {
            hash: TokenHash::from_bytes(&self.hash).ok_or_else(|| corrupt("code hash"))?,
            client_id: ClientId::new(self.client_id),
            user_id: UserId::from_uuid(uuid(&self.user_id)?),
            sid: SessionHandle::from_uuid(uuid(&self.sid)?),
            redirect_uri: self.redirect_uri,
            scope: self.scope,
            nonce: self.nonce,
            code_challenge: self.code_challenge,
            auth_time: ts(self.auth_time)?,
            amr: parse_list(&self.amr)?,
            acr: self.acr,
            audience: parse_list(&self.audience)?,
            expires_at: ts(self.expires_at)?,
        })
    }
}

/// One attempt of [`consume_authorization_code`]; a single transaction, so it may be run
/// again when PostgreSQL rolls it back for contention.
pub(super) async fn consume_authorization_code_once(
    store: &SqlStore,
    hash: &TokenHash,
    client_id: &ClientId,
    now: OffsetDateTime,
) -> Result<CodeConsumption, StoreError> {
    let t = now.unix_timestamp();
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        let row: Option<CodeRow> = sqlx::query_as(
            concat!("UPDATE authorization_codes SET used_at = $2 WHERE hash = $1 AND client_id = $3 AND used_at IS NULL AND expires_at > $2 \
             RETURNING ", code_columns!()),
        )
        .bind(hash.as_bytes().as_slice())
        .bind(t)
        .bind(client_id.as_str())
        .optional(&mut *tx)
        .await?;
        if let Some(r) = row {
            commit(tx).await?;
            return Ok(CodeConsumption::Consumed(r.into_code()?));
        }
        let replayed: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE authorization_codes SET replayed_at = $2 WHERE hash = $1 AND client_id = $3 AND used_at IS NOT NULL RETURNING grant_id",
        )
        .bind(hash.as_bytes().as_slice())
        .bind(t)
        .bind(client_id.as_str())
        .optional(&mut *tx)
        .await?;
        let outcome = match replayed {
            Some(grant) => {
                if let Some(g) = grant {
                    lock_event_log!(pool, tx);
                    let revoked = sqlx::query(REVOKE_GRANT).bind(&g).bind(t).exec(&mut *tx).await?;
                    if revoked == 1 {
                        grant_events!(pool, tx, &g, t);
                        sqlx::query(DELETE_GRANT_REFRESH_TOKENS).bind(&g).exec(&mut *tx).await?;
                    }
                }
                CodeConsumption::Replayed
            }
            None => CodeConsumption::Unknown,
        };
        commit(tx).await?;
        Ok(outcome)
    })
}

pub(super) async fn create_authorization_code(store: &SqlStore, c: &AuthorizationCode, now: OffsetDateTime) -> Result<(), StoreError> {
    on_db!(store, write, |pool| {
        sqlx::query(
            "INSERT INTO authorization_codes (hash, client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge, \
             auth_time, amr, acr, audience, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.hash.as_bytes().as_slice())
        .bind(c.client_id.as_str())
        .bind(c.user_id.to_string())
        .bind(c.sid.to_string())
        .bind(&c.redirect_uri)
        .bind(&c.scope)
        .bind(c.nonce.as_deref())
        .bind(&c.code_challenge)
        .bind(c.auth_time.unix_timestamp())
        .bind(json_list(&c.amr))
        .bind(c.acr.as_deref())
        .bind(json_list(&c.audience))
        .bind(now.unix_timestamp())
        .bind(c.expires_at.unix_timestamp())
        .exec(pool)
        .await
    })?;
    Ok(())
}

pub(super) async fn find_authorization_code(store: &SqlStore, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
    let row: Option<CodeRow> = on_db!(store, read, |pool| {
        sqlx::query_as(concat!("SELECT ", code_columns!(), " FROM authorization_codes WHERE hash = $1"))
            .bind(hash.as_bytes().as_slice())
            .optional(pool)
            .await
    })?;
    row.map(CodeRow::into_code).transpose()
}

pub(super) async fn consume_authorization_code(
    store: &SqlStore,
    hash: &TokenHash,
    client_id: &ClientId,
    now: OffsetDateTime,
) -> Result<CodeConsumption, StoreError> {
    let mut attempt = 0;
    loop {
        match consume_authorization_code_once(store, hash, client_id, now).await {
            Err(e) if e.is_retryable() && attempt < 4 => attempt += 1,
            other => return other,
        }
    }
}
