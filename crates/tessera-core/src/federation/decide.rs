//! What an upstream sign-in does to accounts: sign in the linked user, link to the local
//! account holding the address (only when upstream says it is verified and the provider is
//! trusted for that), ask the user to prove that account, create a user just in time, or
//! refuse. Identities are keyed by (issuer, subject), never by the address alone.

use crate::ids::UserId;
use crate::mfa::level::{AMR_FED, AMR_HWK, AMR_MFA, AMR_OTP, AMR_PWD, AMR_SWK};

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The identity is linked to this user: sign in.
    SignIn(UserId),
    /// Link to this user (verified address, trusted provider), audited, then sign in.
    LinkVerified(UserId),
    /// This user holds the address: they must prove the account before the link is made.
    ProveLocal(UserId),
    /// Create a user just in time.
    Create,
    /// No account, and the provider does not create them.
    Refuse,
}

/// Decides. `holder` is the local user holding the upstream address (if upstream gave one).
pub fn decide(linked: Option<UserId>, holder: Option<UserId>, email_verified: bool, trust_email: bool, jit: bool) -> Decision {
    match (linked, holder) {
        (Some(user), _) => Decision::SignIn(user),
        (None, Some(user)) if email_verified && trust_email => Decision::LinkVerified(user),
        (None, Some(user)) => Decision::ProveLocal(user),
        (None, None) if jit => Decision::Create,
        (None, None) => Decision::Refuse,
    }
}

/// The `amr` of an upstream sign-in: the upstream's RFC 8176 values when a verified ID token
/// carries them (only values this server understands, `fed` added), else `["fed"]`.
pub fn upstream_amr(id_token_amr: Option<&[String]>) -> Vec<String> {
    const KNOWN: [&str; 5] = [AMR_PWD, AMR_OTP, AMR_HWK, AMR_SWK, AMR_MFA];
    let mut amr: Vec<String> = id_token_amr
        .unwrap_or(&[])
        .iter()
        .filter(|v| KNOWN.contains(&v.as_str()))
        .cloned()
        .collect();
    amr.dedup();
    amr.insert(0, AMR_FED.to_owned());
    amr
}

/// A username derived from upstream hints: lower case, `[a-z0-9._-]`, at most 32
/// characters, `user` when nothing usable is left.
pub fn username_base(hints: &[Option<&str>]) -> String {
    for h in hints.iter().flatten() {
        let local = h.split('@').next().unwrap_or("");
        let cleaned: String = local
            .chars()
            .filter_map(|c| {
                let c = c.to_ascii_lowercase();
                (c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).then_some(c)
            })
            .take(32)
            .collect();
        let cleaned = cleaned.trim_matches(|c| matches!(c, '.' | '_' | '-')).to_owned();
        if cleaned.len() >= 2 {
            return cleaned;
        }
    }
    "user".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_identity_signs_in_its_user_whatever_the_address() {
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(decide(Some(a), Some(b), true, true, true), Decision::SignIn(a));
    }

    #[test]
    fn verified_address_links_only_with_a_trusted_provider() {
        let u = UserId::new();
        assert_eq!(decide(None, Some(u), true, true, true), Decision::LinkVerified(u));
        assert_eq!(decide(None, Some(u), true, false, true), Decision::ProveLocal(u));
        assert_eq!(decide(None, Some(u), false, true, true), Decision::ProveLocal(u));
        assert_eq!(decide(None, Some(u), false, false, false), Decision::ProveLocal(u));
    }

    #[test]
    fn unknown_identities_are_created_only_when_allowed() {
        assert_eq!(decide(None, None, true, true, true), Decision::Create);
        assert_eq!(decide(None, None, true, true, false), Decision::Refuse);
    }

    #[test]
    fn amr_is_fed_unless_upstream_says_more() {
        assert_eq!(upstream_amr(None), vec!["fed"]);
        let up = vec!["pwd".to_owned(), "mfa".to_owned(), "weird".to_owned()];
        assert_eq!(upstream_amr(Some(&up)), vec!["fed", "pwd", "mfa"]);
    }

    #[test]
    fn usernames_are_derived_safely() {
        assert_eq!(username_base(&[Some("Alice.Smith"), Some("x@y.z")]), "alice.smith");
        assert_eq!(username_base(&[None, Some("bob+tag@example.com")]), "bobtag");
        assert_eq!(username_base(&[Some("<script>"), None]), "script");
        assert_eq!(username_base(&[Some("ü"), None]), "user");
    }
}
