//! Discovery, JWKS and userinfo.

use crate::AppState;
use crate::context::bearer;
use crate::error::OAuthResponse;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use tessera_core::oauth::OAuthError;

/// How long JWKS may be cached: shorter than the time a `next` key is published before it
/// signs, and far shorter than retired keys stay published.
pub const JWKS_MAX_AGE_SECS: u32 = 60;

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn discovery(State(state): State<AppState>) -> Response {
    let mut res = ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], state.provider().discovery_json().to_string()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// `GET /oauth2/jwks`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.provider().keys().current().jwks_json();
    let mut res = (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"))],
        body.to_string(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// `GET`/`POST /oauth2/userinfo`.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        let mut res = OAuthResponse::bearer(OAuthError::InvalidToken("a bearer token is required".into())).into_response();
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tessera\""));
        return res;
    };
    match state.provider().userinfo(token).await {
        Ok(v) => {
            let mut res = Json(v).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => OAuthResponse::bearer(e).into_response(),
    }
}
