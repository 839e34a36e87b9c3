//! Grants and their refresh tokens: creation with the first tokens, single-use rotation
//! (a reused token revokes its family), and revocation with its security events.

use super::{json_list, parse_list, uuid};
use crate::backend::{WritePool, on_db};
use crate::query::{Exec, Fetch, commit};
use crate::rows::ts;
use crate::store::SqlStore;
use sqlx::FromRow;
use tessera_core::ids::{SessionHandle, UserId};
use tessera_core::oauth::client::ClientId;
use tessera_core::oauth::model::{Grant, GrantId, IssuedAccessToken, NewRefreshToken, RefreshRotation, RefreshTokenInfo};
use tessera_core::secret::TokenHash;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

macro_rules! grant_columns {
    () => {
        "id, user_id, client_id, scope, sid, auth_time, amr, acr, audience, created_at, revoked_at"
    };
}
pub(crate) use grant_columns;

#[derive(FromRow)]
pub(crate) struct GrantRow {
    pub(crate) id: String,
    user_id: String,
    pub(crate) client_id: String,
    scope: String,
    sid: Option<String>,
    auth_time: i64,
    amr: String,
    acr: Option<String>,
    pub(crate) audience: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl GrantRow {
    pub(crate) fn into_grant(self) -> Result<Grant, StoreError> {
        Ok(Grant {
            id: uuid(&self.id)?,
            user_id: UserId::from_uuid(uuid(&self.user_id)?),
            client_id: ClientId::new(self.client_id),
            scope: self.scope,
            sid: self.sid.as_deref().map(uuid).transpose()?.map(SessionHandle::from_uuid),
            auth_time: ts(self.auth_time)?,
            amr: parse_list(&self.amr)?,
            acr: self.acr,
            audience: parse_list(&self.audience)?,
            created_at: ts(self.created_at)?,
            revoked_at: self.revoked_at.map(ts).transpose()?,
        })
    }
}

#[derive(FromRow)]
struct RefreshRow {
    grant_id: String,
    client_id: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

/// Revokes grant $1 at $2, unless already revoked.
pub(super) const REVOKE_GRANT: &str = "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
/// Appends a `token-revoked` event for every live access token of grant $1.
pub(super) const GRANT_TOKEN_EVENTS: &str = "INSERT INTO security_events (at, kind, subject, session) \
     SELECT $2, 'token-revoked', jti, NULL FROM access_tokens WHERE grant_id = $1 AND expires_at > $2";

/// Takes the event-log lock (PostgreSQL). Transactions that revoke grants take it before
/// any row lock, so they all lock in one order and cannot deadlock one another.
macro_rules! lock_event_log {
    ($pool:expr, $tx:expr) => {{
        if let Some(lock) = $pool.event_log_lock() {
            sqlx::query(lock).exec(&mut *$tx).await?;
        }
    }};
}
pub(super) use lock_event_log;

/// Records a grant's refresh token and access-token id (each optional) in `$tx`.
macro_rules! insert_tokens {
    ($tx:expr, $gid:expr, $refresh:expr, $access:expr) => {{
        if let Some(r) = $refresh {
            sqlx::query("INSERT INTO refresh_tokens (hash, grant_id, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(r.hash.as_bytes().as_slice())
                .bind($gid)
                .bind(r.client_id.as_str())
                .bind(r.created_at.unix_timestamp())
                .bind(r.expires_at.unix_timestamp())
                .exec(&mut *$tx)
                .await?;
        }
        if let Some(a) = $access {
            sqlx::query("INSERT INTO access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)")
                .bind(&a.jti)
                .bind($gid)
                .bind(a.expires_at.unix_timestamp())
                .exec(&mut *$tx)
                .await?;
        }
    }};
}

/// Appends revocation events for grant `$g` (the event-log lock must be held).
macro_rules! grant_events {
    ($pool:expr, $tx:expr, $g:expr, $t:expr) => {{
        $crate::oauth::grants::lock_event_log!($pool, $tx);
        sqlx::query($crate::oauth::grants::GRANT_TOKEN_EVENTS).bind($g).bind($t).exec(&mut *$tx).await?;
    }};
}
pub(super) use grant_events;
/// One attempt of [`rotate_refresh_token`]; a single transaction, so it may be run again
/// when PostgreSQL rolls it back for contention.
pub(super) async fn rotate_refresh_token_once(
    store: &SqlStore,
    old: &TokenHash,
    client_id: &ClientId,
    new: &NewRefreshToken,
    access: Option<&IssuedAccessToken>,
    now: OffsetDateTime,
) -> Result<RefreshRotation, StoreError> {
    let t = now.unix_timestamp();
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        let rotated: Option<String> = sqlx::query_scalar(
            "UPDATE refresh_tokens SET used_at = $3 WHERE hash = $1 AND client_id = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING grant_id",
        )
        .bind(old.as_bytes().as_slice())
        .bind(client_id.as_str())
        .bind(t)
        .optional(&mut *tx)
        .await?;
        let Some(gid) = rotated else {
            // A used token of a live family is a reuse: the family is revoked. Tokens of an
            // already revoked family are simply invalid (no second revocation, no events).
            let seen: Option<(String, String, Option<i64>)> = sqlx::query_as(
                "SELECT r.grant_id, r.client_id, r.used_at FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                 WHERE r.hash = $1 AND g.revoked_at IS NULL",
            )
            .bind(old.as_bytes().as_slice())
            .optional(&mut *tx)
            .await?;
            let outcome = match seen {
                Some((g, c, Some(_))) if c == client_id.as_str() => {
                    lock_event_log!(pool, tx);
                    let revoked = sqlx::query(REVOKE_GRANT).bind(&g).bind(t).exec(&mut *tx).await?;
                    if revoked == 1 {
                        grant_events!(pool, tx, &g, t);
                        sqlx::query(crate::in_tx::DELETE_GRANT_REFRESH_TOKENS).bind(&g).exec(&mut *tx).await?;
                    }
                    RefreshRotation::Reused
                }
                _ => RefreshRotation::Invalid,
            };
            commit(tx).await?;
            return Ok(outcome);
        };
        let grant: Option<GrantRow> =
            sqlx::query_as(concat!("SELECT ", grant_columns!(), " FROM grants WHERE id = $1 AND revoked_at IS NULL"))
                .bind(&gid)
                .optional(&mut *tx)
                .await?;
        let Some(grant) = grant else {
            commit(tx).await?;
            return Ok(RefreshRotation::Invalid);
        };
        insert_tokens!(tx, &gid, Some(new), access);
        commit(tx).await?;
        Ok(RefreshRotation::Rotated(grant.into_grant()?))
    })
}

pub(super) async fn create_grant(
    store: &SqlStore,
    g: &Grant,
    refresh: Option<&NewRefreshToken>,
    access: Option<&IssuedAccessToken>,
    from_code: Option<&TokenHash>,
) -> Result<bool, StoreError> {
    let gid = g.id.to_string();
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        let mut live = true;
        if let Some(code) = from_code {
            let n = sqlx::query("UPDATE authorization_codes SET grant_id = $2 WHERE hash = $1 AND replayed_at IS NULL")
                .bind(code.as_bytes().as_slice())
                .bind(&gid)
                .exec(&mut *tx)
                .await?;
            live = n == 1;
        }
        sqlx::query(concat!("INSERT INTO grants (", grant_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
            .bind(&gid)
            .bind(g.user_id.to_string())
            .bind(g.client_id.as_str())
            .bind(&g.scope)
            .bind(g.sid.map(|s| s.to_string()))
            .bind(g.auth_time.unix_timestamp())
            .bind(json_list(&g.amr))
            .bind(g.acr.as_deref())
            .bind(json_list(&g.audience))
            .bind(g.created_at.unix_timestamp())
            .bind(if live { None } else { Some(g.created_at.unix_timestamp()) })
            .exec(&mut *tx)
            .await?;
        // Tokens are recorded even for a grant stored revoked, so that every check
        // (introspection, refresh, the revocation feed) sees them as revoked.
        insert_tokens!(tx, &gid, refresh, access);
        if !live {
            grant_events!(pool, tx, &gid, g.created_at.unix_timestamp());
        }
        commit(tx).await?;
        Ok(live)
    })
}

pub(super) async fn rotate_refresh_token(
    store: &SqlStore,
    old: &TokenHash,
    client_id: &ClientId,
    new: &NewRefreshToken,
    access: Option<&IssuedAccessToken>,
    now: OffsetDateTime,
) -> Result<RefreshRotation, StoreError> {
    let mut attempt = 0;
    loop {
        match rotate_refresh_token_once(store, old, client_id, new, access, now).await {
            Err(e) if e.is_retryable() && attempt < 4 => attempt += 1,
            other => return other,
        }
    }
}

pub(super) async fn find_refresh_token(store: &SqlStore, hash: &TokenHash) -> Result<Option<RefreshTokenInfo>, StoreError> {
    let row: Option<RefreshRow> = on_db!(store, read, |pool| {
        sqlx::query_as("SELECT grant_id, client_id, created_at, expires_at, used_at FROM refresh_tokens WHERE hash = $1")
            .bind(hash.as_bytes().as_slice())
            .optional(pool)
            .await
    })?;
    let Some(r) = row else { return Ok(None) };
    let grant: Option<GrantRow> = on_db!(store, read, |pool| {
        sqlx::query_as(concat!("SELECT ", grant_columns!(), " FROM grants WHERE id = $1"))
            .bind(&r.grant_id)
            .optional(pool)
            .await
    })?;
    let Some(grant) = grant else { return Ok(None) };
    Ok(Some(RefreshTokenInfo {
        grant: grant.into_grant()?,
        client_id: ClientId::new(r.client_id),
        created_at: ts(r.created_at)?,
        expires_at: ts(r.expires_at)?,
        used: r.used_at.is_some(),
    }))
}

pub(super) async fn revoke_grant(store: &SqlStore, id: GrantId, now: OffsetDateTime) -> Result<(), StoreError> {
    let gid = id.to_string();
    on_db!(store, write, |pool| {
        let mut tx = pool.begin_write().await?;
        lock_event_log!(pool, tx);
        let revoked = sqlx::query(REVOKE_GRANT).bind(&gid).bind(now.unix_timestamp()).exec(&mut *tx).await?;
        if revoked == 1 {
            grant_events!(pool, tx, &gid, now.unix_timestamp());
            sqlx::query(crate::in_tx::DELETE_GRANT_REFRESH_TOKENS).bind(&gid).exec(&mut *tx).await?;
        }
        commit(tx).await
    })
}
