//! Records the OAuth provider keeps: signing keys, authorization codes, grants (token
//! families), refresh tokens, consents, back-channel logout deliveries.

use crate::ids::{SessionHandle, UserId};
use crate::jose::JwsAlg;
use crate::oauth::client::ClientId;
use crate::secret::TokenHash;
use time::OffsetDateTime;

/// Life-cycle state of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published in JWKS, not yet signing.
    Next,
    /// Signing (one per algorithm).
    Active,
    /// No longer signing; published until the tokens it signed have expired.
    Retired,
}

impl KeyState {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// A signing key as stored (private part sealed).
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: JwsAlg,
    /// AES-GCM sealed PKCS#8.
    pub sealed_private: Vec<u8>,
    /// State.
    pub state: KeyState,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Became active.
    pub activated_at: Option<OffsetDateTime>,
    /// Retired.
    pub retired_at: Option<OffsetDateTime>,
}

/// A grant id: one token family.
pub type GrantId = uuid::Uuid;

/// An authorization code's stored data.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    /// SHA-256 of the code.
    pub hash: TokenHash,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The user.
    pub user_id: UserId,
    /// The SSO session.
    pub sid: SessionHandle,
    /// Redirect URI used in the request.
    pub redirect_uri: String,
    /// Granted scope.
    pub scope: String,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// When the user authenticated.
    pub auth_time: OffsetDateTime,
    /// Methods used.
    pub amr: Vec<String>,
    /// ACR.
    pub acr: Option<String>,
    /// Audiences (RFC 8707 resources).
    pub audience: Vec<String>,
    /// Expiry (60 s after issue).
    pub expires_at: OffsetDateTime,
}

/// What consuming a code found.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum CodeConsumption {
    /// First use: the code's data.
    Consumed(AuthorizationCode),
    /// The code was already used: whatever it issued has now been revoked.
    Replayed,
    /// No such (unexpired) code.
    Unknown,
}

/// A grant: what a user let a client do, the root of a token family.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Its id.
    pub id: GrantId,
    /// The user.
    pub user_id: UserId,
    /// The client.
    pub client_id: ClientId,
    /// Scope granted.
    pub scope: String,
    /// SSO session it came from.
    pub sid: Option<SessionHandle>,
    /// When the user authenticated.
    pub auth_time: OffsetDateTime,
    /// Methods used.
    pub amr: Vec<String>,
    /// ACR.
    pub acr: Option<String>,
    /// Audiences.
    pub audience: Vec<String>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Revoked (the family is dead).
    pub revoked_at: Option<OffsetDateTime>,
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// Family.
    pub grant_id: GrantId,
    /// Client it is bound to.
    pub client_id: ClientId,
    /// Issued.
    pub created_at: OffsetDateTime,
    /// Expiry.
    pub expires_at: OffsetDateTime,
}

/// An access token JWT's id, recorded for grant-bound tokens so revoking the grant
/// deactivates them at introspection.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    /// `jti`.
    pub jti: String,
    /// Family.
    pub grant_id: GrantId,
    /// Expiry.
    pub expires_at: OffsetDateTime,
}

/// Outcome of rotating a refresh token.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum RefreshRotation {
    /// Rotated: the grant it belongs to.
    Rotated(Grant),
    /// The token had already been rotated: its whole family is now revoked.
    Reused,
    /// Unknown, expired, revoked, or another client's.
    Invalid,
}

/// A refresh token's state, for introspection.
#[derive(Debug, Clone)]
pub struct RefreshTokenInfo {
    /// Its grant.
    pub grant: Grant,
    /// Client it is bound to.
    pub client_id: ClientId,
    /// Issued.
    pub created_at: OffsetDateTime,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// Whether it was already rotated.
    pub used: bool,
}

/// A back-channel logout token waiting to be delivered.
#[derive(Debug, Clone)]
pub struct LogoutDelivery {
    /// Its id.
    pub id: uuid::Uuid,
    /// Client.
    pub client_id: ClientId,
    /// Where to POST it.
    pub uri: String,
    /// The signed logout token.
    pub logout_token: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When to try next.
    pub next_attempt_at: OffsetDateTime,
}

/// Kinds of security events on the revocation feed (OpenID CAEP shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEventKind {
    /// A session ended (`session` set), or every session of a user (`session` unset).
    SessionRevoked,
    /// A user's credentials changed: tokens issued before are void.
    CredentialChange,
    /// One access token (`subject` is its `jti`) was revoked.
    TokenRevoked,
}

impl SecurityEventKind {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecurityEventKind::SessionRevoked => "session-revoked",
            SecurityEventKind::CredentialChange => "credential-change",
            SecurityEventKind::TokenRevoked => "token-revoked",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "session-revoked" => Some(SecurityEventKind::SessionRevoked),
            "credential-change" => Some(SecurityEventKind::CredentialChange),
            "token-revoked" => Some(SecurityEventKind::TokenRevoked),
            _ => None,
        }
    }
}

/// A security event to append.
#[derive(Debug, Clone)]
pub struct NewSecurityEvent {
    /// Kind.
    pub kind: SecurityEventKind,
    /// The user id, or the token's `jti` for [`SecurityEventKind::TokenRevoked`].
    pub subject: String,
    /// The session (`sid`), for a single revoked session.
    pub session: Option<String>,
}

/// A stored security event.
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    /// Position in the log (commit order).
    pub seq: i64,
    /// When it happened.
    pub at: OffsetDateTime,
    /// Kind.
    pub kind: SecurityEventKind,
    /// User id or `jti`.
    pub subject: String,
    /// Session, if one.
    pub session: Option<String>,
}
