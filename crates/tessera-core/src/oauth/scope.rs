//! Scopes: a set of space-separated tokens (RFC 6749 §3.3), kept sorted and unique.

use std::collections::BTreeSet;

/// Scopes defined by OpenID Connect and understood by Tessera itself.
pub const STANDARD_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The scope of admin API tokens (see [`super::admin_access`]).
pub const ADMIN_SCOPE: &str = "tessera:admin";

/// A set of scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a space-separated scope string; refuses characters outside RFC 6749's NQCHAR.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for t in s.split(' ').filter(|t| !t.is_empty()) {
            if t.len() > 128 || !t.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
                return Err(format!("invalid scope token {t:?}"));
            }
            set.insert(t.to_owned());
        }
        if set.len() > 64 {
            return Err("too many scopes".into());
        }
        Ok(Self(set))
    }

    /// From a list.
    pub fn from_list<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        Self(items.into_iter().map(Into::into).collect())
    }

    /// Whether the set holds `s`.
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    /// Whether every scope here is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Scopes here that are not in `allowed`.
    pub fn not_in(&self, allowed: &Scopes) -> Vec<String> {
        self.0.difference(&allowed.0).cloned().collect()
    }

    /// Union.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_sort_and_refuse_bad_characters() {
        let s = Scopes::parse("profile openid  openid").unwrap();
        assert_eq!(s.to_string(), "openid profile");
        assert!(Scopes::parse("a\"b").is_err());
        assert!(Scopes::parse("a\\b").is_err());
        assert!(Scopes::parse("ü").is_err());
        assert!(Scopes::from_list(["openid"]).is_subset(&s));
    }
}
