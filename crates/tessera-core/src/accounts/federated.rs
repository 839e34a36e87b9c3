//! The account flows' port for federation ([`SignInPort`], defined here so federation
//! depends on accounts and never the other way round): an upstream sign-in is
//! established like a password sign-in (a pending sign-in when the user enrolled a second
//! factor and upstream's `amr` does not reach multi-factor, in-place upgrade of the same
//! user's session, audit), and proving a local account with its password before a link is
//! throttled and audited like a password sign-in.

use super::{Accounts, Authenticated, LoginOutcome};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::UserId;
use crate::mfa::level::AuthLevel;
use crate::password::Verification;
use crate::secret::Password;
use crate::session::RequestContext;
use crate::user::User;
use async_trait::async_trait;
use serde_json::json;

/// The account flows, as federation sees them.
#[async_trait]
pub trait SignInPort: Send + Sync + 'static {
    /// Establishes the session of a completed upstream sign-in with `amr` (or a pending
    /// sign-in waiting for the second factor the user enrolled). `via` names the provider
    /// for the audit record.
    async fn sign_in_upstream(
        &self,
        user: User,
        amr: Vec<String>,
        via: &str,
        current: Option<&Authenticated>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, CoreError>;

    /// Checks `user`'s password (throttled and audited like a password sign-in);
    /// [`CoreError::InvalidCredentials`] when it is wrong or the user has none.
    async fn prove_password(&self, user: &User, password: &Password, ctx: &RequestContext) -> Result<(), CoreError>;

    /// Audits a federation event.
    async fn audit(&self, kind: AuditKind, user: Option<UserId>, ctx: &RequestContext, detail: serde_json::Value);
}


#[async_trait]
impl SignInPort for Accounts {
    async fn sign_in_upstream(
        &self,
        user: User,
        amr: Vec<String>,
        via: &str,
        current: Option<&Authenticated>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, CoreError> {
        if user.disabled {
            self.audit.record(AuditKind::LoginFailed, Some(user.id), ctx, json!({"reason": "disabled", "via": via})).await;
            return Err(CoreError::InvalidCredentials);
        }
        let upgrade = current.filter(|c| c.user.id == user.id).map(|c| c.id_hash);
        let factors = self.store.find_factor_summary(user.id).await?;
        if factors.has_second_factor() && AuthLevel::of(&amr) < AuthLevel::MultiFactor {
            let needed = self.begin_pending(&user, amr, AuthLevel::MultiFactor, upgrade, factors, ctx).await?;
            return Ok(LoginOutcome::SecondFactor(needed));
        }
        let started = self.finish_sign_in(user, amr, upgrade.as_ref(), ctx).await?;
        self.audit
            .record(
                AuditKind::LoginSucceeded,
                Some(started.user.id),
                ctx,
                json!({"session": started.session.handle, "amr": started.session.amr, "via": via}),
            )
            .await;
        Ok(LoginOutcome::SignedIn(started))
    }

    async fn prove_password(&self, user: &User, password: &Password, ctx: &RequestContext) -> Result<(), CoreError> {
        let key = user.username.canonical();
        let reservation = self.reserve_attempt(&key, None, ctx, json!({"login": user.username.as_str(), "via": "link"}), Some(user.id)).await?;
        let stored = self.store.find_password_hash(user.id).await?;
        let too_long = password.expose().len() > Password::MAX_BYTES;
        let verification = if too_long {
            self.hasher.verify(&Password::new(""), None).await?
        } else {
            self.hasher.verify(password, stored.as_deref()).await?
        };
        if too_long || stored.is_none() || matches!(verification, Verification::Mismatch) {
            self.audit
                .record(AuditKind::LoginFailed, Some(user.id), ctx, json!({"login": user.username.as_str(), "reason": "wrong_password", "via": "link"}))
                .await;
            return Err(CoreError::InvalidCredentials);
        }
        self.attempt_succeeded(reservation).await
    }

    async fn audit(&self, kind: AuditKind, user: Option<UserId>, ctx: &RequestContext, detail: serde_json::Value) {
        self.audit.record(kind, user, ctx, detail).await;
    }
}
