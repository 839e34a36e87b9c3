//! The provider facade: one cloneable handle the web crate, the binary and the account flows
//! hold. Each method is one endpoint decision and delegates to its slice — [`authorize`]
//! (validation and the decision), [`consent`], [`token`] (one module per grant),
//! [`client_auth`], [`introspect`] (userinfo, introspection, revocation), [`logout`],
//! [`events`] (the revocation feed), [`clients`] (the registry), [`admin_token`].
//! The slices share an [`OAuthContext`]; none of them knows this type.
//!
//! [`authorize`]: crate::oauth::authorize
//! [`consent`]: crate::oauth::consent
//! [`token`]: crate::oauth::token
//! [`client_auth`]: crate::oauth::client_auth
//! [`introspect`]: crate::oauth::introspect
//! [`logout`]: crate::oauth::logout
//! [`events`]: crate::oauth::events
//! [`clients`]: crate::oauth::clients
//! [`admin_token`]: crate::oauth::admin_token

use crate::CoreError;
use crate::accounts::Authenticated;
use crate::clock::SharedClock;
use crate::ids::UserId;
use crate::oauth::authorize::decide::{self, Decision};
use crate::oauth::client::{Client, ClientRegistration};
use crate::oauth::client_cache::ClientCache;
use crate::oauth::consent::{self, ConsentOutcome, ConsentTicket};
use crate::oauth::context::OAuthContext;
use crate::oauth::keys::KeyRing;
use crate::oauth::users::ProviderAccounts;
use crate::oauth::{OAuthError, admin_token, authorize, client_auth, clients, discovery, events, introspect, logout, token};
use crate::oauth::store::OAuthStore;
use serde_json::Value;
use std::sync::Arc;
use time::OffsetDateTime;

pub use crate::oauth::authorize::{AuthorizationRequest, AuthorizationResponse, AuthorizeError, AuthorizeParams, Prompt, ResponseMode};
pub use crate::oauth::client_auth::PresentedClient;
pub use crate::oauth::config::{ProviderConfig, paths};
pub use crate::oauth::events::{FeedBatch, event_types};
pub use crate::oauth::introspect::VerifiedAccessToken;
pub use crate::oauth::logout::EndSession;
pub use crate::oauth::token::{ExchangedToken, TokenParams, TokenReply, TokenResponse};

/// What an authorization request needs next.
#[derive(Debug)]
pub enum Interaction {
    /// The user must sign in (again).
    Login,
    /// The session is signed in but does not reach this level: ask for what is missing.
    StepUp(crate::mfa::level::AuthLevel),
    /// The user must consent: the consent screen's handle (its request is stored).
    Consent(ConsentTicket),
    /// Done: deliver this response.
    Respond(AuthorizationResponse),
}

/// The provider.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<OAuthContext>,
    /// The discovery document, serialised once.
    discovery: Arc<str>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("issuer", &self.inner.config.issuer).finish()
    }
}

impl Provider {
    /// Builds the provider. `users` is any account store ([`ProviderAccounts`]).
    pub fn new(store: Arc<dyn OAuthStore>, users: Arc<dyn ProviderAccounts>, keys: Arc<KeyRing>, clock: SharedClock, config: ProviderConfig) -> Self {
        let discovery = Arc::from(discovery::document(&config).to_string());
        Self { inner: Arc::new(OAuthContext { store, users, keys, clock, config, clients: ClientCache::default(), upstream: std::sync::OnceLock::new() }), discovery }
    }

    /// The same provider, handing out upstream tokens kept in `vault` through token exchange
    /// (RFC 8693). Set once, at start; a second call is ignored.
    pub fn with_upstream_tokens(self, vault: Arc<dyn crate::vault::UpstreamTokenSource>) -> Self {
        let _ = self.inner.upstream.set(vault);
        self
    }

    /// Settings.
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// The key ring.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.inner.keys
    }

    /// The store (for the delivery worker).
    pub fn store(&self) -> &Arc<dyn OAuthStore> {
        &self.inner.store
    }

    /// Current time (for the delivery worker).
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.now()
    }

    // ---------------------------------------------------------------- discovery

    /// The OpenID Provider / RFC 8414 metadata, serialised once.
    pub fn discovery_json(&self) -> Arc<str> {
        self.discovery.clone()
    }

    /// The OpenID Provider / RFC 8414 metadata.
    pub fn discovery(&self) -> Value {
        discovery::document(&self.inner.config)
    }

    // ---------------------------------------------------------------- clients

    /// Registers a client; returns it and its secret (shown once).
    pub async fn register_client(&self, reg: ClientRegistration) -> Result<(Client, Option<String>), CoreError> {
        clients::register(&self.inner, reg).await
    }

    /// Finds a client (through the one-second cache).
    pub async fn find_client(&self, id: &str) -> Result<Option<Client>, CoreError> {
        Ok(self.inner.client(id).await?)
    }

    /// Lists clients.
    pub async fn list_clients(&self) -> Result<Vec<Client>, CoreError> {
        Ok(self.inner.store.list_clients().await?)
    }

    /// Deletes a client, revoking its grants.
    pub async fn delete_client(&self, id: &str) -> Result<(), CoreError> {
        clients::delete(&self.inner, id).await
    }

    // ---------------------------------------------------------------- authorization

    /// Validates an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 9700).
    pub async fn validate_authorization(&self, p: &AuthorizeParams) -> Result<AuthorizationRequest, AuthorizeError> {
        authorize::validate::validate(&self.inner, p).await
    }

    /// The error response for a validated request.
    pub fn error_response(&self, req: &AuthorizationRequest, err: &OAuthError) -> AuthorizationResponse {
        req.reply_to().error(&self.inner.config, err)
    }

    /// Decides what a valid request needs, given the signed-in user (if any): signing in,
    /// a stronger sign-in, consent (the pending consent is stored), or a code (issued).
    pub async fn decide(&self, req: &AuthorizationRequest, who: Option<&Authenticated>) -> Result<Interaction, OAuthError> {
        let Some(who) = who else {
            if req.prompt.none {
                return Err(OAuthError::LoginRequired("the user is not signed in".into()));
            }
            return Ok(Interaction::Login);
        };
        Ok(match decide::assess(&self.inner, req, who, false).await? {
            Decision::Login => Interaction::Login,
            Decision::StepUp(level) => Interaction::StepUp(level),
            Decision::Consent => Interaction::Consent(consent::begin_consent(&self.inner, req, who).await?),
            Decision::Issue => Interaction::Respond(decide::issue_code(&self.inner, req, who).await?),
        })
    }

    /// The user answered a consent screen: see [`consent::give_consent`].
    pub async fn give_consent(&self, handle: &str, who: &Authenticated, approved: bool) -> Result<ConsentOutcome, OAuthError> {
        consent::give_consent(&self.inner, handle, who, approved).await
    }

    // ---------------------------------------------------------------- token endpoint

    /// Authenticates the client at the token, introspection or revocation endpoint.
    pub async fn authenticate_client(&self, p: &PresentedClient) -> Result<Client, OAuthError> {
        client_auth::authenticate(&self.inner, p).await
    }

    /// The token endpoint.
    pub async fn token(&self, params: &TokenParams, presented: &PresentedClient) -> Result<TokenReply, OAuthError> {
        token::exchange(&self.inner, params, presented).await
    }

    /// Queues back-channel logout tokens for the clients of `grants` that registered a
    /// back-channel logout URI (the outbox consumer's `LogoutQueue`).
    pub async fn queue_backchannel_logouts(&self, grants: &[crate::oauth::model::Grant]) -> Result<(), OAuthError> {
        logout::notify_backchannel(&self.inner, grants).await
    }

    // ---------------------------------------------------------------- resource endpoints

    /// Verifies an access token issued here: signature, `typ`, issuer, expiry, revocation.
    pub async fn verify_access_token(&self, token: &str) -> Result<VerifiedAccessToken, OAuthError> {
        introspect::verify_access_token(&self.inner, token).await
    }

    /// Userinfo (OIDC Core §5.3): claims by scope for the token's user.
    pub async fn userinfo(&self, token: &str) -> Result<Value, OAuthError> {
        introspect::userinfo(&self.inner, token).await
    }

    /// Introspection (RFC 7662). The caller must be an authenticated client.
    pub async fn introspect(&self, caller: &Client, token: &str) -> Result<Value, OAuthError> {
        introspect::introspect(&self.inner, caller, token).await
    }

    /// Revocation (RFC 7009): a refresh token revokes its whole grant; an access token is
    /// revoked until it expires. Tokens of other clients and unknown tokens are ignored.
    pub async fn revoke(&self, caller: &Client, token: &str) -> Result<(), OAuthError> {
        introspect::revoke(&self.inner, caller, token).await
    }

    /// Checks a bearer token presented at the admin API; returns the administrator
    /// (see [`admin_token`]).
    pub async fn verify_admin_token(&self, token: &str) -> Result<UserId, CoreError> {
        admin_token::verify_admin_token(&self.inner, token).await
    }

    /// Security events after `after` that concern `client`, each signed for it (the
    /// revocation feed).
    pub async fn security_events(&self, client: &Client, after: Option<i64>, limit: u32) -> Result<FeedBatch, OAuthError> {
        events::feed(&self.inner, client, after, limit).await
    }

    // ---------------------------------------------------------------- logout

    /// Decides RP-initiated logout for `signed_in` (the user of the request's session, if
    /// any): sign out and redirect only for a fresh hint about that user and a registered
    /// redirect; otherwise ask the user (with the validated redirect, if any).
    pub async fn end_session(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
        signed_in: Option<UserId>,
    ) -> Result<EndSession, OAuthError> {
        logout::end_session(&self.inner, id_token_hint, client_id, post_logout_redirect_uri, state, signed_in).await
    }

    // ---------------------------------------------------------------- maintenance

    /// Deletes expired codes, tokens and replay records, and keys past retention.
    pub async fn purge(&self) -> Result<u64, CoreError> {
        let now = self.now();
        let n = self.inner.store.purge_expired_oauth(now).await? + self.inner.store.purge_expired_consents(now).await?;
        let k = self.inner.keys.purge_retired(now, self.inner.config.key_retention()).await?;
        Ok(n + k)
    }

    /// Rotates the signing keys (admin API, CLI) at the provider's clock.
    pub async fn rotate_keys(&self) -> Result<(), CoreError> {
        self.inner.keys.rotate(self.now()).await
    }
}
