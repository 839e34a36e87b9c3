//! Why a token was refused, and why a [`Verifier`](crate::Verifier) could not be built.

/// Why an access token was refused. One variant per refusal reason.
///
/// [`VerifyError::reason`] gives a short stable label (used as the `reason` label of the
/// `tessera_verify_refusals_total` counter) and [`VerifyError::description`] a text that is
/// safe to send to the client (RFC 6750 `error_description`).
///
/// ```
/// use tessera_verify::VerifyError;
/// assert_eq!(VerifyError::Expired.reason(), "expired");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The request carried no bearer token (only produced by the tower layer and extractor).
    #[error("no bearer token")]
    MissingToken,
    /// The compact JWS is longer than 16 KiB.
    #[error("token too large")]
    TooLarge,
    /// Not a compact JWS of three base64url parts with JSON objects, or a claim has the
    /// wrong JSON type.
    #[error("malformed token")]
    Malformed,
    /// The header `typ` is missing or is not the expected type (`at+jwt`).
    #[error("wrong token type")]
    WrongType,
    /// The header has a `crit` member; no JWS extensions are understood.
    #[error("unsupported critical header")]
    CriticalHeader,
    /// The header `alg` is not in the configured allow-list (`none` and HMAC never are).
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// No key in the issuer's key set has the token's `kid` (after one rate-limited refetch).
    #[error("unknown signing key")]
    UnknownKey,
    /// The key named by `kid` is not a key for the header's `alg`.
    #[error("key does not match the algorithm")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// No `aud` value is one of the configured audiences.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    /// A claim has an unusable value (for example a string `exp`).
    #[error("invalid claim {0}")]
    InvalidClaim(&'static str),
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// The token lacks required scopes.
    #[error("insufficient scope")]
    InsufficientScope {
        /// The required scopes the token does not carry.
        missing: Vec<String>,
    },
    /// The revocation feed reported the token, its session or its subject as revoked.
    #[error("token revoked ({0})")]
    Revoked(RevocationReason),
    /// The revocation feed is unreachable and the [`FeedFailurePolicy`] refuses tokens.
    ///
    /// [`FeedFailurePolicy`]: crate::FeedFailurePolicy
    #[error("revocation feed unavailable")]
    FeedUnavailable,
    /// The issuer's key set could not be fetched and none is cached.
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

/// What a revocation applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// The token's session (`sid`) was revoked (CAEP `session-revoked`).
    Session,
    /// Every token of the subject issued up to a time was revoked (CAEP `session-revoked`
    /// without a session, or `credential-change`).
    Subject,
    /// This token (`jti`) was revoked.
    Token,
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RevocationReason::Session => "session",
            RevocationReason::Subject => "subject",
            RevocationReason::Token => "token",
        })
    }
}

impl VerifyError {
    /// A short, stable label for logs and metrics.
    ///
    /// ```
    /// use tessera_verify::{RevocationReason, VerifyError};
    /// assert_eq!(VerifyError::Revoked(RevocationReason::Session).reason(), "revoked_session");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::MissingToken => "missing_token",
            VerifyError::TooLarge => "too_large",
            VerifyError::Malformed => "malformed",
            VerifyError::WrongType => "wrong_type",
            VerifyError::CriticalHeader => "critical_header",
            VerifyError::AlgorithmNotAllowed => "algorithm_not_allowed",
            VerifyError::UnknownKey => "unknown_key",
            VerifyError::KeyMismatch => "key_mismatch",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::WrongIssuer => "wrong_issuer",
            VerifyError::WrongAudience => "wrong_audience",
            VerifyError::MissingClaim(_) => "missing_claim",
            VerifyError::InvalidClaim(_) => "invalid_claim",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::IssuedInFuture => "issued_in_future",
            VerifyError::InsufficientScope { .. } => "insufficient_scope",
            VerifyError::Revoked(RevocationReason::Session) => "revoked_session",
            VerifyError::Revoked(RevocationReason::Subject) => "revoked_subject",
            VerifyError::Revoked(RevocationReason::Token) => "revoked_token",
            VerifyError::FeedUnavailable => "feed_unavailable",
            VerifyError::KeysUnavailable => "keys_unavailable",
        }
    }

    /// A description that is safe to show the client (no quotes or backslashes, so it can
    /// go in an RFC 6750 `error_description` as is).
    ///
    /// ```
    /// use tessera_verify::VerifyError;
    /// assert_eq!(VerifyError::Expired.description(), "the access token expired");
    /// ```
    pub fn description(&self) -> &'static str {
        match self {
            VerifyError::MissingToken => "no bearer token",
            VerifyError::TooLarge => "the access token is too large",
            VerifyError::Malformed => "the access token is malformed",
            VerifyError::WrongType => "the token is not an access token",
            VerifyError::CriticalHeader => "the access token has an unsupported critical header",
            VerifyError::AlgorithmNotAllowed => "the access token algorithm is not allowed",
            VerifyError::UnknownKey => "the access token signing key is unknown",
            VerifyError::KeyMismatch | VerifyError::BadSignature => "the access token signature is invalid",
            VerifyError::WrongIssuer => "the access token issuer is not trusted",
            VerifyError::WrongAudience => "the access token is not meant for this resource",
            VerifyError::MissingClaim(_) => "the access token lacks a required claim",
            VerifyError::InvalidClaim(_) => "the access token has an invalid claim",
            VerifyError::Expired => "the access token expired",
            VerifyError::NotYetValid => "the access token is not yet valid",
            VerifyError::IssuedInFuture => "the access token was issued in the future",
            VerifyError::InsufficientScope { .. } => "the access token lacks a required scope",
            VerifyError::Revoked(_) => "the access token was revoked",
            VerifyError::FeedUnavailable => "token revocation status is unavailable",
            VerifyError::KeysUnavailable => "the token signing keys are unavailable",
        }
    }

    /// True when the refusal says nothing about the token but about this server's ability to
    /// check it (keys or revocation feed unavailable); the tower layer answers 503 for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, VerifyError::FeedUnavailable | VerifyError::KeysUnavailable)
    }
}

/// Why a [`Verifier`](crate::Verifier) (or a feed subscription) could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer is empty or not an `http(s)://` URL.
    #[error("issuer must be an http(s) URL")]
    InvalidIssuer,
    /// A configured URL is not an `http(s)://` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// No audience was configured.
    #[error("at least one audience is required")]
    NoAudience,
    /// The algorithm allow-list is empty.
    #[error("at least one algorithm is required")]
    NoAlgorithm,
    /// A static JWKS could not be parsed or holds no usable key.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(String),
    /// [`Verifier::subscribe`](crate::Verifier::subscribe) was called twice.
    #[error("this verifier is already subscribed to a revocation feed")]
    AlreadySubscribed,
    /// A background task was to be started outside a Tokio runtime.
    #[error("no Tokio runtime")]
    NoRuntime,
}
