//! The credential vault: upstream providers' tokens kept for a user, sealed at rest, refreshed
//! when they expire, and handed out through token exchange (RFC 8693) to the clients an
//! administrator allowed. `model.rs` holds the records, `store.rs` the narrow port
//! [`VaultStore`], `seal.rs` the AES-256-GCM sealing bound to (user, provider, token),
//! `service.rs` the flows ([`Vault`], which implements federation's
//! [`TokenKeeper`](crate::upstream::TokenKeeper)). The token endpoint reaches the vault only
//! through [`UpstreamTokenSource`]; the vault imports nothing of `oauth/`.

mod model;
mod seal;
mod service;
mod store;
#[cfg(test)]
mod tests;

pub use model::{KeptTokenSummary, LiveToken, MAX_PROVIDER_NAME, SealedTokenSet, VaultError, scope_list, valid_provider_name};
pub use seal::{TokenKind, TokenSealer};
pub use service::{REFRESH_AHEAD, Vault};
pub use store::VaultStore;

use crate::ids::UserId;
use async_trait::async_trait;
use time::OffsetDateTime;

/// What token exchange needs of the vault: a live access token, and a record of each one
/// handed out (who, which provider, to which client — never the token).
#[async_trait]
pub trait UpstreamTokenSource: Send + Sync {
    /// A live access token of `user` at `provider` (refreshed if need be).
    async fn live_access_token(&self, user: UserId, provider: &str, now: OffsetDateTime) -> Result<LiveToken, VaultError>;
    /// Records that `client_id` received `user`'s token of `provider` (the audit log).
    async fn record_exchange(&self, user: UserId, provider: &str, client_id: &str, scope: Option<&str>);
}
