//! Sign-ins that wait for a second factor, as methods of [`Accounts`]: the pending sign-in a
//! password leaves for a user who enrolled one, step-up of a signed-in session, and the
//! TOTP or recovery-code answer (a passkey answer is in `passkeys`). Success establishes the
//! session through `sessions`.

use super::enrolment::totp_aad;
use super::{Accounts, Authenticated, StartedSession};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::mfa::level::{AuthLevel, Factor, combine};
use crate::mfa::model::{FactorSummary, PendingLogin};
use crate::mfa::recovery;
use crate::mfa::totp;
use crate::secret::{SecretToken, TokenHash};
use crate::session::RequestContext;
use crate::throttle::Reservation;
use crate::user::User;
use serde_json::json;
use time::Duration;

/// How long a sign-in may wait for its second factor.
pub const PENDING_LIFETIME: Duration = Duration::minutes(5);
/// Wrong second-factor answers before a pending sign-in is abandoned (the per-account
/// throttle counts them too, across sign-ins).
pub const MAX_SECOND_FACTOR_FAILURES: u32 = 5;

/// An answer to the second-factor page.
#[derive(Debug)]
pub enum SecondFactorAnswer {
    /// A code from the authenticator app.
    Totp(String),
    /// One of the recovery codes.
    RecoveryCode(String),
}

/// A pending sign-in as the second-factor page shows it.
#[derive(Debug, Clone)]
pub struct PendingView {
    /// Who is signing in.
    pub user: User,
    /// What they can answer with.
    pub factors: FactorSummary,
    /// The level to reach.
    pub required: AuthLevel,
}

impl PendingView {
    /// Whether a passkey is the only acceptable answer (phishing-resistant step-up).
    pub fn passkey_only(&self) -> bool {
        self.required == AuthLevel::PhishingResistant
    }
}

/// A sign-in waiting for a second factor: its secret (for a short-lived cookie only).
#[derive(Debug)]
pub struct SecondFactorNeeded {
    /// The pending sign-in's secret.
    pub token: SecretToken,
    /// What the user can answer with.
    pub factors: FactorSummary,
    /// The level to reach.
    pub required: AuthLevel,
}

impl Accounts {
    pub(super) async fn begin_pending(
        &self,
        user: &User,
        amr: Vec<String>,
        required: AuthLevel,
        upgrade: Option<TokenHash>,
        factors: FactorSummary,
        ctx: &RequestContext,
    ) -> Result<SecondFactorNeeded, CoreError> {
        let now = self.clock.now();
        let token = SecretToken::generate()?;
        let pending = PendingLogin {
            user_id: user.id,
            amr,
            required,
            upgrade,
            failures: 0,
            expires_at: now + PENDING_LIFETIME,
        };
        self.store.create_pending_login(&token.hash(), &pending).await?;
        self.audit
            .record(AuditKind::MfaRequired, Some(user.id), ctx, json!({"required": required.as_str(), "amr": pending.amr, "step_up": pending.upgrade.is_some()}))
            .await;
        Ok(SecondFactorNeeded { token, factors, required })
    }

    /// Starts a step-up of a signed-in session that does not reach `required`: the page then
    /// asks only for what is missing, and success upgrades this session in place.
    pub async fn begin_step_up(&self, who: &Authenticated, required: AuthLevel, ctx: &RequestContext) -> Result<SecondFactorNeeded, CoreError> {
        let factors = self.store.find_factor_summary(who.user.id).await?;
        self.begin_pending(&who.user, who.session.amr.clone(), required, Some(who.id_hash), factors, ctx).await
    }

    /// The pending sign-in a second-factor cookie names; [`CoreError::Unauthenticated`] if it
    /// lapsed, was used, or its user can no longer sign in.
    pub async fn pending_sign_in(&self, token: &SecretToken) -> Result<PendingView, CoreError> {
        let (pending, user) = self.live_pending(token).await?;
        let factors = self.store.find_factor_summary(user.id).await?;
        Ok(PendingView { user, factors, required: pending.required })
    }

    pub(super) async fn live_pending(&self, token: &SecretToken) -> Result<(PendingLogin, User), CoreError> {
        let Some(pending) = self.store.find_pending_login(&token.hash(), self.clock.now()).await? else {
            return Err(CoreError::Unauthenticated);
        };
        match self.store.find_user_by_id(pending.user_id).await? {
            Some(user) if !user.disabled => Ok((pending, user)),
            _ => Err(CoreError::Unauthenticated),
        }
    }

    /// Checks a TOTP or recovery code for a pending sign-in; on success the sign-in
    /// completes. A code is accepted once: a TOTP step already used, or a used recovery code,
    /// is refused like a wrong one.
    pub async fn verify_second_factor(&self, token: &SecretToken, answer: SecondFactorAnswer, ctx: &RequestContext) -> Result<StartedSession, CoreError> {
        let (pending, user) = self.live_pending(token).await?;
        if pending.required == AuthLevel::PhishingResistant {
            return Err(CoreError::Invalid("This application asks for a passkey.".into()));
        }
        let now = self.clock.now();
        // Codes are guessable: the account's and the IP's failure counters apply here as at
        // the password (a step-up has no password in front of it).
        // Each code is reserved before it is checked, like a password.
        let reservation = self.reserve_attempt(&user.username.canonical(), None, ctx, json!({"reason": "second_factor"}), Some(user.id)).await?;
        let (factor, accepted, reason) = match &answer {
            SecondFactorAnswer::Totp(code) => {
                let record = self.store.find_totp(user.id).await?.filter(|t| t.confirmed_at.is_some());
                match record {
                    None => (Factor::Totp, false, "no_totp"),
                    Some(r) => {
                        let secret = self.mfa.sealer.open(&totp_aad(user.id), &r.sealed_secret)?;
                        match totp::check(&secret, code, now)? {
                            None => (Factor::Totp, false, "wrong_code"),
                            Some(step) if self.store.use_totp_step(user.id, step).await? => (Factor::Totp, true, ""),
                            Some(_) => (Factor::Totp, false, "code_reused"),
                        }
                    }
                }
            }
            SecondFactorAnswer::RecoveryCode(code) => match recovery::hash_typed(code) {
                Some(h) if self.store.use_recovery_code(user.id, &h, now).await? => (Factor::RecoveryCode, true, ""),
                _ => (Factor::RecoveryCode, false, "wrong_code"),
            },
        };
        if !accepted {
            return Err(self.second_factor_failed(token, &user, factor, reason, ctx).await);
        }
        self.complete_pending(token, &user, factor, reservation, ctx).await
    }

    pub(super) async fn second_factor_failed(&self, token: &SecretToken, user: &User, factor: Factor, reason: &str, ctx: &RequestContext) -> CoreError {
        // A wrong code's reservation stays counted against the account and the IP.
        self.audit.record(AuditKind::MfaFailed, Some(user.id), ctx, json!({"factor": factor.name(), "reason": reason})).await;
        match self.store.record_pending_failure(&token.hash()).await {
            Ok(Some(n)) if n < MAX_SECOND_FACTOR_FAILURES => CoreError::SecondFactorRejected { attempts_left: MAX_SECOND_FACTOR_FAILURES - n },
            Ok(_) => {
                // Abandoned: the next try starts from the password again.
                if let Err(e) = self.store.take_pending_login(&token.hash(), self.clock.now()).await {
                    return e.into();
                }
                CoreError::SecondFactorRejected { attempts_left: 0 }
            }
            Err(e) => e.into(),
        }
    }

    /// Uses up the pending sign-in (exactly once) and signs in with `factor` added.
    pub(super) async fn complete_pending(
        &self,
        token: &SecretToken,
        user: &User,
        factor: Factor,
        reservation: Option<Reservation>,
        ctx: &RequestContext,
    ) -> Result<StartedSession, CoreError> {
        let Some(pending) = self.store.take_pending_login(&token.hash(), self.clock.now()).await? else {
            return Err(CoreError::Unauthenticated);
        };
        let amr = combine(&pending.amr, factor);
        if AuthLevel::of(&amr) < pending.required {
            return Err(CoreError::Invalid("This application asks for a stronger way of signing in.".into()));
        }
        match (&self.throttle, reservation) {
            (Some(t), Some(r)) => t.succeeded(r).await?,
            (Some(t), None) => t.clear_account(&user.username.canonical()).await?,
            _ => {}
        }
        self.audit.record(AuditKind::MfaSucceeded, Some(user.id), ctx, json!({"factor": factor.name(), "amr": amr})).await;
        let started = self.finish_sign_in(user.clone(), amr, pending.upgrade.as_ref(), ctx).await?;
        self.audit
            .record(
                AuditKind::LoginSucceeded,
                Some(user.id),
                ctx,
                json!({"session": started.session.handle, "amr": started.session.amr, "step_up": pending.upgrade.is_some()}),
            )
            .await;
        Ok(started)
    }
}
