//! The store trait: every persistent intent Tessera has, expressed as one atomic method.
//! Single use, rotation and uniqueness are guaranteed by the database (conditional updates,
//! `DELETE … RETURNING`, unique indexes), never by code that reads and then writes.
//! Implemented for SQLite and PostgreSQL by `tessera-store`.

use crate::audit::AuditEvent;
use crate::ids::{OutboxId, SessionHandle, UserId};
use crate::secret::TokenHash;
use crate::session::{NewSession, Session};
use crate::user::{NewUser, User, UserUpdate};
use async_trait::async_trait;
use time::OffsetDateTime;

pub use crate::error::{ConflictKind, Contention, StoreCause, StoreError};
pub use crate::oauth::store::OAuthStore;

/// A user together with their password hash, for sign-in.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// The stored password hash, if the user has a password.
    pub password_hash: Option<String>,
}

/// How many sign-in attempts one key (an account, a client IP) admits: `free` in the window,
/// then one each time the delay since the last admitted attempt has passed (the delay starts
/// at `first_delay` and doubles with every further admitted attempt, up to `max_delay`).
#[derive(Debug, Clone, Copy)]
pub struct AttemptRule {
    /// Counters whose window started before this start again.
    pub window_start: OffsetDateTime,
    /// Attempts admitted in a window before delays apply.
    pub free: i64,
    /// The first delay once `free` attempts were admitted.
    pub first_delay: time::Duration,
    /// The longest delay.
    pub max_delay: time::Duration,
    /// The attempt carries a solved proof of work: it is admitted when the pace allows,
    /// even while refused attempts without one keep pushing `blocked_until` out.
    pub proof: bool,
}

/// The outcome of reserving one attempt, and the key's counter after it.
#[derive(Debug, Clone, Copy)]
pub struct AttemptReservation {
    /// Whether the attempt may go ahead (it then counts as a failure until released).
    pub admitted: bool,
    /// Attempts admitted in the current window.
    pub attempts: i64,
    /// When the latest admitted attempt was made.
    pub last_attempt_at: OffsetDateTime,
    /// Until when attempts without a proof of work are refused.
    pub blocked_until: OffsetDateTime,
}

/// A query over the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events about this user.
    pub user_id: Option<UserId>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// At most this many (newest first); 0 means 100.
    pub limit: u32,
}

/// Persistent state. Every method is one atomic intent.
#[async_trait]
pub trait Store: MfaStore + crate::oauth::grant_policy::LifecycleStore + Send + Sync + 'static {
    /// Checks the database answers (readiness): reads work, and, if the last write failed
    /// because the database was out of reach, that a write works again.
    async fn ping(&self) -> Result<(), StoreError>;

    // ---- users ----
    /// Creates a user; `Conflict(Username)`/`Conflict(Email)` when taken.
    async fn create_user(&self, user: &NewUser, now: OffsetDateTime) -> Result<User, StoreError>;
    /// Finds a user by id.
    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Finds a user and their password hash by canonical username or canonical e-mail.
    async fn find_user_credentials_by_login(&self, canonical_login: &str) -> Result<Option<UserCredentials>, StoreError>;
    /// Finds a user's password hash.
    async fn find_password_hash(&self, id: UserId) -> Result<Option<String>, StoreError>;
    /// Lists users ordered by id, after `after`.
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError>;
    /// Changes a user's profile.
    async fn update_user(&self, id: UserId, update: &UserUpdate, now: OffsetDateTime) -> Result<User, StoreError>;
    /// Disables (and ends every session of, writing an all-sessions-ended outbox event) or
    /// enables a user, atomically.
    async fn set_user_disabled(&self, id: UserId, disabled: bool, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Deletes a user and everything that hangs off them.
    async fn delete_user(&self, id: UserId) -> Result<(), StoreError>;
    /// Replaces `old_hash` by `new_hash` only if it is still the stored one (login re-hash).
    async fn upgrade_password_hash(&self, id: UserId, old_hash: &str, new_hash: &str) -> Result<bool, StoreError>;
    /// Sets a new password and ends every session of the user except `keep_session`, writing
    /// a credentials-changed outbox event, atomically; returns how many sessions ended and the
    /// event.
    async fn change_password(
        &self,
        id: UserId,
        new_hash: &str,
        keep_session: Option<&TokenHash>,
        now: OffsetDateTime,
    ) -> Result<(u64, OutboxId), StoreError>;
    /// Grants a role.
    async fn add_user_role(&self, id: UserId, role: &str) -> Result<(), StoreError>;
    /// Whether any enabled user holds `role`.
    async fn any_user_with_role(&self, role: &str) -> Result<bool, StoreError>;

    // ---- sessions ----
    /// Stores a new session.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// Finds a session by the hash of its id.
    async fn find_session(&self, id_hash: &TokenHash) -> Result<Option<Session>, StoreError>;
    /// Records use of a session.
    async fn touch_session(
        &self,
        id_hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(), StoreError>;
    // Every intent that ends sessions writes the outbox event of their end in its transaction.
    /// Ends a session by the hash of its id; returns the ended session and its
    /// session-ended event.
    async fn delete_session(&self, id_hash: &TokenHash, now: OffsetDateTime) -> Result<Option<(Session, OutboxId)>, StoreError>;
    /// Ends one of a user's sessions by its public handle; its session-ended event, or `None`
    /// if it was not theirs.
    async fn delete_user_session(&self, user_id: UserId, handle: SessionHandle, now: OffsetDateTime) -> Result<Option<OutboxId>, StoreError>;
    /// Ends every session of a user; returns how many and the all-sessions-ended event.
    async fn delete_user_sessions(&self, user_id: UserId, now: OffsetDateTime) -> Result<(u64, OutboxId), StoreError>;
    /// A user's sessions, newest first.
    async fn list_user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError>;
    /// Deletes sessions past their absolute expiry or idle since before `idle_cutoff`; returns
    /// the session-ended event of each.
    async fn delete_expired_sessions(&self, now: OffsetDateTime, idle_cutoff: OffsetDateTime) -> Result<Vec<OutboxId>, StoreError>;

    // ---- first-administrator setup ----
    /// Replaces any setup token by this one.
    async fn replace_setup_token(&self, hash: &TokenHash, expires_at: OffsetDateTime) -> Result<(), StoreError>;
    /// Uses up a setup token: true exactly once, only before it expires, and only while no
    /// enabled user holds the administrator role (checked in the same statement).
    async fn consume_setup_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Whether a setup token is valid (without using it): unexpired, and no administrator yet.
    async fn setup_token_valid(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError>;

    // ---- brute-force throttling ----
    /// Reserves one sign-in attempt on `key` under `rule`, in one conditional upsert: of any
    /// number of concurrent attempts, only as many as the rule allows are admitted. An
    /// admitted attempt counts as a failure until [`Store::release_attempt`] gives it back.
    async fn reserve_attempt(&self, key: &str, rule: &AttemptRule, now: OffsetDateTime) -> Result<AttemptReservation, StoreError>;
    /// Gives back one admitted attempt (it succeeded, or was not made after all).
    async fn release_attempt(&self, key: &str) -> Result<(), StoreError>;
    /// Clears a counter.
    async fn clear_failure_counter(&self, key: &str) -> Result<(), StoreError>;
    /// Records a single-use value until `expires_at`; false if it was recorded before.
    async fn record_once(&self, key: &str, expires_at: OffsetDateTime) -> Result<bool, StoreError>;

    // ---- audit ----
    /// Appends an audit event.
    async fn append_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// Reads audit events, newest first.
    async fn find_audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
}


use crate::ids::PasskeyId;
use crate::mfa::model::{Ceremony, FactorSummary, PasskeyRecord, PendingLogin, TotpRecord};

/// Persistent state of strong authentication: second factors, ceremonies and sign-ins in
/// progress. Single use (TOTP steps, recovery codes, ceremonies, pending sign-ins) is
/// enforced by conditional updates and `DELETE … RETURNING`.
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    // ---- pending sign-ins ----
    /// Stores a pending sign-in under the hash of its secret.
    async fn create_pending_login(&self, hash: &TokenHash, pending: &PendingLogin) -> Result<(), StoreError>;
    /// A pending sign-in that has not lapsed.
    async fn find_pending_login(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLogin>, StoreError>;
    /// Uses up a pending sign-in: exactly one caller gets it.
    async fn take_pending_login(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLogin>, StoreError>;
    /// Counts a wrong answer; returns the new count (`None` if it is gone).
    async fn record_pending_failure(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError>;
    /// Rotates the id of `user_id`'s session `old` and records a new authentication in it
    /// (re-authentication or step-up keeps the session's handle, so its grants stay);
    /// `None` if it has ended or is not that user's.
    async fn upgrade_session(
        &self,
        user_id: UserId,
        old: &TokenHash,
        new: &TokenHash,
        amr: &[String],
        auth_time: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError>;

    // ---- second factors ----
    /// Which factors a user has.
    async fn find_factor_summary(&self, user_id: UserId) -> Result<FactorSummary, StoreError>;
    /// Starts (or restarts) TOTP enrolment with a new sealed secret; false if a confirmed
    /// authenticator exists (it must be removed first).
    async fn begin_totp_enrolment(&self, user_id: UserId, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError>;
    /// The user's TOTP record, confirmed or not.
    async fn find_totp(&self, user_id: UserId) -> Result<Option<TotpRecord>, StoreError>;
    /// Confirms enrolment with the step of its first accepted code; false if there is no
    /// unconfirmed enrolment.
    async fn confirm_totp(&self, user_id: UserId, step: i64, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Accepts a code's step only if it is later than the last accepted one (single use).
    async fn use_totp_step(&self, user_id: UserId, step: i64) -> Result<bool, StoreError>;
    /// Removes the TOTP authenticator; false if there was none.
    async fn delete_totp(&self, user_id: UserId) -> Result<bool, StoreError>;
    /// Replaces every recovery code of a user with these hashes.
    async fn replace_recovery_codes(&self, user_id: UserId, hashes: &[TokenHash], now: OffsetDateTime) -> Result<(), StoreError>;
    /// Uses up one recovery code: true exactly once.
    async fn use_recovery_code(&self, user_id: UserId, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError>;

    // ---- passkeys ----
    /// Registers a passkey; `Conflict(PasskeyCredential)` if its credential id is registered.
    async fn create_passkey(&self, passkey: &PasskeyRecord) -> Result<(), StoreError>;
    /// A user's passkeys, oldest first.
    async fn list_passkeys(&self, user_id: UserId) -> Result<Vec<PasskeyRecord>, StoreError>;
    /// The passkey with this credential id.
    async fn find_passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError>;
    /// Records a use (new counter/flags in `data`).
    async fn record_passkey_use(&self, id: PasskeyId, data: &str, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Renames one of the user's passkeys; false if it is not theirs.
    async fn rename_passkey(&self, user_id: UserId, id: PasskeyId, name: &str) -> Result<bool, StoreError>;
    /// Deletes one of the user's passkeys; false if it is not theirs.
    async fn delete_passkey(&self, user_id: UserId, id: PasskeyId) -> Result<bool, StoreError>;

    // ---- WebAuthn ceremonies ----
    /// Stores a ceremony's state under the hash of its handle.
    async fn create_ceremony(&self, hash: &TokenHash, ceremony: &Ceremony) -> Result<(), StoreError>;
    /// Uses up a ceremony: exactly one caller gets it, and only before it lapses.
    async fn take_ceremony(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<Ceremony>, StoreError>;

    /// Removes every second factor of a user (TOTP, passkeys, recovery codes) and their
    /// pending sign-ins, in one transaction; returns how many factors were removed.
    async fn delete_user_factors(&self, user_id: UserId) -> Result<u64, StoreError>;

    /// Deletes lapsed pending sign-ins and ceremonies.
    async fn purge_expired_mfa(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Every account store is the provider's account port.
#[async_trait]
impl<T: Store + ?Sized> crate::oauth::users::ProviderAccounts for T {
    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Store::find_user_by_id(self, id).await
    }
    async fn find_session_by_handle(&self, handle: SessionHandle) -> Result<Option<Session>, StoreError> {
        crate::oauth::grant_policy::LifecycleStore::find_session_by_handle(self, handle).await
    }
    async fn delete_client_revoking_grants(
        &self,
        id: &crate::oauth::client::ClientId,
        now: OffsetDateTime,
    ) -> Result<Vec<crate::oauth::model::Grant>, StoreError> {
        crate::oauth::grant_policy::LifecycleStore::delete_client_revoking_grants(self, id, now).await
    }
}
