//! Tokens for the admin API. An access token opens `/admin/v1/*` only if it was minted for
//! it: audience `<issuer>/admin/v1` alone and scope `tessera:admin`, requested by a client
//! registered with `admin_api`, for a user holding the `admin` role when it was issued,
//! never with `offline_access`. At each request the token's session must still live and
//! its user still be an enabled administrator, so ending the session (sign-out, expiry, an
//! administrator ending it) ends the token's admin access at once.

use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::config::ProviderConfig;
use crate::oauth::grant_policy::OFFLINE_ACCESS;
use crate::oauth::scope::Scopes;
use crate::user::{ROLE_ADMIN, User};

pub use crate::oauth::scope::ADMIN_SCOPE;

/// Path of the admin API under the issuer (its resource identifier is `<issuer>` + this).
pub const ADMIN_API_PATH: &str = "/admin/v1";

/// The admin API's resource identifier (RFC 8707) and the audience of its tokens.
pub fn admin_audience(config: &ProviderConfig) -> String {
    config.url(ADMIN_API_PATH)
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
