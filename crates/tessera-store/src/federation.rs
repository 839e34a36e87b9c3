//! `FederationStore` for [`SqlStore`]: upstream providers, linked identities, sign-ins in
//! flight and pending links (each taken once with `DELETE … RETURNING`, the sign-in only by
//! the browser whose cookie hash it was stored with), and the unlink that keeps a way in.

use crate::backend::{WritePool, on_db};
use crate::query::{Exec, Fetch, take_by_hash};
use crate::rows::{UserRow, id, ts, user_columns};
use crate::store::SqlStore;
use async_trait::async_trait;
use sqlx::FromRow;
use tessera_core::federation::model::{
    FederatedIdentity, IdentityId, PendingLink, ProviderId, ProviderKind, ProviderName, ProviderRecord, SignInMethods, UpstreamLogin, Url,
};
use tessera_core::federation::store::FederationStore;
use tessera_core::ids::UserId;
use tessera_core::secret::TokenHash;
use tessera_core::store::{Store, StoreError};
use tessera_core::user::{NewUser, User};
use time::OffsetDateTime;

macro_rules! provider_columns {
    () => {
        "id, name, kind, issuer, authorization_endpoint, token_endpoint, userinfo_endpoint, emails_endpoint, \
         client_id, client_secret_sealed, scopes, domains, jit, trust_email, vault_tokens, enabled, created_at"
    };
}

#[derive(FromRow)]
struct ProviderRow {
    id: String,
    name: String,
    kind: String,
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    emails_endpoint: Option<String>,
    client_id: String,
    client_secret_sealed: Vec<u8>,
    scopes: String,
    domains: String,
    jit: bool,
    trust_email: bool,
    vault_tokens: bool,
    enabled: bool,
    created_at: i64,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("upstream provider {what}"))
}

fn url(s: Option<String>, what: &str) -> Result<Url, StoreError> {
    s.as_deref().and_then(|u| Url::parse(u).ok()).ok_or_else(|| corrupt(what))
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

impl ProviderRow {
    fn into_record(self) -> Result<ProviderRecord, StoreError> {
        let kind = match self.kind.as_str() {
            "oidc" => ProviderKind::Oidc { issuer: self.issuer.ok_or_else(|| corrupt("issuer"))? },
            "oauth2" => ProviderKind::OAuth2 {
                authorization_endpoint: url(self.authorization_endpoint, "authorization endpoint")?,
                token_endpoint: url(self.token_endpoint, "token endpoint")?,
                userinfo_endpoint: url(self.userinfo_endpoint, "userinfo endpoint")?,
                emails_endpoint: self.emails_endpoint.map(|u| url(Some(u), "emails endpoint")).transpose()?,
            },
            _ => return Err(corrupt("kind")),
        };
        Ok(ProviderRecord {
            id: ProviderId::from_uuid(id(&self.id)?),
            name: ProviderName::parse(&self.name).map_err(|_| corrupt("name"))?,
            kind,
            client_id: self.client_id,
            client_secret_sealed: self.client_secret_sealed,
            scopes: words(&self.scopes),
            domains: words(&self.domains),
            jit: self.jit,
            trust_email: self.trust_email,
            vault_tokens: self.vault_tokens,
            enabled: self.enabled,
            created_at: ts(self.created_at)?,
        })
    }
}

macro_rules! identity_columns {
    () => {
        "i.id, i.provider_id, p.name AS provider_name, i.issuer, i.subject, i.user_id, i.email, i.created_at, i.last_used_at \
         FROM federated_identities i JOIN upstream_providers p ON p.id = i.provider_id"
    };
}

#[derive(FromRow)]
struct IdentityRow {
    id: String,
    provider_id: String,
    provider_name: String,
    issuer: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    created_at: i64,
    last_used_at: i64,
}

impl IdentityRow {
    fn into_identity(self) -> Result<FederatedIdentity, StoreError> {
        Ok(FederatedIdentity {
            id: IdentityId::from_uuid(id(&self.id)?),
            provider_id: ProviderId::from_uuid(id(&self.provider_id)?),
            provider_name: self.provider_name,
            issuer: self.issuer,
            subject: self.subject,
            user_id: UserId::from_uuid(id(&self.user_id)?),
            email: self.email,
            created_at: ts(self.created_at)?,
            last_used_at: ts(self.last_used_at)?,
        })
    }
}

#[derive(FromRow)]
struct LoginRow {
    state_hash: Vec<u8>,
    browser_hash: Vec<u8>,
    provider_id: String,
    nonce_hash: Vec<u8>,
    return_to: String,
    issuer: Option<String>,
    expires_at: i64,
}

fn hash(b: &[u8], what: &str) -> Result<TokenHash, StoreError> {
    TokenHash::from_bytes(b).ok_or_else(|| StoreError::Corrupt(format!("{what} hash")))
}

impl LoginRow {
    fn into_login(self) -> Result<UpstreamLogin, StoreError> {
        Ok(UpstreamLogin {
            state_hash: hash(&self.state_hash, "state")?,
            browser_hash: hash(&self.browser_hash, "browser")?,
            provider_id: ProviderId::from_uuid(id(&self.provider_id)?),
            nonce_hash: hash(&self.nonce_hash, "nonce")?,
            return_to: self.return_to,
            issuer: self.issuer,
            expires_at: ts(self.expires_at)?,
        })
    }
}

#[derive(FromRow)]
struct LinkRow {
    hash: Vec<u8>,
    provider_id: String,
    issuer: String,
    subject: String,
    user_id: String,
    email: Option<String>,
    amr: String,
    return_to: String,
    expires_at: i64,
}

impl LinkRow {
    fn into_link(self) -> Result<PendingLink, StoreError> {
        Ok(PendingLink {
            hash: hash(&self.hash, "pending link")?,
            provider_id: ProviderId::from_uuid(id(&self.provider_id)?),
            issuer: self.issuer,
            subject: self.subject,
            user_id: UserId::from_uuid(id(&self.user_id)?),
            email: self.email,
            amr: words(&self.amr),
            return_to: self.return_to,
            expires_at: ts(self.expires_at)?,
        })
    }
}

macro_rules! link_columns {
    () => {
        "hash, provider_id, issuer, subject, user_id, email, amr, return_to, expires_at"
    };
}

#[async_trait]
impl FederationStore for SqlStore {
    async fn create_upstream_provider(&self, p: &ProviderRecord) -> Result<(), StoreError> {
        let (issuer, auth, token, userinfo, emails) = match &p.kind {
            ProviderKind::Oidc { issuer } => (Some(issuer.clone()), None, None, None, None),
            ProviderKind::OAuth2 { authorization_endpoint, token_endpoint, userinfo_endpoint, emails_endpoint } => (
                None,
                Some(authorization_endpoint.to_string()),
                Some(token_endpoint.to_string()),
                Some(userinfo_endpoint.to_string()),
                emails_endpoint.as_ref().map(Url::to_string),
            ),
        };
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO upstream_providers (id, name, kind, issuer, authorization_endpoint, token_endpoint, userinfo_endpoint, \
                 emails_endpoint, client_id, client_secret_sealed, scopes, domains, jit, trust_email, vault_tokens, enabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(p.id.to_string())
            .bind(p.name.as_str())
            .bind(p.kind.as_str())
            .bind(issuer.as_deref())
            .bind(auth.as_deref())
            .bind(token.as_deref())
            .bind(userinfo.as_deref())
            .bind(emails.as_deref())
            .bind(&p.client_id)
            .bind(p.client_secret_sealed.as_slice())
            .bind(p.scopes.join(" "))
            .bind(p.domains.join(" "))
            .bind(p.jit)
            .bind(p.trust_email)
            .bind(p.vault_tokens)
            .bind(p.enabled)
            .bind(p.created_at.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(())
    }

    async fn list_upstream_providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        let rows: Vec<ProviderRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", provider_columns!(), " FROM upstream_providers ORDER BY name")).all(pool).await
        })?;
        rows.into_iter().map(ProviderRow::into_record).collect()
    }

    async fn find_upstream_provider(&self, name: &str) -> Result<Option<ProviderRecord>, StoreError> {
        let row: Option<ProviderRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", provider_columns!(), " FROM upstream_providers WHERE name = $1")).bind(name).optional(pool).await
        })?;
        row.map(ProviderRow::into_record).transpose()
    }

    async fn delete_upstream_provider(&self, name: &str) -> Result<bool, StoreError> {
        let n = on_db!(self, write, |pool| sqlx::query("DELETE FROM upstream_providers WHERE name = $1").bind(name).exec(pool).await)?;
        Ok(n > 0)
    }

    async fn create_upstream_login(&self, l: &UpstreamLogin) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO upstream_logins (state_hash, browser_hash, provider_id, nonce_hash, return_to, issuer, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(l.state_hash.as_bytes().as_slice())
            .bind(l.browser_hash.as_bytes().as_slice())
            .bind(l.provider_id.to_string())
            .bind(l.nonce_hash.as_bytes().as_slice())
            .bind(&l.return_to)
            .bind(l.issuer.as_deref())
            .bind(l.expires_at.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(())
    }

    async fn take_upstream_login(&self, state_hash: &TokenHash, browser_hash: &TokenHash, now: OffsetDateTime) -> Result<Option<UpstreamLogin>, StoreError> {
        let row: Option<LoginRow> = on_db!(self, write, |pool| {
            take_by_hash(
                "DELETE FROM upstream_logins WHERE state_hash = $1 AND expires_at > $2 AND browser_hash = $3 \
                 RETURNING state_hash, browser_hash, provider_id, nonce_hash, return_to, issuer, expires_at",
                state_hash,
                now,
            )
            .bind(browser_hash.as_bytes().to_vec())
            .optional(pool)
            .await
        })?;
        row.map(LoginRow::into_login).transpose()
    }

    async fn find_federated_identity(&self, issuer: &str, subject: &str) -> Result<Option<FederatedIdentity>, StoreError> {
        let row: Option<IdentityRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", identity_columns!(), " WHERE i.issuer = $1 AND i.subject = $2"))
                .bind(issuer)
                .bind(subject)
                .optional(pool)
                .await
        })?;
        row.map(IdentityRow::into_identity).transpose()
    }

    async fn create_federated_identity(&self, i: &FederatedIdentity) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO federated_identities (id, provider_id, issuer, subject, user_id, email, created_at, last_used_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(i.id.to_string())
            .bind(i.provider_id.to_string())
            .bind(&i.issuer)
            .bind(&i.subject)
            .bind(i.user_id.to_string())
            .bind(i.email.as_deref())
            .bind(i.created_at.unix_timestamp())
            .bind(i.last_used_at.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(())
    }

    async fn touch_federated_identity(&self, id: IdentityId, email: Option<&str>, now: OffsetDateTime) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query("UPDATE federated_identities SET last_used_at = $2, email = COALESCE($3, email) WHERE id = $1")
                .bind(id.to_string())
                .bind(now.unix_timestamp())
                .bind(email)
                .exec(pool)
                .await
        })?;
        Ok(())
    }

    async fn list_user_identities(&self, user_id: UserId) -> Result<Vec<FederatedIdentity>, StoreError> {
        let rows: Vec<IdentityRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", identity_columns!(), " WHERE i.user_id = $1 ORDER BY i.created_at, i.id"))
                .bind(user_id.to_string())
                .all(pool)
                .await
        })?;
        rows.into_iter().map(IdentityRow::into_identity).collect()
    }

    async fn delete_user_identity_keeping_a_way_in(&self, user_id: UserId, id: IdentityId) -> Result<bool, StoreError> {
        // The row goes only while another way in exists (one conditional DELETE), after the
        // user's row is locked, so two concurrent unlinks of a user's last two identities
        // cannot both succeed.
        let n = on_db!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            // A no-op update locks the user's row (PostgreSQL; SQLite has one writer), so
            // concurrent unlinks of the same user run one after the other.
            let locked = sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                .bind(user_id.to_string())
                .exec(&mut *tx)
                .await?;
            if locked == 0 {
                return Ok(0);
            }
            let n = sqlx::query(
                "DELETE FROM federated_identities WHERE id = $1 AND user_id = $2 AND ( \
                   EXISTS (SELECT 1 FROM users WHERE id = $2 AND password_hash IS NOT NULL) \
                   OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = $2) \
                   OR EXISTS (SELECT 1 FROM federated_identities o WHERE o.user_id = $2 AND o.id <> $1))",
            )
            .bind(id.to_string())
            .bind(user_id.to_string())
            .exec(&mut *tx)
            .await?;
            crate::query::commit(tx).await?;
            Ok::<u64, StoreError>(n)
        })?;
        Ok(n > 0)
    }

    async fn find_sign_in_methods(&self, user_id: UserId) -> Result<SignInMethods, StoreError> {
        let row: Option<(bool, i64, i64)> = on_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT password_hash IS NOT NULL, \
                 (SELECT COUNT(*) FROM passkeys WHERE user_id = $1), \
                 (SELECT COUNT(*) FROM federated_identities WHERE user_id = $1) FROM users WHERE id = $1",
            )
            .bind(user_id.to_string())
            .optional(pool)
            .await
        })?;
        let (password, passkeys, identities) = row.ok_or(StoreError::NotFound)?;
        Ok(SignInMethods {
            password,
            passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
            identities: u32::try_from(identities).unwrap_or(u32::MAX),
        })
    }

    async fn create_pending_link(&self, l: &PendingLink) -> Result<(), StoreError> {
        on_db!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO upstream_pending_links (hash, provider_id, issuer, subject, user_id, email, amr, return_to, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(l.hash.as_bytes().as_slice())
            .bind(l.provider_id.to_string())
            .bind(&l.issuer)
            .bind(&l.subject)
            .bind(l.user_id.to_string())
            .bind(l.email.as_deref())
            .bind(l.amr.join(" "))
            .bind(&l.return_to)
            .bind(l.expires_at.unix_timestamp())
            .exec(pool)
            .await
        })?;
        Ok(())
    }

    async fn find_pending_link(&self, h: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLink>, StoreError> {
        let row: Option<LinkRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", link_columns!(), " FROM upstream_pending_links WHERE hash = $1 AND expires_at > $2"))
                .bind(h.as_bytes().to_vec())
                .bind(now.unix_timestamp())
                .optional(pool)
                .await
        })?;
        row.map(LinkRow::into_link).transpose()
    }

    async fn take_pending_link(&self, h: &TokenHash, now: OffsetDateTime) -> Result<Option<PendingLink>, StoreError> {
        let row: Option<LinkRow> = on_db!(self, write, |pool| {
            take_by_hash(
                "DELETE FROM upstream_pending_links WHERE hash = $1 AND expires_at > $2 \
                 RETURNING hash, provider_id, issuer, subject, user_id, email, amr, return_to, expires_at",
                h,
                now,
            )
            .optional(pool)
            .await
        })?;
        row.map(LinkRow::into_link).transpose()
    }

    async fn find_user_by_email(&self, canonical_email: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_db!(self, read, |pool| {
            sqlx::query_as(concat!("SELECT ", user_columns!(), " FROM users WHERE email_canonical = $1"))
                .bind(canonical_email)
                .optional(pool)
                .await
        })?;
        row.map(|r| r.into_user().map(|(u, _)| u)).transpose()
    }

    async fn find_federation_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Store::find_user_by_id(self, id).await
    }

    async fn create_federated_user(&self, user: &NewUser, email_verified: bool, now: OffsetDateTime) -> Result<User, StoreError> {
        let mut created = Store::create_user(self, user, now).await?;
        if email_verified && created.email.is_some() {
            // A second statement: should it fail, the user exists with an unconfirmed
            // address, which is the safe side (mail verification can still confirm it).
            let id = created.id.to_string();
            on_db!(self, write, |pool| {
                sqlx::query("UPDATE users SET email_verified_at = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(now.unix_timestamp())
                    .exec(pool)
                    .await
            })?;
            created.email_verified_at = Some(now);
        }
        Ok(created)
    }

    async fn purge_expired_upstream(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        on_db!(self, write, |pool| {
            let a = sqlx::query("DELETE FROM upstream_logins WHERE expires_at <= $1").bind(now.unix_timestamp()).exec(pool).await?;
            let b = sqlx::query("DELETE FROM upstream_pending_links WHERE expires_at <= $1").bind(now.unix_timestamp()).exec(pool).await?;
            Ok::<u64, StoreError>(a + b)
        })
    }
}
