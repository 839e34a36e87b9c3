//! The one mapping from errors to HTTP, one type per kind of answer:
//!
//! - [`PageError`]: an error page for people (HTML);
//! - [`JsonError`]: `{"error": message}` for the pages' own JSON endpoints (the passkey
//!   ceremonies of `static/webauthn.js`);
//! - [`OAuthResponse`]: RFC 6749 §5.2 JSON, or an RFC 6750 challenge, for OAuth endpoints;
//! - [`ApiError`]: `{"error", "message"}` for the admin API.
//!
//! Every kind is built from a [`CoreError`] through [`classify_core_error`], the one place
//! that reads storage and internal faults out of core errors: internal faults are an opaque
//! 500 (cause logged, never shown), and a storage out of reach (`StoreError::Unavailable`) a
//! 503 with `Retry-After`. Handlers return these types and use `?`.

mod api;
mod json;
mod oauth;
mod page;

pub use api::ApiError;
pub use json::JsonError;
pub use oauth::OAuthResponse;
pub use page::{PageError, error_page};

use axum::response::{IntoResponse, Response};
use tessera_core::CoreError;

/// Seconds a client is asked to wait (`Retry-After`) while the storage is out of reach.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Adds `Retry-After` to a 503.
pub fn retry_later(mut res: Response) -> Response {
    res.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static(RETRY_AFTER_SECONDS));
    res
}

/// Answer for a handler that panicked: the same opaque 500 page.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    PageError::Internal("panic".into()).into_response()
}

/// A core error as every kind of answer reads it first.
#[derive(Debug)]
pub(crate) enum CoreFailure {
    /// Not a fault of the server: each kind answers it in its own words.
    Request(CoreError),
    /// The storage is out of reach for now (the cause, for the logs).
    Unavailable(String),
    /// A fault of the server (the cause, for the logs).
    Internal(String),
}

/// Classifies a core error: storage out of reach, internal fault, or an error of the request.
pub(crate) fn classify_core_error(e: CoreError) -> CoreFailure {
    if e.is_unavailable() {
        CoreFailure::Unavailable(e.to_string())
    } else if e.is_internal() {
        CoreFailure::Internal(e.to_string())
    } else {
        CoreFailure::Request(e)
    }
}
