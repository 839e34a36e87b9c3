//! `OAuthStore` for [`SqlStore`]: clients, keys, codes, grants, refresh rotation, consent,
//! replay records and back-channel logout deliveries. Same SQL on both backends.
//!
//! One file per family of records; this module holds the `OAuthStore` impl, which hands each
//! intent to its file, and the column encodings they share.

mod clients;
mod codes;
mod events;
mod grants;
mod keys;
mod tokens;

pub(crate) use grants::{GrantRow, grant_columns};

use crate::store::SqlStore;
use async_trait::async_trait;
use tessera_core::ids::UserId;
use tessera_core::oauth::client::{Client, ClientId};
use tessera_core::oauth::model::{
    AuthorizationCode, CodeConsumption, Grant, GrantId, IssuedAccessToken, LogoutDelivery, NewRefreshToken, NewSecurityEvent,
    RefreshRotation, RefreshTokenInfo, SecurityEvent, StoredKey,
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

#[async_trait]
impl OAuthStore for SqlStore {
    async fn create_client(&self, c: &Client) -> Result<(), StoreError> {
        clients::create_client(self, c).await
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        clients::find_client(self, id).await
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        clients::list_clients(self).await
    }

    async fn delete_client(&self, id: &ClientId) -> Result<(), StoreError> {
        clients::delete_client(self, id).await
    }

    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        keys::list_keys(self).await
    }

    async fn insert_initial_keys(&self, keys: &[StoredKey]) -> Result<bool, StoreError> {
        keys::insert_initial_keys(self, keys).await
    }

    async fn rotate_keys(&self, new_next: &StoredKey, now: OffsetDateTime) -> Result<(), StoreError> {
        keys::rotate_keys(self, new_next, now).await
    }

    async fn delete_retired_keys(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        keys::delete_retired_keys(self, cutoff).await
    }

    async fn keys_version(&self) -> Result<i64, StoreError> {
        keys::keys_version(self).await
    }

    async fn create_authorization_code(&self, c: &AuthorizationCode, now: OffsetDateTime) -> Result<(), StoreError> {
        codes::create_authorization_code(self, c, now).await
    }

    async fn find_authorization_code(&self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
        codes::find_authorization_code(self, hash).await
    }

    async fn consume_authorization_code(&self, hash: &TokenHash, client_id: &ClientId, now: OffsetDateTime) -> Result<CodeConsumption, StoreError> {
        codes::consume_authorization_code(self, hash, client_id, now).await
    }

    async fn create_grant(
        &self,
        g: &Grant,
        refresh: Option<&NewRefreshToken>,
        access: Option<&IssuedAccessToken>,
        from_code: Option<&TokenHash>,
    ) -> Result<bool, StoreError> {
        grants::create_grant(self, g, refresh, access, from_code).await
    }

    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        access: Option<&IssuedAccessToken>,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        grants::rotate_refresh_token(self, old, client_id, new, access, now).await
    }

    async fn find_refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshTokenInfo>, StoreError> {
        grants::find_refresh_token(self, hash).await
    }

    async fn revoke_grant(&self, id: GrantId, now: OffsetDateTime) -> Result<(), StoreError> {
        grants::revoke_grant(self, id, now).await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError> {
        tokens::revoke_access_token(self, jti, expires_at, now).await
    }

    async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        tokens::access_token_revoked(self, jti).await
    }

    async fn find_consent(&self, user_id: UserId, client_id: &ClientId) -> Result<Option<String>, StoreError> {
        clients::find_consent(self, user_id, client_id).await
    }

    async fn save_consent(&self, user_id: UserId, client_id: &ClientId, scope: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        clients::save_consent(self, user_id, client_id, scope, now).await
    }

    async fn record_assertion_jti(&self, key: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError> {
        tokens::record_assertion_jti(self, key, expires_at).await
    }

    async fn enqueue_logout_deliveries(&self, deliveries: &[LogoutDelivery]) -> Result<(), StoreError> {
        events::enqueue_logout_deliveries(self, deliveries).await
    }

    async fn due_logout_deliveries(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<LogoutDelivery>, StoreError> {
        events::due_logout_deliveries(self, now, limit).await
    }

    async fn finish_logout_delivery(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        events::finish_logout_delivery(self, id).await
    }

    async fn retry_logout_delivery(&self, id: uuid::Uuid, next_attempt_at: OffsetDateTime) -> Result<(), StoreError> {
        events::retry_logout_delivery(self, id, next_attempt_at).await
    }

    async fn append_security_events(&self, events: &[NewSecurityEvent], now: OffsetDateTime) -> Result<(), StoreError> {
        events::append_security_events(self, events, now).await
    }

    async fn security_events_after(&self, after: i64, since: OffsetDateTime, limit: u32) -> Result<Vec<SecurityEvent>, StoreError> {
        events::security_events_after(self, after, since, limit).await
    }

    async fn purge_expired_oauth(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        tokens::purge_expired_oauth(self, now).await
    }
}
