//! `MfaStore` for [`SqlStore`]: sign-ins waiting for a second factor, session upgrades, TOTP
//! authenticators, recovery codes, passkeys and WebAuthn ceremonies. Same SQL on both
//! backends. Every single-use rule is one conditional statement (`UPDATE … WHERE <unused>`,
//! `DELETE … RETURNING`), so concurrent callers cannot both win.

use crate::backend::{WritePool, on_db};
use crate::query::{Exec, Fetch, commit, take_by_hash};
use crate::rows::{SessionRow, id, session_columns, ts};
use crate::store::SqlStore;
use async_trait::async_trait;
use sqlx::FromRow;
use tessera_core::ids::{PasskeyId, UserId};
use tessera_core::mfa::level::AuthLevel;
use tessera_core::mfa::model::{Ceremony, CeremonyPurpose, FactorSummary, PasskeyRecord, PendingLogin, TotpRecord};
use tessera_core::secret::TokenHash;
use tessera_core::session::Session;
use tessera_core::store::{MfaStore, StoreError};
use time::OffsetDateTime;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn count(n: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| corrupt(what))
}

fn methods(amr: &str) -> Vec<String> {
    amr.split_whitespace().map(str::to_owned).collect()
}

macro_rules! pending_columns {
    () => {
        "user_id, amr, required, upgrade_hash, failures, expires_at"
    };
}

#[derive(FromRow)]
struct PendingRow {
    user_id: String,
    amr: String,
    required: String,
    upgrade_hash: Option<Vec<u8>>,
    failures: i64,
    expires_at: i64,
}

impl PendingRow {
    fn into_pending(self) -> Result<PendingLogin, StoreError> {
        Ok(PendingLogin {
            user_id: UserId::from_uuid(id(&self.user_id)?),
            amr: methods(&self.amr),
            required: AuthLevel::parse(&self.required).ok_or_else(|| corrupt("auth level"))?,
            upgrade: self
                .upgrade_hash
                .as_deref()
                .map(|h| TokenHash::from_bytes(h).ok_or_else(|| corrupt("session hash")))
                .transpose()?,
            failures: count(self.failures, "failure count")?,
            expires_at: ts(self.expires_at)?,
        })
    }
}

#[derive(FromRow)]
struct TotpRow {
    user_id: String,
    sealed_secret: Vec<u8>,
    confirmed_at: Option<i64>,
    last_step: i64,
    created_at: i64,
}

impl TotpRow {
    fn into_record(self) -> Result<TotpRecord, StoreError> {
        Ok(TotpRecord {
            user_id: UserId::from_uuid(id(&self.user_id)?),
            sealed_secret: self.sealed_secret,
            confirmed_at: self.confirmed_at.map(ts).transpose()?,
            last_step: self.last_step,
            created_at: ts(self.created_at)?,
        })
    }
}

macro_rules! passkey_columns {
    () => {
        "id, user_id, credential_id, name, data, created_at, last_used_at"
    };
}

#[derive(FromRow)]
struct PasskeyRow {
    id: String,
    user_id: String,
    credential_id: Vec<u8>,
    name: String,
    data: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl PasskeyRow {
    fn into_record(self) -> Result<PasskeyRecord, StoreError> {
        Ok(PasskeyRecord {
            id: PasskeyId::from_uuid(id(&self.id)?),
            user_id: UserId::from_uuid(id(&self.user_id)?),
            credential_id: self.credential_id,
            name: self.name,
            data: self.data,
            created_at: ts(self.created_at)?,
            last_used_at: self.last_used_at.map(ts).transpose()?,
        })
    }
}

#[derive(FromRow)]
struct CeremonyRow {
    user_id: Option<String>,
    purpose: String,
    state: String,
    expires_at: i64,
}

impl CeremonyRow {
    fn into_ceremony(self) -> Result<Ceremony, StoreError> {
        Ok(Ceremony {
            user_id: self.user_id.as_deref().map(id).transpose()?.map(UserId::from_uuid),
            purpose: CeremonyPurpose::parse(&self.purpose).ok_or_else(|| corrupt("ceremony purpose"))?,
            state: self.state,
            expires_at: ts(self.expires_at)?,
        })
    }
}

#[async_trait]
impl MfaStore for SqlStore {
    async fn create_pending_login(&self, hash: &TokenHash, p: &PendingLogin) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO pending_logins (hash, user_id, amr, required, upgrade_hash, failures, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(hash.as_bytes().as_slice())
            .bind(p.user_id.to_string())
            .bind(p.amr.join(" "))
            .bind(p.required.as_str())
            .bind(p.upgrade.as_ref().map(|h| h.as_bytes().to_vec()))
            .bind(i64::from(p.failures))
            .bind(p.expires_at.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(())
    }

    async fn find_pending_login(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLogin>, StoreError> {
        let row: Option<PendingRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", pending_columns!(), " FROM pending_logins WHERE hash = $1 AND expires_at > $2"))
                .bind(hash.as_bytes().as_slice())
                .bind(now.unix_timestamp())
                .optional(pool)
                .await
        })?;
        row.map(PendingRow::into_pending).transpose()
    }

    async fn take_pending_login(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLogin>, StoreError> {
        let row: Option<PendingRow> = on_db!(self, write, |pool| {
            take_by_hash(concat!("DELETE FROM pending_logins WHERE hash = $1 AND expires_at > $2 RETURNING ", pending_columns!()), hash, now)
                .optional(pool)
                .await
        })?;
        row.map(PendingRow::into_pending).transpose()
    }

    async fn record_pending_failure(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError> {
        let failures: Option<i64> = on_db!(self, write, |pool| {
            sqlx::query_scalar("UPDATE pending_logins SET failures = failures + 1 WHERE hash = $1 RETURNING failures")
                .bind(hash.as_bytes().as_slice())
                .optional(pool)
                .await
        })?;
        failures.map(|n| count(n, "failure count")).transpose()
    }

    async fn upgrade_session(
        &self,
        user_id: UserId,
        old: &TokenHash,
        new: &TokenHash,
        amr: &[String],
        auth_time: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = on_db!(self, write, |pool| {
            sqlx::query_as(concat!(
                "UPDATE sessions SET id_hash = $2, amr = $3, auth_time = $4, last_seen_at = $4 \
                 WHERE id_hash = $1 AND user_id = $5 AND expires_at > $4 RETURNING ",
                session_columns!()
            ))
            .bind(old.as_bytes().as_slice())
            .bind(new.as_bytes().as_slice())
            .bind(amr.join(" "))
            .bind(auth_time.unix_timestamp())
            .bind(user_id.to_string())
            .optional(pool)
            .await
        })?;
        row.map(SessionRow::into_session).transpose()
    }

    async fn find_factor_summary(&self, user_id: UserId) -> Result<FactorSummary, StoreError> {
        let (totp, passkeys, codes): (i64, i64, i64) = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM totp_credentials WHERE user_id = $1 AND confirmed_at IS NOT NULL), \
                   (SELECT COUNT(*) FROM passkeys WHERE user_id = $1), \
                   (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL)",
            )
            .bind(user_id.to_string())
            .one(pool)
            .await
        })?;
        Ok(FactorSummary {
            totp: totp > 0,
            passkeys: count(passkeys, "passkey count")?,
            recovery_codes: count(codes, "recovery code count")?,
        })
    }

    async fn begin_totp_enrolment(&self, user_id: UserId, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError> {
        // A confirmed authenticator is never overwritten: the update applies only while the
        // stored enrolment is unconfirmed, otherwise nothing is written.
        let n = on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO totp_credentials (user_id, sealed_secret, confirmed_at, last_step, created_at) \
                 VALUES ($1, $2, NULL, 0, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET \
                   sealed_secret = excluded.sealed_secret, created_at = excluded.created_at, last_step = 0 \
                 WHERE totp_credentials.confirmed_at IS NULL",
            )
            .bind(user_id.to_string())
            .bind(sealed_secret)
            .bind(now.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(n == 1)
    }

    async fn find_totp(&self, user_id: UserId) -> Result<Option<TotpRecord>, StoreError> {
        let row: Option<TotpRow> = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT user_id, sealed_secret, confirmed_at, last_step, created_at FROM totp_credentials WHERE user_id = $1",
            )
            .bind(user_id.to_string())
            .optional(pool)
            .await
        })?;
        row.map(TotpRow::into_record).transpose()
    }

    async fn confirm_totp(&self, user_id: UserId, step: i64, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE totp_credentials SET confirmed_at = $3, last_step = $2 WHERE user_id = $1 AND confirmed_at IS NULL",
            )
            .bind(user_id.to_string())
            .bind(step)
            .bind(now.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(n == 1)
    }

    async fn use_totp_step(&self, user_id: UserId, step: i64) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query(
                "UPDATE totp_credentials SET last_step = $2 \
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
            )
            .bind(user_id.to_string())
            .bind(step)
            .exec(pool)
            .await
        })?;
        Ok(n == 1)
    }

    async fn delete_totp(&self, user_id: UserId) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM totp_credentials WHERE user_id = $1")
                .bind(user_id.to_string())
                .exec(pool)
                .await
        })?;
        Ok(n == 1)
    }

    async fn delete_user_factors(&self, user_id: UserId) -> Result<u64, StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            // (statement, whether its rows are factors and count in the answer)
            let mut removed = 0;
            for (sql, factors) in [
                ("DELETE FROM totp_credentials WHERE user_id = $1", true),
                ("DELETE FROM passkeys WHERE user_id = $1", true),
                ("DELETE FROM recovery_codes WHERE user_id = $1", false),
                ("DELETE FROM pending_logins WHERE user_id = $1", false),
            ] {
                let n = sqlx::query(sql).bind(user_id.to_string()).exec(&mut *tx).await?;
                if factors {
                    removed += n;
                }
            }
            commit(tx).await?;
            Ok(removed)
        })
    }

    async fn replace_recovery_codes(&self, user_id: UserId, hashes: &[TokenHash], now: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            // Lock the user's row first, so that two replacements at once run one after the
            // other (on PostgreSQL the second's DELETE would otherwise not see the first's
            // new codes, leaving both sets valid). SQLite has a single writer already.
            let n = sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                .bind(user_id.to_string())
                .exec(&mut *tx)
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id.to_string())
                .exec(&mut *tx)
                .await?;
            for h in hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at, used_at) VALUES ($1, $2, $3, NULL)")
                    .bind(user_id.to_string())
                    .bind(h.as_bytes().as_slice())
                    .bind(now.unix_timestamp())
                    .exec(&mut *tx)
                    .await?;
            }
            commit(tx).await
        })
    }

    async fn use_recovery_code(&self, user_id: UserId, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
                .bind(user_id.to_string())
                .bind(hash.as_bytes().as_slice())
                .bind(now.unix_timestamp())
                .exec(pool)
                .await
        })?;
        Ok(n == 1)
    }

    async fn create_passkey(&self, p: &PasskeyRecord) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(concat!("INSERT INTO passkeys (", passkey_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                .bind(p.id.to_string())
                .bind(p.user_id.to_string())
                .bind(p.credential_id.as_slice())
                .bind(&p.name)
                .bind(&p.data)
                .bind(p.created_at.unix_timestamp())
                .bind(p.last_used_at.map(|t| t.unix_timestamp()))
                .exec(pool)
                .await
        })?;
        Ok(())
    }

    async fn list_passkeys(&self, user_id: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        let rows: Vec<PasskeyRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", passkey_columns!(), " FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"))
                .bind(user_id.to_string())
                .all(pool)
                .await
        })?;
        rows.into_iter().map(PasskeyRow::into_record).collect()
    }

    async fn find_passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError> {
        let row: Option<PasskeyRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", passkey_columns!(), " FROM passkeys WHERE credential_id = $1"))
                .bind(credential_id)
                .optional(pool)
                .await
        })?;
        row.map(PasskeyRow::into_record).transpose()
    }

    async fn record_passkey_use(&self, id: PasskeyId, data: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("UPDATE passkeys SET data = $2, last_used_at = $3 WHERE id = $1")
                .bind(id.to_string())
                .bind(data)
                .bind(now.unix_timestamp())
                .exec(pool)
                .await
        })?;
        // Deleted meanwhile: the caller must not treat the sign-in as recorded.
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn rename_passkey(&self, user_id: UserId, id: PasskeyId, name: &str) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2")
                .bind(user_id.to_string())
                .bind(id.to_string())
                .bind(name)
                .exec(pool)
                .await
        })?;
        Ok(n == 1)
    }

    async fn delete_passkey(&self, user_id: UserId, id: PasskeyId) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| {
            sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
                .bind(user_id.to_string())
                .bind(id.to_string())
                .exec(pool)
                .await
        })?;
        Ok(n == 1)
    }

    async fn create_ceremony(&self, hash: &TokenHash, c: &Ceremony) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("INSERT INTO webauthn_ceremonies (hash, user_id, purpose, state, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(hash.as_bytes().as_slice())
                .bind(c.user_id.map(|u| u.to_string()))
                .bind(c.purpose.as_str())
                .bind(&c.state)
                .bind(c.expires_at.unix_timestamp())
                .exec(pool)
                .await
        })?;
        Ok(())
    }

    async fn take_ceremony(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<Ceremony>, StoreError> {
        let row: Option<CeremonyRow> = on_db!(self, write, |pool| {
            take_by_hash(
                "DELETE FROM webauthn_ceremonies WHERE hash = $1 AND expires_at > $2 RETURNING user_id, purpose, state, expires_at",
                hash,
                now,
            )
            .optional(pool)
            .await
        })?;
        row.map(CeremonyRow::into_ceremony).transpose()
    }

    async fn purge_expired_mfa(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut n = 0;
            for sql in [
                "DELETE FROM pending_logins WHERE expires_at <= $1",
                "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1",
            ] {
                n += sqlx::query(sql).bind(now.unix_timestamp()).exec(&mut *tx).await?;
            }
            commit(tx).await?;
            Ok(n)
        })
    }
}
