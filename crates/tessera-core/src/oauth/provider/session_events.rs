//! The provider's port to the outbox consumer: back-channel logout tokens for the grants the
//! consumer (or a transaction that disabled or deleted a user) revoked.

use crate::oauth::OAuthError;
use crate::oauth::model::Grant;
use super::Provider;
use crate::outbox::LogoutQueue;
use async_trait::async_trait;

#[async_trait]
impl LogoutQueue for Provider {
    async fn queue_logouts(&self, grants: &[Grant]) -> Result<(), OAuthError> {
        crate::oauth::logout::notify_backchannel(&self.inner, grants).await
    }
}
