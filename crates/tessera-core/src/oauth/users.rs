//! The provider's narrow port onto the account store: what it reads of users and sessions,
//! and the one account-side transaction it starts (deleting a client with its grants). Any
//! `crate::store::Store` is one (the blanket impl lives there, so this module does not
//! import the account store).

use crate::ids::{SessionHandle, UserId};
use crate::oauth::client::ClientId;
use crate::oauth::model::Grant;
use crate::session::Session;
use crate::error::StoreError;
use crate::user::User;
use async_trait::async_trait;
use time::OffsetDateTime;

/// What the provider needs of the account store.
#[async_trait]
pub trait ProviderAccounts: Send + Sync + 'static {
    /// A user by id (to issue, refresh and answer userinfo for an enabled user only).
    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// A session by its public handle (whether a grant's session still lives).
    async fn find_session_by_handle(&self, handle: SessionHandle) -> Result<Option<Session>, StoreError>;
    /// Deletes a client after revoking its grants (`LifecycleStore::delete_client_revoking_grants`).
    async fn delete_client_revoking_grants(&self, id: &ClientId, now: OffsetDateTime) -> Result<Vec<Grant>, StoreError>;
}
