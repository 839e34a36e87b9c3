//! The only crate that knows HTTP: the router, thin handlers, server-rendered pages, request
//! context (client IP behind trusted proxies, cookies, CSRF), extractors for the session,
//! CSRF-checked bodies and the admin API caller ([`extract`]), security headers, and the one
//! mapping from errors to HTTP responses ([`error`]).

pub mod admin;
pub mod admin_idps;
pub mod context;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod oauth;
pub mod params;
mod pages;
mod render;
pub mod security;
pub mod url;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use ipnet::IpNet;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::accounts::Accounts;
use tessera_core::oauth::provider::{Provider, paths};
use tessera_core::vault::Vault;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

/// Largest request body accepted by any page (forms are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the web layer needs to know, validated once at start.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The issuer URL (scheme, host, port): `https` makes cookies `Secure` and adds HSTS.
    pub issuer: String,
    /// Whether people may create their own accounts.
    pub signup_enabled: bool,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies).
    pub trusted_proxies: Vec<IpNet>,
    /// Key for CSRF tokens (derived from the server's secret key).
    pub csrf_key: [u8; 32],
    /// Minimum password length shown in hints.
    pub min_password_chars: usize,
    /// How long a request may take before it is answered with 408.
    pub request_timeout: Duration,
    /// SHA-256 of the admin API key, if one is configured.
    pub admin_api_key_hash: Option<tessera_core::secret::TokenHash>,
}

impl WebConfig {
    /// Whether the issuer is served over TLS.
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    accounts: Accounts,
    provider: Provider,
    config: WebConfig,
    email: Option<tessera_core::mail::flows::EmailFlows>,
    vault: Option<Vault>,
    federation: Option<tessera_core::federation::Federation>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("config", &self.inner.config.issuer).finish()
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(accounts: Accounts, provider: Provider, config: WebConfig) -> Self {
        Self { inner: Arc::new(Inner { accounts, provider, config, email: None, vault: None, federation: None }) }
    }
    /// The same state with one optional part changed.
    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = (*self.inner).clone();
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }
    /// Adds the e-mail flows (password reset); without them those pages answer 404.
    pub fn with_email(self, email: tessera_core::mail::flows::EmailFlows) -> Self {
        self.with(|i| i.email = Some(email))
    }
    /// The e-mail flows, when mail is set up.
    pub fn email(&self) -> Option<&tessera_core::mail::flows::EmailFlows> {
        self.inner.email.as_ref()
    }
    /// The same state with the credential vault (the account page lists and drops kept
    /// upstream tokens).
    pub fn with_vault(self, vault: Vault) -> Self {
        self.with(|i| i.vault = Some(vault))
    }
    /// The credential vault, if there is one.
    pub fn vault(&self) -> Option<&Vault> {
        self.inner.vault.as_ref()
    }
    /// Adds upstream sign-in (federation).
    pub fn with_federation(self, federation: tessera_core::federation::Federation) -> Self {
        self.with(|i| i.federation = Some(federation))
    }
    /// Upstream sign-in, when configured.
    pub fn federation(&self) -> Option<&tessera_core::federation::Federation> {
        self.inner.federation.as_ref()
    }
    /// The OAuth provider.
    pub fn provider(&self) -> &Provider {
        &self.inner.provider
    }
    /// The account flows.
    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }
    /// The web configuration.
    pub fn config(&self) -> &WebConfig {
        &self.inner.config
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let timeout = state.config().request_timeout;
    let cors = Router::new()
        .route(paths::JWKS, get(oauth::resource::jwks).options(oauth::cors::preflight))
        .route(paths::TOKEN, post(oauth::token::token).options(oauth::cors::preflight))
        .route(paths::USERINFO, get(oauth::resource::userinfo).post(oauth::resource::userinfo).options(oauth::cors::preflight))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), oauth::cors::layer));
    // Every browser form and page endpoint: cross-site state-changing requests are refused
    // here, by construction, before any handler runs.
    let pages = Router::new()
        .route("/", get(pages::account::root))
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route("/login/forgot", get(pages::email::forgot_show).post(pages::email::forgot_submit))
        .route("/login/reset", get(pages::email::reset_show).post(pages::email::reset_submit))
        .route("/login/email", get(pages::email_sign_in::ask_show).post(pages::email_sign_in::ask_submit))
        .route("/login/email/code", post(pages::email_sign_in::code_submit))
        .route("/login/email/link", get(pages::email_sign_in::link_show).post(pages::email_sign_in::link_submit))
        .route("/email/verify", get(pages::verify::show).post(pages::verify::confirm))
        .route("/account/email/verify", post(pages::verify::send))
        .route("/login/mfa", get(pages::mfa::show).post(pages::mfa::submit))
        .route("/login/passkey/options", post(pages::mfa::passwordless_options))
        .route("/login/passkey", post(pages::mfa::passwordless_finish))
        .route("/login/mfa/passkey/options", post(pages::mfa::second_factor_options))
        .route("/login/mfa/passkey", post(pages::mfa::second_factor_finish))
        .route("/account/totp", post(pages::factors::totp_start))
        .route("/account/totp/confirm", post(pages::factors::totp_confirm))
        .route("/account/totp/delete", post(pages::factors::totp_delete))
        .route("/account/recovery-codes", post(pages::factors::recovery_regenerate))
        .route("/account/passkeys/options", post(pages::factors::passkey_options))
        .route("/account/passkeys", post(pages::factors::passkey_register))
        .route("/account/passkeys/{id}/rename", post(pages::factors::passkey_rename))
        .route("/account/passkeys/{id}/delete", post(pages::factors::passkey_delete))
        .route("/signup", get(pages::signup::show).post(pages::signup::submit))
        .route("/setup", get(pages::setup::show).post(pages::setup::submit))
        .route("/account", get(pages::account::show))
        .route("/account/password", post(pages::account::change_password))
        .route("/account/sessions/{handle}/end", post(pages::account::end_session))
        .route("/account/upstream-tokens/{provider}/drop", post(pages::upstream_tokens::drop_tokens))
        .route("/password/strength", post(pages::assets::strength))
        .route("/login/upstream/{name}", get(pages::upstream::start))
        .route("/login/upstream/{name}/callback", get(pages::upstream::callback))
        .route("/login/link", get(pages::upstream::link_show).post(pages::upstream::link_submit))
        .route("/account/identities/{id}/unlink", post(pages::identities::unlink))
        .route("/oauth2/consent", post(oauth::authorize::consent))
        .route("/oauth2/logout/confirm", post(oauth::logout::confirm))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), csrf::same_origin_only));
    Router::new()
        .merge(cors)
        .merge(pages)
        .route("/healthz", get(pages::health::healthz))
        .route("/readyz", get(pages::health::readyz))
        .route("/static/tessera.css", get(pages::assets::stylesheet))
        .route("/static/form_post.js", get(pages::assets::form_post_script))
        .route("/static/pow.js", get(pages::assets::pow_script))
        .route("/static/strength.js", get(pages::assets::strength_script))
        .route("/static/webauthn.js", get(pages::assets::webauthn_script))
        .route("/.well-known/openid-configuration", get(oauth::resource::discovery))
        .route("/.well-known/oauth-authorization-server", get(oauth::resource::discovery))
        .route(paths::AUTHORIZE, get(oauth::authorize::get).post(oauth::authorize::post))
        .route(paths::INTROSPECT, post(oauth::token::introspect))
        .route(paths::REVOKE, post(oauth::token::revoke))
        .route(paths::END_SESSION, get(oauth::logout::get).post(oauth::logout::post))
        .route("/events/v1/stream", get(oauth::events::stream))
        .merge(admin::routes(state.clone()))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(state)
}
