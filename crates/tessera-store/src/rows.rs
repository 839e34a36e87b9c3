//! Row shapes shared by both backends, and their conversion into domain types.

use sqlx::FromRow;
use tessera_core::audit::AuditEvent;
use tessera_core::ids::{AuditEventId, SessionHandle, UserId};
use tessera_core::session::Session;
use tessera_core::store::StoreError;
use tessera_core::user::{DisplayName, Email, User, Username};
use time::OffsetDateTime;

pub(crate) fn ts(unix: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| StoreError::Corrupt(format!("timestamp {unix}: {e}")))
}

pub(crate) fn id<T: std::str::FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("id {s:?}")))
}

macro_rules! user_columns {
    () => {
        "id, username, email, display_name, password_hash, roles, disabled, created_at, updated_at, email_verified_at"
    };
}
pub(crate) use user_columns;

#[derive(FromRow)]
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub roles: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub email_verified_at: Option<i64>,
}

impl UserRow {
    pub fn into_user(self) -> Result<(User, Option<String>), StoreError> {
        let user = User {
            id: UserId::from_uuid(id(&self.id)?),
            username: Username::from_store(self.username),
            email: self.email.map(Email::from_store),
            email_verified_at: self.email_verified_at.map(ts).transpose()?,
            display_name: self.display_name.map(DisplayName::from_store),
            disabled: self.disabled,
            roles: self.roles.split_whitespace().map(str::to_owned).collect(),
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        };
        Ok((user, self.password_hash))
    }
}

macro_rules! session_columns {
    () => {
        "handle, user_id, created_at, last_seen_at, expires_at, auth_time, ip, user_agent, amr"
    };
}
pub(crate) use session_columns;

#[derive(FromRow)]
pub(crate) struct SessionRow {
    pub handle: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub auth_time: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: String,
}

impl SessionRow {
    pub fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            handle: SessionHandle::from_uuid(id(&self.handle)?),
            user_id: UserId::from_uuid(id(&self.user_id)?),
            created_at: ts(self.created_at)?,
            last_seen_at: ts(self.last_seen_at)?,
            expires_at: ts(self.expires_at)?,
            auth_time: ts(self.auth_time)?,
            ip: self.ip,
            user_agent: self.user_agent,
            amr: self.amr.split_whitespace().map(str::to_owned).collect(),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct AuditRow {
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: String,
}

impl AuditRow {
    pub fn into_event(self) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            id: AuditEventId::from_uuid(id(&self.id)?),
            at: ts(self.at)?,
            kind: self.kind,
            user_id: self.user_id.as_deref().map(id).transpose()?.map(UserId::from_uuid),
            ip: self.ip,
            user_agent: self.user_agent,
            detail: serde_json::from_str(&self.detail).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }
}
