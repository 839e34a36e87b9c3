//! The vault's narrow store port: one kept token set per (user, provider).

use super::model::{KeptTokenSummary, SealedTokenSet};
use crate::error::StoreError;
use crate::ids::UserId;
use async_trait::async_trait;

/// Where kept upstream tokens live. Deleting a user deletes their sets.
#[async_trait]
pub trait VaultStore: Send + Sync + 'static {
    /// Keeps `set`, replacing the user's earlier set for the provider; the stored version
    /// moves on (so a refresh in flight over the old set cannot overwrite it).
    async fn put_upstream_tokens(&self, set: &SealedTokenSet) -> Result<(), StoreError>;
    /// The user's set for `provider`.
    async fn find_upstream_tokens(&self, user: UserId, provider: &str) -> Result<Option<SealedTokenSet>, StoreError>;
    /// What is kept for the user, by provider name (never a token).
    async fn list_upstream_tokens(&self, user: UserId) -> Result<Vec<KeptTokenSummary>, StoreError>;
    /// Writes a refreshed set only if the stored version is still `expected` (one conditional
    /// `UPDATE`); whether it did. `set.version` is ignored: the stored version moves on.
    async fn update_refreshed_upstream_tokens(&self, set: &SealedTokenSet, expected: i64) -> Result<bool, StoreError>;
    /// Deletes the user's set for `provider`; whether there was one.
    async fn delete_upstream_tokens(&self, user: UserId, provider: &str) -> Result<bool, StoreError>;
}
