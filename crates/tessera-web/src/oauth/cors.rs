//! CORS for the endpoints a browser app calls directly (token, userinfo, JWKS), and only for
//! the web origins registered by public clients (the origins of their redirect URIs). The
//! authorization endpoint never answers CORS: it is navigated to, not fetched.

use crate::AppState;
use crate::url::origin_of;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

async fn allowed(state: &AppState, origin: &str) -> bool {
    match state.provider().list_clients().await {
        Ok(clients) => clients
            .iter()
            .filter(|c| c.is_public())
            .flat_map(|c| c.redirect_uris.iter())
            .any(|u| origin_of(u) == Some(origin)),
        Err(e) => {
            tracing::warn!(error = %e, "CORS origin check failed");
            false
        }
    }
}

/// Adds `Access-Control-Allow-Origin` for registered public-client origins, and answers
/// preflight requests for them.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(origin) = origin else { return next.run(req).await };
    let ok = allowed(&state, &origin).await;
    let preflight = req.method() == http::Method::OPTIONS;
    let mut res = if preflight {
        if ok { StatusCode::NO_CONTENT.into_response() } else { StatusCode::FORBIDDEN.into_response() }
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if ok {
        if let Ok(v) = HeaderValue::from_str(&origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if preflight {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, DPoP"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    res
}

/// `OPTIONS` on a CORS-enabled endpoint without an allowed origin.
pub async fn preflight() -> StatusCode {
    StatusCode::FORBIDDEN
}
