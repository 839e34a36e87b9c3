//! RP-initiated logout decisions (OpenID Connect RP-Initiated Logout 1.0). A request ends the
//! signed-in session without asking only when its `id_token_hint` is ours, unexpired, names
//! the signed-in user, and the request names a registered `post_logout_redirect_uri`;
//! anything else (no hint, an expired or foreign one, another user's) is confirmed by the
//! user on a CSRF-protected form, so a cross-site GET alone never signs anyone out.

use super::{EndSession, Provider, parse_id_token};
use crate::ids::UserId;
use crate::jose::JwsAlg;
use crate::oauth::OAuthError;
use crate::oauth::client::ClientId;
use serde_json::Value;

/// What a verified `id_token_hint` says.
struct Hint {
    /// The client it was issued to.
    aud: String,
    /// Its subject.
    sub: Option<String>,
    /// Whether it has not expired.
    fresh: bool,
}

impl Provider {
    /// Reads an `id_token_hint`: our signature and issuer, a single audience.
    fn logout_hint(&self, token: &str) -> Option<Hint> {
        let claims = parse_id_token(token)?.verify(self.inner.keys.current().verifying_keys(), &JwsAlg::ALL, None).ok()?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.inner.config.issuer.as_str()) {
            return None;
        }
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => a.clone(),
            Some(Value::Array(a)) if a.len() == 1 => a.first()?.as_str()?.to_owned(),
            _ => return None,
        };
        let fresh = claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp > self.now().unix_timestamp());
        Some(Hint { aud, sub: claims.get("sub").and_then(Value::as_str).map(str::to_owned), fresh })
    }

    /// Decides RP-initiated logout for `signed_in` (the user of the request's session, if
    /// any): sign out and redirect only for a fresh hint about that user and a registered
    /// redirect; otherwise ask the user (with the validated redirect, if any).
    pub async fn end_session(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
        signed_in: Option<UserId>,
    ) -> Result<EndSession, OAuthError> {
        let hint = match id_token_hint {
            Some(h) => match self.logout_hint(h) {
                Some(hint) => Some(hint),
                None => return Ok(EndSession::Confirm { redirect: None }),
            },
            None => None,
        };
        let client_id = match (hint.as_ref().map(|h| h.aud.as_str()), client_id) {
            (Some(a), Some(c)) if a != c => return Err(OAuthError::request("client_id does not match the id_token_hint")),
            (Some(a), _) => Some(a.to_owned()),
            (None, c) => c.map(str::to_owned),
        };
        let redirect = match (post_logout_redirect_uri, client_id) {
            (Some(uri), Some(cid)) => match self.inner.store.find_client(&ClientId::new(cid)).await? {
                Some(c) if c.post_logout_redirect_uris.iter().any(|u| u == uri) => Some((uri.to_owned(), state.map(str::to_owned))),
                _ => None,
            },
            _ => None,
        };
        let about_signed_in = |h: &Hint| match signed_in {
            Some(user) => h.sub.as_deref() == Some(user.to_string().as_str()),
            None => true,
        };
        match (hint, redirect) {
            (Some(h), Some((uri, state))) if h.fresh && about_signed_in(&h) => Ok(EndSession::SignOutAndRedirect { uri, state }),
            (_, redirect) => Ok(EndSession::Confirm { redirect }),
        }
    }
}
