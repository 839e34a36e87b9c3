//! The mail outbox (`MailOutbox`) and e-mail challenges (`ChallengeStore`) for [`SqlStore`].
//!
//! Claiming is one conditional `UPDATE … RETURNING` over the due rows that no unexpired
//! lease holds, re-checked on each row it updates (PostgreSQL re-evaluates the condition on a
//! row another transaction just claimed; SQLite has one writer), so one claimant gets each
//! message. Marking sent and rescheduling require the claim's lease. A challenge is used up by
//! a `DELETE … RETURNING` that also requires the asking browser's hash and an unexpired row.

use crate::backend::{WritePool, db, on_db};
use crate::in_tx::{CREDENTIALS_CHANGED, record_event};
use crate::query::{Exec, Fetch};
use crate::rows::{id, ts};
use crate::store::SqlStore;
use async_trait::async_trait;
use sqlx::FromRow;
use tessera_core::ids::UserId;
use tessera_core::mail::challenge::{ChallengePurpose, ChallengeStore, NewChallenge, ResetDone, StoredChallenge};
use tessera_core::mail::{ClaimedMail, MailId, MailOutbox};
use tessera_core::secret::TokenHash;
use tessera_core::store::StoreError;
use time::OffsetDateTime;

/// Claims (until $2) at most $3 unsent messages due by $1 that no lease running past $1 holds.
const CLAIM_DUE: &str = "UPDATE mail_outbox SET claimed_until = $2 \
     WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
                  AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY next_attempt_at, id LIMIT $3) \
       AND sent_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $1) \
     RETURNING id, sealed, attempts";

#[derive(FromRow)]
struct ClaimRow {
    id: i64,
    sealed: Option<Vec<u8>>,
    attempts: i64,
}

#[derive(FromRow)]
struct ChallengeRow {
    user_id: String,
    purpose: String,
    email: String,
    browser_hash: Vec<u8>,
    expires_at: i64,
}

fn purpose(s: &str) -> Result<ChallengePurpose, StoreError> {
    ChallengePurpose::parse(s).ok_or_else(|| StoreError::Corrupt(format!("challenge purpose {s:?}")))
}

impl ChallengeRow {
    fn into_challenge(self) -> Result<StoredChallenge, StoreError> {
        Ok(StoredChallenge {
            user_id: id(&self.user_id)?,
            purpose: purpose(&self.purpose)?,
            email: self.email,
            browser: TokenHash::from_bytes(&self.browser_hash).ok_or_else(|| StoreError::Corrupt("challenge browser hash".into()))?,
            expires_at: ts(self.expires_at)?,
        })
    }
}

#[async_trait]
impl MailOutbox for SqlStore {
    async fn enqueue_mail(&self, sealed: &[u8], now: OffsetDateTime) -> Result<MailId, StoreError> {
        let id: i64 = on_db!(self, write, |pool| {
            sqlx::query_scalar("INSERT INTO mail_outbox (sealed, created_at, next_attempt_at) VALUES ($1, $2, $2) RETURNING id")
                .bind(sealed)
                .bind(now.unix_timestamp())
                .one(pool)
                .await
        })?;
        Ok(MailId::new(id))
    }

    async fn claim_due_mail(&self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32) -> Result<Vec<ClaimedMail>, StoreError> {
        let rows: Vec<ClaimRow> = on_db!(self, write, |pool| {
            sqlx::query_as(CLAIM_DUE)
                .bind(now.unix_timestamp())
                .bind(lease_until.unix_timestamp())
                .bind(i64::from(limit))
                .all(pool)
                .await
        })?;
        let mut claimed: Vec<ClaimedMail> = rows
            .into_iter()
            .map(|r| ClaimedMail {
                id: MailId::new(r.id),
                sealed: r.sealed.unwrap_or_default(),
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                lease_until,
            })
            .collect();
        claimed.sort_by_key(|m| m.id);
        Ok(claimed)
    }

    async fn mark_mail_sent(&self, mail: MailId, lease_until: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE mail_outbox SET sent_at = $3, sealed = NULL, claimed_until = NULL, last_error = NULL \
                 WHERE id = $1 AND claimed_until = $2 AND sent_at IS NULL",
            )
            .bind(mail.get())
            .bind(lease_until.unix_timestamp())
            .bind(now.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(n == 1)
    }

    async fn reschedule_mail(&self, mail: MailId, lease_until: OffsetDateTime, next_attempt_at: OffsetDateTime, error: &str) -> Result<bool, StoreError> {
        let error: String = error.chars().take(500).collect();
        let n = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE mail_outbox SET claimed_until = NULL, next_attempt_at = $3, attempts = attempts + 1, last_error = $4 \
                 WHERE id = $1 AND claimed_until = $2 AND sent_at IS NULL",
            )
            .bind(mail.get())
            .bind(lease_until.unix_timestamp())
            .bind(next_attempt_at.unix_timestamp())
            .bind(&error)
            .exec(pool)
            .await
        })?;
        Ok(n == 1)
    }

    async fn count_unsent_mail(&self) -> Result<u64, StoreError> {
        let n: i64 = on_db!(self, read, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL").one(pool).await
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge_sent_mail(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM mail_outbox WHERE sent_at IS NOT NULL AND sent_at < $1").bind(cutoff.unix_timestamp()).exec(pool).await
        })
    }
}

#[async_trait]
impl ChallengeStore for SqlStore {
    async fn create_challenge_with_mail(&self, c: &NewChallenge, sealed_mail: &[u8]) -> Result<MailId, StoreError> {
        let id: i64 = on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM email_challenges WHERE user_id = $1 AND purpose = $2")
                .bind(c.user_id.to_string())
                .bind(c.purpose.as_str())
                .exec(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO email_challenges (hash, purpose, user_id, email, browser_hash, code_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(c.hash.as_bytes().as_slice())
            .bind(c.purpose.as_str())
            .bind(c.user_id.to_string())
            .bind(&c.email)
            .bind(c.browser.as_bytes().as_slice())
            .bind(c.code.map(|h| h.as_bytes().to_vec()))
            .bind(c.created_at.unix_timestamp())
            .bind(c.expires_at.unix_timestamp())
            .exec(&mut *tx)
            .await?;
            let id: i64 = sqlx::query_scalar("INSERT INTO mail_outbox (sealed, created_at, next_attempt_at) VALUES ($1, $2, $2) RETURNING id")
                .bind(sealed_mail)
                .bind(c.created_at.unix_timestamp())
                .one(&mut *tx)
                .await?;
            tx.commit().await.map_err(db)?;
            Ok(id)
        })?;
        Ok(MailId::new(id))
    }

    async fn find_challenge(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<StoredChallenge>, StoreError> {
        let row: Option<ChallengeRow> = on_db!(self, read, |pool| {
            sqlx::query_as("SELECT user_id, purpose, email, browser_hash, expires_at FROM email_challenges WHERE hash = $1 AND expires_at > $2")
                .bind(hash.as_bytes().as_slice())
                .bind(now.unix_timestamp())
                .optional(pool)
                .await
        })?;
        row.map(ChallengeRow::into_challenge).transpose()
    }

    async fn reset_password_with_challenge(
        &self,
        hash: &TokenHash,
        browser: &TokenHash,
        new_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ResetDone>, StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let user: Option<String> = sqlx::query_scalar(
                "DELETE FROM email_challenges WHERE hash = $1 AND expires_at > $2 AND browser_hash = $3 AND purpose = $4 RETURNING user_id",
            )
            .bind(hash.as_bytes().as_slice())
            .bind(now.unix_timestamp())
            .bind(browser.as_bytes().as_slice())
            .bind(ChallengePurpose::PasswordReset.as_str())
            .optional(&mut *tx)
            .await?;
            let Some(user) = user else { return Ok(None) };
            let changed = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1 AND disabled = $4")
                .bind(&user)
                .bind(new_hash)
                .bind(now.unix_timestamp())
                .bind(false)
                .exec(&mut *tx)
                .await?;
            if changed == 0 {
                return Ok(None); // disabled since the mail was sent: nothing changes
            }
            let sessions_ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(&user).exec(&mut *tx).await?;
            let event = record_event!(tx, CREDENTIALS_CHANGED, Some(user.clone()), None::<String>, now.unix_timestamp());
            tx.commit().await.map_err(db)?;
            Ok(Some(ResetDone { user_id: id::<UserId>(&user)?, sessions_ended, event }))
        })
    }

    async fn verify_email_with_challenge(
        &self,
        hash: &TokenHash,
        browser: Option<&TokenHash>,
        signed_in: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<Option<UserId>, StoreError> {
        let browser: Vec<u8> = browser.map(|b| b.as_bytes().to_vec()).unwrap_or_default();
        let signed_in = signed_in.map(|u| u.to_string()).unwrap_or_default();
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let taken: Option<(String, String)> = sqlx::query_as(
                "DELETE FROM email_challenges WHERE hash = $1 AND expires_at > $2 AND purpose = $3 \
                   AND (browser_hash = $4 OR user_id = $5) RETURNING user_id, email",
            )
            .bind(hash.as_bytes().as_slice())
            .bind(now.unix_timestamp())
            .bind(ChallengePurpose::VerifyEmail.as_str())
            .bind(browser.as_slice())
            .bind(&signed_in)
            .optional(&mut *tx)
            .await?;
            let Some((user, email)) = taken else { return Ok(None) };
            let marked = sqlx::query("UPDATE users SET email_verified_at = $2 WHERE id = $1 AND email = $3")
                .bind(&user)
                .bind(now.unix_timestamp())
                .bind(&email)
                .exec(&mut *tx)
                .await?;
            if marked == 0 {
                return Ok(None); // the address changed since the mail was sent
            }
            tx.commit().await.map_err(db)?;
            Ok(Some(id::<UserId>(&user)?))
        })
    }

    async fn take_sign_in_by_link(&self, hash: &TokenHash, browser: &TokenHash, max_failures: u32, now: OffsetDateTime) -> Result<Option<UserId>, StoreError> {
        let user: Option<String> = on_db!(self, write, |pool| {
            sqlx::query_scalar(
                "DELETE FROM email_challenges WHERE hash = $1 AND expires_at > $2 AND purpose = $3 AND browser_hash = $4 AND failures < $5 \
                 RETURNING user_id",
            )
            .bind(hash.as_bytes().as_slice())
            .bind(now.unix_timestamp())
            .bind(ChallengePurpose::SignIn.as_str())
            .bind(browser.as_bytes().as_slice())
            .bind(i64::from(max_failures))
            .optional(pool)
            .await
        })?;
        user.as_deref().map(id::<UserId>).transpose()
    }

    async fn take_sign_in_by_code(&self, browser: &TokenHash, code: &TokenHash, max_failures: u32, now: OffsetDateTime) -> Result<Option<UserId>, StoreError> {
        let user: Option<String> = on_db!(self, write, |pool| {
            sqlx::query_scalar(
                "DELETE FROM email_challenges WHERE browser_hash = $1 AND code_hash = $2 AND expires_at > $3 AND purpose = $4 AND failures < $5 \
                 RETURNING user_id",
            )
            .bind(browser.as_bytes().as_slice())
            .bind(code.as_bytes().as_slice())
            .bind(now.unix_timestamp())
            .bind(ChallengePurpose::SignIn.as_str())
            .bind(i64::from(max_failures))
            .optional(pool)
            .await
        })?;
        user.as_deref().map(id::<UserId>).transpose()
    }

    async fn record_sign_in_code_failure(&self, browser: &TokenHash) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("UPDATE email_challenges SET failures = failures + 1 WHERE browser_hash = $1 AND purpose = $2")
                .bind(browser.as_bytes().as_slice())
                .bind(ChallengePurpose::SignIn.as_str())
                .exec(pool)
                .await
        })?;
        Ok(())
    }

    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM email_challenges WHERE expires_at <= $1").bind(now.unix_timestamp()).exec(pool).await
        })
    }
}

