//! The audit log's records: what can happen ([`AuditKind`]) and one stored event
//! ([`AuditEvent`]). The store port imports these; `crate::auditor` writes them. Nothing
//! here depends on the store.

use crate::ids::{AuditEventId, UserId};
use serde::Serialize;
use time::OffsetDateTime;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A user signed in.
    LoginSucceeded,
    /// A sign-in attempt failed.
    LoginFailed,
    /// A sign-in attempt was refused by throttling.
    LoginThrottled,
    /// A user signed out.
    Logout,
    /// A session was ended by its user or an administrator.
    SessionEnded,
    /// A user was created.
    UserCreated,
    /// A user's profile was changed.
    UserUpdated,
    /// A user was disabled.
    UserDisabled,
    /// A user was enabled again.
    UserEnabled,
    /// A user was deleted.
    UserDeleted,
    /// A user's password was changed.
    PasswordChanged,
    /// A stored password hash was upgraded to the current Argon2id parameters.
    PasswordRehashed,
    /// The first administrator was created through the setup link.
    SetupCompleted,
    /// A sign-up named a username or e-mail address that is taken (answered like a success).
    SignupDuplicate,
    /// A password was right and a second factor was asked for (or a step-up began).
    MfaRequired,
    /// A second factor was proved.
    MfaSucceeded,
    /// A second-factor answer was refused.
    MfaFailed,
    /// A TOTP authenticator was enrolled (its first code accepted).
    TotpEnrolled,
    /// A TOTP authenticator was removed.
    TotpRemoved,
    /// Recovery codes were (re)generated.
    RecoveryCodesGenerated,
    /// A passkey was registered.
    PasskeyRegistered,
    /// A passkey was renamed.
    PasskeyRenamed,
    /// A passkey was removed.
    PasskeyRemoved,
    /// An administrator removed every second factor of a user.
    MfaReset,
    /// A user proved their e-mail address with a mailed link.
    EmailVerified,
    /// An upstream provider's tokens were kept in the credential vault (after a sign-in).
    UpstreamTokensKept,
    /// A kept upstream access token was refreshed.
    UpstreamTokensRefreshed,
    /// Kept upstream tokens were dropped (by their user or an administrator).
    UpstreamTokensDropped,
    /// A client received a user's kept upstream access token through token exchange.
    UpstreamTokenExchanged,
    /// An upstream provider was added.
    IdpCreated,
    /// An upstream provider was deleted.
    IdpDeleted,
    /// An upstream identity was linked to a user.
    IdentityLinked,
    /// An upstream identity was unlinked from a user.
    IdentityUnlinked,
}

impl AuditKind {
    /// The stable name stored and logged.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginThrottled => "login_throttled",
            AuditKind::Logout => "logout",
            AuditKind::SessionEnded => "session_ended",
            AuditKind::UserCreated => "user_created",
            AuditKind::UserUpdated => "user_updated",
            AuditKind::UserDisabled => "user_disabled",
            AuditKind::UserEnabled => "user_enabled",
            AuditKind::UserDeleted => "user_deleted",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PasswordRehashed => "password_rehashed",
            AuditKind::SetupCompleted => "setup_completed",
            AuditKind::SignupDuplicate => "signup_duplicate",
            AuditKind::MfaRequired => "mfa_required",
            AuditKind::MfaSucceeded => "mfa_succeeded",
            AuditKind::MfaFailed => "mfa_failed",
            AuditKind::TotpEnrolled => "totp_enrolled",
            AuditKind::TotpRemoved => "totp_removed",
            AuditKind::RecoveryCodesGenerated => "recovery_codes_generated",
            AuditKind::PasskeyRegistered => "passkey_registered",
            AuditKind::PasskeyRenamed => "passkey_renamed",
            AuditKind::PasskeyRemoved => "passkey_removed",
            AuditKind::MfaReset => "mfa_reset",
            AuditKind::EmailVerified => "email_verified",
            AuditKind::UpstreamTokensKept => "upstream_tokens_kept",
            AuditKind::UpstreamTokensRefreshed => "upstream_tokens_refreshed",
            AuditKind::UpstreamTokensDropped => "upstream_tokens_dropped",
            AuditKind::UpstreamTokenExchanged => "upstream_token_exchanged",
            AuditKind::IdpCreated => "idp_created",
            AuditKind::IdpDeleted => "idp_deleted",
            AuditKind::IdentityLinked => "identity_linked",
            AuditKind::IdentityUnlinked => "identity_unlinked",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Its id.
    pub id: AuditEventId,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened (stored as [`AuditKind::as_str`]).
    pub kind: String,
    /// The user it concerns, if any.
    pub user_id: Option<UserId>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Event-specific details (never secrets).
    pub detail: serde_json::Value,
}
