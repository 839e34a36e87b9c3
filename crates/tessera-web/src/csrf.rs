//! CSRF defences for every state-changing form, on top of `SameSite=Lax` cookies.
//!
//! [`same_origin_only`] is a layer on every route of the pages (not the OAuth back-channel
//! endpoints, the authorization and RP-initiated logout endpoints, which other sites call
//! by design, nor the bearer-authenticated admin API): a request with a method other than
//! GET/HEAD/OPTIONS is refused when `Sec-Fetch-Site` says it comes from another origin or
//! when it has an `Origin` other than the issuer's.
//!
//! Before sign-in a random `tessera_csrf` cookie anchors the token; after sign-in the
//! session does. The token is HMAC-SHA256(server key, anchor), so a cookie planted by a
//! sibling subdomain cannot be paired with a token without the server's key, and a
//! signed-in form cannot be replayed against another session.

use crate::AppState;
use crate::context::cookie;
use crate::error::PageError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// Whether a request comes from the issuer's own pages: `Sec-Fetch-Site`, when sent, is
/// `same-origin` (or `none`, typed by the user), and `Origin`, when sent, is the issuer's.
pub fn is_same_origin(issuer: &str, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return false;
        }
    }
    match headers.get(http::header::ORIGIN) {
        None => true,
        Some(origin) => crate::url::origin_of(issuer).is_some_and(|o| o.as_bytes() == origin.as_bytes()),
    }
}

/// Layer of the pages' routes: refuses cross-site state-changing requests (403) before any
/// handler, extractor or form parsing runs.
pub async fn same_origin_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !req.method().is_safe() && !is_same_origin(&state.config().issuer, req.headers()) {
        return PageError::Forbidden("This form was sent from another site. Go back to this site's own page and try again.").into_response();
    }
    next.run(req).await
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

    #[test]
    fn only_the_issuers_origin_is_same_origin() {
        let issuer = "https://id.example.com";
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            is_same_origin(issuer, &h)
        };
        assert!(with(&[]), "no Origin and no Sec-Fetch-Site: not a browser's cross-site form");
        assert!(with(&[("origin", "https://id.example.com"), ("sec-fetch-site", "same-origin")]));
        assert!(with(&[("sec-fetch-site", "none")]));
        assert!(!with(&[("origin", "https://evil.example")]));
        assert!(!with(&[("origin", "null")]));
        assert!(!with(&[("origin", "https://id.example.com.evil.example")]));
        assert!(!with(&[("origin", "http://id.example.com")]), "another scheme is another origin");
        assert!(!with(&[("sec-fetch-site", "cross-site")]));
        assert!(!with(&[("sec-fetch-site", "same-site")]), "a sibling subdomain is another origin");
        assert!(!with(&[("origin", "https://id.example.com"), ("sec-fetch-site", "cross-site")]));
    }
}
