//! Serializable views of core records, shared by the admin API and the CLI (`tessera user
//! …`), so both show the same fields.

use serde::Serialize;
use tessera_core::ids::UserId;
use tessera_core::user::{DisplayName, Email, User, Username};
use time::format_description::well_known::Rfc3339;

/// A user as the admin API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// The user's id.
    pub id: UserId,
    /// The username.
    pub username: Username,
    /// The e-mail address, if any.
    pub email: Option<Email>,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// The display name, if any.
    pub name: Option<DisplayName>,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Roles, e.g. `admin`.
    pub roles: Vec<String>,
    /// When the account was created (RFC 3339).
    pub created_at: String,
    /// When the account was last changed (RFC 3339).
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified(),
            name: u.display_name.clone(),
            disabled: u.disabled,
            roles: u.roles.clone(),
            created_at: u.created_at.format(&Rfc3339).unwrap_or_default(),
            updated_at: u.updated_at.format(&Rfc3339).unwrap_or_default(),
        }
    }
}
