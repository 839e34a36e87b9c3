//! The authorization endpoint (RFC 6749 §4.1, OIDC Core §3.1.2): the request as received,
//! its validation ([`validate`]), the decision what a signed-in user's request needs
//! ([`decide`]), and the response delivered to the client's redirect URI.

pub(crate) mod decide;
pub(crate) mod validate;

use crate::mfa::level::AuthLevel;
use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::config::ProviderConfig;
use crate::oauth::scope::Scopes;
use serde::{Deserialize, Serialize};

/// Raw authorization request parameters (GET query or POST form).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
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

/// Where and how a response goes back to the client: the validated redirect URI, the
/// response mode and the request's `state`.
pub(crate) struct ReplyTo<'a> {
    /// The validated redirect URI.
    pub redirect_uri: &'a str,
    /// The response mode.
    pub mode: ResponseMode,
    /// The request's `state`.
    pub state: Option<&'a str>,
}

impl ReplyTo<'_> {
    /// A response with `params`, then `state` and `iss` (RFC 9207).
    pub(crate) fn respond(&self, config: &ProviderConfig, mut params: Vec<(String, String)>) -> AuthorizationResponse {
        if let Some(s) = self.state {
            params.push(("state".into(), s.to_owned()));
        }
        params.push(("iss".into(), config.issuer.clone()));
        AuthorizationResponse { redirect_uri: self.redirect_uri.to_owned(), mode: self.mode, params }
    }

    /// The error response for `err`.
    pub(crate) fn error(&self, config: &ProviderConfig, err: &OAuthError) -> AuthorizationResponse {
        self.respond(config, vec![("error".into(), err.code().into()), ("error_description".into(), err.description().into())])
    }
}

impl AuthorizationRequest {
    /// Where this request's responses go.
    pub(crate) fn reply_to(&self) -> ReplyTo<'_> {
        ReplyTo { redirect_uri: &self.redirect_uri, mode: self.mode, state: self.state.as_deref() }
    }
}
