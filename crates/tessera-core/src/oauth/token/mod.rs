//! The token endpoint (RFC 6749 §3.2): the request, client authentication, and one module
//! per grant — [`code`] (authorization code + PKCE), [`refresh`] (rotation with reuse
//! detection), [`client_credentials`], [`exchange`] (RFC 8693: a user's upstream token kept in
//! the credential vault). Every grant but the exchange answers with [`TokenResponse::bearer`];
//! the exchange answers with an [`ExchangedToken`].

mod client_credentials;
mod code;
pub mod exchange;
mod refresh;

pub use exchange::ExchangedToken;

use crate::ids::UserId;
use crate::oauth::OAuthError;
use crate::oauth::client::{Client, GrantType};
use crate::oauth::client_auth::{self, PresentedClient};
use crate::oauth::context::OAuthContext;
use crate::oauth::model::{Grant, NewRefreshToken};
use crate::oauth::scope::Scopes;
use crate::secret::SecretToken;
use crate::user::User;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// A token endpoint request.
#[derive(Debug, Clone, Default, Deserialize)]
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
    /// `subject_token` (token exchange).
    pub subject_token: Option<String>,
    /// `subject_token_type` (token exchange).
    pub subject_token_type: Option<String>,
    /// `requested_token_type` (token exchange).
    pub requested_token_type: Option<String>,
    /// `actor_token` (token exchange; delegation is not supported).
    pub actor_token: Option<String>,
    /// `actor_token_type` (token exchange).
    pub actor_token_type: Option<String>,
    /// `audience` (token exchange; not used: the requested token type names the upstream).
    #[serde(default)]
    pub audience: Vec<String>,
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

impl TokenResponse {
    /// A bearer token response: an access token living `ttl`, with the tokens issued
    /// alongside it, for `scope`.
    pub(crate) fn bearer(access_token: String, ttl: Duration, refresh_token: Option<String>, id_token: Option<String>, scope: &Scopes) -> Self {
        Self { access_token, token_type: "Bearer", expires_in: ttl.whole_seconds(), refresh_token, id_token, scope: scope.to_string() }
    }
}

/// What the token endpoint answers: a bearer token response, or an exchanged token.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TokenReply {
    /// RFC 6749 §5.1.
    Bearer(TokenResponse),
    /// RFC 8693 §2.2.1.
    Exchanged(ExchangedToken),
}

/// The token endpoint: authenticates the client, checks it may use the grant, redeems it.
pub(crate) async fn exchange(ctx: &OAuthContext, params: &TokenParams, presented: &PresentedClient) -> Result<TokenReply, OAuthError> {
    let grant_type = params.grant_type.as_deref().ok_or_else(|| OAuthError::request("grant_type is required"))?;
    let grant = match grant_type {
        "authorization_code" => GrantType::AuthorizationCode,
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        crate::oauth::upstream_access::TOKEN_EXCHANGE_GRANT => GrantType::TokenExchange,
        other => return Err(OAuthError::UnsupportedGrantType(format!("grant_type {other:?} is not supported"))),
    };
    let client = client_auth::authenticate(ctx, presented).await?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::UnauthorizedClient(format!("the client may not use {grant_type}")));
    }
    match grant {
        GrantType::AuthorizationCode => code::redeem(ctx, &client, params).await.map(TokenReply::Bearer),
        GrantType::RefreshToken => refresh::refresh(ctx, &client, params).await.map(TokenReply::Bearer),
        GrantType::ClientCredentials => client_credentials::issue(ctx, &client, params).map(TokenReply::Bearer),
        GrantType::TokenExchange => exchange::upstream_token(ctx, &client, params).await.map(TokenReply::Exchanged),
    }
}

/// The grant's user, if it still exists and is enabled.
async fn active_user(ctx: &OAuthContext, id: UserId) -> Result<User, OAuthError> {
    match ctx.users.find_user_by_id(id).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(OAuthError::grant("the user no longer exists or is disabled")),
    }
}

/// A new refresh token of `grant` expiring at `expires_at`: the token, and its record.
fn new_refresh_token(client: &Client, grant: &Grant, now: OffsetDateTime, expires_at: OffsetDateTime) -> Result<(SecretToken, NewRefreshToken), OAuthError> {
    let token = SecretToken::generate()?;
    let record = NewRefreshToken { hash: token.hash(), grant_id: grant.id, client_id: client.id.clone(), created_at: now, expires_at };
    Ok((token, record))
}

/// When a refresh token issued now for `grant` must expire: its usual lifetime, cut at
/// the grant's absolute expiry.
fn refresh_expiry(ctx: &OAuthContext, client: &Client, grant: &Grant, now: OffsetDateTime) -> OffsetDateTime {
    let c = &ctx.config;
    (now + c.refresh_token_ttl).min(c.grants.grant_expiry(client, grant.created_at))
}
