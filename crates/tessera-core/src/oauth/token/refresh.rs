//! The refresh token grant (RFC 6749 §6, OAuth 2.1 rotation): a refresh token is used once;
//! its grant must still be live ([`check_refreshable`]); the scope may only narrow; every
//! read happens before the rotation, which writes the new token and the access token's
//! record in one transaction, and a rotated token presented again revokes the whole grant.

use super::{TokenParams, TokenResponse, active_user, new_refresh_token, refresh_expiry};
use crate::oauth::OAuthError;
use crate::oauth::admin_access::check_admin_user;
use crate::oauth::client::Client;
use crate::oauth::context::OAuthContext;
use crate::oauth::grant_policy::is_offline;
use crate::oauth::mint::{Minter, UserTokens, random_id};
use crate::oauth::model::{IssuedAccessToken, RefreshRotation, RefreshTokenInfo};
use crate::oauth::scope::Scopes;
use crate::secret::TokenHash;
use time::OffsetDateTime;

/// Rotates a refresh token of `client` and mints new tokens.
pub(super) async fn refresh(ctx: &OAuthContext, client: &Client, p: &TokenParams) -> Result<TokenResponse, OAuthError> {
    let token = p.refresh_token.as_deref().filter(|t| !t.is_empty() && t.len() <= 512).ok_or_else(|| OAuthError::request("refresh_token is required"))?;
    let now = ctx.now();
    let old = TokenHash::of(token.as_bytes());
    let Some(info) = ctx.store.find_refresh_token(&old).await? else {
        return Err(OAuthError::grant("the refresh token is invalid"));
    };
    if info.client_id != client.id || info.grant.revoked_at.is_some() {
        // What rotation would answer too, without telling anything about another client's grant.
        return Err(OAuthError::grant("the refresh token is invalid"));
    }
    let expires_at = check_refreshable(ctx, client, &info, now).await?;
    let grant = info.grant;
    // The new refresh token and the access-token record are made before rotation so
    // that the store writes them in the same transaction.
    let (new_token, new) = new_refresh_token(client, &grant, now, expires_at)?;
    let jti = random_id()?;
    let access_record = IssuedAccessToken { jti: jti.clone(), grant_id: grant.id, expires_at: now + ctx.config.access_token_ttl };
    let granted = Scopes::parse(&grant.scope).map_err(OAuthError::ServerError)?;
    let requested = match p.scope.as_deref() {
        Some(s) => {
            let s = Scopes::parse(s).map_err(OAuthError::InvalidScope)?;
            if !s.is_subset(&granted) {
                return Err(OAuthError::InvalidScope("a refresh can only narrow the granted scope".into()));
            }
            s
        }
        None => granted.clone(),
    };
    // Every read happens before rotation: once the rotation has committed, nothing may
    // fail, or a client that retries after an error presents a rotated token and the
    // reuse detection revokes its grant. (Disabling a user revokes its grants in the same
    // transaction, so a user disabled after this read makes the rotation refuse.)
    let user = match active_user(ctx, grant.user_id).await.and_then(|u| check_admin_user(&granted, &u).map(|()| u)) {
        Ok(u) => u,
        Err(e) => {
            ctx.store.revoke_grant(grant.id, now).await?;
            return Err(e);
        }
    };
    let grant = match ctx.store.rotate_refresh_token(&old, &client.id, &new, Some(&access_record), now).await? {
        RefreshRotation::Rotated(g) => g,
        RefreshRotation::Reused => {
            tracing::warn!(client_id = %client.id, grant = %grant.id, "refresh token reused; token family revoked");
            return Err(OAuthError::grant("the refresh token was already used; the grant has been revoked"));
        }
        RefreshRotation::Invalid => return Err(OAuthError::grant("the refresh token is invalid")),
    };
    let keys = ctx.keys.current();
    let minted = Minter::new(&ctx.config, &keys).user_tokens(UserTokens { client, user: &user, grant: &grant, scope: &requested, nonce: None, jti, now })?;
    let refresh_token = Some(new_token.expose().to_owned());
    Ok(TokenResponse::bearer(minted.access_token, ctx.config.access_token_ttl, refresh_token, minted.id_token, &requested))
}

/// Checks a refresh token's grant may still be refreshed at `now`: within its absolute
/// lifetime and, without `offline_access`, while its session lives; returns when the new
/// refresh token expires. A grant that may not is revoked (in case the revocation that
/// should have ended it was missed).
async fn check_refreshable(ctx: &OAuthContext, client: &Client, info: &RefreshTokenInfo, now: OffsetDateTime) -> Result<OffsetDateTime, OAuthError> {
    let grant = &info.grant;
    let c = &ctx.config;
    if grant.revoked_at.is_some() || info.client_id != client.id {
        // Rotation refuses these as invalid; say nothing more about another client's grant.
        return Ok(refresh_expiry(ctx, client, grant, now));
    }
    let ended = if c.grants.grant_expiry(client, grant.created_at) <= now {
        Some("the grant has reached its maximum lifetime")
    } else if !is_offline(&grant.scope) {
        let session = match grant.sid {
            Some(sid) => ctx.users.find_session_by_handle(sid).await?,
            None => None,
        };
        (!c.grants.session_live(session.as_ref(), grant.user_id, now)).then_some("the session this grant came from has ended")
    } else {
        None
    };
    if let Some(why) = ended {
        ctx.store.revoke_grant(grant.id, now).await?;
        return Err(OAuthError::grant(why));
    }
    Ok(refresh_expiry(ctx, client, grant, now))
}
