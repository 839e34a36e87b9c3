//! Proving the local account before a link is made: the pending link (a cookie's hash, ten
//! minutes) names the account holding the upstream address; the account's password proves
//! it (throttled like a password sign-in), then the identity is linked (audited) and the
//! user signed in.

use super::callback::Completed;
use super::model::PendingLink;
use super::profile::{UpstreamUser, refused};
use super::service::Federation;
use crate::CoreError;
use crate::accounts::Authenticated;
use crate::secret::{Password, SecretToken};
use crate::session::RequestContext;
use crate::user::User;

/// A pending link as its page shows it.
#[derive(Debug, Clone)]
pub struct PendingLinkView {
    /// The provider's name.
    pub provider: String,
    /// The local account's username.
    pub username: String,
}

impl Federation {
    async fn live_link(&self, token: &SecretToken) -> Result<(PendingLink, User, String), CoreError> {
        let link = self.store.find_pending_link(&token.hash(), self.clock.now()).await?.ok_or(CoreError::Unauthenticated)?;
        let user = self.store.find_federation_user(link.user_id).await?.ok_or(CoreError::Unauthenticated)?;
        let provider = self
            .store
            .list_upstream_providers()
            .await?
            .into_iter()
            .find(|p| p.id == link.provider_id && p.enabled)
            .ok_or(CoreError::Unauthenticated)?;
        Ok((link, user, provider.name.as_str().to_owned()))
    }

    /// The pending link a cookie names; [`CoreError::Unauthenticated`] when it lapsed.
    pub async fn pending_link(&self, token: &SecretToken) -> Result<PendingLinkView, CoreError> {
        let (_, user, provider) = self.live_link(token).await?;
        Ok(PendingLinkView { provider, username: user.username.as_str().to_owned() })
    }

    /// Proves the local account with its password, then links and signs in.
    pub async fn confirm_link(
        &self,
        token: &SecretToken,
        password: &Password,
        current: Option<&Authenticated>,
        ctx: &RequestContext,
    ) -> Result<Completed, CoreError> {
        let (_, user, provider) = self.live_link(token).await?;
        self.accounts.prove_password(&user, password, ctx).await?;
        let link = self.store.take_pending_link(&token.hash(), self.clock.now()).await?.ok_or(CoreError::Unauthenticated)?;
        if link.user_id != user.id {
            return Err(CoreError::Unauthenticated);
        }
        let p = self.enabled_provider(&provider).await?;
        let up = UpstreamUser {
            issuer: link.issuer,
            subject: link.subject,
            email: link.email,
            email_verified: false,
            username_hints: vec![],
            amr: link.amr,
        };
        self.link(&p, &up, &user, "proved_local_account", ctx).await?;
        if user.disabled {
            return Err(refused("This account is disabled."));
        }
        let outcome = self.accounts.sign_in_upstream(user, up.amr.clone(), &provider, current, ctx).await?;
        Ok(Completed::SignedIn { outcome, return_to: link.return_to })
    }
}
