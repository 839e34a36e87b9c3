//! The provider's settings ([`ProviderConfig`]), the endpoint paths the issuer publishes,
//! and the resource indicators (RFC 8707) tokens may be issued for.

use crate::oauth::OAuthError;
use crate::oauth::grant_policy::GrantPolicy;
use time::Duration;

/// Provider settings.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Issuer URL (no trailing slash).
    pub issuer: String,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// ID token lifetime.
    pub id_token_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_token_ttl: Duration,
    /// Authorization code lifetime (60 s).
    pub code_ttl: Duration,
    /// API resources (RFC 8707 `resource` values) tokens may be issued for.
    pub resources: Vec<String>,
    /// Absolute grant lifetime and the session timeouts grants end with.
    pub grants: GrantPolicy,
    /// Whether back-channel logout URIs may point at private, loopback or link-local
    /// addresses (development and tests only; see [`super::target`]).
    pub allow_private_backchannel: bool,
}

impl ProviderConfig {
    /// Defaults for `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            access_token_ttl: Duration::minutes(5),
            id_token_ttl: Duration::minutes(5),
            refresh_token_ttl: Duration::days(30),
            code_ttl: Duration::seconds(60),
            resources: Vec::new(),
            grants: GrantPolicy::default(),
            allow_private_backchannel: false,
        }
    }
    /// `<issuer><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
    /// How long retired keys stay published: the longest token a key may have signed.
    pub fn key_retention(&self) -> Duration {
        self.access_token_ttl.max(self.id_token_ttl) + Duration::minutes(5)
    }

    /// The audience of a token requested for `resources` (RFC 8707): the issuer when none is
    /// named, otherwise the named resources, each of which must be a configured API.
    pub(crate) fn audience_for(&self, resources: &[String]) -> Result<Vec<String>, OAuthError> {
        if resources.is_empty() {
            return Ok(vec![self.issuer.clone()]);
        }
        let mut out = Vec::new();
        for r in resources {
            if r.contains('#') || !(r.starts_with("https://") || r.starts_with("http://") || r.starts_with("urn:")) {
                return Err(OAuthError::InvalidTarget(format!("resource {r:?} must be an absolute URI without a fragment")));
            }
            if !self.resources.iter().any(|x| x == r) {
                return Err(OAuthError::InvalidTarget(format!("resource {r:?} is not a registered API")));
            }
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        Ok(out)
    }
}

/// Endpoint paths.
pub mod paths {
    /// Authorization endpoint.
    pub const AUTHORIZE: &str = "/oauth2/authorize";
    /// Token endpoint.
    pub const TOKEN: &str = "/oauth2/token";
    /// Userinfo endpoint.
    pub const USERINFO: &str = "/oauth2/userinfo";
    /// JWKS.
    pub const JWKS: &str = "/oauth2/jwks";
    /// Introspection.
    pub const INTROSPECT: &str = "/oauth2/introspect";
    /// Revocation.
    pub const REVOKE: &str = "/oauth2/revoke";
    /// RP-initiated logout.
    pub const END_SESSION: &str = "/oauth2/logout";
}
