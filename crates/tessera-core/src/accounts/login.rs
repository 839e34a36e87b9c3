//! Password sign-in: the attempt is reserved and the password checked, then either a
//! session is established (`sessions`) or, for a user who enrolled a second factor, a
//! pending sign-in waits for it (`pending`).

use super::{Accounts, Authenticated, SecondFactorNeeded, StartedSession};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::UserId;
use crate::mfa::level::{AuthLevel, Factor, combine};
use crate::password::Verification;
use crate::secret::Password;
use crate::session::RequestContext;
use crate::throttle::PowAnswer;
use crate::user::canonical;
use serde_json::json;

/// What a password sign-in led to (returned once per sign-in, so its size does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(StartedSession),
    /// The password was right; a second factor is needed (the user enrolled one).
    SecondFactor(SecondFactorNeeded),
}

impl Accounts {
    /// Signs in with a username or e-mail and a password, for accounts without a second
    /// factor (CLI, tests); an account that needs one gets [`CoreError::Invalid`].
    pub async fn login(&self, login: &str, password: &Password, pow: Option<&PowAnswer>, ctx: &RequestContext) -> Result<StartedSession, CoreError> {
        match self.sign_in_with_password(login, password, pow, ctx, None).await? {
            LoginOutcome::SignedIn(s) => Ok(s),
            LoginOutcome::SecondFactor(_) => Err(CoreError::Invalid("This account needs a second factor to sign in.".into())),
        }
    }

    /// Signs in with a username or e-mail and a password. Unknown users, wrong passwords,
    /// disabled users and users without a password all get [`CoreError::InvalidCredentials`]
    /// after the same amount of hashing work. A user who enrolled a second factor gets
    /// [`LoginOutcome::SecondFactor`]. When `current` is the same user's session (signing in
    /// again: `prompt=login`, `max_age`, re-authentication), that session is upgraded in
    /// place with a new id; otherwise a new session starts.
    pub async fn sign_in_with_password(
        &self,
        login: &str,
        password: &Password,
        pow: Option<&PowAnswer>,
        ctx: &RequestContext,
        current: Option<&Authenticated>,
    ) -> Result<LoginOutcome, CoreError> {
        let login = login.trim();
        let canonical_login = canonical(login);
        // The attempt is reserved before anything is looked up or hashed, so a burst of
        // concurrent guesses cannot all be checked before the first failure counts.
        let reservation = self.reserve_attempt(&canonical_login, pow, ctx, json!({"login": login.chars().take(64).collect::<String>()}), None).await?;
        let lookup = if login.is_empty() || login.len() > 320 { None } else {
            self.store.find_user_credentials_by_login(&canonical_login).await?
        };
        let too_long = password.expose().len() > Password::MAX_BYTES;
        let stored = lookup.as_ref().and_then(|c| c.password_hash.as_deref()).filter(|_| !too_long);
        let verification = if too_long {
            self.hasher.verify(&Password::new(""), None).await?
        } else {
            self.hasher.verify(password, stored).await?
        };
        let failed = |reason: &'static str, user_id: Option<UserId>| {
            let detail = json!({"login": login.chars().take(64).collect::<String>(), "reason": reason});
            // The reservation stays: it counts as the failure.
            async move {
                self.audit.record(AuditKind::LoginFailed, user_id, ctx, detail).await;
                Err(CoreError::InvalidCredentials)
            }
        };
        let Some(creds) = lookup else { return failed("unknown_user", None).await };
        let upgraded = match verification {
            Verification::Mismatch => return failed("wrong_password", Some(creds.user.id)).await,
            Verification::Match { upgraded } => upgraded,
        };
        if creds.user.disabled {
            return failed("disabled", Some(creds.user.id)).await;
        }
        if let (Some(new_hash), Some(old_hash)) = (upgraded, creds.password_hash.as_deref())
            && self.store.upgrade_password_hash(creds.user.id, old_hash, &new_hash).await? {
                self.audit.record(AuditKind::PasswordRehashed, Some(creds.user.id), ctx, json!({})).await;
            }
        let upgrade = current.filter(|c| c.user.id == creds.user.id).map(|c| c.id_hash);
        let amr = combine(&[], Factor::Password);
        let factors = self.store.find_factor_summary(creds.user.id).await?;
        if factors.has_second_factor() {
            // The failure counters are cleared only once the second factor is proved, so a
            // known password does not buy unlimited guesses at the second factor (each code
            // is reserved on its own); this attempt is given back.
            if let (Some(t), Some(r)) = (&self.throttle, reservation) {
                t.release(r).await?;
            }
            let needed = self.begin_pending(&creds.user, amr, AuthLevel::MultiFactor, upgrade, factors, ctx).await?;
            return Ok(LoginOutcome::SecondFactor(needed));
        }
        self.attempt_succeeded(reservation).await?;
        let started = self.finish_sign_in(creds.user, amr, upgrade.as_ref(), ctx).await?;
        self.audit
            .record(AuditKind::LoginSucceeded, Some(started.user.id), ctx, json!({"session": started.session.handle, "amr": started.session.amr}))
            .await;
        Ok(LoginOutcome::SignedIn(started))
    }
}
