//! Admin API errors: `{"error": code, "message": text}`.

use super::{CoreFailure, classify_core_error, retry_later};
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tessera_core::CoreError;

/// An admin API error, answered as `{"error", "message"}`; a 500's message is not sent (the
/// cause is logged), a 401 carries the bearer challenge, a 503 `Retry-After`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with its status, code (`invalid`, `not_found`, …) and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    /// 400 `invalid`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.message, "internal error answering an admin API request");
        }
        let message = if self.status == StatusCode::INTERNAL_SERVER_ERROR { "internal error".to_owned() } else { self.message };
        let mut res = (self.status, Json(serde_json::json!({"error": self.code, "message": message}))).into_response();
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tessera-admin\", scope=\"tessera:admin\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            return retry_later(res);
        }
        res
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match classify_core_error(e) {
            CoreFailure::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable answering an admin API request");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the service is temporarily unavailable; try again shortly")
            }
            CoreFailure::Internal(cause) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", cause),
            CoreFailure::Request(e) => match e {
                CoreError::Invalid(m) => ApiError::invalid(m),
                CoreError::Conflict(what) => ApiError::new(StatusCode::CONFLICT, "conflict", format!("{what} is already taken")),
                CoreError::NotFound => ApiError::not_found("no such resource"),
                CoreError::Forbidden => ApiError::new(StatusCode::FORBIDDEN, "forbidden", "not allowed"),
                other => ApiError::invalid(other.to_string()),
            },
        }
    }
}
