//! Security headers on every response: CSP without inline scripts, no framing, no sniffing,
//! no referrer, no caching of pages, and HSTS when served over https.

use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use http::header;

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

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
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let too_long = req.uri().path_and_query().is_some_and(|p| p.as_str().len() > MAX_URI_BYTES);
    let mut res = if too_long {
        crate::error::error_page(http::StatusCode::URI_TOO_LONG, "Address too long", "The address of this request is longer than accepted.")
    } else if declares_too_large_body(&req) {
        too_large(req.uri().path())
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config().is_https() {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    res
}
