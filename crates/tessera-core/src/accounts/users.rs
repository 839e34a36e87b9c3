//! Users: creating and importing them, sign-up, the first-administrator setup link, and the
//! administrator's directory (find, list, update, disable, delete).

use super::{Accounts, StartedSession, conflict};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::UserId;
use crate::password::is_supported_hash;
use crate::secret::{Password, SecretToken};
use crate::session::RequestContext;
use crate::user::{DisplayName, Email, NewUser, ROLE_ADMIN, User, UserUpdate, Username, canonical};
use serde_json::json;
use time::Duration;

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

/// How long the first-administrator link stays valid.
pub const SETUP_LINK_LIFETIME: Duration = Duration::hours(24);

impl Accounts {
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
}
