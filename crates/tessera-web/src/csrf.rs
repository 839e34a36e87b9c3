//! CSRF tokens for every state-changing form, on top of `SameSite=Lax` cookies.
//!
//! Before sign-in a random `tessera_csrf` cookie anchors the token; after sign-in the
//! session does. The token is HMAC-SHA256(server key, anchor), so a cookie planted by a
//! sibling subdomain cannot be paired with a token without the server's key, and a
//! signed-in form cannot be replayed against another session.

use crate::context::cookie;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use tessera_core::accounts::Authenticated;
use tessera_core::secret::{SecretToken, constant_time_eq};

/// Name of the pre-sign-in anchor cookie.
pub const CSRF_COOKIE: &str = "tessera_csrf";

fn mac(key: &[u8; 32], purpose: &str, anchor: &[u8]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(purpose.as_bytes());
    ctx.update(b"\0");
    ctx.update(anchor);
    URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
}

/// A pre-sign-in token and, when the anchor cookie must be (re)set, its new value.
#[derive(Debug)]
pub struct AnonymousToken {
    /// Token to put in the form.
    pub token: String,
    /// New anchor to send as a cookie, if the request had none.
    pub new_cookie: Option<SecretToken>,
}

/// The token for pre-sign-in forms, creating the anchor cookie if needed.
pub fn anonymous_token(key: &[u8; 32], headers: &HeaderMap) -> Result<AnonymousToken, tessera_core::CoreError> {
    match cookie(headers, CSRF_COOKIE).filter(|c| c.len() >= 32 && c.len() <= 128) {
        Some(anchor) => Ok(AnonymousToken { token: mac(key, "anon", anchor.as_bytes()), new_cookie: None }),
        None => {
            let anchor = SecretToken::generate()?;
            Ok(AnonymousToken { token: mac(key, "anon", anchor.expose().as_bytes()), new_cookie: Some(anchor) })
        }
    }
}

/// Checks a pre-sign-in form's token against the anchor cookie.
pub fn verify_anonymous(key: &[u8; 32], headers: &HeaderMap, submitted: &str) -> bool {
    match cookie(headers, CSRF_COOKIE) {
        Some(anchor) => constant_time_eq(mac(key, "anon", anchor.as_bytes()).as_bytes(), submitted.as_bytes()),
        None => false,
    }
}

/// The token for a signed-in user's forms.
pub fn session_token(key: &[u8; 32], who: &Authenticated) -> String {
    mac(key, "session", who.id_hash.as_bytes())
}

/// Checks a signed-in form's token.
pub fn verify_session(key: &[u8; 32], who: &Authenticated, submitted: &str) -> bool {
    constant_time_eq(session_token(key, who).as_bytes(), submitted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_tokens_bind_to_their_cookie() {
        let key = [7u8; 32];
        let first = anonymous_token(&key, &HeaderMap::new()).unwrap();
        let anchor = first.new_cookie.unwrap();
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, format!("{CSRF_COOKIE}={}", anchor.expose()).parse().unwrap());
        assert!(verify_anonymous(&key, &h, &first.token));
        assert!(!verify_anonymous(&key, &h, "forged"));
        assert!(!verify_anonymous(&[8u8; 32], &h, &first.token));
        assert!(!verify_anonymous(&key, &HeaderMap::new(), &first.token));
    }
}
