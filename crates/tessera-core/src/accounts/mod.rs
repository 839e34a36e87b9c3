//! Account flows: creating users, signing in and out, sessions, password changes, and the
//! first-administrator setup link. Handlers call exactly one of these per request.
//!
//! What must follow the end of a session (revoking grants, security events, back-channel
//! logout) is not done here: the store intents that end sessions write outbox events in the
//! same transaction, and these flows only ask [`ApplyEvents`] to apply them right away.

use crate::CoreError;
use crate::audit::{AuditEvent, AuditKind};
use crate::auditor::Auditor;
use crate::clock::SharedClock;
use crate::ids::{OutboxId, SessionHandle, UserId};
use crate::jose::KeySealer;
use crate::mfa::level::{AuthLevel, Factor, combine};
use crate::mfa::model::FactorSummary;
use crate::mfa::passkey::Passkeys;
use crate::outbox::ApplyEvents;
use crate::password::{PasswordHasher, Verification, is_supported_hash};
use crate::secret::{Password, SecretToken, TokenHash};
use crate::session::{NewSession, RequestContext, Session, SessionPolicy};
use crate::store::{AuditQuery, Store, StoreError};
use crate::throttle::{PowAnswer, Throttle};
use crate::user::{DisplayName, Email, NewUser, ROLE_ADMIN, User, UserUpdate, Username, canonical};
use serde_json::json;
use std::sync::Arc;
use time::Duration;

pub mod pending;

/// Password rules: NIST SP 800-63B-4 lengths, the shipped blocklist, no composition rules.
pub use crate::password::PasswordPolicy as PasswordRules;

/// Input for creating a user.
#[derive(Debug, Clone)]
pub struct CreateUser {
    /// Username as typed.
    pub username: String,
    /// E-mail as typed (empty for none).
    pub email: Option<String>,
    /// Display name as typed.
    pub display_name: Option<String>,
    /// Initial password, if any.
    pub password: Option<Password>,
    /// Roles to grant.
    pub roles: Vec<String>,
}

/// A freshly started session: the secret for the cookie and the stored record.
#[derive(Debug)]
pub struct StartedSession {
    /// The session id, to be put into the cookie only.
    pub token: SecretToken,
    /// The session record.
    pub session: Session,
    /// The signed-in user.
    pub user: User,
}

/// A request's signed-in user and session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user.
    pub user: User,
    /// The session.
    pub session: Session,
    /// Hash of the session id (to keep this session when ending others).
    pub id_hash: TokenHash,
}

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

/// What a password sign-in led to (returned once per sign-in, so its size does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(StartedSession),
    /// The password was right; a second factor is needed (the user enrolled one).
    SecondFactor(SecondFactorNeeded),
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

/// The account flows.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) clock: SharedClock,
    pub(crate) audit: Auditor,
    pub(crate) policy: SessionPolicy,
    pub(crate) rules: PasswordRules,
    pub(crate) events: Option<Arc<dyn ApplyEvents>>,
    pub(crate) throttle: Option<Throttle>,
    pub(crate) mfa: MfaSettings,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("policy", &self.policy).finish()
    }
}

/// How long the first-administrator link stays valid.
pub const SETUP_LINK_LIFETIME: Duration = Duration::hours(24);

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
    pub(crate) async fn apply_events(&self, ids: &[OutboxId]) {
        if let (Some(e), false) = (&self.events, ids.is_empty()) {
            e.apply_now(ids).await;
        }
    }

    /// The session policy.
    pub fn session_policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The audit path.
    pub fn auditor(&self) -> &Auditor {
        &self.audit
    }

    /// Creates a user (CLI, admin, sign-up).
    pub async fn create_user(&self, input: CreateUser, ctx: &RequestContext) -> Result<User, CoreError> {
        let password_hash = match &input.password {
            Some(p) => {
                let email = input.email.as_deref().unwrap_or("");
                self.rules.check(p.expose(), false, &[input.username.as_str(), email])?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        self.insert_user(input, password_hash, ctx).await
    }

    /// Creates a user whose password hash comes from another system (Argon2, bcrypt or
    /// PBKDF2-SHA256); it is verified as is and upgraded to Argon2id on the next sign-in.
    pub async fn import_user(&self, input: CreateUser, password_hash: &str, ctx: &RequestContext) -> Result<User, CoreError> {
        if !is_supported_hash(password_hash) {
            return Err(CoreError::Invalid(
                "unsupported password hash: expected Argon2 PHC, bcrypt ($2a$/$2b$/$2y$) or PBKDF2-SHA256".into(),
            ));
        }
        self.insert_user(input, Some(password_hash.to_owned()), ctx).await
    }

    async fn insert_user(&self, input: CreateUser, password_hash: Option<String>, ctx: &RequestContext) -> Result<User, CoreError> {
        let new = NewUser {
            username: Username::parse(&input.username)?,
            email: match input.email.as_deref().map(str::trim) {
                Some(e) if !e.is_empty() => Some(Email::parse(e)?),
                _ => None,
            },
            display_name: match input.display_name.as_deref() {
                Some(n) => DisplayName::parse(n)?,
                None => None,
            },
            password_hash,
            roles: input.roles,
        };
        let user = self.store.create_user(&new, self.clock.now()).await.map_err(conflict)?;
        self.audit
            .record(AuditKind::UserCreated, Some(user.id), ctx, json!({"username": user.username, "roles": user.roles}))
            .await;
        Ok(user)
    }

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

    /// Starts a new session (always a new id: sign-in rotates the session id).
    pub(crate) async fn start_session(&self, user: User, amr: Vec<String>, ctx: &RequestContext) -> Result<StartedSession, CoreError> {
        let now = self.clock.now();
        let token = SecretToken::generate()?;
        let session = Session {
            handle: SessionHandle::new(),
            user_id: user.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.absolute_timeout,
            auth_time: now,
            ip: ctx.ip.map(|i| i.to_string()),
            user_agent: ctx.user_agent.clone(),
            amr,
        };
        self.store.create_session(&NewSession { id_hash: token.hash(), session: session.clone() }).await?;
        Ok(StartedSession { token, session, user })
    }

    /// Resolves a session cookie to its user and session; ends it if it has timed out.
    pub async fn authenticate(&self, token: &SecretToken, ctx: &RequestContext) -> Result<Authenticated, CoreError> {
        let id_hash = token.hash();
        let Some(mut session) = self.store.find_session(&id_hash).await? else {
            return Err(CoreError::Unauthenticated);
        };
        let now = self.clock.now();
        if !session.is_live(now, &self.policy) {
            if let Some((_, event)) = self.store.delete_session(&id_hash, now).await? {
                self.apply_events(&[event]).await;
            }
            return Err(CoreError::Unauthenticated);
        }
        let Some(user) = self.store.find_user_by_id(session.user_id).await? else {
            return Err(CoreError::Unauthenticated);
        };
        if user.disabled {
            return Err(CoreError::Unauthenticated);
        }
        if now - session.last_seen_at >= self.policy.touch_interval {
            let ip = ctx.ip.map(|i| i.to_string());
            self.store.touch_session(&id_hash, now, ip.as_deref(), ctx.user_agent.as_deref()).await?;
            session.last_seen_at = now;
            if ip.is_some() {
                session.ip = ip;
            }
            if ctx.user_agent.is_some() {
                session.user_agent = ctx.user_agent.clone();
            }
        }
        Ok(Authenticated { user, session, id_hash })
    }

    /// Signs out: ends the session the cookie names.
    pub async fn logout(&self, token: &SecretToken, ctx: &RequestContext) -> Result<(), CoreError> {
        if let Some((s, event)) = self.store.delete_session(&token.hash(), self.clock.now()).await? {
            self.audit.record(AuditKind::Logout, Some(s.user_id), ctx, json!({"session": s.handle})).await;
            self.apply_events(&[event]).await;
        }
        Ok(())
    }

    /// A user's sessions, newest first, without the timed-out ones.
    pub async fn list_sessions(&self, user_id: UserId) -> Result<Vec<Session>, CoreError> {
        let now = self.clock.now();
        let mut sessions = self.store.list_user_sessions(user_id).await?;
        sessions.retain(|s| s.is_live(now, &self.policy));
        Ok(sessions)
    }

    /// Ends one of the signed-in user's sessions.
    pub async fn end_session(&self, who: &Authenticated, handle: SessionHandle, ctx: &RequestContext) -> Result<(), CoreError> {
        self.require_recent(who)?;
        let Some(event) = self.store.delete_user_session(who.user.id, handle, self.clock.now()).await? else {
            return Err(CoreError::NotFound);
        };
        self.audit
            .record(AuditKind::SessionEnded, Some(who.user.id), ctx, json!({"session": handle, "by": "user"}))
            .await;
        self.apply_events(&[event]).await;
        Ok(())
    }

    /// Ends every session of a user (administrator action).
    pub async fn end_all_sessions(&self, user_id: UserId, ctx: &RequestContext) -> Result<u64, CoreError> {
        let (n, event) = self.store.delete_user_sessions(user_id, self.clock.now()).await?;
        self.audit
            .record(AuditKind::SessionEnded, Some(user_id), ctx, json!({"sessions": n, "by": "admin"}))
            .await;
        self.apply_events(&[event]).await;
        Ok(n)
    }

    /// Changes the signed-in user's password after checking the current one; ends every
    /// other session of the user.
    pub async fn change_password(
        &self,
        who: &Authenticated,
        current: &Password,
        new: &Password,
        ctx: &RequestContext,
    ) -> Result<u64, CoreError> {
        self.require_recent(who)?;
        let stored = self.store.find_password_hash(who.user.id).await?;
        if stored.is_some() {
            // A password check like sign-in's: reserved first, so a session holder cannot
            // guess the current password faster than the sign-in form allows.
            let reservation = self.reserve_attempt(&who.user.username.canonical(), None, ctx, json!({"step": "password_change"}), Some(who.user.id)).await?;
            if let Verification::Mismatch = self.hasher.verify(current, stored.as_deref()).await? {
                return Err(CoreError::Invalid("The current password is not right.".into()));
            }
            self.attempt_succeeded(reservation).await?;
        }
        let email = who.user.email.as_ref().map_or("", |e| e.as_str());
        self.rules.check(new.expose(), false, &[who.user.username.as_str(), email])?;
        let hash = self.hasher.hash(new).await?;
        let (ended, event) = self.store.change_password(who.user.id, &hash, Some(&who.id_hash), self.clock.now()).await?;
        self.audit
            .record(AuditKind::PasswordChanged, Some(who.user.id), ctx, json!({"other_sessions_ended": ended}))
            .await;
        self.apply_events(&[event]).await;
        Ok(ended)
    }

    /// Sets a user's password (administrator or CLI); ends all of the user's sessions.
    pub async fn set_password(&self, user_id: UserId, new: &Password, ctx: &RequestContext) -> Result<(), CoreError> {
        let user = self.find_user(user_id).await?;
        let email = user.email.as_ref().map_or("", |e| e.as_str());
        self.rules.check(new.expose(), false, &[user.username.as_str(), email])?;
        let hash = self.hasher.hash(new).await?;
        let (_, event) = self.store.change_password(user_id, &hash, None, self.clock.now()).await.map_err(conflict)?;
        self.audit.record(AuditKind::PasswordChanged, Some(user_id), ctx, json!({"by": "admin"})).await;
        self.apply_events(&[event]).await;
        Ok(())
    }

    /// Finds a user.
    pub async fn find_user(&self, id: UserId) -> Result<User, CoreError> {
        self.store.find_user_by_id(id).await?.ok_or(CoreError::NotFound)
    }

    /// Finds a user by username or e-mail.
    pub async fn find_user_by_login(&self, login: &str) -> Result<User, CoreError> {
        Ok(self
            .store
            .find_user_credentials_by_login(&canonical(login.trim()))
            .await?
            .ok_or(CoreError::NotFound)?
            .user)
    }

    /// Lists users.
    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, CoreError> {
        Ok(self.store.list_users(after, limit.clamp(1, 500)).await?)
    }

    /// Changes a user's profile.
    pub async fn update_user(&self, id: UserId, update: UserUpdate, ctx: &RequestContext) -> Result<User, CoreError> {
        let user = self.store.update_user(id, &update, self.clock.now()).await.map_err(conflict)?;
        self.audit.record(AuditKind::UserUpdated, Some(id), ctx, json!({"username": user.username})).await;
        Ok(user)
    }

    /// Disables a user (ending their sessions and revoking their grants, in one transaction
    /// that also publishes the revocation) or enables them again.
    pub async fn set_disabled(&self, id: UserId, disabled: bool, ctx: &RequestContext) -> Result<(), CoreError> {
        let revoked = if disabled {
            self.store.disable_user_revoking_grants(id, self.clock.now()).await.map_err(conflict)?
        } else {
            self.store.set_user_disabled(id, false, self.clock.now()).await.map_err(conflict)?;
            None
        };
        let kind = if disabled { AuditKind::UserDisabled } else { AuditKind::UserEnabled };
        self.audit.record(kind, Some(id), ctx, json!({})).await;
        self.apply_events(revoked.as_slice()).await;
        Ok(())
    }

    /// Deletes a user, revoking their grants and tokens (and publishing it) in the same
    /// transaction.
    pub async fn delete_user(&self, id: UserId, ctx: &RequestContext) -> Result<(), CoreError> {
        let revoked = self.store.delete_user_revoking_grants(id, self.clock.now()).await.map_err(conflict)?;
        self.audit.record(AuditKind::UserDeleted, Some(id), ctx, json!({})).await;
        self.apply_events(revoked.as_slice()).await;
        Ok(())
    }

    /// If no administrator exists, makes a new one-time setup link token (replacing any
    /// earlier one) and returns it; otherwise `None`.
    pub async fn ensure_setup_token(&self) -> Result<Option<SecretToken>, CoreError> {
        if self.store.any_user_with_role(ROLE_ADMIN).await? {
            return Ok(None);
        }
        let token = SecretToken::generate()?;
        self.store.replace_setup_token(&token.hash(), self.clock.now() + SETUP_LINK_LIFETIME).await?;
        Ok(Some(token))
    }

    /// Whether a setup token is valid.
    pub async fn setup_token_valid(&self, token: &SecretToken) -> Result<bool, CoreError> {
        Ok(self.store.setup_token_valid(&token.hash(), self.clock.now()).await?)
    }

    /// Uses the setup link: creates the first administrator and signs them in.
    pub async fn complete_setup(&self, token: &SecretToken, mut input: CreateUser, ctx: &RequestContext) -> Result<StartedSession, CoreError> {
        let Some(password) = input.password.clone() else {
            return Err(CoreError::Invalid("Choose a password.".into()));
        };
        let email = input.email.as_deref().unwrap_or("");
        self.rules.check(password.expose(), false, &[input.username.as_str(), email])?;
        // Validate the names before using up the token, so a typo does not burn the link.
        Username::parse(&input.username)?;
        if !self.store.consume_setup_token(&token.hash(), self.clock.now()).await? {
            return Err(CoreError::Forbidden);
        }
        input.roles = vec![ROLE_ADMIN.to_owned()];
        let user = self.create_user(input, ctx).await?;
        self.audit.record(AuditKind::SetupCompleted, Some(user.id), ctx, json!({"username": user.username})).await;
        self.start_session(user, vec!["pwd".into()], ctx).await
    }

    /// Signs up a new user with a password. The person is not signed in: a taken username
    /// or e-mail address gets the same `Ok(())` after the same hashing work as a fresh
    /// account (the password is checked and hashed before the insert that finds the
    /// conflict), so sign-up cannot tell which accounts exist. Invalid input is an error.
    pub async fn sign_up(&self, input: CreateUser, ctx: &RequestContext) -> Result<(), CoreError> {
        let username = input.username.chars().take(64).collect::<String>();
        match self.create_user(CreateUser { roles: vec![], ..input }, ctx).await {
            Ok(_) => Ok(()),
            Err(CoreError::Conflict(what)) => {
                self.audit.record(AuditKind::SignupDuplicate, None, ctx, json!({"username": username, "taken": what})).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the audit log.
    pub async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, CoreError> {
        Ok(self.store.find_audit_events(query).await?)
    }

    /// Deletes timed-out sessions (their grants are revoked through the outbox), and lapsed
    /// pending sign-ins and WebAuthn ceremonies; run periodically. Returns how many records
    /// went.
    pub async fn purge_expired_sessions(&self) -> Result<u64, CoreError> {
        let now = self.clock.now();
        let mfa = self.store.purge_expired_mfa(now).await?;
        let ended = self.store.delete_expired_sessions(now, now - self.policy.idle_timeout).await?;
        self.apply_events(&ended).await;
        Ok(u64::try_from(ended.len()).unwrap_or(u64::MAX) + mfa)
    }
}

fn conflict(e: StoreError) -> CoreError {
    match e {
        StoreError::Conflict(what) => CoreError::Conflict(what.as_str()),
        StoreError::NotFound => CoreError::NotFound,
        other => CoreError::Store(other),
    }
}

impl Accounts {
    /// Whether the store answers (readiness).
    pub async fn ready(&self) -> Result<(), CoreError> {
        Ok(self.store.ping().await?)
    }
}
