//! `UpstreamClient`: the port through which federation talks HTTP to upstream providers.
//! The binary implements it (`crates/tessera/src/upstream.rs`: no redirects, timeouts, size
//! caps, an SSRF guard); everything protocol-specific stays in core.

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

/// Why an upstream request failed (the text is for logs, never shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamHttpError {
    /// Connection, timeout, refused address (SSRF guard) or redirect.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// A status other than 2xx; the body when it was a JSON object (OAuth errors).
    #[error("upstream answered {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The JSON body, if any.
        body: Option<Value>,
    },
    /// The body was not JSON, or too large.
    #[error("upstream answered with an unusable body: {0}")]
    BadBody(String),
}

/// HTTP to upstream providers. `allow_loopback` is true only for providers configured on a
/// loopback address (development and tests); otherwise loopback, private and link-local
/// addresses are refused at connect time.
#[async_trait]
pub trait UpstreamClient: Send + Sync + 'static {
    /// `GET url` (`Accept: application/json`), with a bearer token if given.
    async fn get_json(&self, url: &Url, bearer: Option<&str>, allow_loopback: bool) -> Result<Value, UpstreamHttpError>;
    /// `POST url` with a form body, with HTTP Basic client authentication if given.
    async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        allow_loopback: bool,
    ) -> Result<Value, UpstreamHttpError>;
}
