//! Sign-in by a mailed one-time code or link: the e-mail flows (`crate::mail::flows`) check
//! and use up the code, then hand the user here, where the sign-in goes the way a password
//! sign-in does — a new session (or the same user's, upgraded in place), or, for a user with
//! a second factor, a pending sign-in that waits for it.
//!
//! The proof is recorded as `amr: ["otp"]` (RFC 8176 has no value for e-mail; `otp` is what
//! Supabase and others use for mailed codes) and counts as one factor: possession of the
//! mailbox. With a second factor the pending sign-in asks for any enrolled factor and the
//! session gets the level the factors really reach (a mailbox and an authenticator app are
//! both possession: single-factor; with a passkey: multi-factor).

use super::{Accounts, Authenticated, LoginOutcome};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::UserId;
use crate::mfa::level::{AMR_OTP, AuthLevel};
use crate::session::RequestContext;
use serde_json::json;

impl Accounts {
    /// Signs in `user_id`, who proved control of their address with a mailed code or link
    /// that has just been used up. A disabled or deleted user is [`CoreError::InvalidCredentials`].
    pub async fn sign_in_with_email_proof(&self, user_id: UserId, ctx: &RequestContext, current: Option<&Authenticated>) -> Result<LoginOutcome, CoreError> {
        let user = match self.store.find_user_by_id(user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(CoreError::InvalidCredentials),
        };
        let upgrade = current.filter(|c| c.user.id == user.id).map(|c| c.id_hash);
        let amr = vec![AMR_OTP.to_owned()];
        let factors = self.store.find_factor_summary(user.id).await?;
        if factors.has_second_factor() {
            let needed = self.begin_pending(&user, amr, AuthLevel::SingleFactor, upgrade, factors, ctx).await?;
            return Ok(LoginOutcome::SecondFactor(needed));
        }
        let started = self.finish_sign_in(user, amr, upgrade.as_ref(), ctx).await?;
        self.audit
            .record(AuditKind::LoginSucceeded, Some(started.user.id), ctx, json!({"session": started.session.handle, "amr": started.session.amr, "via": "email"}))
            .await;
        Ok(LoginOutcome::SignedIn(started))
    }
}
