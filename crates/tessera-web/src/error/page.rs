//! Error pages for people: a readable page with the right status, an opaque 500 (cause
//! logged, never shown) for internal faults, and 503 with `Retry-After` while the storage is
//! out of reach.

use super::{CoreFailure, classify_core_error, retry_later};
use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use tessera_core::CoreError;

/// An error answered with an error page.
#[derive(Debug)]
pub enum PageError {
    /// 400: the request could not be understood.
    BadRequest(&'static str),
    /// 400 with its own title, and a message safe to show (an OAuth front-channel request
    /// refused before anything can be sent back to its client).
    Refused {
        /// The page's title.
        title: &'static str,
        /// Why.
        message: String,
    },
    /// 403: CSRF check failed or not allowed.
    Forbidden(&'static str),
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 413.
    TooLarge,
    /// 415.
    UnsupportedMediaType,
    /// 503 with `Retry-After`: the storage is out of reach for now (cause logged).
    Unavailable(String),
    /// 500: logged, not shown.
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl From<CoreError> for PageError {
    fn from(e: CoreError) -> Self {
        match classify_core_error(e) {
            CoreFailure::Unavailable(cause) => PageError::Unavailable(cause),
            CoreFailure::Internal(cause) => PageError::Internal(cause),
            CoreFailure::Request(e) => match e {
                CoreError::NotFound => PageError::NotFound,
                CoreError::Forbidden => PageError::Forbidden("You are not allowed to do that."),
                CoreError::Invalid(_) | CoreError::Conflict(_) | CoreError::InvalidCredentials | CoreError::Unauthenticated
                | CoreError::SecondFactorRejected { .. } => PageError::BadRequest("The request could not be completed."),
                CoreError::ReauthenticationRequired => PageError::Forbidden("Sign in again to do this."),
                CoreError::Throttled(_) => PageError::Forbidden("Too many failed attempts. Please wait a moment and try again."),
                other => PageError::Internal(other.to_string()),
            },
        }
    }
}

impl PageError {
    fn parts(&self) -> (StatusCode, &str, &str) {
        match self {
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Something is not right", m),
            PageError::Refused { title, message } => (StatusCode::BAD_REQUEST, title, message),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            PageError::NotFound => (StatusCode::NOT_FOUND, "Page not found", "There is nothing at this address."),
            PageError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This address does not accept that kind of request.")
            }
            PageError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Too much data", "The form sent more data than is accepted."),
            PageError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Something is not right", "The form was sent in a format that is not accepted.")
            }
            PageError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The service cannot complete this right now. Nothing was changed; please try again in a moment.",
            ),
            PageError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The server could not complete this request. Please try again.")
            }
        }
    }
}

/// Renders an error page.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    match (ErrorPage { title, message }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_owned()).into_response(),
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match &self {
            PageError::Internal(cause) => tracing::error!(error = %cause, "internal error answering a page request"),
            PageError::Unavailable(cause) => tracing::warn!(error = %cause, "storage unavailable answering a page request"),
            _ => {}
        }
        let (status, title, message) = self.parts();
        let res = error_page(status, title, message);
        if matches!(self, PageError::Unavailable(_)) { retry_later(res) } else { res }
    }
}
