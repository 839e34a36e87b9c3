//! The client credentials grant (RFC 6749 §4.4): a client's own token, for the API scopes it
//! registered (never the OpenID Connect ones) and the resources it names.

use super::{TokenParams, TokenResponse};
use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::context::OAuthContext;
use crate::oauth::mint::Minter;
use crate::oauth::scope::{STANDARD_SCOPES, Scopes};

/// Issues `client` an access token of its own.
pub(super) fn issue(ctx: &OAuthContext, client: &Client, p: &TokenParams) -> Result<TokenResponse, OAuthError> {
    let allowed = Scopes::from_list(client.scopes.iter().filter(|s| !STANDARD_SCOPES.contains(&s.as_str())).cloned());
    let scope = match p.scope.as_deref() {
        Some(s) => {
            let s = Scopes::parse(s).map_err(OAuthError::InvalidScope)?;
            let bad = s.not_in(&allowed);
            if !bad.is_empty() {
                return Err(OAuthError::InvalidScope(format!("scope not allowed for this client: {}", bad.join(" "))));
            }
            s
        }
        None => allowed,
    };
    let audience = ctx.config.audience_for(&p.resource)?;
    let keys = ctx.keys.current();
    let access_token = Minter::new(&ctx.config, &keys).client_token(client, &scope, audience, ctx.now())?;
    Ok(TokenResponse::bearer(access_token, ctx.config.access_token_ttl, None, None, &scope))
}
