//! OAuth errors: one variant per RFC error code (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1;
//! OIDC Core §3.1.2.6; RFC 8707). The web crate maps them to HTTP in one place.

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
    /// `server_error`: the cause is logged, not sent.
    #[error("server_error")]
    ServerError(String),
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
            OAuthError::ServerError(_) => "server_error",
        }
    }

    /// The description sent to the client (never internal details).
    pub fn description(&self) -> &str {
        match self {
            OAuthError::ServerError(_) => "the server could not complete the request",
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
            | OAuthError::InsufficientScope(d) => d,
        }
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
        OAuthError::ServerError(e.to_string())
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        OAuthError::ServerError(e.to_string())
    }
}
