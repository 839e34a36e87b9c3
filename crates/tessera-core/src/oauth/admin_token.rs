//! The admin API's bearer tokens checked at each request (the rules they were issued under
//! are [`super::admin_access`]'s): the token's session must still live and its user still
//! be an enabled administrator.

use crate::CoreError;
use crate::ids::{SessionHandle, UserId};
use crate::oauth::OAuthError;
use crate::oauth::admin_access::{ADMIN_SCOPE, admin_audience};
use crate::oauth::context::OAuthContext;
use crate::oauth::introspect::verify_access_token;
use crate::user::ROLE_ADMIN;

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
