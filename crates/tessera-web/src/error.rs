//! The one mapping from errors to HTTP for pages: a readable error page with the right
//! status, an opaque 500 (cause logged, never shown) for internal faults, and 503 with
//! `Retry-After` (RFC 6749 `temporarily_unavailable` for OAuth) while the storage is out of
//! reach (`StoreError::Unavailable`).

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use tessera_core::CoreError;

/// Seconds a client is asked to wait (`Retry-After`) while the storage is out of reach.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Adds `Retry-After` to a 503.
pub fn retry_later(mut res: Response) -> Response {
    res.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static(RETRY_AFTER_SECONDS));
    res
}

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
        match e {
            CoreError::NotFound => PageError::NotFound,
            CoreError::Forbidden => PageError::Forbidden("You are not allowed to do that."),
            CoreError::Invalid(_) | CoreError::Conflict(_) | CoreError::InvalidCredentials | CoreError::Unauthenticated
            | CoreError::SecondFactorRejected { .. } => PageError::BadRequest("The request could not be completed."),
            CoreError::ReauthenticationRequired => PageError::Forbidden("Sign in again to do this."),
            CoreError::Throttled(_) => PageError::Forbidden("Too many failed attempts. Please wait a moment and try again."),
            other if other.is_unavailable() => PageError::Unavailable(other.to_string()),
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

/// Answer for a handler that panicked: the same opaque 500 page.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    PageError::Internal("panic".into()).into_response()
}

/// An OAuth protocol error answered as RFC 6749 §5.2 JSON (or RFC 6750 for bearer
/// endpoints). `invalid_client` is 401 with `WWW-Authenticate`; `server_error` is a 500
/// whose cause is logged, not sent; `temporarily_unavailable` is a 503 with `Retry-After`.
/// Descriptions come from `OAuthError::description`, which keeps them RFC 6749-safe.
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

/// An error of the pages' JSON endpoints (the passkey ceremonies): `{"error": message}`
/// with the right status, and `redirect` when the browser should go elsewhere (sign in
/// again). Internal faults are an opaque 500 with the cause logged.
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
    /// A 403 from a failed CSRF or origin check.
    pub fn forbidden() -> Self {
        Self { status: StatusCode::FORBIDDEN, message: "This page has expired. Reload it and try again.".into(), redirect: None }
    }
    /// A 401 telling the page to go to `to`.
    pub fn redirect(message: impl Into<String>, to: String) -> Self {
        Self { status: StatusCode::UNAUTHORIZED, message: message.into(), redirect: Some(to) }
    }
}

impl From<CoreError> for JsonError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(m) => JsonError::bad(m),
            CoreError::InvalidCredentials => {
                Self { status: StatusCode::UNAUTHORIZED, message: "That passkey could not sign you in.".into(), redirect: None }
            }
            CoreError::SecondFactorRejected { attempts_left: 0 } => {
                JsonError::redirect("Too many failed attempts. Please sign in again.", "/login?expired=1".into())
            }
            CoreError::SecondFactorRejected { .. } => {
                Self { status: StatusCode::UNAUTHORIZED, message: "That passkey could not be verified. Try again.".into(), redirect: None }
            }
            CoreError::Unauthenticated => JsonError::redirect("Please sign in again.", "/login?expired=1".into()),
            CoreError::ReauthenticationRequired => {
                JsonError { status: StatusCode::FORBIDDEN, message: "Please confirm it’s you first.".into(), redirect: None }
            }
            CoreError::Throttled(_) => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "Too many failed attempts. Please wait a moment and try again.".into(),
                redirect: None,
            },
            CoreError::NotFound => Self { status: StatusCode::NOT_FOUND, message: "Not found.".into(), redirect: None },
            CoreError::Conflict(what) => JsonError::bad(format!("That {what} is already registered.")),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "storage unavailable answering a passkey request");
                Self { status: StatusCode::SERVICE_UNAVAILABLE, message: "The service is busy. Please try again in a moment.".into(), redirect: None }
            }
            other => {
                tracing::error!(error = %other, "internal error answering a passkey request");
                Self { status: StatusCode::INTERNAL_SERVER_ERROR, message: "The server could not complete this request. Please try again.".into(), redirect: None }
            }
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
