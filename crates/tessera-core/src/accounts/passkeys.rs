//! The passkey (WebAuthn) ceremonies: registering and managing a user's passkeys, and signing
//! in with one, passwordless or as the second factor of a pending sign-in.

use super::{Accounts, Authenticated, StartedSession};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::{PasskeyId, UserId};
use crate::mfa::level::{Factor, combine};
use crate::mfa::model::{Ceremony, CeremonyPurpose, PasskeyRecord};
use crate::mfa::passkey::{MAX_NAME_CHARS, Passkeys};
use crate::secret::SecretToken;
use crate::session::{RequestContext, describe_user_agent};
use serde_json::{Value, json};
use time::Duration;

/// How long a WebAuthn ceremony may take.
pub const CEREMONY_LIFETIME: Duration = Duration::minutes(5);

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
    /// Whether passkeys can be used (the issuer is a valid relying party).
    pub fn passkeys_enabled(&self) -> bool {
        self.mfa.passkeys.is_some()
    }

    fn passkeys(&self) -> Result<&Passkeys, CoreError> {
        self.mfa
            .passkeys
            .as_ref()
            .ok_or_else(|| CoreError::Invalid("Passkeys are not available on this server (its address is not a domain name).".into()))
    }

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

fn passkey_name(raw: &str) -> Option<String> {
    let n: String = crate::user::nfkc(raw.trim()).chars().filter(|c| !c.is_control()).collect();
    (!n.is_empty() && n.chars().count() <= MAX_NAME_CHARS).then_some(n)
}
