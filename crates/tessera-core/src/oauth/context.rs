//! What every provider slice works with: the OAuth store, the narrow account port, the key
//! ring, the clock, the settings, the client cache in front of the client registry, and the
//! credential vault's port for token exchange.

use crate::clock::SharedClock;
use crate::oauth::client::{Client, ClientId};
use crate::oauth::client_cache::ClientCache;
use crate::oauth::config::ProviderConfig;
use crate::oauth::keys::KeyRing;
use crate::oauth::users::ProviderAccounts;
use crate::error::StoreError;
use crate::oauth::store::OAuthStore;
use crate::vault::UpstreamTokenSource;
use std::sync::{Arc, OnceLock};
use time::OffsetDateTime;

/// The provider's dependencies, shared by its slices.
pub(crate) struct OAuthContext {
    /// Codes, grants, tokens, clients, consents, events.
    pub(crate) store: Arc<dyn OAuthStore>,
    /// Users and sessions (read), client deletion with its grants.
    pub(crate) users: Arc<dyn ProviderAccounts>,
    /// The signing keys.
    pub(crate) keys: Arc<KeyRing>,
    /// Where every "now" comes from.
    pub(crate) clock: SharedClock,
    /// Settings.
    pub(crate) config: ProviderConfig,
    /// Recently read clients.
    pub(crate) clients: ClientCache,
    /// The credential vault, for token exchange (set once at start; none: no exchange).
    pub(crate) upstream: OnceLock<Arc<dyn UpstreamTokenSource>>,
}

impl OAuthContext {
    /// The current time.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// A client by id, through the one-second cache.
    pub(crate) async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let now = self.now();
        if let Some(hit) = self.clients.get(id, now) {
            return Ok(hit);
        }
        let c = self.store.find_client(&ClientId::new(id)).await?;
        self.clients.put(id, c.clone(), now);
        Ok(c)
    }
}
