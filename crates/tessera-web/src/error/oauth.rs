//! OAuth protocol errors as RFC 6749 §5.2 JSON, or RFC 6750 challenges for bearer endpoints.

use super::retry_later;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tessera_core::oauth::OAuthError;

/// An OAuth protocol error answered as RFC 6749 §5.2 JSON (or RFC 6750 for bearer
/// endpoints). `invalid_client` is 401 with `WWW-Authenticate`; `server_error` is a 500
/// whose cause is logged, not sent; `temporarily_unavailable` is a 503 with `Retry-After`.
/// Descriptions come from `OAuthError::description`, which keeps them RFC 6749-safe.
#[derive(Debug)]
pub struct OAuthResponse {
    /// The error.
    pub error: OAuthError,
    /// Answer as a bearer-token resource (RFC 6750) rather than the token endpoint.
    pub bearer: bool,
}

impl OAuthResponse {
    /// The error as a bearer-token resource (RFC 6750) answers it.
    pub fn bearer(error: OAuthError) -> Self {
        Self { error, bearer: true }
    }
}

impl From<OAuthError> for OAuthResponse {
    fn from(error: OAuthError) -> Self {
        Self { error, bearer: false }
    }
}

impl IntoResponse for OAuthResponse {
    fn into_response(self) -> Response {
        use OAuthError as E;
        match &self.error {
            E::ServerError(cause) => tracing::error!(error = %cause, "internal error answering an OAuth request"),
            E::TemporarilyUnavailable(cause) => tracing::warn!(error = %cause, "storage unavailable answering an OAuth request"),
            _ => {}
        }
        let status = match (&self.error, self.bearer) {
            (E::InvalidClient(_), _) => StatusCode::UNAUTHORIZED,
            (E::ServerError(_), _) => StatusCode::INTERNAL_SERVER_ERROR,
            (E::TemporarilyUnavailable(_), _) => StatusCode::SERVICE_UNAVAILABLE,
            (E::InvalidToken(_), true) => StatusCode::UNAUTHORIZED,
            (E::InsufficientScope(_), true) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({"error": self.error.code(), "error_description": self.error.description()});
        let mut res = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res = retry_later(res);
        }
        let h = res.headers_mut();
        h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        h.insert(http::header::PRAGMA, http::HeaderValue::from_static("no-cache"));
        let challenge = if self.bearer {
            let desc = self.error.description();
            Some(format!("Bearer realm=\"tessera\", error=\"{}\", error_description=\"{}\"", self.error.code(), desc))
        } else if matches!(self.error, E::InvalidClient(_)) {
            Some("Basic realm=\"tessera\"".to_owned())
        } else {
            None
        };
        if let Some(c) = challenge.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            h.insert(http::header::WWW_AUTHENTICATE, c);
        }
        res
    }
}
