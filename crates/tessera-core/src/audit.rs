//! The audit log: security events stored in the database (queryable by user and time) and
//! emitted as JSON log lines on the `audit` tracing target. One path for every event.

use crate::clock::SharedClock;
use crate::ids::{AuditEventId, UserId};
use crate::session::RequestContext;
use crate::store::Store;
use serde::Serialize;
use std::sync::Arc;
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

/// Writes audit events to the store and to the log.
#[derive(Clone)]
pub struct Auditor {
    store: Arc<dyn Store>,
    clock: SharedClock,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auditor")
    }
}

impl Auditor {
    /// An auditor writing to `store`.
    pub fn new(store: Arc<dyn Store>, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Records an event. A failure to store it is logged, not returned: the action it
    /// describes has already happened.
    pub async fn record(
        &self,
        kind: AuditKind,
        user_id: Option<UserId>,
        ctx: &RequestContext,
        detail: serde_json::Value,
    ) {
        let event = AuditEvent {
            id: AuditEventId::new(),
            at: self.clock.now(),
            kind: kind.as_str().to_owned(),
            user_id,
            ip: ctx.ip.map(|ip| ip.to_string()),
            user_agent: ctx.user_agent.clone(),
            detail,
        };
        match serde_json::to_string(&event) {
            Ok(line) => tracing::info!(target: "audit", event = %line, "{}", kind.as_str()),
            Err(e) => tracing::warn!(error = %e, "audit event could not be serialised"),
        }
        if let Err(e) = self.store.append_audit_event(&event).await {
            tracing::error!(error = %e, kind = kind.as_str(), "audit event could not be stored");
        }
    }
}
