//! The one mapping from errors to HTTP for pages: a readable error page with the right
//! status, and an opaque 500 (cause logged, never shown) for internal faults.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use tessera_core::CoreError;

/// An error answered with an error page.
#[derive(Debug)]
pub enum PageError {
    /// 400: the request could not be understood.
    BadRequest(&'static str),
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
        match e {
            CoreError::NotFound => PageError::NotFound,
            CoreError::Forbidden => PageError::Forbidden("You are not allowed to do that."),
            CoreError::Invalid(_) | CoreError::Conflict(_) | CoreError::InvalidCredentials | CoreError::Unauthenticated => {
                PageError::BadRequest("The request could not be completed.")
            }
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl PageError {
    fn parts(&self) -> (StatusCode, &str, &str) {
        match self {
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Something is not right", m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            PageError::NotFound => (StatusCode::NOT_FOUND, "Page not found", "There is nothing at this address."),
            PageError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This address does not accept that kind of request.")
            }
            PageError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Too much data", "The form sent more data than is accepted."),
            PageError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Something is not right", "The form was sent in a format that is not accepted.")
            }
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
        if let PageError::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error answering a page request");
        }
        let (status, title, message) = self.parts();
        error_page(status, title, message)
    }
}

/// Answer for a handler that panicked: the same opaque 500 page.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    PageError::Internal("panic".into()).into_response()
}

/// An OAuth protocol error answered as RFC 6749 §5.2 JSON (or RFC 6750 for bearer
/// endpoints). `invalid_client` is 401 with `WWW-Authenticate`; `server_error` is a 500
/// whose cause is logged, not sent.
#[derive(Debug)]
pub struct OAuthResponse {
    /// The error.
    pub error: tessera_core::oauth::OAuthError,
    /// Answer as a bearer-token resource (RFC 6750) rather than the token endpoint.
    pub bearer: bool,
}

impl From<tessera_core::oauth::OAuthError> for OAuthResponse {
    fn from(error: tessera_core::oauth::OAuthError) -> Self {
        Self { error, bearer: false }
    }
}

impl IntoResponse for OAuthResponse {
    fn into_response(self) -> Response {
        use tessera_core::oauth::OAuthError as E;
        if let E::ServerError(cause) = &self.error {
            tracing::error!(error = %cause, "internal error answering an OAuth request");
        }
        let status = match (&self.error, self.bearer) {
            (E::InvalidClient(_), _) => StatusCode::UNAUTHORIZED,
            (E::ServerError(_), _) => StatusCode::INTERNAL_SERVER_ERROR,
            (E::InvalidToken(_), true) => StatusCode::UNAUTHORIZED,
            (E::InsufficientScope(_), true) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({"error": self.error.code(), "error_description": self.error.description()});
        let mut res = (status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        h.insert(http::header::PRAGMA, http::HeaderValue::from_static("no-cache"));
        let challenge = if self.bearer {
            let desc = self.error.description().replace(['"', '\\'], "'");
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
