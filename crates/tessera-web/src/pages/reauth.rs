//! Re-authentication: account changes need a recent sign-in; a change refused for want of
//! one sends the user to confirm it is them, then back to the account page.

use crate::error::{JsonError, PageError};
use crate::render::see_other;
use crate::url::urlencode;
use axum::response::Response;
use tessera_core::CoreError;
use tessera_core::accounts::Authenticated;

/// Where a signed-in user confirms it is them (re-authentication), coming back to `to`.
pub(crate) fn reauth_link(who: &Authenticated, to: &str) -> String {
    format!("/login?reauth=1&return_to={}&login_hint={}", urlencode(to), urlencode(who.user.username.as_str()))
}

/// The page answer to an account change the core refused: to the re-authentication when the
/// change needs a recent sign-in, else the error page.
pub(crate) fn refused(who: &Authenticated, e: CoreError) -> Result<Response, PageError> {
    match e {
        CoreError::ReauthenticationRequired => Ok(see_other(&reauth_link(who, "/account"), &[])),
        other => Err(other.into()),
    }
}

/// The same for the JSON endpoints: the page is told where to confirm it is the user.
pub(crate) fn refused_json(who: &Authenticated, e: CoreError) -> JsonError {
    match e {
        CoreError::ReauthenticationRequired => JsonError::reauthenticate(reauth_link(who, "/account")),
        other => other.into(),
    }
}
