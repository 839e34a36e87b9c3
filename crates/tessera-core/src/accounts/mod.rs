//! Account flows: creating users, signing in and out, sessions, password changes, the
//! first-administrator setup link, and strong authentication (second factors, step-up,
//! enrolment, passkeys). Handlers call exactly one of these per request.
//!
//! [`Accounts`] is defined here with its shared helpers; its flows are in the child modules
//! (which alone see its fields): `login` (password sign-in), `sessions` (establishing a
//! session — a new one, or the same user's upgraded in place — resolving and ending them),
//! `users` (creation, sign-up, setup link, the directory), `passwords` (change and reset),
//! `pending` (sign-ins that wait for a second factor, step-up), `enrolment` (TOTP and
//! recovery codes) and `passkeys` (the WebAuthn ceremonies). The factor models and
//! mechanisms they use are in [`crate::mfa`].
//!
//! What must follow the end of a session (revoking grants, security events, back-channel
//! logout) is not done here: the store intents that end sessions write outbox events in the
//! same transaction, and these flows only ask [`ApplyEvents`] to apply them right away.

use crate::CoreError;
use crate::audit::{AuditEvent, AuditKind};
use crate::auditor::Auditor;
use crate::clock::SharedClock;
use crate::ids::{OutboxId, UserId};
use crate::jose::KeySealer;
use crate::mfa::passkey::Passkeys;
use crate::outbox::ApplyEvents;
use crate::password::PasswordHasher;
use crate::session::{RequestContext, SessionPolicy};
use crate::store::{AuditQuery, Store, StoreError};
use crate::throttle::{PowAnswer, Reservation, Throttle, Throttled};
use std::sync::Arc;
use time::Duration;

mod email_proof;
mod enrolment;
mod federated;
mod login;
mod passkeys;
mod passwords;
mod pending;
mod sessions;
mod users;

pub use federated::SignInPort;
pub use login::LoginOutcome;
pub use passkeys::{CEREMONY_LIFETIME, CeremonyStart};
pub use pending::{MAX_SECOND_FACTOR_FAILURES, PENDING_LIFETIME, PendingView, SecondFactorAnswer, SecondFactorNeeded};
pub use sessions::{Authenticated, StartedSession};
pub use users::{CreateUser, SETUP_LINK_LIFETIME};

/// Password rules: NIST SP 800-63B-4 lengths, the shipped blocklist, no composition rules.
pub use crate::password::PasswordPolicy as PasswordRules;

/// Settings of strong authentication.
#[derive(Clone)]
pub struct MfaSettings {
    /// Seals TOTP secrets at rest (a key derived from the server's secret).
    pub sealer: Arc<KeySealer>,
    /// The WebAuthn relying party; `None` when the issuer cannot be one (an IP address).
    pub passkeys: Option<Passkeys>,
    /// How recent the last authentication must be before credentials change or sessions end.
    pub reauth_window: Duration,
    /// The issuer name authenticator apps show next to the account.
    pub totp_issuer: String,
}

impl std::fmt::Debug for MfaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaSettings")
            .field("passkeys", &self.passkeys)
            .field("reauth_window", &self.reauth_window)
            .finish_non_exhaustive()
    }
}

/// The account flows.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    clock: SharedClock,
    audit: Auditor,
    policy: SessionPolicy,
    rules: PasswordRules,
    events: Option<Arc<dyn ApplyEvents>>,
    throttle: Option<Throttle>,
    mfa: MfaSettings,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("policy", &self.policy).finish()
    }
}

impl Accounts {
    /// Builds the account flows.
    pub fn new(
        store: Arc<dyn Store>,
        hasher: PasswordHasher,
        clock: SharedClock,
        policy: SessionPolicy,
        rules: PasswordRules,
        mfa: MfaSettings,
    ) -> Self {
        let audit = Auditor::new(store.clone(), clock.clone());
        Self { store, hasher, clock, audit, policy, rules, events: None, throttle: None, mfa }
    }

    /// Throttles sign-in attempts (per account and per IP, with proof-of-work challenges).
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Applies the outbox events these flows write (sessions ended, credentials changed,
    /// grants revoked) through `events` as soon as they are written, so their effects are in
    /// place when the request answers. Without it they wait for the outbox job.
    pub fn with_events(mut self, events: Arc<dyn ApplyEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// Applies just-written outbox events now (best effort; the outbox job retries).
    async fn apply_events(&self, ids: &[OutboxId]) {
        if let (Some(e), false) = (&self.events, ids.is_empty()) {
            e.apply_now(ids).await;
        }
    }

    /// The session policy.
    pub fn session_policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The password hasher (shared with the e-mail flows' password reset, so one semaphore
    /// bounds all hashing).
    pub fn password_hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The audit path.
    pub fn auditor(&self) -> &Auditor {
        &self.audit
    }

    /// Whether the session's last authentication is within the re-authentication window.
    pub fn recently_authenticated(&self, who: &Authenticated) -> bool {
        self.clock.now() - who.session.auth_time <= self.mfa.reauth_window
    }

    fn require_recent(&self, who: &Authenticated) -> Result<(), CoreError> {
        if self.recently_authenticated(who) { Ok(()) } else { Err(CoreError::ReauthenticationRequired) }
    }

    /// Reads the audit log.
    pub async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, CoreError> {
        Ok(self.store.find_audit_events(query).await?)
    }

    /// Whether the store answers (readiness).
    pub async fn ready(&self) -> Result<(), CoreError> {
        Ok(self.store.ping().await?)
    }

    /// Reserves one attempt at a password or code for `canonical_login` when throttling is
    /// on. A refused attempt is audited (`login_throttled`, with `detail` and the reason,
    /// unless `detail` names one) and answered with [`CoreError::Throttled`].
    async fn reserve_attempt(
        &self,
        canonical_login: &str,
        pow: Option<&PowAnswer>,
        ctx: &RequestContext,
        mut detail: serde_json::Value,
        user_id: Option<UserId>,
    ) -> Result<Option<Reservation>, CoreError> {
        let Some(t) = &self.throttle else { return Ok(None) };
        match t.reserve(canonical_login, ctx.ip, pow, self.clock.now()).await? {
            Ok(r) => Ok(Some(r)),
            Err(throttled) => {
                if let Some(d) = detail.as_object_mut() {
                    d.entry("reason").or_insert_with(|| match &throttled {
                        Throttled::Delayed { .. } => "ip_delayed".into(),
                        Throttled::ChallengeRequired { .. } => "challenge_required".into(),
                    });
                }
                self.audit.record(AuditKind::LoginThrottled, user_id, ctx, detail).await;
                Err(CoreError::Throttled(throttled))
            }
        }
    }

    /// Ends a reserved attempt: success clears the account's counter, anything else leaves
    /// the reservation counted as a failure.
    async fn attempt_succeeded(&self, reservation: Option<Reservation>) -> Result<(), CoreError> {
        match (&self.throttle, reservation) {
            (Some(t), Some(r)) => t.succeeded(r).await,
            _ => Ok(()),
        }
    }
}

fn conflict(e: StoreError) -> CoreError {
    match e {
        StoreError::Conflict(what) => CoreError::Conflict(what.as_str()),
        StoreError::NotFound => CoreError::NotFound,
        other => CoreError::Store(other),
    }
}
