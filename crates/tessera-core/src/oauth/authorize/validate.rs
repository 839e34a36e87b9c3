//! Validation of an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 9700).
//! Until the client and its redirect URI are established, errors are shown to the user
//! ([`AuthorizeError::Untrusted`]); after that, they go back to the client. The checks run
//! in a fixed order, so a request with several faults always gets the same answer.

use super::{AuthorizationRequest, AuthorizeError, AuthorizeParams, Prompt, ReplyTo, ResponseMode};
use crate::mfa::level::{AuthLevel, requested_level};
use crate::oauth::OAuthError;
use crate::oauth::admin_access::request_audience;
use crate::oauth::client::{Client, GrantType};
use crate::oauth::config::ProviderConfig;
use crate::oauth::context::OAuthContext;
use crate::oauth::id_token_hint::IdTokenHint;
use crate::oauth::keys::KeySet;
use crate::oauth::scope::Scopes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Validates an authorization request.
pub(crate) async fn validate(ctx: &OAuthContext, p: &AuthorizeParams) -> Result<AuthorizationRequest, AuthorizeError> {
    let client = registered_client(ctx, p).await?;
    let redirect_uri = registered_redirect(&client, p)?;
    // From here on, errors go back to the client.
    let mode = response_mode(p).map_err(|e| {
        let reply = ReplyTo { redirect_uri: &redirect_uri, mode: ResponseMode::Query, state: p.state.as_deref() };
        AuthorizeError::Redirect(reply.error(&ctx.config, &e))
    })?;
    let keys = ctx.keys.current();
    let checked = check_parameters(&ctx.config, &keys, &client, p).map_err(|e| {
        let reply = ReplyTo { redirect_uri: &redirect_uri, mode, state: p.state.as_deref() };
        AuthorizeError::Redirect(reply.error(&ctx.config, &e))
    })?;
    Ok(AuthorizationRequest {
        acr_values: checked.acr_values,
        required_level: checked.required_level,
        client,
        redirect_uri,
        mode,
        scope: checked.scope,
        state: p.state.clone(),
        nonce: p.nonce.clone(),
        code_challenge: checked.code_challenge,
        prompt: checked.prompt,
        max_age: checked.max_age,
        hint_subject: checked.hint_subject,
        login_hint: p.login_hint.clone().filter(|h| h.len() <= 320),
        audience: checked.audience,
        params: p.clone(),
    })
}

fn untrusted(m: &str) -> AuthorizeError {
    AuthorizeError::Untrusted(m.to_owned())
}

/// The client named by `client_id`, which must be registered.
async fn registered_client(ctx: &OAuthContext, p: &AuthorizeParams) -> Result<Client, AuthorizeError> {
    let client_id = p.client_id.as_deref().filter(|c| !c.is_empty() && c.len() <= 256).ok_or_else(|| untrusted("The request does not name a client (client_id)."))?;
    match ctx.client(client_id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(untrusted("The application that sent you here is not registered.")),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            if e.is_unavailable() {
                return Err(AuthorizeError::Unavailable);
            }
            Err(untrusted("The request could not be checked. Please try again."))
        }
    }
}

/// The redirect URI, which must be registered for the client.
fn registered_redirect(client: &Client, p: &AuthorizeParams) -> Result<String, AuthorizeError> {
    let redirect_uri = p.redirect_uri.as_deref().ok_or_else(|| untrusted("The request does not name a redirect URI."))?;
    client.match_redirect_uri(redirect_uri).ok_or_else(|| untrusted("The redirect URI is not registered for this application."))
}

fn response_mode(p: &AuthorizeParams) -> Result<ResponseMode, OAuthError> {
    match p.response_mode.as_deref() {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(OAuthError::request("unsupported response_mode")),
    }
}

/// What the parameters after the redirect URI come to.
struct Checked {
    code_challenge: String,
    scope: Scopes,
    prompt: Prompt,
    max_age: Option<i64>,
    audience: Vec<String>,
    hint_subject: Option<String>,
    acr_values: Vec<String>,
    required_level: AuthLevel,
}

/// The checks whose errors go back to the client, in order.
fn check_parameters(config: &ProviderConfig, keys: &KeySet, client: &Client, p: &AuthorizeParams) -> Result<Checked, OAuthError> {
    check_request_shape(p)?;
    check_response_type(client, p)?;
    let code_challenge = pkce_challenge(p)?;
    let scope = requested_scope(client, p)?;
    let prompt = prompt(p)?;
    let max_age = max_age(p)?;
    if p.nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(OAuthError::request("nonce is too long"));
    }
    let audience = request_audience(config, client, &scope, &p.resource).unwrap_or_else(|| config.audience_for(&p.resource))?;
    let hint_subject = match p.id_token_hint.as_deref() {
        Some(h) => Some(
            hint_subject(h, keys, config, client).ok_or_else(|| OAuthError::request("id_token_hint is not a valid ID token from this server"))?,
        ),
        None => None,
    };
    let acr_values = acr_values(p)?;
    let mut required_level = requested_level(&acr_values).unwrap_or(AuthLevel::SingleFactor);
    if client.require_mfa {
        required_level = required_level.max(AuthLevel::MultiFactor);
    }
    Ok(Checked { code_challenge, scope, prompt, max_age, audience, hint_subject, acr_values, required_level })
}

/// `state` is bounded; request objects are not supported.
fn check_request_shape(p: &AuthorizeParams) -> Result<(), OAuthError> {
    if p.state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(OAuthError::request("state is too long"));
    }
    if p.request.is_some() {
        return Err(OAuthError::RequestNotSupported("request objects are not supported".into()));
    }
    if p.request_uri.is_some() {
        return Err(OAuthError::RequestUriNotSupported("request_uri is not supported".into()));
    }
    Ok(())
}

/// `response_type=code`, for a client allowed the authorization code grant.
fn check_response_type(client: &Client, p: &AuthorizeParams) -> Result<(), OAuthError> {
    match p.response_type.as_deref() {
        Some("code") => {}
        None => return Err(OAuthError::request("response_type is required")),
        Some(other) => return Err(OAuthError::UnsupportedResponseType(format!("response_type {other:?} is not supported; use code"))),
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient("the client may not use the authorization code grant".into()));
    }
    Ok(())
}

/// The PKCE challenge: required, S256, the base64url of a SHA-256.
fn pkce_challenge(p: &AuthorizeParams) -> Result<String, OAuthError> {
    let code_challenge = p.code_challenge.clone().ok_or_else(|| OAuthError::request("code_challenge is required (PKCE)"))?;
    match p.code_challenge_method.as_deref() {
        Some("S256") => {}
        None | Some("plain") => return Err(OAuthError::request("code_challenge_method must be S256")),
        Some(_) => return Err(OAuthError::request("unsupported code_challenge_method; use S256")),
    }
    if code_challenge.len() != 43 || URL_SAFE_NO_PAD.decode(&code_challenge).is_err() {
        return Err(OAuthError::request("code_challenge must be the base64url SHA-256 of the verifier"));
    }
    Ok(code_challenge)
}

/// The requested scope, each of which the client must be allowed.
fn requested_scope(client: &Client, p: &AuthorizeParams) -> Result<Scopes, OAuthError> {
    let scope = Scopes::parse(p.scope.as_deref().unwrap_or("")).map_err(OAuthError::InvalidScope)?;
    let not_allowed = scope.not_in(&client.allowed_scopes());
    if !not_allowed.is_empty() {
        return Err(OAuthError::InvalidScope(format!("scope not allowed for this client: {}", not_allowed.join(" "))));
    }
    Ok(scope)
}

/// `prompt`: `none`, `login`, `consent` (`select_account` is `login`); `none` alone.
fn prompt(p: &AuthorizeParams) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    for v in p.prompt.as_deref().unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => prompt.none = true,
            "login" | "select_account" => prompt.login = true,
            "consent" => prompt.consent = true,
            other => return Err(OAuthError::request(format!("unsupported prompt value {other:?}"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(OAuthError::request("prompt=none cannot be combined with other values"));
    }
    Ok(prompt)
}

fn max_age(p: &AuthorizeParams) -> Result<Option<i64>, OAuthError> {
    p.max_age
        .as_deref()
        .map(|m| m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| OAuthError::request("max_age must be a non-negative integer")))
        .transpose()
}

/// The subject of a valid `id_token_hint` issued to `client`.
fn hint_subject(token: &str, keys: &KeySet, config: &ProviderConfig, client: &Client) -> Option<String> {
    let hint = IdTokenHint::verify(token, keys, config)?;
    if !hint.names_client(client.id.as_str()) || hint.looks_like_access_token() {
        return None;
    }
    hint.sub().map(str::to_owned)
}

/// `acr_values`, bounded.
fn acr_values(p: &AuthorizeParams) -> Result<Vec<String>, OAuthError> {
    let acr_values: Vec<String> = p.acr_values.as_deref().unwrap_or("").split(' ').filter(|v| !v.is_empty()).map(str::to_owned).collect();
    if acr_values.len() > 16 || acr_values.iter().any(|v| v.len() > 256) {
        return Err(OAuthError::request("acr_values is too long"));
    }
    Ok(acr_values)
}
