//! Security headers on every response: CSP without inline scripts or off-site form targets,
//! no framing, no sniffing, no referrer, no caching of pages, and HSTS when served over https.
//!
//! Over https every cookie of ours carries the `__Host-` prefix (the browser then accepts it
//! only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant or
//! overwrite it). Handlers name cookies without the prefix; this layer adds it to
//! `Set-Cookie` and, on the way in, passes on only the prefixed cookies, under their plain
//! names, dropping unprefixed look-alikes.

use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use http::header;

/// The Content-Security-Policy of every page; forms may post only to the issuer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Where a page's forms may be sent (a response extension set by the handler; without one a
/// page's forms may post only to the issuer). Chromium applies `form-action` to the
/// redirects that follow a form submission too, so a form whose redirects end at a client
/// (sign-in, second factor, consent, logout confirmation) also allows that client's
/// registered redirect URI's origin.
#[derive(Debug, Clone)]
pub enum FormTargets {
    /// The issuer, and the client of the authorization request `return_to` names, if any.
    Continuing(String),
    /// The origin of this (validated) client URI, and the issuer when `issuer`.
    Client {
        /// The client's redirect URI.
        uri: String,
        /// Whether the issuer is a target too (the form_post response needs only the client).
        issuer: bool,
    },
}

impl FormTargets {
    /// Adds these targets to a response.
    pub fn attach(self, mut res: Response) -> Response {
        res.extensions_mut().insert(self);
        res
    }

    /// The issuer's own sources plus client origins, resolved.
    async fn resolve(self, state: &AppState) -> (bool, Option<String>) {
        match self {
            FormTargets::Client { uri, issuer } => (issuer, crate::url::origin_of(&uri).map(str::to_owned)),
            FormTargets::Continuing(return_to) => (true, continued_client_origin(state, &return_to).await),
        }
    }
}

/// The origin of the registered redirect URI an authorization request (a local `return_to`)
/// names, if it names one of its client's.
async fn continued_client_origin(state: &AppState, return_to: &str) -> Option<String> {
    let query = return_to.strip_prefix(tessera_core::oauth::provider::paths::AUTHORIZE)?.strip_prefix('?')?;
    let pairs = crate::params::pairs(query.as_bytes());
    let one = |n: &str| crate::params::one(&pairs, n).ok().flatten();
    let (client_id, redirect_uri) = (one("client_id")?, one("redirect_uri")?);
    let client = state.provider().find_client(&client_id).await.ok()??;
    let uri = client.match_redirect_uri(&redirect_uri)?;
    crate::url::origin_of(&uri).map(str::to_owned)
}

/// The CSP with `form-action` allowing the issuer (`'self'`) when `issuer`, and `origin`.
fn csp_with(issuer: bool, origin: Option<&str>) -> Option<String> {
    let mut sources: Vec<&str> = Vec::new();
    if issuer {
        sources.push("'self'");
    }
    // Only plain origins: nothing that could end the directive or add a source list.
    if let Some(o) = origin.filter(|o| o.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/-[]".contains(&b))) {
        sources.push(o);
    }
    if sources.is_empty() {
        sources.push("'none'");
    }
    let base = CSP.strip_suffix("form-action 'self'")?;
    Some(format!("{base}form-action {}", sources.join(" ")))
}

/// Prefix of our cookies' names over https.
const HOST_PREFIX: &str = "__Host-";
/// Every cookie of ours starts with this.
const OUR_COOKIES: &str = "tessera_";

/// The request's `Cookie` headers as the handlers should see them over https.
fn unprefix_cookies(headers: &mut http::HeaderMap) {
    let mut kept: Vec<String> = Vec::new();
    let mut any = false;
    for v in headers.get_all(header::COOKIE) {
        any = true;
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(ours) = pair.strip_prefix(HOST_PREFIX).filter(|p| p.starts_with(OUR_COOKIES)) {
                kept.push(ours.to_owned());
            } else if !pair.starts_with(OUR_COOKIES) {
                kept.push(pair.to_owned());
            }
        }
    }
    if !any {
        return;
    }
    headers.remove(header::COOKIE);
    if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
        if !kept.is_empty() {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// Adds the `__Host-` prefix to the response's cookies of ours.
fn prefix_set_cookies(headers: &mut http::HeaderMap) {
    let values: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for v in values {
        let renamed = match v.to_str() {
            Ok(s) if s.starts_with(OUR_COOKIES) => HeaderValue::from_str(&format!("{HOST_PREFIX}{s}")).ok(),
            _ => None,
        };
        headers.append(header::SET_COOKIE, renamed.unwrap_or(v));
    }
}

/// Longest request target (path and query) accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Whether the request declares (`Content-Length`) a body larger than any route accepts; such
/// a request is refused at once instead of being waited for. A malformed length is left to
/// the HTTP layer.
fn declares_too_large_body(req: &Request) -> bool {
    req.headers()
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .any(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > crate::MAX_BODY_BYTES as u64))
}

/// 413 in the shape of the endpoint: JSON for the admin API and the OAuth back-channel
/// endpoints, an error page for people.
fn too_large(path: &str) -> Response {
    use axum::response::IntoResponse;
    let status = http::StatusCode::PAYLOAD_TOO_LARGE;
    if path.starts_with("/admin/") {
        (status, axum::Json(serde_json::json!({"error": "invalid", "message": "body too large"}))).into_response()
    } else if path.starts_with("/oauth2/") && path != tessera_core::oauth::provider::paths::AUTHORIZE {
        let body = serde_json::json!({"error": "invalid_request", "error_description": "the request body is too large"});
        (status, axum::Json(body)).into_response()
    } else {
        crate::error::PageError::TooLarge.into_response()
    }
}

/// Refuses overlong request targets (414) and declared bodies over the limit (413) before
/// reading them, and adds the security headers.
pub async fn headers(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let https = state.config().is_https();
    if https {
        unprefix_cookies(req.headers_mut());
    }
    let too_long = req.uri().path_and_query().is_some_and(|p| p.as_str().len() > MAX_URI_BYTES);
    let mut res = if too_long {
        crate::error::error_page(http::StatusCode::URI_TOO_LONG, "Address too long", "The address of this request is longer than accepted.")
    } else if declares_too_large_body(&req) {
        // The body is never read, so the connection cannot carry another request: say so,
        // or a client may send its next request on a connection the server then drops.
        let mut r = too_large(req.uri().path());
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    } else {
        next.run(req).await
    };
    let csp = match res.extensions_mut().remove::<FormTargets>() {
        Some(t) => {
            let (issuer, origin) = t.resolve(&state).await;
            csp_with(issuer, origin.as_deref()).and_then(|c| HeaderValue::from_str(&c).ok())
        }
        None => None,
    };
    let h = res.headers_mut();
    if https {
        prefix_set_cookies(h);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, csp.unwrap_or(HeaderValue::from_static(CSP)));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: browsers send `Origin: null` on form posts under
    // `no-referrer`, which the cross-site guard must refuse; other sites still get no referrer.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config().is_https() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_targets_make_the_form_action_directive() {
        assert!(csp_with(false, Some("https://app.example")).unwrap().ends_with("frame-ancestors 'none'; form-action https://app.example"));
        assert!(csp_with(true, Some("https://app.example")).unwrap().ends_with("form-action 'self' https://app.example"));
        assert!(csp_with(true, None).unwrap().ends_with("form-action 'self'"));
        assert!(csp_with(false, Some("https://x.example; script-src *")).unwrap().ends_with("form-action 'none'"), "no injection into the policy");
    }

    #[test]
    fn our_cookies_carry_the_host_prefix_over_https() {
        let mut h = http::HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("tessera_session=planted; __Host-tessera_session=real; other=1"));
        h.append(header::COOKIE, HeaderValue::from_static("__Host-tessera_csrf=c"));
        unprefix_cookies(&mut h);
        assert_eq!(h.get(header::COOKIE).unwrap(), "tessera_session=real; other=1; tessera_csrf=c");
        let mut h = http::HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("tessera_session=v; Path=/; HttpOnly; SameSite=Lax; Secure"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("foreign=1"));
        prefix_set_cookies(&mut h);
        let all: Vec<_> = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert_eq!(all, ["__Host-tessera_session=v; Path=/; HttpOnly; SameSite=Lax; Secure", "foreign=1"]);
    }
}
