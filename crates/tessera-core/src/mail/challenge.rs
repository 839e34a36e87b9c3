//! E-mail challenges: the single-use secrets a mail carries (a link, a code), stored hashed,
//! bound to the browser that asked (the hash of a cookie set on that browser), expiring in
//! minutes. A challenge is used up by one `DELETE … RETURNING` that also requires the
//! browser's hash and an unexpired record, in the same transaction as its effect.

use crate::ids::{OutboxId, UserId};
use crate::mail::MailId;
use crate::secret::TokenHash;
use crate::store::StoreError;
use async_trait::async_trait;
use time::OffsetDateTime;

/// What a challenge proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// Choosing a new password.
    PasswordReset,
    /// Proving an e-mail address.
    VerifyEmail,
    /// Signing in by a mailed one-time code or link.
    SignIn,
}

impl ChallengePurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengePurpose::PasswordReset => "password-reset",
            ChallengePurpose::VerifyEmail => "verify-email",
            ChallengePurpose::SignIn => "sign-in",
        }
    }

    /// The purpose of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [ChallengePurpose::PasswordReset, ChallengePurpose::VerifyEmail, ChallengePurpose::SignIn].into_iter().find(|p| p.as_str() == s)
    }
}

/// A challenge to store.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    /// Hash of the link's secret.
    pub hash: TokenHash,
    /// What it proves.
    pub purpose: ChallengePurpose,
    /// Whose it is.
    pub user_id: UserId,
    /// The address the mail went to.
    pub email: String,
    /// Hash of the browser-binding cookie of the browser that asked.
    pub browser: TokenHash,
    /// Hash of the one-time code the mail also carries (sign-in), if any.
    pub code: Option<TokenHash>,
    /// Created at.
    pub created_at: OffsetDateTime,
    /// Unusable from then on.
    pub expires_at: OffsetDateTime,
}

/// A stored, unexpired challenge (what a `GET` of its link may read without using it).
#[derive(Debug, Clone)]
pub struct StoredChallenge {
    /// Whose it is.
    pub user_id: UserId,
    /// What it proves.
    pub purpose: ChallengePurpose,
    /// The address the mail went to.
    pub email: String,
    /// Hash of the browser-binding cookie of the browser that asked.
    pub browser: TokenHash,
    /// Unusable from then on.
    pub expires_at: OffsetDateTime,
}

/// What a completed password reset did.
#[derive(Debug, Clone, Copy)]
pub struct ResetDone {
    /// Whose password changed.
    pub user_id: UserId,
    /// How many sessions ended.
    pub sessions_ended: u64,
    /// The credentials-changed outbox event (revokes every grant of the user).
    pub event: OutboxId,
}

/// Persistent e-mail challenges.
#[async_trait]
pub trait ChallengeStore: Send + Sync + 'static {
    /// Stores a challenge and queues its sealed mail in one transaction, replacing the
    /// user's earlier challenges of the same purpose.
    async fn create_challenge_with_mail(&self, challenge: &NewChallenge, sealed_mail: &[u8]) -> Result<MailId, StoreError>;
    /// The unexpired challenge stored under `hash` (read only: nothing is used up).
    async fn find_challenge(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<StoredChallenge>, StoreError>;
    /// Uses up a password-reset challenge and sets the new password in one transaction:
    /// only an unexpired challenge made for `browser` is taken (`DELETE … RETURNING`), then
    /// the password is replaced, every session of the user ends and a credentials-changed
    /// outbox event is written. `None` if no such challenge (nothing changes).
    async fn reset_password_with_challenge(
        &self,
        hash: &TokenHash,
        browser: &TokenHash,
        new_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ResetDone>, StoreError>;
    /// Uses up a verification challenge and marks the address verified in one transaction:
    /// only an unexpired challenge made for `browser`, or for the user `signed_in` (the
    /// signed-in owner, in any browser), is taken, and only while the user's address is
    /// still the one the mail went to. `None` if not (nothing changes).
    async fn verify_email_with_challenge(
        &self,
        hash: &TokenHash,
        browser: Option<&TokenHash>,
        signed_in: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<Option<UserId>, StoreError>;
    /// Uses up a sign-in challenge by its link: only an unexpired one made for `browser`,
    /// with fewer than `max_failures` wrong codes. Its user, or `None`.
    async fn take_sign_in_by_link(&self, hash: &TokenHash, browser: &TokenHash, max_failures: u32, now: OffsetDateTime) -> Result<Option<UserId>, StoreError>;
    /// Uses up the sign-in challenge of `browser` whose code hashes to `code` (unexpired,
    /// fewer than `max_failures` wrong codes). Its user, or `None`.
    async fn take_sign_in_by_code(&self, browser: &TokenHash, code: &TokenHash, max_failures: u32, now: OffsetDateTime) -> Result<Option<UserId>, StoreError>;
    /// Counts a wrong code against the sign-in challenges of `browser`.
    async fn record_sign_in_code_failure(&self, browser: &TokenHash) -> Result<(), StoreError>;
    /// Deletes expired challenges.
    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
