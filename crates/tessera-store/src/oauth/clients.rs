//! Registered clients, and the consent each user gave each client.

use super::{corrupt, json_list, parse_list};
use crate::backend::on_db;
use crate::query::{Exec, Fetch};
use crate::rows::ts;
use crate::store::SqlStore;
use sqlx::FromRow;
use tessera_core::ids::UserId;
use tessera_core::jose::JwsAlg;
use tessera_core::oauth::client::{AuthMethod, Client, ClientId, GrantType};
use tessera_core::secret::TokenHash;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

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
    token_exchange: String,
    created_at: i64,
}

macro_rules! client_columns {
    () => {
        "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, skip_consent, \
         require_mfa, auth_method, backchannel_logout_uri, id_token_alg, jwks, admin_api, grant_lifetime, introspection, resource, token_exchange, created_at"
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
            token_exchange: serde_json::from_str(&self.token_exchange).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: ts(self.created_at)?,
        })
    }
}

pub(super) async fn create_client(store: &SqlStore, c: &Client) -> Result<(), StoreError> {
    let grants: Vec<String> = c.grant_types.iter().map(|g| g.as_str().to_owned()).collect();
    let jwks = c.jwks.as_ref().map(|j| j.to_string());
    let token_exchange = serde_json::to_string(&c.token_exchange).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    on_db!(store, write, |pool| {
        sqlx::query(
            concat!("INSERT INTO clients (", client_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"),
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
        .bind(&token_exchange)
        .bind(c.created_at.unix_timestamp())
        .exec(pool)
        .await
    })?;
    Ok(())
}

pub(super) async fn find_client(store: &SqlStore, id: &ClientId) -> Result<Option<Client>, StoreError> {
    let row: Option<ClientRow> = on_db!(store, read, |pool| {
        sqlx::query_as(concat!("SELECT ", client_columns!(), " FROM clients WHERE id = $1"))
            .bind(id.as_str())
            .optional(pool)
            .await
    })?;
    row.map(ClientRow::into_client).transpose()
}

pub(super) async fn list_clients(store: &SqlStore) -> Result<Vec<Client>, StoreError> {
    let rows: Vec<ClientRow> = on_db!(store, read, |pool| {
        sqlx::query_as(concat!("SELECT ", client_columns!(), " FROM clients ORDER BY created_at, id"))
            .all(pool)
            .await
    })?;
    rows.into_iter().map(ClientRow::into_client).collect()
}

pub(super) async fn delete_client(store: &SqlStore, id: &ClientId) -> Result<(), StoreError> {
    let n = on_db!(store, write, |pool| {
        sqlx::query("DELETE FROM clients WHERE id = $1").bind(id.as_str()).exec(pool).await
    })?;
    if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub(super) async fn find_consent(store: &SqlStore, user_id: UserId, client_id: &ClientId) -> Result<Option<String>, StoreError> {
    on_db!(store, read, |pool| {
        sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id.to_string())
            .bind(client_id.as_str())
            .optional(pool)
            .await
    })
}

pub(super) async fn save_consent(
    store: &SqlStore,
    user_id: UserId,
    client_id: &ClientId,
    scope: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    on_db!(store, write, |pool| {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
        )
        .bind(user_id.to_string())
        .bind(client_id.as_str())
        .bind(scope)
        .bind(now.unix_timestamp())
        .exec(pool)
        .await
    })?;
    Ok(())
}
