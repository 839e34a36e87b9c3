//! The provider's flows, one method per endpoint decision: validate an authorization
//! request, decide what it needs (login, consent, or a code), redeem grants at the token
//! endpoint, mint tokens, answer userinfo, introspection, revocation and logout.

use crate::accounts::Authenticated;
use crate::clock::SharedClock;
use crate::ids::UserId;
use crate::jose::{self, JwsAlg, JwsError};
use crate::mfa::level::{ACR_VALUES_SUPPORTED, AuthLevel, acr_claim, requested_level};
use crate::oauth::OAuthError;
use crate::oauth::admin_access::{check_admin_user, request_audience};
use crate::oauth::client::{AuthMethod, Client, ClientId, ClientRegistration, GrantType};
use crate::oauth::grant_policy::GrantPolicy;
use crate::oauth::keys::KeyRing;
use crate::oauth::model::{
    AuthorizationCode, CodeConsumption, Grant, IssuedAccessToken, LogoutDelivery, NewRefreshToken,
    RefreshRotation, SecurityEvent, SecurityEventKind,
};
use crate::oauth::scope::Scopes;
use crate::oauth::visibility;
use crate::secret::{SecretToken, TokenHash, constant_time_eq};
use crate::store::{OAuthStore, Store};
use crate::user::User;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod logout;

/// Provider settings.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Issuer URL (no trailing slash).
    pub issuer: String,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// ID token lifetime.
    pub id_token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_token_ttl: Duration,
    /// Authorization code lifetime (60 s).
    pub code_ttl: Duration,
    /// API resources (RFC 8707 `resource` values) tokens may be issued for.
    pub resources: Vec<String>,
    /// Absolute grant lifetime and the session timeouts grants end with.
    pub grants: GrantPolicy,
    /// Whether back-channel logout URIs may point at private, loopback or link-local
    /// addresses (development and tests only; see [`super::target`]).
    pub allow_private_backchannel: bool,
}

impl ProviderConfig {
    /// Defaults for `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            access_token_ttl: Duration::minutes(5),
            id_token_ttl: Duration::minutes(5),
            refresh_token_ttl: Duration::days(30),
            code_ttl: Duration::seconds(60),
            resources: Vec::new(),
            grants: GrantPolicy::default(),
            allow_private_backchannel: false,
        }
    }
    /// `<issuer><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
    /// How long retired keys stay published: the longest token a key may have signed.
    pub fn key_retention(&self) -> Duration {
        self.access_token_ttl.max(self.id_token_ttl) + Duration::minutes(5)
    }
}

/// Endpoint paths.
pub mod paths {
    /// Authorization endpoint.
    pub const AUTHORIZE: &str = "/oauth2/authorize";
    /// Token endpoint.
    pub const TOKEN: &str = "/oauth2/token";
    /// Userinfo endpoint.
    pub const USERINFO: &str = "/oauth2/userinfo";
    /// JWKS.
    pub const JWKS: &str = "/oauth2/jwks";
    /// Introspection.
    pub const INTROSPECT: &str = "/oauth2/introspect";
    /// Revocation.
    pub const REVOKE: &str = "/oauth2/revoke";
    /// RP-initiated logout.
    pub const END_SESSION: &str = "/oauth2/logout";
}

/// Raw authorization request parameters (GET query or POST form).
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
pub struct AuthorizeParams {
    /// `response_type`.
    pub response_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// `prompt`.
    pub prompt: Option<String>,
    /// `max_age`.
    pub max_age: Option<String>,
    /// `id_token_hint`.
    pub id_token_hint: Option<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// `response_mode`.
    pub response_mode: Option<String>,
    /// `resource` (RFC 8707; repeatable).
    #[serde(default)]
    pub resource: Vec<String>,
    /// `acr_values`.
    pub acr_values: Option<String>,
    /// `ui_locales` (accepted, unused).
    pub ui_locales: Option<String>,
    /// `display` (accepted, unused).
    pub display: Option<String>,
    /// `request` (not supported).
    pub request: Option<String>,
    /// `request_uri` (not supported).
    pub request_uri: Option<String>,
    /// `claims` (accepted, unused).
    pub claims: Option<String>,
}

/// How the authorization response travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// Query parameters on a 303 redirect.
    Query,
    /// An auto-submitting HTML form (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

/// An authorization response (success or error) to deliver to the client.
#[derive(Debug, Clone)]
pub struct AuthorizationResponse {
    /// The (validated) redirect URI.
    pub redirect_uri: String,
    /// How to deliver it.
    pub mode: ResponseMode,
    /// The parameters, including `state` and `iss`.
    pub params: Vec<(String, String)>,
}

/// An authorization request that cannot proceed.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page, never redirect.
    Untrusted(String),
    /// Send the error to the client's redirect URI.
    Redirect(AuthorizationResponse),
    /// The storage is out of reach before the redirect URI could be checked: show people an
    /// honest "try again shortly" page (503).
    Unavailable,
}

/// `prompt` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`.
    pub none: bool,
    /// `login`.
    pub login: bool,
    /// `consent`.
    pub consent: bool,
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: Client,
    /// Redirect URI (matched).
    pub redirect_uri: String,
    /// Response mode.
    pub mode: ResponseMode,
    /// Scopes requested.
    pub scope: Scopes,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// Subject named by a valid `id_token_hint`.
    pub hint_subject: Option<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// Audiences.
    pub audience: Vec<String>,
    /// `acr_values`, in order of preference.
    pub acr_values: Vec<String>,
    /// The assurance level the sign-in must reach (the client's `require_mfa`, the
    /// requested `acr_values`).
    pub required_level: AuthLevel,
    /// The parameters it was validated from (kept with a pending consent).
    pub params: AuthorizeParams,
}

/// What an authorization request needs next.
#[derive(Debug)]
pub enum Interaction {
    /// The user must sign in (again).
    Login,
    /// The session is signed in but does not reach this level: ask for what is missing.
    StepUp(AuthLevel),
    /// The user must consent: the consent screen's handle (its request is stored).
    Consent(crate::oauth::consent::ConsentTicket),
    /// Done: deliver this response.
    Respond(AuthorizationResponse),
}

/// What a signed-in user's authorization request needs (before any side effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Login,
    StepUp(AuthLevel),
    Consent,
    Issue,
}

/// A token endpoint request.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TokenParams {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `code_verifier`.
    pub code_verifier: Option<String>,
    /// `refresh_token`.
    pub refresh_token: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `resource`.
    #[serde(default)]
    pub resource: Vec<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `client_secret`.
    pub client_secret: Option<String>,
    /// `client_assertion_type`.
    pub client_assertion_type: Option<String>,
    /// `client_assertion`.
    pub client_assertion: Option<String>,
}

/// Client credentials as presented.
#[derive(Debug, Clone, Default)]
pub struct PresentedClient {
    /// From HTTP Basic: (client_id, secret), already form-decoded.
    pub basic: Option<(String, String)>,
    /// `client_id` form parameter.
    pub client_id: Option<String>,
    /// `client_secret` form parameter.
    pub client_secret: Option<String>,
    /// `client_assertion_type`.
    pub assertion_type: Option<String>,
    /// `client_assertion`.
    pub assertion: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token (JWT).
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Rotated refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// ID token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Granted scope.
    pub scope: String,
}

/// Claims of a verified access token.
#[derive(Debug, Clone)]
pub struct AccessClaims {
    /// All claims.
    pub claims: Map<String, Value>,
    /// `sub`.
    pub sub: String,
    /// `client_id`.
    pub client_id: String,
    /// `scope`.
    pub scope: Scopes,
    /// `jti`.
    pub jti: String,
    /// `exp`.
    pub exp: i64,
}

/// What RP-initiated logout should do.
#[derive(Debug)]
pub enum EndSession {
    /// Sign out, then redirect here (with `state`).
    SignOutAndRedirect {
        /// Where to go.
        uri: String,
        /// `state`.
        state: Option<String>,
    },
    /// Ask the user first (no fresh `id_token_hint` about the signed-in user); redirect target if the request named one validly.
    Confirm {
        /// Validated redirect, if any.
        redirect: Option<(String, Option<String>)>,
    },
}

/// The provider.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn OAuthStore>,
    users: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    clock: SharedClock,
    config: ProviderConfig,
    clients: ClientCache,
    discovery: Arc<str>,
}

/// Recently read clients, so the token endpoint does not read the client row on every
/// request. Entries live one second (other nodes' changes are seen within that); this
/// node's own registrations and deletions invalidate at once.
#[derive(Default)]
struct ClientCache {
    entries: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, Option<Client>)>>,
}

const CLIENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
const CLIENT_CACHE_MAX: usize = 10_000;

impl ClientCache {
    fn get(&self, id: &str) -> Option<Option<Client>> {
        let map = self.entries.read().ok()?;
        let (at, c) = map.get(id)?;
        (at.elapsed() < CLIENT_CACHE_TTL).then(|| c.clone())
    }
    fn put(&self, id: &str, c: Option<Client>) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= CLIENT_CACHE_MAX {
                map.retain(|_, (at, _)| at.elapsed() < CLIENT_CACHE_TTL);
                if map.len() >= CLIENT_CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(id.to_owned(), (std::time::Instant::now(), c));
        }
    }
    fn forget(&self, id: &str) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(id);
        }
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("issuer", &self.inner.config.issuer).finish()
    }
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLOCK_LEEWAY: i64 = 60;

pub(crate) fn random_id() -> Result<String, OAuthError> {
    let mut b = [0u8; 16];
    crate::secret::fill_random(&mut b)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn audience_value(aud: &[String]) -> Value {
    match aud {
        [one] => Value::String(one.clone()),
        many => json!(many),
    }
}

/// `at_hash`: left half of the hash of the access token, with the ID token's hash.
fn at_hash(alg: JwsAlg, access_token: &str) -> String {
    let d = match alg {
        JwsAlg::EdDSA => digest::digest(&digest::SHA512, access_token.as_bytes()),
        JwsAlg::ES256 | JwsAlg::RS256 => digest::digest(&digest::SHA256, access_token.as_bytes()),
    };
    let half = d.as_ref().get(..d.as_ref().len() / 2).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(half)
}

/// Parses a JWS that claims to be an ID token: our ID tokens carry `typ: JWT`; access,
/// logout and security event tokens (`at+jwt`, `logout+jwt`, `secevent+jwt`) are not hints.
fn parse_id_token(token: &str) -> Option<jose::UnverifiedJws> {
    let jws = jose::parse(token).ok()?;
    let typ = jws.header.get("typ").and_then(Value::as_str).unwrap_or("JWT");
    typ.eq_ignore_ascii_case("JWT").then_some(jws)
}

fn is_pkce_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl Provider {
    /// Builds the provider.
    pub fn new(store: Arc<dyn OAuthStore>, users: Arc<dyn Store>, keys: Arc<KeyRing>, clock: SharedClock, config: ProviderConfig) -> Self {
        let discovery = Arc::from(discovery_document(&config).to_string());
        Self { inner: Arc::new(Inner { store, users, keys, clock, config, clients: ClientCache::default(), discovery }) }
    }

    /// A client by id, through the one-second cache.
    async fn client(&self, id: &str) -> Result<Option<Client>, crate::store::StoreError> {
        if let Some(hit) = self.inner.clients.get(id) {
            return Ok(hit);
        }
        let c = self.inner.store.find_client(&ClientId::new(id)).await?;
        self.inner.clients.put(id, c.clone());
        Ok(c)
    }

    /// Settings.
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// The account store (users, sessions).
    pub(crate) fn users(&self) -> &Arc<dyn Store> {
        &self.inner.users
    }

    /// The key ring.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.inner.keys
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    // ---------------------------------------------------------------- discovery

    /// The OpenID Provider / RFC 8414 metadata, serialised once.
    pub fn discovery_json(&self) -> Arc<str> {
        self.inner.discovery.clone()
    }

    /// The OpenID Provider / RFC 8414 metadata.
    pub fn discovery(&self) -> Value {
        discovery_document(&self.inner.config)
    }

    // ---------------------------------------------------------------- clients

    /// Registers a client; returns it and its secret (shown once).
    pub async fn register_client(&self, reg: ClientRegistration) -> Result<(Client, Option<String>), crate::CoreError> {
        if let Some(uri) = &reg.backchannel_logout_uri {
            super::target::check_backchannel_uri(uri, self.inner.config.allow_private_backchannel)?;
        }
        let new = reg.validate(self.now())?;
        if let Some(r) = new.client.resource.as_ref().filter(|r| !self.inner.config.resources.contains(r)) {
            return Err(crate::CoreError::Invalid(format!("resource {r:?} is not one of the configured resources")));
        }
        self.inner.store.create_client(&new.client).await?;
        self.inner.clients.forget(new.client.id.as_str());
        Ok((new.client, new.secret))
    }

    /// Finds a client.
    pub async fn find_client(&self, id: &str) -> Result<Option<Client>, crate::CoreError> {
        Ok(self.client(id).await?)
    }

    /// Lists clients.
    pub async fn list_clients(&self) -> Result<Vec<Client>, crate::CoreError> {
        Ok(self.inner.store.list_clients().await?)
    }

    /// Deletes a client.
    pub async fn delete_client(&self, id: &str) -> Result<(), crate::CoreError> {
        self.inner.clients.forget(id);
        let deleted = self.inner.users.delete_client_revoking_grants(&ClientId::new(id), self.now()).await.map(drop).map_err(|e| match e {
            crate::store::StoreError::NotFound => crate::CoreError::NotFound,
            other => other.into(),
        });
        self.inner.clients.forget(id);
        deleted
    }

    // ---------------------------------------------------------------- authorization

    fn response(&self, redirect_uri: &str, mode: ResponseMode, mut params: Vec<(String, String)>, state: Option<&str>) -> AuthorizationResponse {
        if let Some(s) = state {
            params.push(("state".into(), s.to_owned()));
        }
        params.push(("iss".into(), self.inner.config.issuer.clone()));
        AuthorizationResponse { redirect_uri: redirect_uri.to_owned(), mode, params }
    }

    /// The error response for a validated request.
    pub fn error_response(&self, req: &AuthorizationRequest, err: &OAuthError) -> AuthorizationResponse {
        self.response(
            &req.redirect_uri,
            req.mode,
            vec![("error".into(), err.code().into()), ("error_description".into(), err.description().into())],
            req.state.as_deref(),
        )
    }

    /// Validates an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 9700).
    pub async fn validate_authorization(&self, p: &AuthorizeParams) -> Result<AuthorizationRequest, AuthorizeError> {
        let untrusted = |m: &str| AuthorizeError::Untrusted(m.to_owned());
        let client_id = p.client_id.as_deref().filter(|c| !c.is_empty() && c.len() <= 256).ok_or_else(|| untrusted("The request does not name a client (client_id)."))?;
        let client = match self.client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(untrusted("The application that sent you here is not registered.")),
            Err(e) => {
                tracing::error!(error = %e, "client lookup failed");
                if matches!(e, crate::store::StoreError::Unavailable(_)) {
                    return Err(AuthorizeError::Unavailable);
                }
                return Err(untrusted("The request could not be checked. Please try again."));
            }
        };
        let redirect_uri = p
            .redirect_uri
            .as_deref()
            .ok_or_else(|| untrusted("The request does not name a redirect URI."))?;
        let redirect_uri = client
            .match_redirect_uri(redirect_uri)
            .ok_or_else(|| untrusted("The redirect URI is not registered for this application."))?;
        // From here on, errors go back to the client.
        let state = p.state.clone();
        let mode = match p.response_mode.as_deref() {
            None | Some("query") => ResponseMode::Query,
            Some("form_post") => ResponseMode::FormPost,
            Some(_) => {
                return Err(AuthorizeError::Redirect(self.response(
                    &redirect_uri,
                    ResponseMode::Query,
                    vec![("error".into(), "invalid_request".into()), ("error_description".into(), "unsupported response_mode".into())],
                    state.as_deref(),
                )));
            }
        };
        let fail = |e: OAuthError| {
            AuthorizeError::Redirect(self.response(
                &redirect_uri,
                mode,
                vec![("error".into(), e.code().into()), ("error_description".into(), e.description().into())],
                state.as_deref(),
            ))
        };
        if state.as_ref().is_some_and(|s| s.len() > 2048) {
            return Err(fail(OAuthError::request("state is too long")));
        }
        if p.request.is_some() {
            return Err(fail(OAuthError::RequestNotSupported("request objects are not supported".into())));
        }
        if p.request_uri.is_some() {
            return Err(fail(OAuthError::RequestUriNotSupported("request_uri is not supported".into())));
        }
        match p.response_type.as_deref() {
            Some("code") => {}
            None => return Err(fail(OAuthError::request("response_type is required"))),
            Some(other) => {
                return Err(fail(OAuthError::UnsupportedResponseType(format!("response_type {other:?} is not supported; use code"))));
            }
        }
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return Err(fail(OAuthError::UnauthorizedClient("the client may not use the authorization code grant".into())));
        }
        let code_challenge = p.code_challenge.clone().ok_or_else(|| fail(OAuthError::request("code_challenge is required (PKCE)")))?;
        match p.code_challenge_method.as_deref() {
            Some("S256") => {}
            None | Some("plain") => return Err(fail(OAuthError::request("code_challenge_method must be S256"))),
            Some(_) => return Err(fail(OAuthError::request("unsupported code_challenge_method; use S256"))),
        }
        if code_challenge.len() != 43 || URL_SAFE_NO_PAD.decode(&code_challenge).is_err() {
            return Err(fail(OAuthError::request("code_challenge must be the base64url SHA-256 of the verifier")));
        }
        let scope = Scopes::parse(p.scope.as_deref().unwrap_or("")).map_err(|e| fail(OAuthError::InvalidScope(e)))?;
        let not_allowed = scope.not_in(&client.allowed_scopes());
        if !not_allowed.is_empty() {
            return Err(fail(OAuthError::InvalidScope(format!("scope not allowed for this client: {}", not_allowed.join(" ")))));
        }
        let mut prompt = Prompt::default();
        for v in p.prompt.as_deref().unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => prompt.login = true,
                other => return Err(fail(OAuthError::request(format!("unsupported prompt value {other:?}")))),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(fail(OAuthError::request("prompt=none cannot be combined with other values")));
        }
        let max_age = match p.max_age.as_deref() {
            Some(m) => Some(m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| fail(OAuthError::request("max_age must be a non-negative integer")))?),
            None => None,
        };
        if p.nonce.as_ref().is_some_and(|n| n.len() > 512) {
            return Err(fail(OAuthError::request("nonce is too long")));
        }
        let audience = request_audience(&self.inner.config, &client, &scope, &p.resource).unwrap_or_else(|| self.resolve_audience(&p.resource)).map_err(fail)?;
        let hint_subject = match p.id_token_hint.as_deref() {
            Some(h) => Some(self.verify_id_token_hint(h, Some(client.id.as_str())).ok_or_else(|| fail(OAuthError::request("id_token_hint is not a valid ID token from this server")))?),
            None => None,
        };
        let acr_values: Vec<String> = p.acr_values.as_deref().unwrap_or("").split(' ').filter(|v| !v.is_empty()).map(str::to_owned).collect();
        if acr_values.len() > 16 || acr_values.iter().any(|v| v.len() > 256) {
            return Err(fail(OAuthError::request("acr_values is too long")));
        }
        let mut required_level = requested_level(&acr_values).unwrap_or(AuthLevel::SingleFactor);
        if client.require_mfa {
            required_level = required_level.max(AuthLevel::MultiFactor);
        }
        Ok(AuthorizationRequest {
            acr_values,
            required_level,
            client,
            redirect_uri,
            mode,
            scope,
            state,
            nonce: p.nonce.clone(),
            code_challenge,
            prompt,
            max_age,
            hint_subject,
            login_hint: p.login_hint.clone().filter(|h| h.len() <= 320),
            audience,
            params: p.clone(),
        })
    }

    fn resolve_audience(&self, resources: &[String]) -> Result<Vec<String>, OAuthError> {
        if resources.is_empty() {
            return Ok(vec![self.inner.config.issuer.clone()]);
        }
        let mut out = Vec::new();
        for r in resources {
            if r.contains('#') || !(r.starts_with("https://") || r.starts_with("http://") || r.starts_with("urn:")) {
                return Err(OAuthError::InvalidTarget(format!("resource {r:?} must be an absolute URI without a fragment")));
            }
            if !self.inner.config.resources.iter().any(|x| x == r) {
                return Err(OAuthError::InvalidTarget(format!("resource {r:?} is not a registered API")));
            }
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        Ok(out)
    }

    /// Verifies an ID token this server issued (signature and issuer; expiry is not
    /// required of a hint) and returns its subject. With `client`, the audience must match.
    pub fn verify_id_token_hint(&self, token: &str, client: Option<&str>) -> Option<String> {
        let keys = self.inner.keys.current();
        let claims = parse_id_token(token)?.verify(keys.verifying_keys(), &JwsAlg::ALL, None).ok()?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.inner.config.issuer.as_str()) {
            return None;
        }
        if let Some(c) = client {
            let aud_ok = match claims.get("aud") {
                Some(Value::String(a)) => a == c,
                Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(c)),
                _ => false,
            };
            if !aud_ok {
                return None;
            }
        }
        if claims.get("typ").is_some() || claims.get("client_id").is_some() && claims.get("nonce").is_none() && claims.get("at_hash").is_none() && claims.get("azp").is_none() {
            // Access tokens are not ID tokens.
            return None;
        }
        claims.get("sub").and_then(Value::as_str).map(str::to_owned)
    }

    /// Decides what a valid request needs, given the signed-in user (if any).
    pub async fn decide(&self, req: &AuthorizationRequest, who: Option<&Authenticated>) -> Result<Interaction, OAuthError> {
        let Some(who) = who else {
            if req.prompt.none {
                return Err(OAuthError::LoginRequired("the user is not signed in".into()));
            }
            return Ok(Interaction::Login);
        };
        Ok(match self.assess(req, who, false).await? {
            Decision::Login => Interaction::Login,
            Decision::StepUp(level) => Interaction::StepUp(level),
            Decision::Consent => Interaction::Consent(self.begin_consent(req, who).await?),
            Decision::Issue => Interaction::Respond(self.issue_code(req, who).await?),
        })
    }

    /// The checks of [`Provider::decide`] for a signed-in user, without side effects;
    /// `consent_given` when the user has just approved this very request.
    pub(crate) async fn assess(&self, req: &AuthorizationRequest, who: &Authenticated, consent_given: bool) -> Result<Decision, OAuthError> {
        let now = self.now();
        // max_age=0 is prompt=login (OIDC Core §3.1.2.1); otherwise the whole elapsed time
        // counts, not its truncation to seconds.
        let too_old = req.max_age.is_some_and(|m| m == 0 || now - who.session.auth_time > Duration::seconds(m));
        let other_user = req.hint_subject.as_ref().is_some_and(|s| *s != who.user.id.to_string());
        if req.prompt.login || too_old || other_user {
            if req.prompt.none {
                return Err(OAuthError::LoginRequired("the user must sign in again".into()));
            }
            return Ok(Decision::Login);
        }
        if AuthLevel::of(&who.session.amr) < req.required_level {
            if req.prompt.none {
                return Err(OAuthError::InteractionRequired("the sign-in must be stronger (a second factor)".into()));
            }
            return Ok(Decision::StepUp(req.required_level));
        }
        if consent_given {
            return Ok(Decision::Issue);
        }
        let consented = match self.inner.store.find_consent(who.user.id, &req.client.id).await? {
            Some(s) => Scopes::parse(&s).is_ok_and(|granted| req.scope.is_subset(&granted)),
            None => false,
        };
        if req.prompt.consent || !(req.client.skip_consent || consented) {
            if req.prompt.none {
                return Err(OAuthError::ConsentRequired("the user has not consented to this client".into()));
            }
            return Ok(Decision::Consent);
        }
        Ok(Decision::Issue)
    }

    pub(crate) async fn issue_code(&self, req: &AuthorizationRequest, who: &Authenticated) -> Result<AuthorizationResponse, OAuthError> {
        check_admin_user(&req.scope.to_string(), &who.user)?;
        let now = self.now();
        let code = SecretToken::generate()?;
        let record = AuthorizationCode {
            hash: code.hash(),
            client_id: req.client.id.clone(),
            user_id: who.user.id,
            sid: who.session.handle,
            redirect_uri: req.redirect_uri.clone(),
            scope: req.scope.to_string(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            auth_time: who.session.auth_time,
            amr: who.session.amr.clone(),
            acr: Some(acr_claim(&who.session.amr, &req.acr_values)),
            audience: req.audience.clone(),
            expires_at: now + self.inner.config.code_ttl,
        };
        self.inner.store.create_authorization_code(&record, now).await?;
        Ok(self.response(&req.redirect_uri, req.mode, vec![("code".into(), code.expose().to_owned())], req.state.as_deref()))
    }

    // ---------------------------------------------------------------- client authentication

    /// Authenticates the client at the token, introspection or revocation endpoint.
    pub async fn authenticate_client(&self, p: &PresentedClient) -> Result<Client, OAuthError> {
        let methods = [p.basic.is_some(), p.client_secret.is_some(), p.assertion.is_some()].iter().filter(|x| **x).count();
        if methods > 1 {
            return Err(OAuthError::request("use exactly one client authentication method"));
        }
        let (id, method) = if let Some((id, _)) = &p.basic {
            (id.clone(), AuthMethod::ClientSecretBasic)
        } else if p.client_secret.is_some() {
            (p.client_id.clone().ok_or_else(|| OAuthError::client("client_id is required"))?, AuthMethod::ClientSecretPost)
        } else if let Some(assertion) = &p.assertion {
            if p.assertion_type.as_deref() != Some(ASSERTION_TYPE) {
                return Err(OAuthError::client("unsupported client_assertion_type"));
            }
            let unverified = jose::parse(assertion).map_err(|_| OAuthError::client("client_assertion is not a JWT"))?;
            let iss = unverified.claims.get("iss").and_then(Value::as_str).map(str::to_owned);
            let id = iss.or_else(|| p.client_id.clone()).ok_or_else(|| OAuthError::client("client_assertion lacks iss"))?;
            (id, AuthMethod::PrivateKeyJwt)
        } else {
            (p.client_id.clone().ok_or_else(|| OAuthError::client("client authentication is required"))?, AuthMethod::None)
        };
        if p.client_id.as_ref().is_some_and(|c| *c != id) {
            return Err(OAuthError::client("client_id does not match the authenticated client"));
        }
        let unknown = || OAuthError::client("client authentication failed");
        let client = self.client(&id).await?.ok_or_else(unknown)?;
        if client.auth_method != method {
            return Err(unknown());
        }
        match method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                let presented = match &p.basic {
                    Some((_, s)) => s.as_str(),
                    None => p.client_secret.as_deref().unwrap_or(""),
                };
                let ok = client.secret_hash.is_some_and(|h| h == TokenHash::of(presented.as_bytes()));
                if !ok {
                    return Err(unknown());
                }
            }
            AuthMethod::PrivateKeyJwt => self.verify_client_assertion(&client, p.assertion.as_deref().unwrap_or("")).await?,
            AuthMethod::None => {}
        }
        Ok(client)
    }

    async fn verify_client_assertion(&self, client: &Client, assertion: &str) -> Result<(), OAuthError> {
        let fail = |m: &str| OAuthError::client(m.to_owned());
        let claims = jose::parse(assertion)
            .map_err(|_| fail("client_assertion is not a JWT"))?
            .verify(&client.verifying_keys(), &JwsAlg::ALL, None)
            .map_err(|e: JwsError| OAuthError::client(format!("client_assertion refused: {e}")))?;
        let s = |k: &str| claims.get(k).and_then(Value::as_str);
        if s("iss") != Some(client.id.as_str()) || s("sub") != Some(client.id.as_str()) {
            return Err(fail("client_assertion iss and sub must be the client_id"));
        }
        let c = &self.inner.config;
        let accepted = [c.url(paths::TOKEN), c.issuer.clone(), c.url(paths::INTROSPECT), c.url(paths::REVOKE)];
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => accepted.contains(a),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(|x| accepted.iter().any(|y| y == x)),
            _ => false,
        };
        if !aud_ok {
            return Err(fail("client_assertion audience must be this server"));
        }
        let now = self.now().unix_timestamp();
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| fail("client_assertion needs a numeric exp"))?;
        if exp > now.saturating_add(3600) || exp.saturating_add(CLOCK_LEEWAY) < now {
            return Err(fail("client_assertion is expired or lives too long"));
        }
        if let Some(nbf) = claims.get("nbf")
            && nbf.as_i64().is_none_or(|n| n > now + CLOCK_LEEWAY) {
                return Err(fail("client_assertion is not yet valid"));
            }
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_i64().ok_or_else(|| fail("client_assertion iat must be numeric"))?;
            if iat > now.saturating_add(CLOCK_LEEWAY) {
                return Err(fail("client_assertion was issued in the future"));
            }
        }
        let jti = s("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or_else(|| fail("client_assertion needs a jti"))?;
        let key = format!("{}\u{1f}{}", client.id, jti);
        let until = OffsetDateTime::from_unix_timestamp(exp + CLOCK_LEEWAY).unwrap_or_else(|_| self.now());
        if !self.inner.store.record_assertion_jti(&key, until).await? {
            return Err(fail("client_assertion jti was already used"));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- token endpoint

    /// The token endpoint.
    pub async fn token(&self, params: &TokenParams, presented: &PresentedClient) -> Result<TokenResponse, OAuthError> {
        let grant_type = params.grant_type.as_deref().ok_or_else(|| OAuthError::request("grant_type is required"))?;
        let grant = match grant_type {
            "authorization_code" => GrantType::AuthorizationCode,
            "refresh_token" => GrantType::RefreshToken,
            "client_credentials" => GrantType::ClientCredentials,
            other => return Err(OAuthError::UnsupportedGrantType(format!("grant_type {other:?} is not supported"))),
        };
        let client = self.authenticate_client(presented).await?;
        if !client.allows_grant(grant) {
            return Err(OAuthError::UnauthorizedClient(format!("the client may not use {grant_type}")));
        }
        match grant {
            GrantType::AuthorizationCode => self.redeem_code(&client, params).await,
            GrantType::RefreshToken => self.refresh(&client, params).await,
            GrantType::ClientCredentials => self.client_credentials(&client, params),
        }
    }

    async fn redeem_code(&self, client: &Client, p: &TokenParams) -> Result<TokenResponse, OAuthError> {
        let code = p.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 512).ok_or_else(|| OAuthError::request("code is required"))?;
        let verifier = p.code_verifier.as_deref().ok_or_else(|| OAuthError::request("code_verifier is required (PKCE)"))?;
        let hash = TokenHash::of(code.as_bytes());
        let now = self.now();
        // Everything the code is bound to is checked before it is touched: only its own
        // client, with its redirect URI and PKCE verifier, can use it up or (replaying it)
        // revoke what it issued. Another client's presentation changes nothing.
        let invalid = || OAuthError::grant("the authorization code is invalid or expired");
        let record = self.inner.store.find_authorization_code(&hash).await?.ok_or_else(invalid)?;
        if record.client_id != client.id {
            return Err(invalid());
        }
        if p.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
            return Err(OAuthError::grant("redirect_uri does not match the authorization request"));
        }
        if !is_pkce_verifier(verifier) {
            return Err(OAuthError::grant("code_verifier is malformed"));
        }
        let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref());
        if !constant_time_eq(computed.as_bytes(), record.code_challenge.as_bytes()) {
            return Err(OAuthError::grant("code_verifier does not match the code_challenge"));
        }
        // Read the user before the code is used up, so a database failure in between does
        // not burn a code that the client could otherwise redeem on retry.
        let user = self.active_user(record.user_id).await?;
        check_admin_user(&record.scope, &user)?;
        let record = match self.inner.store.consume_authorization_code(&hash, &client.id, now).await? {
            CodeConsumption::Consumed(r) => r,
            CodeConsumption::Replayed => {
                tracing::warn!(client_id = %client.id, "authorization code replayed; tokens issued from it were revoked");
                return Err(OAuthError::grant("the authorization code was already used"));
            }
            CodeConsumption::Unknown => return Err(invalid()),
        };
        let grant = Grant {
            id: uuid::Uuid::now_v7(),
            user_id: record.user_id,
            client_id: client.id.clone(),
            scope: record.scope.clone(),
            sid: Some(record.sid),
            auth_time: record.auth_time,
            amr: record.amr.clone(),
            acr: record.acr.clone(),
            audience: record.audience.clone(),
            created_at: now,
            revoked_at: None,
        };
        let scope = Scopes::parse(&record.scope).map_err(OAuthError::ServerError)?;
        let minted = self.mint_user_tokens(client, &user, &grant, &scope, record.nonce.as_deref(), now)?;
        let refresh = self.new_refresh(client, &grant, now)?;
        let stored = self
            .inner
            .store
            .create_grant(&grant, refresh.as_ref().map(|r| &r.1), Some(&minted.record), Some(&hash))
            .await?;
        if !stored {
            // The code was replayed while this redemption was in flight: the grant was stored
            // revoked, so these tokens are already dead. This request still won the code.
            tracing::warn!(client_id = %client.id, "authorization code replayed during redemption; issued tokens are revoked");
        }
        Ok(TokenResponse {
            access_token: minted.access_token,
            token_type: "Bearer",
            expires_in: self.inner.config.access_token_ttl.whole_seconds(),
            refresh_token: refresh.map(|r| r.0),
            id_token: minted.id_token,
            scope: scope.to_string(),
        })
    }

    fn new_refresh(&self, client: &Client, grant: &Grant, now: OffsetDateTime) -> Result<Option<(String, NewRefreshToken)>, OAuthError> {
        if !client.allows_grant(GrantType::RefreshToken) {
            return Ok(None);
        }
        let token = SecretToken::generate()?;
        let rec = NewRefreshToken {
            hash: token.hash(),
            grant_id: grant.id,
            client_id: client.id.clone(),
            created_at: now,
            expires_at: self.refresh_expiry(client, grant, now),
        };
        Ok(Some((token.expose().to_owned(), rec)))
    }

    async fn active_user(&self, id: UserId) -> Result<User, OAuthError> {
        match self.inner.users.find_user_by_id(id).await? {
            Some(u) if !u.disabled => Ok(u),
            _ => Err(OAuthError::grant("the user no longer exists or is disabled")),
        }
    }

    async fn refresh(&self, client: &Client, p: &TokenParams) -> Result<TokenResponse, OAuthError> {
        let token = p.refresh_token.as_deref().filter(|t| !t.is_empty() && t.len() <= 512).ok_or_else(|| OAuthError::request("refresh_token is required"))?;
        let now = self.now();
        let old = TokenHash::of(token.as_bytes());
        let Some(info) = self.inner.store.find_refresh_token(&old).await? else {
            return Err(OAuthError::grant("the refresh token is invalid"));
        };
        if info.client_id != client.id || info.grant.revoked_at.is_some() {
            // What rotation would answer too, without telling anything about another client's grant.
            return Err(OAuthError::grant("the refresh token is invalid"));
        }
        let expires_at = self.check_refreshable(client, &info, now).await?;
        let grant = info.grant;
        // The new refresh token and the access-token record are made before rotation so
        // that the store writes them in the same transaction.
        let new_token = SecretToken::generate()?;
        let new = NewRefreshToken {
            hash: new_token.hash(),
            grant_id: grant.id,
            client_id: client.id.clone(),
            created_at: now,
            expires_at,
        };
        let jti = random_id()?;
        let access_record = IssuedAccessToken { jti: jti.clone(), grant_id: grant.id, expires_at: now + self.inner.config.access_token_ttl };
        let requested = match p.scope.as_deref() {
            Some(s) => {
                let s = Scopes::parse(s).map_err(OAuthError::InvalidScope)?;
                let granted = Scopes::parse(&grant.scope).map_err(OAuthError::ServerError)?;
                if !s.is_subset(&granted) {
                    return Err(OAuthError::InvalidScope("a refresh can only narrow the granted scope".into()));
                }
                s
            }
            None => Scopes::parse(&grant.scope).map_err(OAuthError::ServerError)?,
        };
        // Every read happens before rotation: once the rotation has committed, nothing may
        // fail, or a client that retries after an error presents a rotated token and the
        // reuse detection revokes its grant. (Disabling a user revokes its grants in the same
        // transaction, so a user disabled after this read makes the rotation refuse.)
        let user = match self.active_user(grant.user_id).await.and_then(|u| check_admin_user(&grant.scope, &u).map(|()| u)) {
            Ok(u) => u,
            Err(e) => {
                self.inner.store.revoke_grant(grant.id, now).await?;
                return Err(e);
            }
        };
        let grant = match self.inner.store.rotate_refresh_token(&old, &client.id, &new, Some(&access_record), now).await? {
            RefreshRotation::Rotated(g) => g,
            RefreshRotation::Reused => {
                tracing::warn!(client_id = %client.id, grant = %grant.id, "refresh token reused; token family revoked");
                return Err(OAuthError::grant("the refresh token was already used; the grant has been revoked"));
            }
            RefreshRotation::Invalid => return Err(OAuthError::grant("the refresh token is invalid")),
        };
        let minted = self.mint_with_jti(client, &user, &grant, &requested, None, now, jti)?;
        Ok(TokenResponse {
            access_token: minted.access_token,
            token_type: "Bearer",
            expires_in: self.inner.config.access_token_ttl.whole_seconds(),
            refresh_token: Some(new_token.expose().to_owned()),
            id_token: minted.id_token,
            scope: requested.to_string(),
        })
    }

    fn client_credentials(&self, client: &Client, p: &TokenParams) -> Result<TokenResponse, OAuthError> {
        let allowed: Scopes = Scopes::from_list(
            client.scopes.iter().filter(|s| !["openid", "offline_access", "profile", "email"].contains(&s.as_str())).cloned(),
        );
        let scope = match p.scope.as_deref() {
            Some(s) => {
                let s = Scopes::parse(s).map_err(OAuthError::InvalidScope)?;
                let bad = s.not_in(&allowed);
                if !bad.is_empty() {
                    return Err(OAuthError::InvalidScope(format!("scope not allowed for this client: {}", bad.join(" "))));
                }
                s
            }
            None => allowed,
        };
        let audience = self.resolve_audience(&p.resource)?;
        let now = self.now();
        let jti = random_id()?;
        let exp = now + self.inner.config.access_token_ttl;
        let claims = json!({
            "iss": self.inner.config.issuer,
            "sub": client.id,
            "aud": audience_value(&audience),
            "client_id": client.id,
            "scope": scope.to_string(),
            "iat": now.unix_timestamp(),
            "exp": exp.unix_timestamp(),
            "jti": jti,
        });
        let keys = self.inner.keys.current();
        let access_token = keys.signer(JwsAlg::EdDSA)?.sign_jwt("at+jwt", &claims)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.inner.config.access_token_ttl.whole_seconds(),
            refresh_token: None,
            id_token: None,
            scope: scope.to_string(),
        })
    }

    fn mint_user_tokens(&self, client: &Client, user: &User, grant: &Grant, scope: &Scopes, nonce: Option<&str>, now: OffsetDateTime) -> Result<Minted, OAuthError> {
        self.mint_with_jti(client, user, grant, scope, nonce, now, random_id()?)
    }

    #[allow(clippy::too_many_arguments)]
    fn mint_with_jti(
        &self,
        client: &Client,
        user: &User,
        grant: &Grant,
        scope: &Scopes,
        nonce: Option<&str>,
        now: OffsetDateTime,
        jti: String,
    ) -> Result<Minted, OAuthError> {
        let c = &self.inner.config;
        let exp = now + c.access_token_ttl;
        let mut at = json!({
            "iss": c.issuer,
            "sub": user.id,
            "aud": audience_value(&grant.audience),
            "client_id": client.id,
            "scope": scope.to_string(),
            "iat": now.unix_timestamp(),
            "exp": exp.unix_timestamp(),
            "jti": jti,
            "auth_time": grant.auth_time.unix_timestamp(),
            "amr": grant.amr,
        });
        if let (Some(sid), Value::Object(m)) = (grant.sid, &mut at) {
            m.insert("sid".into(), Value::String(sid.to_string()));
        }
        let keys = self.inner.keys.current();
        let access_token = keys.signer(JwsAlg::EdDSA)?.sign_jwt("at+jwt", &at)?;
        let id_token = if scope.contains("openid") {
            let signer = keys.signer(client.id_token_alg)?;
            let mut id = json!({
                "iss": c.issuer,
                "sub": user.id,
                "aud": client.id,
                "azp": client.id,
                "iat": now.unix_timestamp(),
                "exp": (now + c.id_token_ttl).unix_timestamp(),
                "auth_time": grant.auth_time.unix_timestamp(),
                "amr": grant.amr,
                "at_hash": at_hash(client.id_token_alg, &access_token),
            });
            if let Value::Object(m) = &mut id {
                if let Some(n) = nonce {
                    m.insert("nonce".into(), Value::String(n.to_owned()));
                }
                if let Some(sid) = grant.sid {
                    m.insert("sid".into(), Value::String(sid.to_string()));
                }
                if let Some(acr) = &grant.acr {
                    m.insert("acr".into(), Value::String(acr.clone()));
                }
                for (k, v) in profile_claims(user, scope) {
                    m.insert(k.into(), v);
                }
            }
            Some(signer.sign_jwt("JWT", &id)?)
        } else {
            None
        };
        Ok(Minted { access_token, id_token, record: IssuedAccessToken { jti, grant_id: grant.id, expires_at: exp } })
    }

    // ---------------------------------------------------------------- resource endpoints

    /// Verifies an access token issued here: signature, `typ`, issuer, expiry, revocation.
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessClaims, OAuthError> {
        let invalid = |m: &str| OAuthError::InvalidToken(m.to_owned());
        let keys = self.inner.keys.current();
        let claims = jose::parse(token)
            .map_err(|_| invalid("the access token is malformed"))?
            .verify(keys.verifying_keys(), &[JwsAlg::EdDSA], Some("at+jwt"))
            .map_err(|_| invalid("the access token is not valid"))?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.inner.config.issuer.as_str()) {
            return Err(invalid("the access token is from another issuer"));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid("the access token has no exp"))?;
        if exp <= self.now().unix_timestamp() {
            return Err(invalid("the access token has expired"));
        }
        let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(sub), Some(client_id), Some(jti)) = (s("sub"), s("client_id"), s("jti")) else {
            return Err(invalid("the access token lacks required claims"));
        };
        if self.inner.store.access_token_revoked(&jti).await? || self.client(&client_id).await?.is_none() {
            return Err(invalid("the access token has been revoked"));
        }
        let scope = Scopes::parse(&s("scope").unwrap_or_default()).unwrap_or_default();
        Ok(AccessClaims { claims, sub, client_id, scope, jti, exp })
    }

    /// Userinfo (OIDC Core §5.3): claims by scope for the token's user.
    pub async fn userinfo(&self, token: &str) -> Result<Value, OAuthError> {
        let at = self.verify_access_token(token).await?;
        if !at.scope.contains("openid") {
            return Err(OAuthError::InsufficientScope("the access token lacks the openid scope".into()));
        }
        let id: UserId = at.sub.parse().map_err(|_| OAuthError::InvalidToken("the token is not a user's".into()))?;
        let user = match self.inner.users.find_user_by_id(id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(OAuthError::InvalidToken("the user no longer exists".into())),
        };
        let mut out = Map::new();
        out.insert("sub".into(), Value::String(user.id.to_string()));
        for (k, v) in profile_claims(&user, &at.scope) {
            out.insert(k.into(), v);
        }
        Ok(Value::Object(out))
    }

    /// Introspection (RFC 7662). The caller must be an authenticated client.
    pub async fn introspect(&self, caller: &Client, token: &str) -> Result<Value, OAuthError> {
        if caller.is_public() {
            return Err(OAuthError::client("public clients cannot introspect tokens"));
        }
        let inactive = json!({"active": false});
        if token.is_empty() || token.len() > jose::MAX_JWS_BYTES {
            return Ok(inactive);
        }
        if token.contains('.') {
            return Ok(match self.verify_access_token(token).await {
                Ok(at) if !visibility::may_see_token(caller, &at.client_id, &visibility::audience_of(&at.claims)) => inactive,
                Ok(at) => {
                    let mut m = at.claims;
                    m.insert("active".into(), Value::Bool(true));
                    m.insert("token_type".into(), Value::String("Bearer".into()));
                    Value::Object(m)
                }
                Err(e) if e.is_fault() => return Err(e),
                Err(_) => inactive,
            });
        }
        let Some(info) = self.inner.store.find_refresh_token(&TokenHash::of(token.as_bytes())).await? else {
            return Ok(inactive);
        };
        let now = self.now();
        if info.used || info.grant.revoked_at.is_some() || info.expires_at <= now || !visibility::may_see_refresh_token(caller, &info.client_id) {
            return Ok(inactive);
        }
        Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": info.client_id,
            "sub": info.grant.user_id,
            "scope": info.grant.scope,
            "iat": info.created_at.unix_timestamp(),
            "exp": info.expires_at.unix_timestamp(),
            "iss": self.inner.config.issuer,
        }))
    }

    /// Revocation (RFC 7009): a refresh token revokes its whole grant; an access token is
    /// revoked until it expires. Tokens of other clients and unknown tokens are ignored.
    pub async fn revoke(&self, caller: &Client, token: &str) -> Result<(), OAuthError> {
        let now = self.now();
        if token.is_empty() || token.len() > jose::MAX_JWS_BYTES {
            return Ok(());
        }
        if !token.contains('.') {
            if let Some(info) = self.inner.store.find_refresh_token(&TokenHash::of(token.as_bytes())).await?
                && info.client_id == caller.id {
                    self.inner.store.revoke_grant(info.grant.id, now).await?;
                }
            return Ok(());
        }
        match self.verify_access_token(token).await {
            Ok(at) if at.client_id == caller.id.as_str() => {
                let exp = OffsetDateTime::from_unix_timestamp(at.exp).unwrap_or(now);
                self.inner.store.revoke_access_token(&at.jti, exp, now).await?;
            }
            // A revocation never answers 200 without having been recorded.
            Err(e) if e.is_fault() => return Err(e),
            _ => {}
        }
        Ok(())
    }

    // ---------------------------------------------------------------- logout

    /// Queues signed logout tokens for the clients of `grants` that registered a
    /// back-channel logout URI.
    pub(crate) async fn notify_backchannel(&self, grants: &[Grant]) -> Result<(), OAuthError> {
        let now = self.now();
        let mut deliveries = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for g in grants {
            if !seen.insert((g.client_id.clone(), g.sid)) {
                continue;
            }
            let Some(client) = self.inner.store.find_client(&g.client_id).await? else { continue };
            let Some(uri) = client.backchannel_logout_uri.clone() else { continue };
            let mut claims = json!({
                "iss": self.inner.config.issuer,
                "aud": client.id,
                "iat": now.unix_timestamp(),
                "exp": (now + Duration::minutes(2)).unix_timestamp(),
                "jti": random_id()?,
                "sub": g.user_id,
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            });
            if let (Some(sid), Value::Object(m)) = (g.sid, &mut claims) {
                m.insert("sid".into(), Value::String(sid.to_string()));
            }
            let token = self.inner.keys.current().signer(client.id_token_alg)?.sign_jwt("logout+jwt", &claims)?;
            deliveries.push(LogoutDelivery {
                id: uuid::Uuid::now_v7(),
                client_id: client.id.clone(),
                uri,
                logout_token: token,
                attempts: 0,
                next_attempt_at: now,
            });
        }
        if !deliveries.is_empty() {
            self.inner.store.enqueue_logout_deliveries(&deliveries).await?;
        }
        Ok(())
    }

    /// Deletes expired codes, tokens and replay records, and keys past retention.
    pub async fn purge(&self) -> Result<u64, crate::CoreError> {
        let now = self.now();
        let n = self.inner.store.purge_expired_oauth(now).await? + self.inner.store.purge_expired_consents(now).await?;
        let k = self.inner.keys.purge_retired(now, self.inner.config.key_retention()).await?;
        Ok(n + k)
    }

    /// Rotates the signing keys (admin API, CLI) at the provider's clock.
    pub async fn rotate_keys(&self) -> Result<(), crate::CoreError> {
        self.inner.keys.rotate(self.now()).await
    }

    /// The store (for the delivery worker).
    pub fn store(&self) -> &Arc<dyn OAuthStore> {
        &self.inner.store
    }

    /// Current time (for the delivery worker).
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }
}

struct Minted {
    access_token: String,
    id_token: Option<String>,
    record: IssuedAccessToken,
}

/// CAEP event URIs.
pub mod event_types {
    /// CAEP session revoked.
    pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    /// CAEP credential change.
    pub const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
    /// Tessera: one access token revoked.
    pub const TOKEN_REVOKED: &str = "urn:tessera:event-type:token-revoked";
}

/// The `events` claim of a Security Event Token.
pub(crate) fn event_body(e: &SecurityEvent) -> Value {
    let ts = e.at.unix_timestamp();
    let user = json!({"format": "opaque", "id": e.subject});
    match e.kind {
        SecurityEventKind::SessionRevoked => {
            let subject = match &e.session {
                Some(sid) => json!({"format": "complex", "user": user, "session": {"format": "opaque", "id": sid}}),
                None => json!({"format": "complex", "user": user}),
            };
            json!({event_types::SESSION_REVOKED: {"subject": subject, "event_timestamp": ts}})
        }
        SecurityEventKind::CredentialChange => json!({event_types::CREDENTIAL_CHANGE: {
            "subject": {"format": "complex", "user": user},
            "credential_type": "password",
            "change_type": "update",
            "event_timestamp": ts,
        }}),
        SecurityEventKind::TokenRevoked => json!({event_types::TOKEN_REVOKED: {
            "subject": {"format": "opaque", "id": e.subject},
            "event_timestamp": ts,
        }}),
    }
}

/// The OpenID Provider / RFC 8414 metadata document.
fn discovery_document(c: &ProviderConfig) -> Value {
    json!({
        "issuer": c.issuer,
        "authorization_endpoint": c.url(paths::AUTHORIZE),
        "token_endpoint": c.url(paths::TOKEN),
        "userinfo_endpoint": c.url(paths::USERINFO),
        "jwks_uri": c.url(paths::JWKS),
        "introspection_endpoint": c.url(paths::INTROSPECT),
        "revocation_endpoint": c.url(paths::REVOKE),
        "end_session_endpoint": c.url(paths::END_SESSION),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256", "RS256"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash",
                             "name", "preferred_username", "email", "email_verified", "updated_at"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": ACR_VALUES_SUPPORTED,
    })
}

/// Profile and e-mail claims for the scopes granted.
fn profile_claims(user: &User, scope: &Scopes) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    if scope.contains("profile") {
        out.push(("preferred_username", Value::String(user.username.as_str().to_owned())));
        if let Some(n) = &user.display_name {
            out.push(("name", Value::String(n.as_str().to_owned())));
        }
        out.push(("updated_at", Value::from(user.updated_at.unix_timestamp())));
    }
    if scope.contains("email")
        && let Some(e) = &user.email {
            out.push(("email", Value::String(e.as_str().to_owned())));
            out.push(("email_verified", Value::Bool(false)));
        }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_uses_the_id_token_hash() {
        // OIDC Core example: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" with SHA-256.
        assert_eq!(at_hash(JwsAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(JwsAlg::EdDSA, "x").len(), 43);
    }

    #[test]
    fn pkce_verifiers_are_checked() {
        assert!(is_pkce_verifier(&"a".repeat(43)));
        assert!(!is_pkce_verifier(&"a".repeat(42)));
        assert!(!is_pkce_verifier(&format!("{}+", "a".repeat(43))));
    }
}
