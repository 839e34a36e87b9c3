//! `FederationStore`: the persistent intents of federation. Sign-ins in flight and pending
//! links are taken once with `DELETE … RETURNING` (the database enforces single use).

use super::model::{FederatedIdentity, IdentityId, PendingLink, ProviderRecord, SignInMethods, UpstreamLogin};
use crate::ids::UserId;
use crate::secret::TokenHash;
use crate::store::StoreError;
use crate::user::{NewUser, User};
use async_trait::async_trait;
use time::OffsetDateTime;

/// Federation's port to storage.
#[async_trait]
pub trait FederationStore: Send + Sync + 'static {
    // ---- providers ----
    /// Adds a provider; `Conflict(Key)` when the name is taken.
    async fn create_upstream_provider(&self, p: &ProviderRecord) -> Result<(), StoreError>;
    /// Every provider, by name.
    async fn list_upstream_providers(&self) -> Result<Vec<ProviderRecord>, StoreError>;
    /// One provider by name.
    async fn find_upstream_provider(&self, name: &str) -> Result<Option<ProviderRecord>, StoreError>;
    /// Deletes a provider (its identities, sign-ins in flight and pending links go with it);
    /// false if there was none.
    async fn delete_upstream_provider(&self, name: &str) -> Result<bool, StoreError>;

    // ---- sign-ins in flight ----
    /// Records a sign-in sent to a provider.
    async fn create_upstream_login(&self, l: &UpstreamLogin) -> Result<(), StoreError>;
    /// Takes (once) the unexpired sign-in stored under `state_hash` for the browser whose
    /// cookie hashes to `browser_hash`.
    async fn take_upstream_login(&self, state_hash: &TokenHash, browser_hash: &TokenHash, now: OffsetDateTime) -> Result<Option<UpstreamLogin>, StoreError>;

    // ---- identities ----
    /// The identity keyed by (issuer, subject).
    async fn find_federated_identity(&self, issuer: &str, subject: &str) -> Result<Option<FederatedIdentity>, StoreError>;
    /// Links an identity; `Conflict(Key)` if (issuer, subject) is linked already.
    async fn create_federated_identity(&self, i: &FederatedIdentity) -> Result<(), StoreError>;
    /// Records a sign-in with an identity (time and latest address).
    async fn touch_federated_identity(&self, id: IdentityId, email: Option<&str>, now: OffsetDateTime) -> Result<(), StoreError>;
    /// A user's identities, oldest first, with their provider's name.
    async fn list_user_identities(&self, user_id: UserId) -> Result<Vec<FederatedIdentity>, StoreError>;
    /// Unlinks one of a user's identities only if the user keeps another way to sign in
    /// (a password, a passkey or another identity), in one statement; false otherwise (or
    /// if it is not theirs).
    async fn delete_user_identity_keeping_a_way_in(&self, user_id: UserId, id: IdentityId) -> Result<bool, StoreError>;
    /// What a user can sign in with.
    async fn find_sign_in_methods(&self, user_id: UserId) -> Result<SignInMethods, StoreError>;

    // ---- links waiting for proof ----
    /// Records a pending link.
    async fn create_pending_link(&self, l: &PendingLink) -> Result<(), StoreError>;
    /// Reads an unexpired pending link (for the page).
    async fn find_pending_link(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLink>, StoreError>;
    /// Takes an unexpired pending link once.
    async fn take_pending_link(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLink>, StoreError>;

    // ---- users ----
    /// The user holding this canonical e-mail address.
    async fn find_user_by_email(&self, canonical_email: &str) -> Result<Option<User>, StoreError>;
    /// A user by id.
    async fn find_federation_user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Creates a user (just in time), its address confirmed when `email_verified` (the
    /// provider is trusted for addresses and upstream verified it); `Conflict(Username|Email)`
    /// when taken.
    async fn create_federated_user(&self, user: &NewUser, email_verified: bool, now: OffsetDateTime) -> Result<User, StoreError>;

    /// Deletes lapsed sign-ins in flight and pending links.
    async fn purge_expired_upstream(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
