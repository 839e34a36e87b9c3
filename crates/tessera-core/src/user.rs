//! Users and their identifying names. Usernames and e-mail addresses are Unicode NFKC
//! normalised; their canonical (case-folded) forms are what uniqueness is enforced on.

use crate::CoreError;
use crate::ids::UserId;
use serde::Serialize;
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;

/// NFKC normalisation, the form every name and password is kept in.
pub fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// Case-insensitive canonical form: NFKC, lower-cased, NFKC again (an approximation of
/// NFKC_Casefold that is stable for the scripts usernames are written in).
pub fn canonical(s: &str) -> String {
    let lowered: String = s.nfkc().collect::<String>().to_lowercase();
    lowered.nfkc().collect()
}

/// A username: 1–64 characters after NFKC, no whitespace, no control characters, no `@`
/// (so it can never be mistaken for an e-mail address on the login form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Validates and normalises a username.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let s = nfkc(raw.trim());
        let n = s.chars().count();
        if n == 0 {
            return Err(CoreError::Invalid("Enter a username.".into()));
        }
        if n > 64 {
            return Err(CoreError::Invalid("A username has at most 64 characters.".into()));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@') {
            return Err(CoreError::Invalid(
                "A username cannot contain spaces, control characters or '@'.".into(),
            ));
        }
        Ok(Self(s))
    }
    /// Rebuilds a username read from the store.
    pub fn from_store(s: String) -> Self {
        Self(s)
    }
    /// The username as entered (NFKC).
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The case-insensitive form uniqueness is enforced on.
    pub fn canonical(&self) -> String {
        canonical(&self.0)
    }
}

/// An e-mail address: NFKC, at most 254 bytes, one `@` with something on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Validates and normalises an e-mail address.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let s = nfkc(raw.trim());
        let invalid = || CoreError::Invalid("Enter a valid e-mail address.".into());
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') || !domain.contains('.')
            || domain.starts_with('.') || domain.ends_with('.')
        {
            return Err(invalid());
        }
        Ok(Self(s))
    }
    /// Rebuilds an address read from the store.
    pub fn from_store(s: String) -> Self {
        Self(s)
    }
    /// The address as entered (NFKC).
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The case-insensitive form uniqueness is enforced on.
    pub fn canonical(&self) -> String {
        canonical(&self.0)
    }
}

/// A display name: up to 128 characters, NFKC, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates a display name; an empty one is `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, CoreError> {
        let s = nfkc(raw.trim());
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > 128 || s.chars().any(char::is_control) {
            return Err(CoreError::Invalid(
                "A name has at most 128 characters and no control characters.".into(),
            ));
        }
        Ok(Some(Self(s)))
    }
    /// Rebuilds a name read from the store.
    pub fn from_store(s: String) -> Self {
        Self(s)
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user as stored. The password hash is kept apart (see [`crate::store::Store`]).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Username as entered.
    pub username: Username,
    /// E-mail address, if any.
    pub email: Option<Email>,
    /// Display name, if any.
    pub display_name: Option<DisplayName>,
    /// Disabled users cannot sign in and have no sessions.
    pub disabled: bool,
    /// Roles granted to the user (e.g. `admin`).
    pub roles: Vec<String>,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change to the user's record.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl User {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The administrator role.
pub const ROLE_ADMIN: &str = "admin";

/// A user to be created.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Username.
    pub username: Username,
    /// E-mail address.
    pub email: Option<Email>,
    /// Display name.
    pub display_name: Option<DisplayName>,
    /// PHC string (or imported legacy hash), if the user has a password.
    pub password_hash: Option<String>,
    /// Roles to grant.
    pub roles: Vec<String>,
}

/// Changes to a user's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// New username.
    pub username: Option<Username>,
    /// New e-mail (`Some(None)` removes it).
    pub email: Option<Option<Email>>,
    /// New display name (`Some(None)` removes it).
    pub display_name: Option<Option<DisplayName>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_nfkc_and_case_insensitive() {
        // U+FF21 FULLWIDTH LATIN CAPITAL LETTER A normalises to "A".
        let a = Username::parse("\u{FF21}lice").unwrap();
        assert_eq!(a.as_str(), "Alice");
        assert_eq!(a.canonical(), Username::parse("ALICE").unwrap().canonical());
    }

    #[test]
    fn usernames_refuse_spaces_at_and_overlong() {
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("a@b").is_err());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn emails_are_checked_and_folded() {
        let e = Email::parse(" Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Alice@Example.COM");
        assert_eq!(e.canonical(), "alice@example.com");
        assert!(Email::parse("nope").is_err());
        assert!(Email::parse("a@b").is_err());
        assert!(Email::parse("@b.c").is_err());
    }
}
