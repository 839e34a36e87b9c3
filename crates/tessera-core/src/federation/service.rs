//! `Federation`: managing providers (client secrets sealed), starting an upstream sign-in
//! (`state`, `nonce`, PKCE S256, bound to the browser by a cookie), and the user's linked
//! identities (list, unlink — never the last way in).

use super::client::UpstreamClient;
use super::metadata::MetadataCache;
use super::model::{IdentityId, NewProvider, ProviderId, ProviderKind, ProviderRecord, UpstreamLogin};
use crate::accounts::SignInPort;
use super::store::FederationStore;
use crate::CoreError;
use crate::audit::AuditKind;
use crate::clock::SharedClock;
use crate::ids::UserId;
use crate::jose::KeySealer;
use crate::secret::{SecretToken, TokenHash};
use crate::session::RequestContext;
use crate::store::StoreError;
use crate::upstream::{TokenKeeper, UpstreamSecret};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use time::Duration;
use url::Url;

/// How long a sign-in sent upstream waits for its callback.
pub const UPSTREAM_LOGIN_LIFETIME: Duration = Duration::minutes(10);

/// Settings.
#[derive(Clone)]
pub struct FederationSettings {
    /// Our issuer (callback URLs are built from it, never from a request).
    pub issuer: String,
    /// Seals client secrets (the federation purpose key).
    pub sealer: Arc<KeySealer>,
}

/// The federation service.
#[derive(Clone)]
pub struct Federation {
    pub(super) store: Arc<dyn FederationStore>,
    pub(super) client: Arc<dyn UpstreamClient>,
    pub(super) accounts: Arc<dyn SignInPort>,
    pub(super) clock: SharedClock,
    pub(super) settings: FederationSettings,
    pub(super) cache: Arc<MetadataCache>,
    pub(super) keeper: Option<Arc<dyn TokenKeeper>>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation").field("issuer", &self.settings.issuer).finish_non_exhaustive()
    }
}

/// A provider as the admin API, the CLI and the login page show it (no secret).
#[derive(Debug, Clone, Serialize)]
pub struct ProviderView {
    /// Its id.
    pub id: ProviderId,
    /// Its name.
    pub name: String,
    /// `oidc` or `oauth2`.
    pub kind: &'static str,
    /// The issuer (OIDC).
    pub issuer: Option<String>,
    /// Our client id there.
    pub client_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Claimed domains.
    pub domains: Vec<String>,
    /// Flags.
    pub jit: bool,
    /// Flags.
    pub trust_email: bool,
    /// Flags.
    pub vault_tokens: bool,
    /// Flags.
    pub enabled: bool,
    /// What must be registered at the provider.
    pub callback_url: String,
}

/// A started upstream sign-in: where to send the browser, and the secret for the cookie
/// that binds the sign-in to it.
#[derive(Debug)]
pub struct Begun {
    /// The provider's authorization URL.
    pub redirect: Url,
    /// The browser-binding secret (cookie only).
    pub browser: SecretToken,
}

/// The PKCE verifier of a sign-in: derived from the browser-binding secret, so only the
/// browser that started it can complete it and nothing recoverable is stored.
pub(super) fn pkce_verifier(browser: &SecretToken) -> String {
    URL_SAFE_NO_PAD.encode(TokenHash::of(format!("tessera-pkce:{}", browser.expose()).as_bytes()).as_bytes())
}

impl Federation {
    /// Builds the service.
    pub fn new(
        store: Arc<dyn FederationStore>,
        client: Arc<dyn UpstreamClient>,
        accounts: Arc<dyn SignInPort>,
        clock: SharedClock,
        settings: FederationSettings,
    ) -> Self {
        Self { store, client, accounts, clock, settings, cache: Arc::new(MetadataCache::default()), keeper: None }
    }

    /// Keeps upstream tokens of providers configured with `vault_tokens` through `keeper`.
    pub fn with_token_keeper(mut self, keeper: Arc<dyn TokenKeeper>) -> Self {
        self.keeper = Some(keeper);
        self
    }

    /// The callback URL of provider `name`.
    pub fn callback_url(&self, name: &str) -> String {
        format!("{}/login/upstream/{name}/callback", self.settings.issuer.trim_end_matches('/'))
    }

    pub(super) fn view(&self, p: &ProviderRecord) -> ProviderView {
        ProviderView {
            id: p.id,
            name: p.name.as_str().to_owned(),
            kind: p.kind.as_str(),
            issuer: match &p.kind {
                ProviderKind::Oidc { issuer } => Some(issuer.clone()),
                ProviderKind::OAuth2 { .. } => None,
            },
            client_id: p.client_id.clone(),
            scopes: p.scopes.clone(),
            domains: p.domains.clone(),
            jit: p.jit,
            trust_email: p.trust_email,
            vault_tokens: p.vault_tokens,
            enabled: p.enabled,
            callback_url: self.callback_url(p.name.as_str()),
        }
    }

    /// Adds a provider; its client secret is sealed before it is stored.
    pub async fn create_provider(&self, new: NewProvider, ctx: &RequestContext) -> Result<ProviderView, CoreError> {
        if new.client_id.is_empty() || new.client_id.len() > 255 {
            return Err(CoreError::Invalid("A client id is required.".into()));
        }
        if new.client_secret.expose().is_empty() {
            return Err(CoreError::Invalid("A client secret is required.".into()));
        }
        let mut domains = Vec::new();
        for d in &new.domains {
            let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
            if d.is_empty() || !d.contains('.') || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
                return Err(CoreError::Invalid(format!("Not a domain: {d}")));
            }
            domains.push(d);
        }
        let scopes = if new.scopes.is_empty() {
            match new.kind {
                ProviderKind::Oidc { .. } => vec!["openid".into(), "email".into(), "profile".into()],
                ProviderKind::OAuth2 { .. } => vec![],
            }
        } else {
            new.scopes.clone()
        };
        if let ProviderKind::Oidc { issuer } = &new.kind {
            super::model::check_upstream_url(issuer)?;
            if !scopes.iter().any(|s| s == "openid") {
                return Err(CoreError::Invalid("An OpenID Connect provider needs the openid scope.".into()));
            }
        }
        let id = ProviderId::new();
        let record = ProviderRecord {
            id,
            name: new.name,
            kind: new.kind,
            client_id: new.client_id,
            client_secret_sealed: self.settings.sealer.seal(&id.to_string(), new.client_secret.expose().as_bytes())?,
            scopes,
            domains,
            jit: new.jit,
            trust_email: new.trust_email,
            vault_tokens: new.vault_tokens,
            enabled: true,
            created_at: self.clock.now(),
        };
        match self.store.create_upstream_provider(&record).await {
            Err(StoreError::Conflict(_)) => return Err(CoreError::Conflict("provider name")),
            r => r?,
        }
        self.accounts
            .audit(AuditKind::IdpCreated, None, ctx, json!({"provider": record.name.as_str(), "kind": record.kind.as_str()}))
            .await;
        Ok(self.view(&record))
    }

    /// Every provider.
    pub async fn list_providers(&self) -> Result<Vec<ProviderView>, CoreError> {
        Ok(self.store.list_upstream_providers().await?.iter().map(|p| self.view(p)).collect())
    }

    /// The enabled providers' names (the login page's buttons).
    pub async fn enabled_provider_names(&self) -> Result<Vec<String>, CoreError> {
        Ok(self.store.list_upstream_providers().await?.into_iter().filter(|p| p.enabled).map(|p| p.name.as_str().to_owned()).collect())
    }

    /// The enabled provider claiming the domain of `login` when it is an e-mail address.
    pub async fn provider_for_login(&self, login: &str) -> Result<Option<String>, CoreError> {
        let Some((_, domain)) = login.trim().rsplit_once('@') else { return Ok(None) };
        let domain = domain.to_ascii_lowercase();
        Ok(self
            .store
            .list_upstream_providers()
            .await?
            .into_iter()
            .find(|p| p.enabled && p.domains.contains(&domain))
            .map(|p| p.name.as_str().to_owned()))
    }

    /// Deletes a provider (its identities and sign-ins in flight go with it).
    pub async fn delete_provider(&self, name: &str, ctx: &RequestContext) -> Result<(), CoreError> {
        let Some(p) = self.store.find_upstream_provider(name).await? else { return Err(CoreError::NotFound) };
        if !self.store.delete_upstream_provider(name).await? {
            return Err(CoreError::NotFound);
        }
        self.cache.forget(p.id);
        self.accounts.audit(AuditKind::IdpDeleted, None, ctx, json!({"provider": name})).await;
        Ok(())
    }

    pub(super) async fn enabled_provider(&self, name: &str) -> Result<ProviderRecord, CoreError> {
        match self.store.find_upstream_provider(name).await? {
            Some(p) if p.enabled => Ok(p),
            _ => Err(CoreError::NotFound),
        }
    }

    pub(super) fn client_secret(&self, p: &ProviderRecord) -> Result<UpstreamSecret, CoreError> {
        let plain = self.settings.sealer.open(&p.id.to_string(), &p.client_secret_sealed)?;
        String::from_utf8(plain).map(UpstreamSecret::new).map_err(|_| CoreError::Internal("client secret is not UTF-8".into()))
    }

    /// Starts a sign-in at provider `name`: records the hashed `state` and `nonce` bound to
    /// a new browser secret, and returns the provider's authorization URL (PKCE S256).
    /// `return_to` is where the user goes afterwards (a local path, already checked).
    pub async fn begin(&self, name: &str, return_to: &str) -> Result<Begun, CoreError> {
        let p = self.enabled_provider(name).await?;
        let now = self.clock.now();
        let e = self.cache.endpoints(&p, self.client.as_ref(), now).await?;
        let (state, nonce, browser) = (SecretToken::generate()?, SecretToken::generate()?, SecretToken::generate()?);
        self.store
            .create_upstream_login(&UpstreamLogin {
                state_hash: state.hash(),
                browser_hash: browser.hash(),
                provider_id: p.id,
                nonce_hash: nonce.hash(),
                return_to: return_to.to_owned(),
                issuer: e.issuer.clone(),
                expires_at: now + UPSTREAM_LOGIN_LIFETIME,
            })
            .await?;
        let challenge = URL_SAFE_NO_PAD.encode(TokenHash::of(pkce_verifier(&browser).as_bytes()).as_bytes());
        let mut url = e.authorization.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &p.client_id)
                .append_pair("redirect_uri", &self.callback_url(p.name.as_str()))
                .append_pair("state", state.expose())
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if !p.scopes.is_empty() {
                q.append_pair("scope", &p.scopes.join(" "));
            }
            if matches!(p.kind, ProviderKind::Oidc { .. }) {
                q.append_pair("nonce", nonce.expose());
            }
        }
        Ok(Begun { redirect: url, browser })
    }

    /// A user's linked identities.
    pub async fn identities(&self, user: UserId) -> Result<Vec<super::model::FederatedIdentity>, CoreError> {
        Ok(self.store.list_user_identities(user).await?)
    }

    /// Unlinks one of the user's identities, refused ([`CoreError::Invalid`]) when it is the
    /// last way to sign in (no password, no passkey, no other identity). Audited.
    pub async fn unlink(&self, user: UserId, id: IdentityId, ctx: &RequestContext) -> Result<(), CoreError> {
        let mine = self.store.list_user_identities(user).await?;
        let Some(identity) = mine.iter().find(|i| i.id == id) else { return Err(CoreError::NotFound) };
        if !self.store.delete_user_identity_keeping_a_way_in(user, id).await? {
            return Err(CoreError::Invalid(
                "This is your only way to sign in. Set a password or add a passkey before you unlink it.".into(),
            ));
        }
        self.accounts
            .audit(AuditKind::IdentityUnlinked, Some(user), ctx, json!({"provider": identity.provider_name, "subject": identity.subject}))
            .await;
        Ok(())
    }

    /// Deletes lapsed sign-ins in flight and pending links.
    pub async fn purge_expired(&self) -> Result<u64, CoreError> {
        Ok(self.store.purge_expired_upstream(self.clock.now()).await?)
    }
}
