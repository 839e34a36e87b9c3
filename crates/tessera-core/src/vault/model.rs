//! The vault's records: a kept token set as stored (tokens sealed), what the account page
//! lists of it (never a token), a live access token handed out, and what can go wrong.

use crate::CoreError;
use crate::ids::UserId;
use crate::upstream::UpstreamSecret;
use time::OffsetDateTime;

/// Longest upstream provider name kept (names appear in URLs and in token-type URNs).
pub const MAX_PROVIDER_NAME: usize = 64;

/// Whether `name` can name an upstream provider here: 1 to 64 ASCII letters, digits, `-`,
/// `_` or `.` (it appears in URLs and in `urn:tessera:params:oauth:token-type:upstream:NAME`).
pub fn valid_provider_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_PROVIDER_NAME && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The scopes of an upstream token as a list: upstreams separate them with spaces (RFC 6749)
/// or, like GitHub, with commas.
pub fn scope_list(scope: &str) -> Vec<String> {
    let mut v: Vec<String> = scope.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// One user's kept token set for one provider, as stored: both tokens sealed (AES-256-GCM,
/// bound to the user, the provider and which token it is), the rest in the clear.
#[derive(Clone)]
pub struct SealedTokenSet {
    /// The user the tokens belong to.
    pub user_id: UserId,
    /// The upstream provider's name.
    pub provider: String,
    /// The user's subject at the provider.
    pub subject: String,
    /// The sealed access token.
    pub access_token: Vec<u8>,
    /// The sealed refresh token, if one is kept.
    pub refresh_token: Option<Vec<u8>>,
    /// When the access token expires, if the upstream said.
    pub expires_at: Option<OffsetDateTime>,
    /// The granted scope, if the upstream said.
    pub scope: Option<String>,
    /// When the set was first kept (a sign-in through the provider).
    pub kept_at: OffsetDateTime,
    /// When the access token was last refreshed here.
    pub refreshed_at: Option<OffsetDateTime>,
    /// Moves on with every write; a refresh writes only over the version it read.
    pub version: i64,
}

impl std::fmt::Debug for SealedTokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTokenSet")
            .field("user_id", &self.user_id)
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What a user (and the account page) sees of a kept token set: never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptTokenSummary {
    /// The upstream provider's name.
    pub provider: String,
    /// The granted scope, if the upstream said.
    pub scope: Option<String>,
    /// When the access token expires, if the upstream said.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether a refresh token is kept too.
    pub refreshable: bool,
    /// When the set was kept.
    pub kept_at: OffsetDateTime,
    /// When it was last refreshed here.
    pub refreshed_at: Option<OffsetDateTime>,
}

/// A live upstream access token, handed out through token exchange.
#[derive(Debug, Clone)]
pub struct LiveToken {
    /// The access token (redacted `Debug`).
    pub access_token: UpstreamSecret,
    /// When it expires, if known.
    pub expires_at: Option<OffsetDateTime>,
    /// Its scope, if known.
    pub scope: Option<String>,
}

/// Why no live access token can be handed out.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No tokens of this provider are kept for the user.
    #[error("no upstream tokens are kept for this user and provider")]
    NothingKept,
    /// The access token has expired and no refresh token is kept (or no refresher is set up).
    #[error("the kept upstream access token has expired and cannot be refreshed")]
    Expired,
    /// The upstream refused the refresh (or could not be reached); the cause is for logs.
    #[error("the upstream refused to refresh the kept token: {0}")]
    RefreshFailed(String),
    /// A storage or sealing fault.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<crate::error::StoreError> for VaultError {
    fn from(e: crate::error::StoreError) -> Self {
        VaultError::Core(CoreError::Store(e))
    }
}
