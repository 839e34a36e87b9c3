//! The provider's answer at `<issuer>/login/upstream/{name}/callback`: `state` taken once
//! (by the database, and only by the browser that started the sign-in), the RFC 9207 `iss`
//! parameter, the code exchange, the upstream user, then the linking decision and the
//! session through the account flows. Every refusal is audited and leaves no session.

use super::decide::{Decision, decide, username_base};
use super::model::{FederatedIdentity, IdentityId, PendingLink, ProviderKind, ProviderRecord, TENANT_PLACEHOLDER};
use super::profile::{UpstreamUser, exchange, oauth2_user, oidc_user, refused, token_set};
use super::service::{Federation, pkce_verifier};
use crate::CoreError;
use crate::accounts::{Authenticated, LoginOutcome};
use crate::audit::AuditKind;
use crate::secret::SecretToken;
use crate::session::RequestContext;
use crate::store::{ConflictKind, StoreError};
use crate::upstream::UpstreamTokenSet;
use crate::user::{Email, NewUser, User, Username};
use serde_json::json;
use time::Duration;

/// How long a link waits for the user to prove the local account.
pub const PENDING_LINK_LIFETIME: Duration = Duration::minutes(10);

/// The callback's query.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` sent.
    pub state: Option<String>,
    /// RFC 9207 issuer identifier.
    pub iss: Option<String>,
    /// An OAuth error from the provider.
    pub error: Option<String>,
}

/// What the callback led to.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Completed {
    /// Signed in, or waiting for a second factor.
    SignedIn {
        /// The outcome.
        outcome: LoginOutcome,
        /// Where to go.
        return_to: String,
    },
    /// The address belongs to a local account, which must be proved first.
    LinkRequired {
        /// The pending link's handle (cookie only).
        token: SecretToken,
        /// Where to go afterwards.
        return_to: String,
    },
}

/// Whether an RFC 9207 `iss` names the expected issuer (a tenant template matches any
/// tenant id in its place).
fn iss_matches(expected: &str, got: &str) -> bool {
    match expected.split_once(TENANT_PLACEHOLDER) {
        None => expected == got,
        Some((pre, post)) => got
            .strip_prefix(pre)
            .and_then(|r| r.strip_suffix(post))
            .is_some_and(|tid| !tid.is_empty() && tid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')),
    }
}

impl Federation {
    /// Completes a sign-in at provider `name`. `browser` is the cookie set when it began.
    pub async fn complete(
        &self,
        name: &str,
        params: CallbackParams,
        browser: Option<&SecretToken>,
        current: Option<&Authenticated>,
        ctx: &RequestContext,
    ) -> Result<Completed, CoreError> {
        let p = self.enabled_provider(name).await?;
        match self.complete_inner(&p, params, browser, current, ctx).await {
            Err(CoreError::Invalid(msg)) => {
                self.accounts
                    .audit(AuditKind::LoginFailed, None, ctx, json!({"provider": name, "reason": "upstream", "detail": msg}))
                    .await;
                Err(CoreError::Invalid(msg))
            }
            other => other,
        }
    }

    async fn complete_inner(
        &self,
        p: &ProviderRecord,
        params: CallbackParams,
        browser: Option<&SecretToken>,
        current: Option<&Authenticated>,
        ctx: &RequestContext,
    ) -> Result<Completed, CoreError> {
        let now = self.clock.now();
        if params.error.is_some() {
            return Err(refused("The provider did not sign you in."));
        }
        let (Some(state), Some(browser)) = (params.state.as_deref().and_then(SecretToken::from_client), browser) else {
            return Err(refused("This sign-in was not started in this browser, or it has expired. Please start again."));
        };
        let Some(login) = self.store.take_upstream_login(&state.hash(), &browser.hash(), now).await? else {
            return Err(refused("This sign-in was already used or has expired. Please start again."));
        };
        if login.provider_id != p.id {
            return Err(refused("This sign-in was started with another provider."));
        }
        let e = self.cache.endpoints(p, self.client.as_ref(), now).await?;
        match (&params.iss, &login.issuer) {
            (Some(got), Some(expected)) if !iss_matches(expected, got) => return Err(refused("The answer came from another issuer.")),
            (None, Some(_)) if e.iss_parameter => return Err(refused("The provider's answer did not say who sent it.")),
            _ => {}
        }
        let code = params.code.filter(|c| !c.is_empty() && c.len() <= 2048).ok_or_else(|| refused("The provider sent no code."))?;
        let secret = self.client_secret(p)?;
        let (redirect, verifier) = (self.callback_url(p.name.as_str()), pkce_verifier(browser));
        let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect.as_str()), ("code_verifier", verifier.as_str())];
        let body = exchange(self.client.as_ref(), p, &e, &secret, &form).await?;
        let tokens = token_set(&body, now)?;
        let upstream = match p.kind {
            ProviderKind::Oidc { .. } => oidc_user(self.client.as_ref(), &self.cache, p, &e, &body, &tokens.access_token, &login.nonce_hash, now).await?,
            ProviderKind::OAuth2 { .. } => oauth2_user(self.client.as_ref(), p, &e, &tokens.access_token).await?,
        };
        self.settle(p, upstream, tokens, login.return_to, current, ctx).await
    }

    /// Applies the linking decision to a verified upstream user.
    async fn settle(
        &self,
        p: &ProviderRecord,
        up: UpstreamUser,
        tokens: UpstreamTokenSet,
        return_to: String,
        current: Option<&Authenticated>,
        ctx: &RequestContext,
    ) -> Result<Completed, CoreError> {
        let now = self.clock.now();
        let name = p.name.as_str();
        let linked = self.store.find_federated_identity(&up.issuer, &up.subject).await?;
        let holder = match up.email.as_deref().map(Email::parse) {
            Some(Ok(e)) => self.store.find_user_by_email(&e.canonical()).await?,
            _ => None,
        };
        let decision = decide(linked.as_ref().map(|i| i.user_id), holder.as_ref().map(|u| u.id), up.email_verified, p.trust_email, p.jit);
        let user = match decision {
            Decision::SignIn(user_id) => {
                if let Some(i) = &linked {
                    self.store.touch_federated_identity(i.id, up.email.as_deref(), now).await?;
                }
                self.store.find_federation_user(user_id).await?.ok_or(CoreError::NotFound)?
            }
            Decision::LinkVerified(_) => {
                let user = holder.ok_or(CoreError::NotFound)?;
                self.link(p, &up, &user, "verified_email", ctx).await?;
                user
            }
            Decision::ProveLocal(user_id) => {
                let token = SecretToken::generate()?;
                self.store
                    .create_pending_link(&PendingLink {
                        hash: token.hash(),
                        provider_id: p.id,
                        issuer: up.issuer.clone(),
                        subject: up.subject.clone(),
                        user_id,
                        email: up.email.clone(),
                        amr: up.amr.clone(),
                        return_to: return_to.clone(),
                        expires_at: now + PENDING_LINK_LIFETIME,
                    })
                    .await?;
                return Ok(Completed::LinkRequired { token, return_to });
            }
            Decision::Create => {
                let user = self.create_user(&up, p.trust_email).await?;
                self.accounts
                    .audit(AuditKind::UserCreated, Some(user.id), ctx, json!({"username": user.username.as_str(), "via": name}))
                    .await;
                self.link(p, &up, &user, "just_in_time", ctx).await?;
                user
            }
            Decision::Refuse => {
                return Err(refused(&format!(
                    "No account here is linked to this {name} account, and new accounts are not created from it."
                )));
            }
        };
        if user.disabled {
            return Err(CoreError::InvalidCredentials);
        }
        let user_id = user.id;
        let outcome = self.accounts.sign_in_upstream(user, up.amr.clone(), name, current, ctx).await?;
        self.keep_tokens(p, user_id, &up.subject, tokens).await;
        Ok(Completed::SignedIn { outcome, return_to })
    }

    /// Hands the upstream tokens to the credential vault when the provider keeps them.
    pub(super) async fn keep_tokens(&self, p: &ProviderRecord, user: crate::ids::UserId, subject: &str, tokens: UpstreamTokenSet) {
        if let (true, Some(keeper)) = (p.vault_tokens, &self.keeper)
            && let Err(e) = keeper.keep(&user, p.name.as_str(), subject, tokens, self.clock.now()).await
        {
            tracing::warn!(provider = p.name.as_str(), error = %e, "upstream tokens could not be kept");
        }
    }

    /// Links `up` to `user` (audited with `reason`).
    pub(super) async fn link(&self, p: &ProviderRecord, up: &UpstreamUser, user: &User, reason: &str, ctx: &RequestContext) -> Result<(), CoreError> {
        let now = self.clock.now();
        let identity = FederatedIdentity {
            id: IdentityId::new(),
            provider_id: p.id,
            provider_name: p.name.as_str().to_owned(),
            issuer: up.issuer.clone(),
            subject: up.subject.clone(),
            user_id: user.id,
            email: up.email.clone(),
            created_at: now,
            last_used_at: now,
        };
        match self.store.create_federated_identity(&identity).await {
            Err(StoreError::Conflict(_)) => return Err(refused("This account is already linked to another user.")),
            r => r?,
        }
        self.accounts
            .audit(AuditKind::IdentityLinked, Some(user.id), ctx, json!({"provider": p.name.as_str(), "subject": up.subject, "reason": reason}))
            .await;
        Ok(())
    }

    /// Creates a user just in time: a username from upstream hints (a suffix added while it
    /// is taken), the address only when upstream verified it — confirmed here too when the
    /// provider is trusted for addresses — and no password.
    async fn create_user(&self, up: &UpstreamUser, trust_email: bool) -> Result<User, CoreError> {
        let hints: Vec<Option<&str>> = up.username_hints.iter().map(|h| Some(h.as_str())).collect();
        let base = username_base(&hints);
        let email = if up.email_verified { up.email.as_deref().map(Email::parse).transpose().ok().flatten() } else { None };
        for attempt in 0..6 {
            let candidate = if attempt == 0 { base.clone() } else {
                let mut b = [0u8; 3];
                crate::secret::fill_random(&mut b)?;
                format!("{base}-{:02x}{:02x}{:02x}", b[0], b[1], b[2])
            };
            let Ok(username) = Username::parse(&candidate) else { continue };
            let new = NewUser { username, email: email.clone(), display_name: None, password_hash: None, roles: vec![] };
            match self.store.create_federated_user(&new, up.email_verified && trust_email, self.clock.now()).await {
                Err(StoreError::Conflict(ConflictKind::Username)) => continue,
                Err(StoreError::Conflict(ConflictKind::Email)) => {
                    return Err(refused("An account with this address was created meanwhile. Please sign in again."));
                }
                r => return Ok(r?),
            }
        }
        Err(refused("No free username could be found for this account."))
    }
}

#[cfg(test)]
mod tests {
    use super::iss_matches;

    #[test]
    fn rfc9207_iss_must_name_the_issuer() {
        assert!(iss_matches("https://op.example.com", "https://op.example.com"));
        assert!(!iss_matches("https://op.example.com", "https://evil.example.com"));
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(iss_matches(t, "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"));
        assert!(!iss_matches(t, "https://login.microsoftonline.com/evil.example/v2.0"));
        assert!(!iss_matches(t, "https://login.microsoftonline.com//v2.0"));
    }
}
