//! OAuth errors: one variant per RFC error code (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1;
//! OIDC Core §3.1.2.6; RFC 8707). The web crate maps them to HTTP in one place.
//! [`OAuthError::description`] is the one place descriptions are made safe: RFC 6749 allows
//! only `%x20-21 / %x23-5B / %x5D-7E` in `error_description`.

use std::borrow::Cow;

/// An OAuth protocol error with its description (safe to show to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_request`.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// `invalid_client` (401 at the token endpoint).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// `unauthorized_client`.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// `unsupported_grant_type`.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// `unsupported_response_type`.
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(String),
    /// `invalid_scope`.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// `invalid_target` (RFC 8707).
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// `access_denied`.
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// `login_required` (OIDC).
    #[error("login_required: {0}")]
    LoginRequired(String),
    /// `consent_required` (OIDC).
    #[error("consent_required: {0}")]
    ConsentRequired(String),
    /// `interaction_required` (OIDC): `prompt=none`, but the user must act (e.g. step up).
    #[error("interaction_required: {0}")]
    InteractionRequired(String),
    /// `invalid_token` (RFC 6750).
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// `insufficient_scope` (RFC 6750).
    #[error("insufficient_scope: {0}")]
    InsufficientScope(String),
    /// `request_not_supported` (OIDC Core §3.1.2.6): request objects are not supported.
    #[error("request_not_supported: {0}")]
    RequestNotSupported(String),
    /// `request_uri_not_supported` (OIDC Core §3.1.2.6).
    #[error("request_uri_not_supported: {0}")]
    RequestUriNotSupported(String),
    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1): the storage is out of reach for now
    /// (503 with `Retry-After` at the token endpoint); the cause is logged, not sent.
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable(String),
    /// `server_error`: the cause is logged, not sent.
    #[error("server_error")]
    ServerError(String),
}

/// Keeps only the characters RFC 6749 allows in `error_description` (`%x20-21 / %x23-5B /
/// %x5D-7E`): `"` and `\` become `'`, anything else outside printable ASCII becomes `?`.
pub fn safe_description(d: &str) -> Cow<'_, str> {
    let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    if d.chars().all(allowed) {
        return Cow::Borrowed(d);
    }
    Cow::Owned(
        d.chars()
            .map(|c| match c {
                c if allowed(c) => c,
                '"' | '\\' => '\'',
                _ => '?',
            })
            .collect(),
    )
}

impl OAuthError {
    /// The RFC error code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::UnsupportedResponseType(_) => "unsupported_response_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::AccessDenied(_) => "access_denied",
            OAuthError::LoginRequired(_) => "login_required",
            OAuthError::ConsentRequired(_) => "consent_required",
            OAuthError::InteractionRequired(_) => "interaction_required",
            OAuthError::InvalidToken(_) => "invalid_token",
            OAuthError::InsufficientScope(_) => "insufficient_scope",
            OAuthError::RequestNotSupported(_) => "request_not_supported",
            OAuthError::RequestUriNotSupported(_) => "request_uri_not_supported",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::ServerError(_) => "server_error",
        }
    }

    /// The description sent to the client (never internal details), restricted to the
    /// characters RFC 6749 allows.
    pub fn description(&self) -> Cow<'_, str> {
        safe_description(self.raw_description())
    }

    fn raw_description(&self) -> &str {
        match self {
            OAuthError::ServerError(_) => "the server could not complete the request",
            OAuthError::TemporarilyUnavailable(_) => "the service is temporarily unavailable; try again shortly",
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::UnsupportedResponseType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidTarget(d)
            | OAuthError::AccessDenied(d)
            | OAuthError::LoginRequired(d)
            | OAuthError::ConsentRequired(d)
            | OAuthError::InteractionRequired(d)
            | OAuthError::InvalidToken(d)
            | OAuthError::InsufficientScope(d)
            | OAuthError::RequestNotSupported(d)
            | OAuthError::RequestUriNotSupported(d) => d,
        }
    }

    /// Whether this is the server's fault (`server_error`, `temporarily_unavailable`) rather
    /// than the request's: never to be swallowed as "invalid token".
    pub fn is_fault(&self) -> bool {
        matches!(self, OAuthError::ServerError(_) | OAuthError::TemporarilyUnavailable(_))
    }

    pub(crate) fn request(d: impl Into<String>) -> Self {
        OAuthError::InvalidRequest(d.into())
    }
    pub(crate) fn grant(d: impl Into<String>) -> Self {
        OAuthError::InvalidGrant(d.into())
    }
    pub(crate) fn client(d: impl Into<String>) -> Self {
        OAuthError::InvalidClient(d.into())
    }
}

impl From<crate::CoreError> for OAuthError {
    fn from(e: crate::CoreError) -> Self {
        match e {
            crate::CoreError::Store(s) => s.into(),
            other => OAuthError::ServerError(other.to_string()),
        }
    }
}

impl From<crate::error::StoreError> for OAuthError {
    fn from(e: crate::error::StoreError) -> Self {
        if e.is_unavailable() { OAuthError::TemporarilyUnavailable(e.to_string()) } else { OAuthError::ServerError(e.to_string()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc6749_safe(s: &str) -> bool {
        s.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
    }

    #[test]
    fn descriptions_keep_only_the_characters_rfc6749_allows() {
        for raw in ["plain text", "quote \" and backslash \\", "naïve – “smart” ✓", "tab\tnewline\n", "\u{0}\u{7f}"] {
            let d = safe_description(raw);
            assert!(rfc6749_safe(&d), "{raw:?} became {d:?}");
        }
        assert!(matches!(safe_description("already fine"), Cow::Borrowed(_)));
        assert_eq!(safe_description("say \"hi\""), "say 'hi'");
    }

    /// Every variant, each carrying `d`. The match below fails to compile when a variant is
    /// added without being listed here.
    fn every_variant(d: &str) -> Vec<OAuthError> {
        let all = vec![
            OAuthError::InvalidRequest(d.into()),
            OAuthError::InvalidClient(d.into()),
            OAuthError::InvalidGrant(d.into()),
            OAuthError::UnauthorizedClient(d.into()),
            OAuthError::UnsupportedGrantType(d.into()),
            OAuthError::UnsupportedResponseType(d.into()),
            OAuthError::InvalidScope(d.into()),
            OAuthError::InvalidTarget(d.into()),
            OAuthError::AccessDenied(d.into()),
            OAuthError::LoginRequired(d.into()),
            OAuthError::ConsentRequired(d.into()),
            OAuthError::InteractionRequired(d.into()),
            OAuthError::InvalidToken(d.into()),
            OAuthError::InsufficientScope(d.into()),
            OAuthError::RequestNotSupported(d.into()),
            OAuthError::RequestUriNotSupported(d.into()),
            OAuthError::TemporarilyUnavailable(d.into()),
            OAuthError::ServerError(d.into()),
        ];
        for e in &all {
            match e {
                OAuthError::InvalidRequest(_)
                | OAuthError::InvalidClient(_)
                | OAuthError::InvalidGrant(_)
                | OAuthError::UnauthorizedClient(_)
                | OAuthError::UnsupportedGrantType(_)
                | OAuthError::UnsupportedResponseType(_)
                | OAuthError::InvalidScope(_)
                | OAuthError::InvalidTarget(_)
                | OAuthError::AccessDenied(_)
                | OAuthError::LoginRequired(_)
                | OAuthError::ConsentRequired(_)
                | OAuthError::InteractionRequired(_)
                | OAuthError::InvalidToken(_)
                | OAuthError::InsufficientScope(_)
                | OAuthError::RequestNotSupported(_)
                | OAuthError::RequestUriNotSupported(_)
                | OAuthError::TemporarilyUnavailable(_)
                | OAuthError::ServerError(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_variant_has_an_rfc_code_and_a_safe_description() {
        for d in ["plain", "with \"quotes\" and \\ backslash", "non-ASCII: naïve ✓ “x”", "control\u{1}\n\r\t\u{7f}", ""] {
            for e in every_variant(d) {
                let code = e.code();
                assert!(!code.is_empty() && code.bytes().all(|b| b == b'_' || b.is_ascii_lowercase()), "{code}");
                assert!(rfc6749_safe(&e.description()), "{code}: {:?}", e.description());
            }
        }
        assert_eq!(OAuthError::RequestNotSupported(String::new()).code(), "request_not_supported");
        assert_eq!(OAuthError::RequestUriNotSupported(String::new()).code(), "request_uri_not_supported");
    }

    #[test]
    fn unavailable_storage_is_temporarily_unavailable_not_server_error() {
        let e: OAuthError = crate::error::StoreError::Unavailable("connection refused".into()).into();
        assert_eq!(e.code(), "temporarily_unavailable");
        assert!(!e.description().contains("refused"), "the cause is not sent");
        let e: OAuthError = crate::CoreError::Store(crate::error::StoreError::Unavailable("disk full".into())).into();
        assert_eq!(e.code(), "temporarily_unavailable");
        let e: OAuthError = crate::error::StoreError::Database("syntax".into()).into();
        assert_eq!(e.code(), "server_error");
    }
}
