//! The OAuth provider's store port: every persistent intent of clients, codes, grants,
//! refresh and access tokens, signing keys and the security-event log, as one method each.
//! `tessera-store` implements it; `crate::store` re-exports it.

use crate::error::StoreError;
use crate::ids::UserId;
use crate::secret::TokenHash;
use async_trait::async_trait;
use time::OffsetDateTime;
use crate::oauth::client::{Client, ClientId};
use crate::oauth::model::{
    AuthorizationCode, CodeConsumption, Grant, GrantId, IssuedAccessToken, LogoutDelivery, NewRefreshToken,
    RefreshRotation, RefreshTokenInfo, SecurityEvent, NewSecurityEvent, StoredKey,
};

/// Persistent state of the OAuth provider. Single use of codes, rotation of refresh tokens
/// and revocation of whole families are each one atomic store intent.
#[async_trait]
pub trait OAuthStore: crate::oauth::consent::ConsentStore + crate::oauth::visibility::VisibilityStore + Send + Sync + 'static {
    // ---- clients ----
    /// Registers a client.
    async fn create_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Finds a client.
    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// Lists clients.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Deletes a client and its grants.
    async fn delete_client(&self, id: &ClientId) -> Result<(), StoreError>;

    // ---- signing keys ----
    /// Every stored key.
    async fn list_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Stores keys generated on first start; does nothing if any key of `alg` exists.
    async fn insert_initial_keys(&self, keys: &[StoredKey]) -> Result<bool, StoreError>;
    /// Rotates one algorithm atomically: active → retired, next → active, `new_next` → next.
    async fn rotate_keys(&self, new_next: &StoredKey, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Deletes retired keys retired before `cutoff`.
    async fn delete_retired_keys(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError>;
    /// A value that changes whenever the key set changes.
    async fn keys_version(&self) -> Result<i64, StoreError>;

    // ---- authorization codes and grants ----
    /// Stores an authorization code.
    async fn create_authorization_code(&self, code: &AuthorizationCode, now: OffsetDateTime) -> Result<(), StoreError>;
    /// A code (used or not, expired or not), to check what it is bound to before using it.
    async fn find_authorization_code(&self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError>;
    /// Uses up a code of `client_id`: exactly one caller gets `Consumed`; a later one gets
    /// `Replayed` and the grant issued from the code (if any) is revoked in the same
    /// transaction. Another client's code is `Unknown` and left untouched.
    async fn consume_authorization_code(&self, hash: &TokenHash, client_id: &ClientId, now: OffsetDateTime) -> Result<CodeConsumption, StoreError>;
    /// Stores a grant with its first tokens. With `from_code`, links the code to the grant;
    /// if the code was replayed meanwhile, stores the grant revoked and returns false.
    async fn create_grant(
        &self,
        grant: &Grant,
        refresh: Option<&NewRefreshToken>,
        access: Option<&IssuedAccessToken>,
        from_code: Option<&TokenHash>,
    ) -> Result<bool, StoreError>;
    /// Rotates a refresh token bound to `client_id`: marks it used and stores `new` (and the
    /// access token record) in one transaction; reuse of a used token revokes the family.
    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        access: Option<&IssuedAccessToken>,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError>;
    /// A refresh token's state.
    async fn find_refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshTokenInfo>, StoreError>;
    /// Revokes a grant (the whole token family).
    async fn revoke_grant(&self, id: GrantId, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Records an access token as revoked until it expires.
    async fn revoke_access_token(&self, jti: &str, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Whether an access token is revoked (itself, or its grant).
    async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;

    // ---- consent ----
    /// Scopes the user already consented to for the client.
    async fn find_consent(&self, user_id: UserId, client_id: &ClientId) -> Result<Option<String>, StoreError>;
    /// Records consent (replacing the stored scope set).
    async fn save_consent(&self, user_id: UserId, client_id: &ClientId, scope: &str, now: OffsetDateTime) -> Result<(), StoreError>;

    // ---- replay protection ----
    /// Records a client-assertion `jti`; false if it was seen before (a replay).
    async fn record_assertion_jti(&self, key: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError>;

    // ---- back-channel logout ----
    /// Queues logout tokens for delivery.
    async fn enqueue_logout_deliveries(&self, deliveries: &[LogoutDelivery]) -> Result<(), StoreError>;
    /// Deliveries due at `now`.
    async fn due_logout_deliveries(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<LogoutDelivery>, StoreError>;
    /// Removes a delivered (or abandoned) delivery.
    async fn finish_logout_delivery(&self, id: uuid::Uuid) -> Result<(), StoreError>;
    /// Schedules another attempt.
    async fn retry_logout_delivery(&self, id: uuid::Uuid, next_attempt_at: OffsetDateTime) -> Result<(), StoreError>;

    /// Deletes expired codes, tokens, revocations and replay records.
    async fn purge_expired_oauth(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    // ---- security event log (revocation feed) ----
    /// Appends events. (Revocations made inside the other methods append their
    /// `token-revoked` events in the same transaction.)
    async fn append_security_events(&self, events: &[NewSecurityEvent], now: OffsetDateTime) -> Result<(), StoreError>;
    /// Events with `seq > after` and `at >= since`, oldest first.
    async fn security_events_after(&self, after: i64, since: OffsetDateTime, limit: u32) -> Result<Vec<SecurityEvent>, StoreError>;
}
