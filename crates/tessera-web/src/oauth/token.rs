//! The token, introspection and revocation endpoints (RFC 6749 §3.2, RFC 7662, RFC 7009).

use crate::AppState;
use crate::error::OAuthResponse;
use crate::params::{self, Pairs};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tessera_core::oauth::OAuthError;
use tessera_core::oauth::provider::PresentedClient;

fn form_body(headers: &HeaderMap, body: &Bytes) -> Result<Pairs, OAuthError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")));
    if !ok {
        return Err(OAuthError::InvalidRequest("the body must be application/x-www-form-urlencoded".into()));
    }
    Ok(params::pairs(body))
}

/// Client credentials from the `Authorization: Basic` header and the form.
pub(crate) fn presented(headers: &HeaderMap, p: &Pairs) -> Result<PresentedClient, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(v) if v.len() > 6 && v[..6].eq_ignore_ascii_case("basic ") => {
            let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
            let decoded = base64::engine::general_purpose::STANDARD.decode(v[6..].trim()).map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = text.split_once(':').ok_or_else(bad)?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded.
            let dec = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
            Some((dec(id), dec(secret)))
        }
        _ => None,
    };
    Ok(PresentedClient {
        basic,
        client_id: params::one(p, "client_id")?,
        client_secret: params::one(p, "client_secret")?,
        assertion_type: params::one(p, "client_assertion_type")?,
        assertion: params::one(p, "client_assertion")?,
    })
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// `POST /oauth2/token`.
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthResponse> {
    let p = form_body(&headers, &body)?;
    let params = params::token(&p)?;
    let client = presented(&headers, &p)?;
    let resp = state.provider().token(&params, &client).await?;
    Ok(no_store(Json(resp).into_response()))
}

/// `POST /oauth2/introspect`.
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthResponse> {
    let p = form_body(&headers, &body)?;
    let client = state.provider().authenticate_client(&presented(&headers, &p)?).await?;
    let token = params::one(&p, "token")?.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    let answer = state.provider().introspect(&client, &token).await?;
    Ok(no_store(Json(answer).into_response()))
}

/// `POST /oauth2/revoke`.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthResponse> {
    let p = form_body(&headers, &body)?;
    let client = state.provider().authenticate_client(&presented(&headers, &p)?).await?;
    let token = params::one(&p, "token")?.ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    state.provider().revoke(&client, &token).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}
