//! Errors of the pages' JSON endpoints (the passkey ceremonies of `static/webauthn.js`).

use super::{CoreFailure, classify_core_error, retry_later};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tessera_core::CoreError;

/// An error of the pages' JSON endpoints: `{"error": message}` with the right status, and
/// `redirect` when the browser should go elsewhere (sign in again). Internal faults are an
/// opaque 500 with the cause logged.
#[derive(Debug)]
pub struct JsonError {
    /// Status.
    pub status: StatusCode,
    /// Message safe to show.
    pub message: String,
    /// Where the page should send the user, if anywhere.
    pub redirect: Option<String>,
}

impl JsonError {
    /// A 400 with `message`.
    pub fn bad(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into(), redirect: None }
    }
    /// A 403 from a failed CSRF check.
    pub fn forbidden() -> Self {
        Self { status: StatusCode::FORBIDDEN, message: "This page has expired. Reload it and try again.".into(), redirect: None }
    }
    /// A 401 telling the page to go to `to`.
    pub fn redirect(message: impl Into<String>, to: String) -> Self {
        Self { status: StatusCode::UNAUTHORIZED, message: message.into(), redirect: Some(to) }
    }
    /// A 403 telling the page to let the user confirm it is them at `reauth_link` first.
    pub fn reauthenticate(reauth_link: String) -> Self {
        Self { status: StatusCode::FORBIDDEN, message: "Please confirm it’s you first.".into(), redirect: Some(reauth_link) }
    }
    fn status(status: StatusCode, message: &str) -> Self {
        Self { status, message: message.into(), redirect: None }
    }
    /// The opaque 500, with the cause logged.
    fn internal(cause: &str) -> Self {
        tracing::error!(error = %cause, "internal error answering a passkey request");
        Self::status(StatusCode::INTERNAL_SERVER_ERROR, "The server could not complete this request. Please try again.")
    }
}

impl From<CoreError> for JsonError {
    fn from(e: CoreError) -> Self {
        let e = match classify_core_error(e) {
            CoreFailure::Request(e) => e,
            CoreFailure::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable answering a passkey request");
                return Self::status(StatusCode::SERVICE_UNAVAILABLE, "The service is busy. Please try again in a moment.");
            }
            CoreFailure::Internal(cause) => return Self::internal(&cause),
        };
        match e {
            CoreError::Invalid(m) => JsonError::bad(m),
            CoreError::InvalidCredentials => Self::status(StatusCode::UNAUTHORIZED, "That passkey could not sign you in."),
            CoreError::SecondFactorRejected { attempts_left: 0 } => {
                JsonError::redirect("Too many failed attempts. Please sign in again.", "/login?expired=1".into())
            }
            CoreError::SecondFactorRejected { .. } => Self::status(StatusCode::UNAUTHORIZED, "That passkey could not be verified. Try again."),
            CoreError::Unauthenticated => JsonError::redirect("Please sign in again.", "/login?expired=1".into()),
            CoreError::ReauthenticationRequired => Self::status(StatusCode::FORBIDDEN, "Please confirm it’s you first."),
            CoreError::Throttled(_) => Self::status(StatusCode::TOO_MANY_REQUESTS, "Too many failed attempts. Please wait a moment and try again."),
            CoreError::NotFound => Self::status(StatusCode::NOT_FOUND, "Not found."),
            CoreError::Conflict(what) => JsonError::bad(format!("That {what} is already registered.")),
            other => Self::internal(&other.to_string()),
        }
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let body = match self.redirect {
            Some(r) => serde_json::json!({"error": self.message, "redirect": r}),
            None => serde_json::json!({"error": self.message}),
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE { retry_later(res) } else { res }
    }
}
