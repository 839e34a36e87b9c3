//! What resource servers and clients ask about tokens: access-token verification, userinfo
//! (OIDC Core §5.3), introspection (RFC 7662) and revocation (RFC 7009). Who may learn
//! about which token is [`super::visibility`]'s rule.

use crate::ids::UserId;
use crate::jose::{self, JwsAlg};
use crate::oauth::OAuthError;
use crate::oauth::claims::{AccessClaims, ProfileClaims, UserinfoClaims};
use crate::oauth::client::Client;
use crate::oauth::context::OAuthContext;
use crate::oauth::scope::Scopes;
use crate::oauth::visibility;
use crate::secret::TokenHash;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// A verified access token.
#[derive(Debug, Clone)]
pub struct VerifiedAccessToken {
    /// Its claims.
    pub claims: AccessClaims,
    /// Its scope, parsed.
    pub scope: Scopes,
}

/// Verifies an access token issued here: signature, `typ`, issuer, expiry, revocation, and
/// that its client still exists.
pub(crate) async fn verify_access_token(ctx: &OAuthContext, token: &str) -> Result<VerifiedAccessToken, OAuthError> {
    let invalid = |m: &str| OAuthError::InvalidToken(m.to_owned());
    let keys = ctx.keys.current();
    let claims = jose::parse(token)
        .map_err(|_| invalid("the access token is malformed"))?
        .verify(keys.verifying_keys(), &[JwsAlg::EdDSA], Some("at+jwt"))
        .map_err(|_| invalid("the access token is not valid"))?;
    if claims.get("iss").and_then(Value::as_str) != Some(ctx.config.issuer.as_str()) {
        return Err(invalid("the access token is from another issuer"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid("the access token has no exp"))?;
    if exp <= ctx.now().unix_timestamp() {
        return Err(invalid("the access token has expired"));
    }
    let claims: AccessClaims = serde_json::from_value(Value::Object(claims)).map_err(|_| invalid("the access token lacks required claims"))?;
    if ctx.store.access_token_revoked(&claims.jti).await? || ctx.client(&claims.client_id).await?.is_none() {
        return Err(invalid("the access token has been revoked"));
    }
    let scope = Scopes::parse(&claims.scope).unwrap_or_default();
    Ok(VerifiedAccessToken { claims, scope })
}

/// Userinfo: claims by scope for the token's user.
pub(crate) async fn userinfo(ctx: &OAuthContext, token: &str) -> Result<Value, OAuthError> {
    let at = verify_access_token(ctx, token).await?;
    if !at.scope.contains("openid") {
        return Err(OAuthError::InsufficientScope("the access token lacks the openid scope".into()));
    }
    let id: UserId = at.claims.sub.parse().map_err(|_| OAuthError::InvalidToken("the token is not a user's".into()))?;
    let user = match ctx.users.find_user_by_id(id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(OAuthError::InvalidToken("the user no longer exists".into())),
    };
    let claims = UserinfoClaims { sub: user.id.to_string(), profile: ProfileClaims::of(&user, &at.scope) };
    serde_json::to_value(claims).map_err(|e| OAuthError::ServerError(e.to_string()))
}

/// Introspection. The caller must be an authenticated confidential client; tokens it may
/// not see are `active: false`.
pub(crate) async fn introspect(ctx: &OAuthContext, caller: &Client, token: &str) -> Result<Value, OAuthError> {
    if caller.is_public() {
        return Err(OAuthError::client("public clients cannot introspect tokens"));
    }
    let inactive = json!({"active": false});
    if token.is_empty() || token.len() > jose::MAX_JWS_BYTES {
        return Ok(inactive);
    }
    if token.contains('.') {
        return Ok(match verify_access_token(ctx, token).await {
            Ok(at) if !visibility::may_see_token(caller, &at.claims.client_id, &at.claims.aud) => inactive,
            Ok(at) => {
                let mut v = serde_json::to_value(at.claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
                if let Value::Object(m) = &mut v {
                    m.insert("active".into(), Value::Bool(true));
                    m.insert("token_type".into(), Value::String("Bearer".into()));
                }
                v
            }
            Err(e) if e.is_fault() => return Err(e),
            Err(_) => inactive,
        });
    }
    let Some(info) = ctx.store.find_refresh_token(&TokenHash::of(token.as_bytes())).await? else {
        return Ok(inactive);
    };
    let now = ctx.now();
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
        "iss": ctx.config.issuer,
    }))
}

/// Revocation: a refresh token revokes its whole grant; an access token is revoked until it
/// expires. Tokens of other clients and unknown tokens are ignored.
pub(crate) async fn revoke(ctx: &OAuthContext, caller: &Client, token: &str) -> Result<(), OAuthError> {
    let now = ctx.now();
    if token.is_empty() || token.len() > jose::MAX_JWS_BYTES {
        return Ok(());
    }
    if !token.contains('.') {
        if let Some(info) = ctx.store.find_refresh_token(&TokenHash::of(token.as_bytes())).await?
            && info.client_id == caller.id
        {
            ctx.store.revoke_grant(info.grant.id, now).await?;
        }
        return Ok(());
    }
    match verify_access_token(ctx, token).await {
        Ok(at) if at.claims.client_id == caller.id.as_str() => {
            let exp = OffsetDateTime::from_unix_timestamp(at.claims.exp).unwrap_or(now);
            ctx.store.revoke_access_token(&at.claims.jti, exp, now).await?;
        }
        // A revocation never answers 200 without having been recorded.
        Err(e) if e.is_fault() => return Err(e),
        _ => {}
    }
    Ok(())
}
