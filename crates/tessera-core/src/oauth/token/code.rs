//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636): everything the code is bound
//! to is checked before it is used up, the user is read before that single-use write, and
//! the grant, its first tokens and the code's consumption are stored together.

use super::{TokenParams, TokenResponse, active_user, new_refresh_token, refresh_expiry};
use crate::oauth::OAuthError;
use crate::oauth::admin_access::check_admin_user;
use crate::oauth::client::{Client, GrantType};
use crate::oauth::context::OAuthContext;
use crate::oauth::mint::{Minter, UserTokens, random_id};
use crate::oauth::model::{CodeConsumption, Grant};
use crate::oauth::scope::Scopes;
use crate::secret::{TokenHash, constant_time_eq};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Redeems an authorization code for `client`.
pub(super) async fn redeem(ctx: &OAuthContext, client: &Client, p: &TokenParams) -> Result<TokenResponse, OAuthError> {
    let code = p.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 512).ok_or_else(|| OAuthError::request("code is required"))?;
    let verifier = p.code_verifier.as_deref().ok_or_else(|| OAuthError::request("code_verifier is required (PKCE)"))?;
    let hash = TokenHash::of(code.as_bytes());
    let now = ctx.now();
    // Everything the code is bound to is checked before it is touched: only its own
    // client, with its redirect URI and PKCE verifier, can use it up or (replaying it)
    // revoke what it issued. Another client's presentation changes nothing.
    let invalid = || OAuthError::grant("the authorization code is invalid or expired");
    let record = ctx.store.find_authorization_code(&hash).await?.ok_or_else(invalid)?;
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
    let scope = Scopes::parse(&record.scope).map_err(OAuthError::ServerError)?;
    // Read the user before the code is used up, so a database failure in between does
    // not burn a code that the client could otherwise redeem on retry.
    let user = active_user(ctx, record.user_id).await?;
    check_admin_user(&scope, &user)?;
    let record = match ctx.store.consume_authorization_code(&hash, &client.id, now).await? {
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
    let keys = ctx.keys.current();
    let minted = Minter::new(&ctx.config, &keys).user_tokens(UserTokens {
        client,
        user: &user,
        grant: &grant,
        scope: &scope,
        nonce: record.nonce.as_deref(),
        jti: random_id()?,
        now,
    })?;
    let refresh = if client.allows_grant(GrantType::RefreshToken) {
        Some(new_refresh_token(client, &grant, now, refresh_expiry(ctx, client, &grant, now))?)
    } else {
        None
    };
    let stored = ctx.store.create_grant(&grant, refresh.as_ref().map(|r| &r.1), Some(&minted.record), Some(&hash)).await?;
    if !stored {
        // The code was replayed while this redemption was in flight: the grant was stored
        // revoked, so these tokens are already dead. This request still won the code.
        tracing::warn!(client_id = %client.id, "authorization code replayed during redemption; issued tokens are revoked");
    }
    let refresh_token = refresh.map(|(token, _)| token.expose().to_owned());
    Ok(TokenResponse::bearer(minted.access_token, ctx.config.access_token_ttl, refresh_token, minted.id_token, &scope))
}

/// A PKCE `code_verifier` (RFC 7636 §4.1): 43–128 unreserved characters.
fn is_pkce_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifiers_are_checked() {
        assert!(is_pkce_verifier(&"a".repeat(43)));
        assert!(!is_pkce_verifier(&"a".repeat(42)));
        assert!(!is_pkce_verifier(&format!("{}+", "a".repeat(43))));
    }
}
