//! Second-factor enrolment: the TOTP authenticator (set up, confirmed, removed), recovery
//! codes, and the administrator's reset of every factor.

use super::{Accounts, Authenticated};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::UserId;
use crate::mfa::model::FactorSummary;
use crate::mfa::recovery::{self, RecoveryCode};
use crate::mfa::totp::{self, TotpSetup};
use crate::secret::TokenHash;
use crate::session::RequestContext;
use serde_json::json;

impl Accounts {
    /// Which second factors a user has.
    pub async fn factor_summary(&self, user_id: UserId) -> Result<FactorSummary, CoreError> {
        Ok(self.store.find_factor_summary(user_id).await?)
    }

    /// Starts TOTP enrolment with a new secret (replacing an unconfirmed one).
    pub async fn begin_totp_enrolment(&self, who: &Authenticated) -> Result<TotpSetup, CoreError> {
        self.require_recent(who)?;
        let secret = totp::new_secret()?;
        let sealed = self.mfa.sealer.seal(&totp_aad(who.user.id), &secret)?;
        if !self.store.begin_totp_enrolment(who.user.id, &sealed, self.clock.now()).await? {
            return Err(CoreError::Conflict("authenticator app"));
        }
        totp::setup(&secret, &self.mfa.totp_issuer, who.user.username.as_str())
    }

    /// The unconfirmed enrolment's setup data (to show it again), if one is in progress.
    pub async fn totp_enrolment(&self, who: &Authenticated) -> Result<Option<TotpSetup>, CoreError> {
        match self.store.find_totp(who.user.id).await? {
            Some(r) if r.confirmed_at.is_none() => {
                let secret = self.mfa.sealer.open(&totp_aad(who.user.id), &r.sealed_secret)?;
                Ok(Some(totp::setup(&secret, &self.mfa.totp_issuer, who.user.username.as_str())?))
            }
            _ => Ok(None),
        }
    }

    /// Confirms enrolment with the first code from the app. Returns new recovery codes when
    /// the user had none (shown once).
    pub async fn confirm_totp_enrolment(&self, who: &Authenticated, code: &str, ctx: &RequestContext) -> Result<Option<Vec<RecoveryCode>>, CoreError> {
        self.require_recent(who)?;
        let Some(record) = self.store.find_totp(who.user.id).await?.filter(|r| r.confirmed_at.is_none()) else {
            return Err(CoreError::Invalid("Start setting up the authenticator app again.".into()));
        };
        let secret = self.mfa.sealer.open(&totp_aad(who.user.id), &record.sealed_secret)?;
        let Some(step) = totp::check(&secret, code, self.clock.now())? else {
            self.audit.record(AuditKind::MfaFailed, Some(who.user.id), ctx, json!({"factor": "totp", "reason": "enrolment_code"})).await;
            return Err(CoreError::Invalid("That code is not right. Check the time on your device and enter the current code.".into()));
        };
        if !self.store.confirm_totp(who.user.id, step, self.clock.now()).await? {
            return Err(CoreError::Invalid("Start setting up the authenticator app again.".into()));
        }
        self.audit.record(AuditKind::TotpEnrolled, Some(who.user.id), ctx, json!({})).await;
        let summary = self.store.find_factor_summary(who.user.id).await?;
        if summary.recovery_codes == 0 {
            return Ok(Some(self.new_recovery_codes(who.user.id, ctx).await?));
        }
        Ok(None)
    }

    /// Removes the TOTP authenticator.
    pub async fn remove_totp(&self, who: &Authenticated, ctx: &RequestContext) -> Result<(), CoreError> {
        self.require_recent(who)?;
        if !self.store.delete_totp(who.user.id).await? {
            return Err(CoreError::NotFound);
        }
        self.audit.record(AuditKind::TotpRemoved, Some(who.user.id), ctx, json!({})).await;
        self.drop_orphan_recovery_codes(who.user.id).await
    }

    /// Replaces the user's recovery codes with ten new ones (shown once).
    pub async fn regenerate_recovery_codes(&self, who: &Authenticated, ctx: &RequestContext) -> Result<Vec<RecoveryCode>, CoreError> {
        self.require_recent(who)?;
        if !self.store.find_factor_summary(who.user.id).await?.has_second_factor() {
            return Err(CoreError::Invalid("Set up an authenticator app or a passkey first.".into()));
        }
        self.new_recovery_codes(who.user.id, ctx).await
    }

    async fn new_recovery_codes(&self, user_id: UserId, ctx: &RequestContext) -> Result<Vec<RecoveryCode>, CoreError> {
        let codes = recovery::generate()?;
        let hashes: Vec<TokenHash> = codes.iter().map(RecoveryCode::hash).collect();
        self.store.replace_recovery_codes(user_id, &hashes, self.clock.now()).await?;
        self.audit.record(AuditKind::RecoveryCodesGenerated, Some(user_id), ctx, json!({"count": codes.len()})).await;
        Ok(codes)
    }

    /// Recovery codes stand in for a second factor; without one they are removed.
    pub(super) async fn drop_orphan_recovery_codes(&self, user_id: UserId) -> Result<(), CoreError> {
        if !self.store.find_factor_summary(user_id).await?.has_second_factor() {
            self.store.replace_recovery_codes(user_id, &[], self.clock.now()).await?;
        }
        Ok(())
    }

    /// Removes every second factor of a user (administrator action, e.g. a lost phone and
    /// no recovery codes): the next sign-in needs only the password.
    pub async fn reset_second_factors(&self, user_id: UserId, ctx: &RequestContext) -> Result<u64, CoreError> {
        let removed = self.store.delete_user_factors(user_id).await?;
        self.audit.record(AuditKind::MfaReset, Some(user_id), ctx, json!({"factors_removed": removed, "by": "admin"})).await;
        Ok(removed)
    }
}

/// The associated data that binds a sealed TOTP secret to its user.
pub(super) fn totp_aad(user: UserId) -> String {
    format!("totp:{user}")
}
