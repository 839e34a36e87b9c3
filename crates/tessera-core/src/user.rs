//! Users and their identifying names. New usernames must meet RFC 8265's PRECIS username
//! profiles (no spaces, controls, invisible, bidi-override or compatibility characters) and
//! UTS #39's "highly restrictive" script mixing, and may not be a non-ASCII look-alike of an
//! ASCII name. Usernames and e-mail addresses are Unicode NFKC normalised; their canonical
//! (case-folded) forms are what uniqueness and sign-in look-ups use.

use crate::CoreError;
use crate::ids::UserId;
use serde::Serialize;
use time::OffsetDateTime;
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::{UsernameCaseMapped, UsernameCasePreserved};
use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;
use unicode_security::{RestrictionLevel, RestrictionLevelDetection};

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

/// A username: 1–64 characters, valid under RFC 8265's UsernameCasePreserved and
/// UsernameCaseMapped profiles (width-mapped, NFC, PRECIS IdentifierClass, the Bidi Rule), no
/// `@` (so it can never be mistaken for an e-mail address on the login form), letters of one
/// script (or Latin with Han/Kana/Hangul: UTS #39 "highly restrictive"), and not a non-ASCII
/// spelling of an ASCII-looking name (UTS #39 confusable skeleton).
///
/// Only new names are checked: names read from the store are taken as they are
/// ([`Username::from_store`]), so accounts created under older rules can still sign in
/// (their look-up key, [`canonical`], is unchanged; for a valid name it equals the
/// UsernameCaseMapped form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Validates and normalises a new username.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(CoreError::Invalid("Enter a username.".into()));
        }
        if trimmed.chars().count() > 256 {
            return Err(CoreError::Invalid("A username has at most 64 characters.".into()));
        }
        let refused = || {
            CoreError::Invalid(
                "A username can use letters, digits and punctuation, but not spaces, '@', or invisible, \
                 formatting or decorative characters."
                    .into(),
            )
        };
        let s = UsernameCasePreserved::enforce(trimmed).map_err(|_| refused())?.into_owned();
        UsernameCaseMapped::enforce(s.as_str()).map_err(|_| refused())?;
        if s.contains('@') || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refused());
        }
        if s.chars().count() > 64 {
            return Err(CoreError::Invalid("A username has at most 64 characters.".into()));
        }
        if looks_like_another_script(&s) {
            return Err(CoreError::Invalid(
                "A username must be written in one script, and not with letters that only look like Latin ones.".into(),
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

/// Whether a (PRECIS-valid) name mixes scripts beyond UTS #39's "highly restrictive" level,
/// or is written in non-ASCII letters that together look like an ASCII name ("аpple" in
/// Cyrillic): its confusable skeleton is pure ASCII.
fn looks_like_another_script(name: &str) -> bool {
    if name.is_ascii() {
        return false;
    }
    // ASCII punctuation (".", "-", "_") is script-neutral; UTS #39 would not allow some of it
    // in identifiers at all.
    let letters: String = name.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    if !letters.as_str().check_restriction_level(RestrictionLevel::HighlyRestrictive) {
        return true;
    }
    skeleton(&name.to_lowercase()).all(|c| c.is_ascii())
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
    /// When the current address was proved by a mailed link (`None`: not verified). A new
    /// address is unverified until its own link is used.
    #[serde(with = "time::serde::rfc3339::option")]
    pub email_verified_at: Option<OffsetDateTime>,
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
    /// Whether the user has an address and it was verified.
    pub fn email_verified(&self) -> bool {
        self.email.is_some() && self.email_verified_at.is_some()
    }

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
    fn usernames_follow_precis_and_refuse_look_alikes() {
        for ok in ["alice", "Alice", "bob.smith", "o'neil", "jean-luc", "user_42", "josé", "Σωκράτης", "иван", "田中",
            "tanaka田中", "김민준", "x", "fußball"] {
            assert!(Username::parse(ok).is_ok(), "{ok} is a fine username");
        }
        for bad in [
            "\u{0430}lice",       // Cyrillic а + Latin "lice"
            "alic\u{0435}",       // Latin + Cyrillic е
            "\u{0430}\u{0440}\u{0440}\u{04cf}\u{0435}", // all-Cyrillic "аррӏе": looks like "apple"
            "\u{0441}\u{043e}\u{0440}", // all-Cyrillic "сор" looks like "cop"
            "ali\u{200b}ce",      // zero-width space
            "ali\u{200d}ce",      // zero-width joiner
            "ali\u{00ad}ce",      // soft hyphen
            "\u{202e}ecila",      // right-to-left override
            "alice\u{2066}",      // bidi isolate
            "\u{fe0f}alice",      // variation selector
            "alice\u{2122}",      // ™ (a symbol, and compatibility)
            "\u{2460}alice",      // circled digit (compatibility)
            "alice\u{1f600}",     // emoji
            "a b", "a@b", "\u{0000}a",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn the_lookup_key_of_a_valid_name_is_its_precis_case_mapped_form() {
        for name in ["Alice", "\u{FF21}lice", "ÉLODIE", "Иван", "Straße", "田中Taro"] {
            let u = Username::parse(name).unwrap();
            let mapped = UsernameCaseMapped::enforce(u.as_str()).unwrap();
            assert_eq!(u.canonical(), mapped, "{name}");
        }
        // Existing names that would no longer be accepted still have a stable key.
        let old = Username::from_store("ali\u{200b}ce".into());
        assert_eq!(old.canonical(), canonical("ALI\u{200b}CE"));
        assert_ne!(old.canonical(), canonical("alice"));
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
