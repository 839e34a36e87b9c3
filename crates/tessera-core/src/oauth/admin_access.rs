//! Tokens for the admin API. An access token opens `/admin/v1/*` only if it was minted for
//! it: audience `<issuer>/admin/v1` alone and scope `tessera:admin`, requested by a client
//! registered with `admin_api`, for a user holding the `admin` role when it was issued,
//! never with `offline_access`. At each request the token's session must still live and
//! its user still be an enabled administrator, so ending the session (sign-out, expiry, an
//! administrator ending it) ends the token's admin access at once.

use crate::CoreError;
use crate::ids::{SessionHandle, UserId};
use crate::oauth::OAuthError;
use crate::oauth::client::{Client, GrantType};
use crate::oauth::config::ProviderConfig;
use crate::oauth::context::OAuthContext;
use crate::oauth::grant_policy::OFFLINE_ACCESS;
use crate::oauth::introspect::verify_access_token;
use crate::oauth::scope::Scopes;
use crate::user::{ROLE_ADMIN, User};

/// The scope of admin API tokens.
pub const ADMIN_SCOPE: &str = "tessera:admin";

/// Path of the admin API under the issuer (its resource identifier is `<issuer>` + this).
pub const ADMIN_API_PATH: &str = "/admin/v1";

/// The admin API's resource identifier (RFC 8707) and the audience of its tokens.
pub fn admin_audience(config: &ProviderConfig) -> String {
    config.url(ADMIN_API_PATH)
}

/// Registration rules: an `admin_api` client uses the authorization code grant (a user's
/// token, never `client_credentials`) and gets [`ADMIN_SCOPE`] among its scopes; no other
/// client may list that scope.
pub fn check_registration(admin_api: bool, grant_types: &[GrantType], scopes: &mut Vec<String>) -> Result<(), CoreError> {
    if !admin_api {
        if scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(CoreError::Invalid(format!("only admin_api clients may have the {ADMIN_SCOPE} scope")));
        }
        return Ok(());
    }
    if !grant_types.contains(&GrantType::AuthorizationCode) || grant_types.contains(&GrantType::ClientCredentials) {
        return Err(CoreError::Invalid("an admin_api client uses the authorization_code grant and not client_credentials".into()));
    }
    if !scopes.iter().any(|s| s == ADMIN_SCOPE) {
        scopes.push(ADMIN_SCOPE.to_owned());
        scopes.sort_unstable();
    }
    Ok(())
}

/// For an authorization request that involves the admin API (its scope or its resource),
/// the audience of the grant — the admin API alone — or why it is refused; `None` for
/// every other request.
pub fn request_audience(config: &ProviderConfig, client: &Client, scope: &Scopes, resources: &[String]) -> Option<Result<Vec<String>, OAuthError>> {
    let admin = admin_audience(config);
    let wants_scope = scope.contains(ADMIN_SCOPE);
    let wants_resource = resources.contains(&admin);
    if !wants_scope && !wants_resource {
        return None;
    }
    let refuse = |m: &str| Some(Err(OAuthError::InvalidScope(m.to_owned())));
    if !client.admin_api {
        return refuse("this client may not ask for admin API access");
    }
    if !wants_scope {
        return refuse("the admin API needs the tessera:admin scope");
    }
    if scope.contains(OFFLINE_ACCESS) {
        return refuse("admin API access cannot be granted offline (offline_access)");
    }
    if resources.iter().any(|r| *r != admin) {
        return Some(Err(OAuthError::InvalidTarget("admin API tokens are for the admin API alone".into())));
    }
    Some(Ok(vec![admin]))
}

/// A grant with [`ADMIN_SCOPE`] is issued (or refreshed) only for an enabled administrator.
pub fn check_admin_user(scope: &Scopes, user: &User) -> Result<(), OAuthError> {
    if scope.contains(ADMIN_SCOPE) && (user.disabled || !user.has_role(ROLE_ADMIN)) {
        return Err(OAuthError::AccessDenied("admin API access is only for administrators".into()));
    }
    Ok(())
}

/// Checks a bearer token presented at the admin API; returns the administrator.
/// `Unauthenticated` for a token that is not (or no longer) valid — including one whose
/// session has ended — and `Forbidden` for a valid token that is not an admin API token
/// of a current administrator.
pub(crate) async fn verify_admin_token(ctx: &OAuthContext, token: &str) -> Result<UserId, CoreError> {
    let at = match verify_access_token(ctx, token).await {
        Ok(at) => at,
        Err(OAuthError::ServerError(e)) => return Err(CoreError::Internal(e)),
        Err(_) => return Err(CoreError::Unauthenticated),
    };
    let admin = admin_audience(&ctx.config);
    if at.claims.aud != [admin] || !at.scope.contains(ADMIN_SCOPE) {
        return Err(CoreError::Forbidden);
    }
    match ctx.client(&at.claims.client_id).await? {
        Some(c) if c.admin_api => {}
        _ => return Err(CoreError::Forbidden),
    }
    let user_id: UserId = at.claims.sub.parse().map_err(|_| CoreError::Forbidden)?;
    let sid: SessionHandle = at.claims.sid.as_deref().and_then(|s| s.parse().ok()).ok_or(CoreError::Forbidden)?;
    let now = ctx.now();
    let session = ctx.users.find_session_by_handle(sid).await?;
    if !ctx.config.grants.session_live(session.as_ref(), user_id, now) {
        return Err(CoreError::Unauthenticated);
    }
    match ctx.users.find_user_by_id(user_id).await? {
        Some(u) if !u.disabled && u.has_role(ROLE_ADMIN) => Ok(user_id),
        _ => Err(CoreError::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_api_clients_hold_the_admin_scope() {
        let mut scopes = vec!["openid".to_owned(), ADMIN_SCOPE.to_owned()];
        assert!(check_registration(false, &[GrantType::AuthorizationCode], &mut scopes).is_err());
        let mut scopes = vec!["openid".to_owned()];
        check_registration(true, &[GrantType::AuthorizationCode, GrantType::RefreshToken], &mut scopes).unwrap();
        assert!(scopes.iter().any(|s| s == ADMIN_SCOPE));
        assert!(check_registration(true, &[GrantType::ClientCredentials], &mut vec![]).is_err());
    }
}
