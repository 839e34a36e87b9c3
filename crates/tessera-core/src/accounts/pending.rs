//! The strong-authentication flows, as methods of [`Accounts`]: second factors after a
//! password, step-up of a signed-in session, re-authentication before sensitive actions,
//! TOTP and recovery-code enrolment, and the passkey ceremonies (registration, passwordless
//! sign-in, second factor). Handlers call exactly one of these per request.

use crate::CoreError;
use crate::accounts::{Accounts, Authenticated, SecondFactorNeeded, StartedSession};
use crate::audit::AuditKind;
use crate::ids::{PasskeyId, UserId};
use crate::mfa::level::{AuthLevel, Factor, combine};
use crate::mfa::model::{Ceremony, CeremonyPurpose, FactorSummary, PasskeyRecord, PendingLogin};
use crate::mfa::passkey::{MAX_NAME_CHARS, Passkeys};
use crate::mfa::recovery::{self, RecoveryCode};
use crate::mfa::totp::{self, TotpSetup};
use crate::secret::{SecretToken, TokenHash};
use crate::session::{RequestContext, describe_user_agent};
use crate::throttle::Reservation;
use crate::user::User;
use serde_json::{Value, json};
use time::Duration;

/// How long a sign-in may wait for its second factor.
pub const PENDING_LIFETIME: Duration = Duration::minutes(5);
/// How long a WebAuthn ceremony may take.
pub const CEREMONY_LIFETIME: Duration = Duration::minutes(5);
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

/// A started WebAuthn ceremony: options for the browser and the handle that names its
/// server-side state (single use, five minutes).
#[derive(Debug)]
pub struct CeremonyStart {
    /// `{"publicKey": …}` for `navigator.credentials.create/get`.
    pub options: Value,
    /// The ceremony's handle, sent back with the browser's answer.
    pub handle: SecretToken,
}

impl Accounts {
    // ------------------------------------------------------------------ policy

    /// Whether passkeys can be used (the issuer is a valid relying party).
    pub fn passkeys_enabled(&self) -> bool {
        self.mfa.passkeys.is_some()
    }

    /// Whether the session's last authentication is within the re-authentication window.
    pub fn recently_authenticated(&self, who: &Authenticated) -> bool {
        self.clock.now() - who.session.auth_time <= self.mfa.reauth_window
    }

    pub(crate) fn require_recent(&self, who: &Authenticated) -> Result<(), CoreError> {
        if self.recently_authenticated(who) { Ok(()) } else { Err(CoreError::ReauthenticationRequired) }
    }

    /// Which second factors a user has.
    pub async fn factor_summary(&self, user_id: UserId) -> Result<FactorSummary, CoreError> {
        Ok(self.store.find_factor_summary(user_id).await?)
    }

    fn passkeys(&self) -> Result<&Passkeys, CoreError> {
        self.mfa
            .passkeys
            .as_ref()
            .ok_or_else(|| CoreError::Invalid("Passkeys are not available on this server (its address is not a domain name).".into()))
    }

    // ------------------------------------------------------------------ pending sign-ins

    pub(crate) async fn begin_pending(
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

    async fn live_pending(&self, token: &SecretToken) -> Result<(PendingLogin, User), CoreError> {
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

    async fn second_factor_failed(&self, token: &SecretToken, user: &User, factor: Factor, reason: &str, ctx: &RequestContext) -> CoreError {
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
    async fn complete_pending(
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

    /// Records a completed authentication: upgrades `upgrade` (the same user's session) in
    /// place with a new id, or starts a new session.
    pub(crate) async fn finish_sign_in(&self, user: User, amr: Vec<String>, upgrade: Option<&TokenHash>, ctx: &RequestContext) -> Result<StartedSession, CoreError> {
        if let Some(old) = upgrade {
            let token = SecretToken::generate()?;
            if let Some(session) = self.store.upgrade_session(user.id, old, &token.hash(), &amr, self.clock.now()).await? {
                return Ok(StartedSession { token, session, user });
            }
        }
        self.start_session(user, amr, ctx).await
    }

    // ------------------------------------------------------------------ TOTP and recovery codes

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
    async fn drop_orphan_recovery_codes(&self, user_id: UserId) -> Result<(), CoreError> {
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

    // ------------------------------------------------------------------ passkeys

    async fn new_ceremony(&self, user_id: Option<UserId>, purpose: CeremonyPurpose, options: Value, state: String) -> Result<CeremonyStart, CoreError> {
        let handle = SecretToken::generate()?;
        let ceremony = Ceremony { user_id, purpose, state, expires_at: self.clock.now() + CEREMONY_LIFETIME };
        self.store.create_ceremony(&handle.hash(), &ceremony).await?;
        Ok(CeremonyStart { options, handle })
    }

    async fn take_ceremony(&self, handle: &SecretToken, purpose: CeremonyPurpose) -> Result<Ceremony, CoreError> {
        match self.store.take_ceremony(&handle.hash(), self.clock.now()).await? {
            Some(c) if c.purpose == purpose => Ok(c),
            _ => Err(CoreError::Invalid("The passkey request has expired. Please try again.".into())),
        }
    }

    /// Starts registering a passkey for the signed-in user.
    pub async fn start_passkey_registration(&self, who: &Authenticated) -> Result<CeremonyStart, CoreError> {
        self.require_recent(who)?;
        let passkeys = self.passkeys()?;
        let existing: Vec<String> = self.store.list_passkeys(who.user.id).await?.into_iter().map(|p| p.data).collect();
        let display = who.user.display_name.as_ref().map_or(who.user.username.as_str(), |n| n.as_str());
        let (options, state) = passkeys.start_registration(who.user.id, who.user.username.as_str(), display, &existing)?;
        self.new_ceremony(Some(who.user.id), CeremonyPurpose::Register, options, state).await
    }

    /// Completes registering a passkey with the browser's answer.
    pub async fn finish_passkey_registration(
        &self,
        who: &Authenticated,
        handle: &SecretToken,
        credential: &Value,
        name: &str,
        ctx: &RequestContext,
    ) -> Result<PasskeyRecord, CoreError> {
        self.require_recent(who)?;
        let passkeys = self.passkeys()?;
        let ceremony = self.take_ceremony(handle, CeremonyPurpose::Register).await?;
        if ceremony.user_id != Some(who.user.id) {
            return Err(CoreError::Invalid("The passkey request has expired. Please try again.".into()));
        }
        let (credential_id, data) = passkeys.finish_registration(&ceremony.state, credential)?;
        let name = passkey_name(name).unwrap_or_else(|| describe_user_agent(ctx.user_agent.as_deref().unwrap_or("")));
        let record = PasskeyRecord {
            id: PasskeyId::new(),
            user_id: who.user.id,
            credential_id,
            name,
            data,
            created_at: self.clock.now(),
            last_used_at: None,
        };
        self.store.create_passkey(&record).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => CoreError::Invalid("This passkey is already registered.".into()),
            other => other.into(),
        })?;
        self.audit.record(AuditKind::PasskeyRegistered, Some(who.user.id), ctx, json!({"passkey": record.id, "name": record.name})).await;
        Ok(record)
    }

    /// A user's passkeys.
    pub async fn list_passkeys(&self, user_id: UserId) -> Result<Vec<PasskeyRecord>, CoreError> {
        Ok(self.store.list_passkeys(user_id).await?)
    }

    /// Renames one of the signed-in user's passkeys.
    pub async fn rename_passkey(&self, who: &Authenticated, id: PasskeyId, name: &str, ctx: &RequestContext) -> Result<(), CoreError> {
        let name = passkey_name(name).ok_or_else(|| CoreError::Invalid(format!("Give the passkey a name of 1 to {MAX_NAME_CHARS} characters.")))?;
        if !self.store.rename_passkey(who.user.id, id, &name).await? {
            return Err(CoreError::NotFound);
        }
        self.audit.record(AuditKind::PasskeyRenamed, Some(who.user.id), ctx, json!({"passkey": id, "name": name})).await;
        Ok(())
    }

    /// Removes one of the signed-in user's passkeys.
    pub async fn delete_passkey(&self, who: &Authenticated, id: PasskeyId, ctx: &RequestContext) -> Result<(), CoreError> {
        self.require_recent(who)?;
        if !self.store.delete_passkey(who.user.id, id).await? {
            return Err(CoreError::NotFound);
        }
        self.audit.record(AuditKind::PasskeyRemoved, Some(who.user.id), ctx, json!({"passkey": id})).await;
        self.drop_orphan_recovery_codes(who.user.id).await
    }

    /// Starts a passkey sign-in: passwordless (any discoverable credential) without
    /// `pending`, or as the second factor of the pending sign-in `pending` names.
    pub async fn start_passkey_sign_in(&self, pending: Option<&SecretToken>) -> Result<CeremonyStart, CoreError> {
        let passkeys = self.passkeys()?;
        match pending {
            None => {
                let (options, state) = passkeys.start_discoverable()?;
                self.new_ceremony(None, CeremonyPurpose::Passwordless, options, state).await
            }
            Some(token) => {
                let (_, user) = self.live_pending(token).await?;
                let data: Vec<String> = self.store.list_passkeys(user.id).await?.into_iter().map(|p| p.data).collect();
                let (options, state) = passkeys.start_second_factor(&data)?;
                self.new_ceremony(Some(user.id), CeremonyPurpose::SecondFactor, options, state).await
            }
        }
    }

    /// Completes a passkey sign-in with the browser's answer. Passwordless: the passkey is
    /// multi-factor by itself (user verification is required), and when `current` is the
    /// same user's session it is upgraded in place. Second factor: completes `pending`.
    pub async fn finish_passkey_sign_in(
        &self,
        handle: &SecretToken,
        credential: &Value,
        pending: Option<&SecretToken>,
        current: Option<&Authenticated>,
        ctx: &RequestContext,
    ) -> Result<StartedSession, CoreError> {
        let passkeys = self.passkeys()?;
        match pending {
            Some(token) => {
                let (_, user) = self.live_pending(token).await?;
                let ceremony = self.take_ceremony(handle, CeremonyPurpose::SecondFactor).await?;
                let verified = match ceremony.user_id == Some(user.id) {
                    true => self.verify_passkey(passkeys, &ceremony, credential, Some(user.id), false).await,
                    false => Err(CoreError::Invalid("The passkey request has expired. Please try again.".into())),
                };
                match verified {
                    Ok(synced) => self.complete_pending(token, &user, Factor::Passkey { synced }, None, ctx).await,
                    Err(CoreError::Invalid(_)) => {
                        Err(self.second_factor_failed(token, &user, Factor::Passkey { synced: false }, "passkey_refused", ctx).await)
                    }
                    Err(e) => Err(e),
                }
            }
            None => {
                let ceremony = self.take_ceremony(handle, CeremonyPurpose::Passwordless).await?;
                let (user_id, _) = match passkeys.identify(credential) {
                    Ok(x) => x,
                    Err(e) => return Err(self.passwordless_failed(None, "unreadable_answer", e, ctx).await),
                };
                let user = match self.store.find_user_by_id(user_id).await? {
                    Some(u) if !u.disabled => u,
                    _ => return Err(self.passwordless_failed(None, "unknown_user", CoreError::InvalidCredentials, ctx).await),
                };
                let synced = match self.verify_passkey(passkeys, &ceremony, credential, Some(user.id), true).await {
                    Ok(s) => s,
                    Err(CoreError::Invalid(_)) => {
                        return Err(self.passwordless_failed(Some(user.id), "passkey_refused", CoreError::InvalidCredentials, ctx).await);
                    }
                    Err(e) => return Err(e),
                };
                let upgrade = current.filter(|c| c.user.id == user.id).map(|c| c.id_hash);
                let amr = combine(&[], Factor::Passkey { synced });
                let started = self.finish_sign_in(user, amr, upgrade.as_ref(), ctx).await?;
                self.audit
                    .record(
                        AuditKind::LoginSucceeded,
                        Some(started.user.id),
                        ctx,
                        json!({"session": started.session.handle, "amr": started.session.amr, "via": "passkey"}),
                    )
                    .await;
                Ok(started)
            }
        }
    }

    /// Verifies an assertion against the stored passkey it names (which must be `owner`'s)
    /// and records its use; returns whether it is synced.
    async fn verify_passkey(&self, passkeys: &Passkeys, ceremony: &Ceremony, credential: &Value, owner: Option<UserId>, discoverable: bool) -> Result<bool, CoreError> {
        let credential_id = Passkeys::credential_id(credential)?;
        let Some(record) = self.store.find_passkey_by_credential(&credential_id).await? else {
            return Err(CoreError::Invalid("This passkey is not registered here.".into()));
        };
        if owner.is_some_and(|o| o != record.user_id) {
            return Err(CoreError::Invalid("This passkey belongs to another account.".into()));
        }
        let assertion = if discoverable {
            passkeys.finish_discoverable(&ceremony.state, credential, &record.data)?
        } else {
            passkeys.finish_second_factor(&ceremony.state, credential, &record.data)?
        };
        let data = assertion.updated.as_deref().unwrap_or(&record.data);
        self.store.record_passkey_use(record.id, data, self.clock.now()).await?;
        Ok(assertion.synced)
    }

    async fn passwordless_failed(&self, user: Option<UserId>, reason: &str, err: CoreError, ctx: &RequestContext) -> CoreError {
        self.audit.record(AuditKind::LoginFailed, user, ctx, json!({"via": "passkey", "reason": reason})).await;
        match err {
            CoreError::Invalid(_) | CoreError::InvalidCredentials => CoreError::InvalidCredentials,
            other => other,
        }
    }
}

/// The associated data that binds a sealed TOTP secret to its user.
fn totp_aad(user: UserId) -> String {
    format!("totp:{user}")
}

fn passkey_name(raw: &str) -> Option<String> {
    let n: String = crate::user::nfkc(raw.trim()).chars().filter(|c| !c.is_control()).collect();
    (!n.is_empty() && n.chars().count() <= MAX_NAME_CHARS).then_some(n)
}
