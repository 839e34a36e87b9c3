//! `OAuthStore` for [`SqlStore`]: clients, keys, codes, grants, refresh rotation, consent,
//! replay records and back-channel logout deliveries. Same SQL on both backends.

use crate::backend::{WritePool, db, is_contention, on_db};
use crate::rows::ts;
use crate::store::SqlStore;
use async_trait::async_trait;
use sqlx::FromRow;
use tessera_core::ids::{SessionHandle, UserId};
use tessera_core::jose::JwsAlg;
use tessera_core::oauth::client::{AuthMethod, Client, ClientId, GrantType};
use tessera_core::oauth::model::{
    AuthorizationCode, CodeConsumption, Grant, GrantId, IssuedAccessToken, KeyState, LogoutDelivery, NewRefreshToken,
    RefreshRotation, RefreshTokenInfo, NewSecurityEvent, SecurityEvent, SecurityEventKind, StoredKey,
};
use tessera_core::secret::TokenHash;
use tessera_core::store::{OAuthStore, StoreError};
use time::OffsetDateTime;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn uuid(s: &str) -> Result<uuid::Uuid, StoreError> {
    s.parse().map_err(|_| corrupt("uuid"))
}

#[derive(FromRow)]
struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<Vec<u8>>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    skip_consent: bool,
    require_mfa: bool,
    introspection: bool,
    resource: Option<String>,
    auth_method: String,
    backchannel_logout_uri: Option<String>,
    id_token_alg: String,
    jwks: Option<String>,
    admin_api: bool,
    grant_lifetime: Option<i64>,
    created_at: i64,
}

macro_rules! client_columns {
    () => {
        "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, skip_consent, \
         require_mfa, auth_method, backchannel_logout_uri, id_token_alg, jwks, admin_api, grant_lifetime, introspection, resource, created_at"
    };
}

impl ClientRow {
    fn into_client(self) -> Result<Client, StoreError> {
        Ok(Client {
            id: ClientId::new(self.id),
            name: self.name,
            secret_hash: self.secret_hash.as_deref().map(|h| TokenHash::from_bytes(h).ok_or_else(|| corrupt("secret hash"))).transpose()?,
            redirect_uris: parse_list(&self.redirect_uris)?,
            post_logout_redirect_uris: parse_list(&self.post_logout_redirect_uris)?,
            grant_types: parse_list(&self.grant_types)?
                .iter()
                .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant type")))
                .collect::<Result<_, _>>()?,
            scopes: parse_list(&self.scopes)?,
            skip_consent: self.skip_consent,
            require_mfa: self.require_mfa,
            introspection: self.introspection,
            resource: self.resource,
            auth_method: AuthMethod::parse(&self.auth_method).ok_or_else(|| corrupt("auth method"))?,
            backchannel_logout_uri: self.backchannel_logout_uri,
            id_token_alg: JwsAlg::parse(&self.id_token_alg).ok_or_else(|| corrupt("alg"))?,
            jwks: self.jwks.as_deref().map(serde_json::from_str).transpose().map_err(|e| StoreError::Corrupt(e.to_string()))?,
            admin_api: self.admin_api,
            grant_lifetime: self.grant_lifetime.map(u64::try_from).transpose().map_err(|_| corrupt("grant lifetime"))?,
            created_at: ts(self.created_at)?,
        })
    }
}

#[derive(FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    sealed_private: Vec<u8>,
    state: String,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
}

impl KeyRow {
    fn into_key(self) -> Result<StoredKey, StoreError> {
        Ok(StoredKey {
            kid: self.kid,
            alg: JwsAlg::parse(&self.alg).ok_or_else(|| corrupt("alg"))?,
            sealed_private: self.sealed_private,
            state: KeyState::parse(&self.state).ok_or_else(|| corrupt("key state"))?,
            created_at: ts(self.created_at)?,
            activated_at: self.activated_at.map(ts).transpose()?,
            retired_at: self.retired_at.map(ts).transpose()?,
        })
    }
}

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

#[derive(FromRow)]
struct DeliveryRow {
    id: String,
    client_id: String,
    uri: String,
    logout_token: String,
    attempts: i64,
    next_attempt_at: i64,
}

const REVOKE_GRANT: &str = "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
/// Appends a `token-revoked` event for every live access token of grant $1.
const GRANT_TOKEN_EVENTS: &str = "INSERT INTO security_events (at, kind, subject, session) \
     SELECT $2, 'token-revoked', jti, NULL FROM access_tokens WHERE grant_id = $1 AND expires_at > $2";

/// Takes the event-log lock (PostgreSQL). Transactions that revoke grants take it before
/// any row lock, so they all lock in one order and cannot deadlock one another.
macro_rules! lock_event_log {
    ($pool:expr, $tx:expr) => {{
        if let Some(lock) = $pool.event_log_lock() {
            sqlx::query(lock).execute(&mut *$tx).await.map_err(db)?;
        }
    }};
}

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
                .execute(&mut *$tx)
                .await
                .map_err(db)?;
        }
        if let Some(a) = $access {
            sqlx::query("INSERT INTO access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)")
                .bind(&a.jti)
                .bind($gid)
                .bind(a.expires_at.unix_timestamp())
                .execute(&mut *$tx)
                .await
                .map_err(db)?;
        }
    }};
}

/// Appends revocation events for grant `$g` (the event-log lock must be held).
macro_rules! grant_events {
    ($pool:expr, $tx:expr, $g:expr, $t:expr) => {{
        lock_event_log!($pool, $tx);
        sqlx::query(GRANT_TOKEN_EVENTS).bind($g).bind($t).execute(&mut *$tx).await.map_err(db)?;
    }};
}
const REVOKE_GRANT_TOKENS: &str = "DELETE FROM refresh_tokens WHERE grant_id = $1";

/// The single attempts of intents that are retried when PostgreSQL aborts them on a
/// deadlock or serialisation failure (each attempt is one transaction, so retrying is safe).
impl SqlStore {
    async fn rotate_refresh_token_once(
        &self,
        old: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        access: Option<&IssuedAccessToken>,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        let t = now.unix_timestamp();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let rotated: Option<String> = sqlx::query_scalar(
                "UPDATE refresh_tokens SET used_at = $3 WHERE hash = $1 AND client_id = $2 AND used_at IS NULL AND expires_at > $3 \
                 RETURNING grant_id",
            )
            .bind(old.as_bytes().as_slice())
            .bind(client_id.as_str())
            .bind(t)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some(gid) = rotated else {
                // A used token of a live family is a reuse: the family is revoked. Tokens of an
                // already revoked family are simply invalid (no second revocation, no events).
                let seen: Option<(String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT r.grant_id, r.client_id, r.used_at FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                     WHERE r.hash = $1 AND g.revoked_at IS NULL",
                )
                .bind(old.as_bytes().as_slice())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let outcome = match seen {
                    Some((g, c, Some(_))) if c == client_id.as_str() => {
                        lock_event_log!(pool, tx);
                        let revoked = sqlx::query(REVOKE_GRANT).bind(&g).bind(t).execute(&mut *tx).await.map_err(db)?.rows_affected();
                        if revoked == 1 {
                            grant_events!(pool, tx, &g, t);
                            sqlx::query(REVOKE_GRANT_TOKENS).bind(&g).execute(&mut *tx).await.map_err(db)?;
                        }
                        RefreshRotation::Reused
                    }
                    _ => RefreshRotation::Invalid,
                };
                tx.commit().await.map_err(db)?;
                return Ok(outcome);
            };
            let grant: Option<GrantRow> =
                sqlx::query_as(concat!("SELECT ", grant_columns!(), " FROM grants WHERE id = $1 AND revoked_at IS NULL"))
                    .bind(&gid)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            let Some(grant) = grant else {
                tx.commit().await.map_err(db)?;
                return Ok(RefreshRotation::Invalid);
            };
            insert_tokens!(tx, &gid, Some(new), access);
            tx.commit().await.map_err(db)?;
            Ok(RefreshRotation::Rotated(grant.into_grant()?))
        })
    }

    async fn consume_authorization_code_once(&self, hash: &TokenHash, client_id: &ClientId, now: OffsetDateTime) -> Result<CodeConsumption, StoreError> {
        let t = now.unix_timestamp();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<CodeRow> = sqlx::query_as(
                concat!("UPDATE authorization_codes SET used_at = $2 WHERE hash = $1 AND client_id = $3 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING ", code_columns!()),
            )
            .bind(hash.as_bytes().as_slice())
            .bind(t)
            .bind(client_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(r) = row {
                tx.commit().await.map_err(db)?;
                return Ok(CodeConsumption::Consumed(r.into_code()?));
            }
            let replayed: Option<Option<String>> = sqlx::query_scalar(
                "UPDATE authorization_codes SET replayed_at = $2 WHERE hash = $1 AND client_id = $3 AND used_at IS NOT NULL RETURNING grant_id",
            )
            .bind(hash.as_bytes().as_slice())
            .bind(t)
            .bind(client_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let outcome = match replayed {
                Some(grant) => {
                    if let Some(g) = grant {
                        lock_event_log!(pool, tx);
                        let revoked = sqlx::query(REVOKE_GRANT).bind(&g).bind(t).execute(&mut *tx).await.map_err(db)?.rows_affected();
                        if revoked == 1 {
                            grant_events!(pool, tx, &g, t);
                            sqlx::query(REVOKE_GRANT_TOKENS).bind(&g).execute(&mut *tx).await.map_err(db)?;
                        }
                    }
                    CodeConsumption::Replayed
                }
                None => CodeConsumption::Unknown,
            };
            tx.commit().await.map_err(db)?;
            Ok(outcome)
        })
    }
}

#[async_trait]
impl OAuthStore for SqlStore {
    async fn create_client(&self, c: &Client) -> Result<(), StoreError> {
        let grants: Vec<String> = c.grant_types.iter().map(|g| g.as_str().to_owned()).collect();
        let jwks = c.jwks.as_ref().map(|j| j.to_string());
        on_db!(self, write, |pool| {
            sqlx::query(
                concat!("INSERT INTO clients (", client_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"),
            )
            .bind(c.id.as_str())
            .bind(&c.name)
            .bind(c.secret_hash.as_ref().map(|h| h.as_bytes().to_vec()))
            .bind(json_list(&c.redirect_uris))
            .bind(json_list(&c.post_logout_redirect_uris))
            .bind(json_list(&grants))
            .bind(json_list(&c.scopes))
            .bind(c.skip_consent)
            .bind(c.require_mfa)
            .bind(c.auth_method.as_str())
            .bind(c.backchannel_logout_uri.as_deref())
            .bind(c.id_token_alg.as_str())
            .bind(jwks)
            .bind(c.admin_api)
            .bind(c.grant_lifetime.and_then(|s| i64::try_from(s).ok()))
            .bind(c.introspection)
            .bind(c.resource.as_deref())
            .bind(c.created_at.unix_timestamp())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
        })?;
        Ok(())
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row: Option<ClientRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", client_columns!(), " FROM clients WHERE id = $1"))
                .bind(id.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        row.map(ClientRow::into_client).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows: Vec<ClientRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", client_columns!(), " FROM clients ORDER BY created_at, id"))
                .fetch_all(pool)
                .await
                .map_err(db)
        })?;
        rows.into_iter().map(ClientRow::into_client).collect()
    }

    async fn delete_client(&self, id: &ClientId) -> Result<(), StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM clients WHERE id = $1").bind(id.as_str()).execute(pool).await.map(|r| r.rows_affected()).map_err(db)
        })?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows: Vec<KeyRow> = on_db!(self, read, |pool| {
            sqlx::query_as("SELECT kid, alg, sealed_private, state, created_at, activated_at, retired_at FROM signing_keys ORDER BY created_at, kid")
                .fetch_all(pool)
                .await
                .map_err(db)
        })?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    async fn insert_initial_keys(&self, keys: &[StoredKey]) -> Result<bool, StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut inserted = false;
            for k in keys {
                let exists: Option<String> = sqlx::query_scalar("SELECT kid FROM signing_keys WHERE alg = $1 AND state = $2")
                    .bind(k.alg.as_str())
                    .bind(k.state.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                if exists.is_some() {
                    continue;
                }
                // Create-or-read: a node starting at the same moment may have inserted this
                // (alg, state) since the check; its key wins (one_*_key_per_alg indexes).
                let n = sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, sealed_private, state, created_at, activated_at, retired_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT DO NOTHING",
                )
                .bind(&k.kid)
                .bind(k.alg.as_str())
                .bind(&k.sealed_private)
                .bind(k.state.as_str())
                .bind(k.created_at.unix_timestamp())
                .bind(k.activated_at.map(|t| t.unix_timestamp()))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                inserted |= n.rows_affected() == 1;
            }
            sqlx::query("UPDATE key_set_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(inserted)
        })
    }

    async fn rotate_keys(&self, new_next: &StoredKey, now: OffsetDateTime) -> Result<(), StoreError> {
        let alg = new_next.alg.as_str();
        let t = now.unix_timestamp();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE alg = $1 AND state = 'active'")
                .bind(alg)
                .bind(t)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("UPDATE signing_keys SET state = 'active', activated_at = $2 WHERE alg = $1 AND state = 'next'")
                .bind(alg)
                .bind(t)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, sealed_private, state, created_at, activated_at, retired_at) \
                 VALUES ($1, $2, $3, 'next', $4, NULL, NULL)",
            )
            .bind(&new_next.kid)
            .bind(alg)
            .bind(&new_next.sealed_private)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query("UPDATE key_set_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)
        })
    }

    async fn delete_retired_keys(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("DELETE FROM signing_keys WHERE state = 'retired' AND retired_at < $1")
                .bind(cutoff.unix_timestamp())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n > 0 {
                sqlx::query("UPDATE key_set_version SET version = version + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(n)
        })
    }

    async fn keys_version(&self) -> Result<i64, StoreError> {
        on_db!(self, read, |pool| {
            sqlx::query_scalar("SELECT version FROM key_set_version WHERE id = 1").fetch_one(pool).await.map_err(db)
        })
    }

    async fn create_authorization_code(&self, c: &AuthorizationCode, now: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
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
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
        })?;
        Ok(())
    }

    async fn find_authorization_code(&self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
        let row: Option<CodeRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", code_columns!(), " FROM authorization_codes WHERE hash = $1"))
                .bind(hash.as_bytes().as_slice())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        row.map(CodeRow::into_code).transpose()
    }

    async fn consume_authorization_code(&self, hash: &TokenHash, client_id: &ClientId, now: OffsetDateTime) -> Result<CodeConsumption, StoreError> {
        let mut attempt = 0;
        loop {
            match self.consume_authorization_code_once(hash, client_id, now).await {
                Err(e) if is_contention(&e) && attempt < 4 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn create_grant(
        &self,
        g: &Grant,
        refresh: Option<&NewRefreshToken>,
        access: Option<&IssuedAccessToken>,
        from_code: Option<&TokenHash>,
    ) -> Result<bool, StoreError> {
        let gid = g.id.to_string();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut live = true;
            if let Some(code) = from_code {
                let n = sqlx::query("UPDATE authorization_codes SET grant_id = $2 WHERE hash = $1 AND replayed_at IS NULL")
                    .bind(code.as_bytes().as_slice())
                    .bind(&gid)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
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
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            // Tokens are recorded even for a grant stored revoked, so that every check
            // (introspection, refresh, the revocation feed) sees them as revoked.
            insert_tokens!(tx, &gid, refresh, access);
            if !live {
                grant_events!(pool, tx, &gid, g.created_at.unix_timestamp());
            }
            tx.commit().await.map_err(db)?;
            Ok(live)
        })
    }

    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        access: Option<&IssuedAccessToken>,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        let mut attempt = 0;
        loop {
            match self.rotate_refresh_token_once(old, client_id, new, access, now).await {
                Err(e) if is_contention(&e) && attempt < 4 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn find_refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshTokenInfo>, StoreError> {
        let row: Option<RefreshRow> = on_db!(self, read, |pool| {
            sqlx::query_as("SELECT grant_id, client_id, created_at, expires_at, used_at FROM refresh_tokens WHERE hash = $1")
                .bind(hash.as_bytes().as_slice())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })?;
        let Some(r) = row else { return Ok(None) };
        let grant: Option<GrantRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", grant_columns!(), " FROM grants WHERE id = $1"))
                .bind(&r.grant_id)
                .fetch_optional(pool)
                .await
                .map_err(db)
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

    async fn revoke_grant(&self, id: GrantId, now: OffsetDateTime) -> Result<(), StoreError> {
        let gid = id.to_string();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            lock_event_log!(pool, tx);
            let revoked = sqlx::query(REVOKE_GRANT).bind(&gid).bind(now.unix_timestamp()).execute(&mut *tx).await.map_err(db)?.rows_affected();
            if revoked == 1 {
                grant_events!(pool, tx, &gid, now.unix_timestamp());
                sqlx::query(REVOKE_GRANT_TOKENS).bind(&gid).execute(&mut *tx).await.map_err(db)?;
            }
            tx.commit().await.map_err(db)
        })
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query("INSERT INTO token_revocations (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
                .bind(jti)
                .bind(expires_at.unix_timestamp())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 1 {
                if let Some(lock) = pool.event_log_lock() {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(db)?;
                }
                sqlx::query("INSERT INTO security_events (at, kind, subject, session) VALUES ($1, 'token-revoked', $2, NULL)")
                    .bind(now.unix_timestamp())
                    .bind(jti)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)
        })
    }

    async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let hit: Option<i64> = on_db!(self, read, |pool| {
            sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM token_revocations WHERE jti = $1 \
                 UNION ALL SELECT CAST(1 AS BIGINT) FROM access_tokens a JOIN grants g ON g.id = a.grant_id \
                 WHERE a.jti = $1 AND g.revoked_at IS NOT NULL LIMIT 1",
            )
            .bind(jti)
            .fetch_optional(pool)
            .await
            .map_err(db)
        })?;
        Ok(hit.is_some())
    }

    async fn find_consent(&self, user_id: UserId, client_id: &ClientId) -> Result<Option<String>, StoreError> {
        on_db!(self, read, |pool| {
            sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id.to_string())
                .bind(client_id.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db)
        })
    }

    async fn save_consent(&self, user_id: UserId, client_id: &ClientId, scope: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
            )
            .bind(user_id.to_string())
            .bind(client_id.as_str())
            .bind(scope)
            .bind(now.unix_timestamp())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
        })?;
        Ok(())
    }

    async fn record_assertion_jti(&self, key: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
        tessera_core::store::Store::record_once(self, key, expires_at).await
    }

    async fn enqueue_logout_deliveries(&self, deliveries: &[LogoutDelivery]) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            for d in deliveries {
                sqlx::query(
                    "INSERT INTO logout_deliveries (id, client_id, uri, logout_token, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(d.id.to_string())
                .bind(d.client_id.as_str())
                .bind(&d.uri)
                .bind(&d.logout_token)
                .bind(d.attempts)
                .bind(d.next_attempt_at.unix_timestamp())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)
        })
    }

    async fn due_logout_deliveries(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<LogoutDelivery>, StoreError> {
        let rows: Vec<DeliveryRow> = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT id, client_id, uri, logout_token, attempts, next_attempt_at FROM logout_deliveries \
                 WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
            )
            .bind(now.unix_timestamp())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db)
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(LogoutDelivery {
                    id: uuid(&r.id)?,
                    client_id: ClientId::new(r.client_id),
                    uri: r.uri,
                    logout_token: r.logout_token,
                    attempts: r.attempts,
                    next_attempt_at: ts(r.next_attempt_at)?,
                })
            })
            .collect()
    }

    async fn finish_logout_delivery(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM logout_deliveries WHERE id = $1").bind(id.to_string()).execute(pool).await.map(|r| r.rows_affected()).map_err(db)
        })?;
        Ok(())
    }

    async fn retry_logout_delivery(&self, id: uuid::Uuid, next_attempt_at: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("UPDATE logout_deliveries SET attempts = attempts + 1, next_attempt_at = $2 WHERE id = $1")
                .bind(id.to_string())
                .bind(next_attempt_at.unix_timestamp())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(db)
        })?;
        Ok(())
    }

    async fn append_security_events(&self, events: &[NewSecurityEvent], now: OffsetDateTime) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            if let Some(lock) = pool.event_log_lock() {
                sqlx::query(lock).execute(&mut *tx).await.map_err(db)?;
            }
            for e in events {
                sqlx::query("INSERT INTO security_events (at, kind, subject, session) VALUES ($1, $2, $3, $4)")
                    .bind(now.unix_timestamp())
                    .bind(e.kind.as_str())
                    .bind(&e.subject)
                    .bind(e.session.as_deref())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)
        })
    }

    async fn security_events_after(&self, after: i64, since: OffsetDateTime, limit: u32) -> Result<Vec<SecurityEvent>, StoreError> {
        let rows: Vec<(i64, i64, String, String, Option<String>)> = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT seq, at, kind, subject, session FROM security_events WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT $3",
            )
            .bind(after)
            .bind(since.unix_timestamp())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db)
        })?;
        rows.into_iter()
            .map(|(seq, at, kind, subject, session)| {
                Ok(SecurityEvent {
                    seq,
                    at: ts(at)?,
                    kind: SecurityEventKind::parse(&kind).ok_or_else(|| corrupt("event kind"))?,
                    subject,
                    session,
                })
            })
            .collect()
    }

    async fn purge_expired_oauth(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let t = now.unix_timestamp();
        on_db!(self, write, |pool| {
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
                n += sqlx::query(sql).bind(t).execute(&mut *tx).await.map_err(db)?.rows_affected();
            }
            tx.commit().await.map_err(db)?;
            Ok(n)
        })
    }
}
