//! `UpstreamRefresher` for the credential vault: a kept refresh token redeemed at the
//! provider's token endpoint with the provider's client credentials.

use super::profile::{refused, token_set};
use super::service::Federation;
use crate::CoreError;
use crate::upstream::{UpstreamRefresher, UpstreamSecret, UpstreamTokenSet};
use async_trait::async_trait;

#[async_trait]
impl UpstreamRefresher for Federation {
    async fn refresh(&self, provider: &str, refresh_token: &UpstreamSecret) -> Result<UpstreamTokenSet, CoreError> {
        let p = self.enabled_provider(provider).await?;
        let now = self.clock.now();
        let e = self.cache.endpoints(&p, self.client.as_ref(), now).await?;
        let secret = self.client_secret(&p)?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())];
        let body = super::profile::exchange(self.client.as_ref(), &p, &e, &secret, &form).await?;
        let mut set = token_set(&body, now).map_err(|_| refused("The provider refused to refresh the token."))?;
        // A provider that does not rotate refresh tokens keeps the old one valid.
        if set.refresh_token.is_none() {
            set.refresh_token = Some(refresh_token.clone());
        }
        Ok(set)
    }
}
