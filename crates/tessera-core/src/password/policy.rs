//! Password policy per NIST SP 800-63B-4 (SPEC §1.1): length rules (15 characters when the
//! password is the only factor, 8 with a second factor, up to 256 allowed), no composition
//! rules, NFKC normalisation, the shipped blocklist (see [`super::blocklist`]), refusal of
//! passwords built from the account's own names or from patterns (see [`super::patterns`]),
//! and an optional breach check through the [`BreachChecker`] port (off by default).

use super::blocklist::{is_blocklisted, is_decoration, normalise, variants};
use super::breach::BreachChecker;
use super::patterns::is_trivial_pattern;
use crate::secret::Password;
use crate::user::nfkc;

/// Why a new password was refused. [`PolicyViolation::message`] is for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Fewer characters than the minimum (which depends on whether a second factor is set).
    TooShort {
        /// The minimum that applied.
        min: usize,
    },
    /// More characters (or bytes) than allowed.
    TooLong {
        /// The maximum in characters.
        max: usize,
    },
    /// On the shipped blocklist (possibly after stripping digits/symbols or undoing
    /// letter-for-digit substitutions).
    Common,
    /// Mostly the username, the e-mail address or the service's name.
    ContextSpecific,
    /// A repetition, a sequence or a keyboard walk, at any length (see
    /// [`super::patterns`]).
    Repetitive,
    /// Reported by the breach range check.
    Breached,
}

impl PolicyViolation {
    /// A user-facing explanation with a hint for a better choice.
    pub fn message(&self) -> String {
        match self {
            Self::TooShort { min } => {
                format!("Choose a password of at least {min} characters. A few unrelated words make a good one.")
            }
            Self::TooLong { max } => format!("A password has at most {max} characters."),
            Self::Common => "This password is too common: it is on the lists attackers try first. \
                             Choose another; a few unrelated words make a good one."
                .into(),
            Self::ContextSpecific => {
                "Choose a password that is not based on your username, your e-mail address or the name of this site."
                    .into()
            }
            Self::Repetitive => {
                "Choose a password that is not a repeated character or pattern, a simple sequence or a keyboard pattern.".into()
            }
            Self::Breached => "This password has appeared in a data breach, so attackers will try it. \
                               Choose another."
                .into(),
        }
    }
}

impl std::fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PolicyViolation {}

impl From<PolicyViolation> for crate::CoreError {
    fn from(v: PolicyViolation) -> Self {
        crate::CoreError::Invalid(v.message())
    }
}

/// The rules a new password must meet (NIST SP 800-63B-4 §3.1.1.2). No composition rules.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Minimum length in characters when the password is the only factor (NIST: 15).
    pub min_chars_single_factor: usize,
    /// Minimum length in characters when the account has a second factor (NIST: 8).
    pub min_chars_with_mfa: usize,
    /// Maximum length in characters (NIST: at least 64 must be allowed).
    pub max_chars: usize,
    /// Whether to refuse passwords on the shipped blocklist.
    pub blocklist: bool,
    /// Words specific to this deployment (the service's name, the organisation's name) that
    /// a password must not be built from; each call adds the account's own names.
    pub context_words: Vec<String>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars_single_factor: 15,
            min_chars_with_mfa: 8,
            max_chars: 256,
            blocklist: true,
            context_words: vec!["tessera".into()],
        }
    }
}

impl PasswordPolicy {
    /// Checks a new password. `has_second_factor` picks the minimum length; `context` holds
    /// the account's username, e-mail address and display name (any may be empty). Lengths
    /// are counted in Unicode code points after NFKC normalisation.
    pub fn check(&self, password: &str, has_second_factor: bool, context: &[&str]) -> Result<(), PolicyViolation> {
        // Cap the input before normalising it (NFKC can expand text).
        if password.len() > Password::MAX_BYTES {
            return Err(PolicyViolation::TooLong { max: self.max_chars });
        }
        let n = nfkc(password).chars().count();
        if n > self.max_chars {
            return Err(PolicyViolation::TooLong { max: self.max_chars });
        }
        let min = if has_second_factor { self.min_chars_with_mfa } else { self.min_chars_single_factor };
        if n < min {
            return Err(PolicyViolation::TooShort { min });
        }
        let normalised = normalise(password);
        if self.blocklist && is_blocklisted(&normalised) {
            return Err(PolicyViolation::Common);
        }
        let words = self.context_words.iter().map(String::as_str).chain(context.iter().copied());
        if is_context_specific(&normalised, words) {
            return Err(PolicyViolation::ContextSpecific);
        }
        if is_trivial_pattern(&normalised) {
            return Err(PolicyViolation::Repetitive);
        }
        Ok(())
    }

    /// [`check`](Self::check), then the optional breach range check. A checker that fails
    /// (unreachable service) lets the password through: the local checks still applied.
    pub async fn check_with_breach_checker(
        &self,
        password: &str,
        has_second_factor: bool,
        context: &[&str],
        checker: Option<&dyn BreachChecker>,
    ) -> Result<(), PolicyViolation> {
        self.check(password, has_second_factor, context)?;
        if let Some(checker) = checker {
            match checker.is_breached(password).await {
                Ok(true) => return Err(PolicyViolation::Breached),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "password breach check failed; allowing the password (fail open)"),
            }
        }
        Ok(())
    }
}

/// The terms a context word contributes: the whole (normalised) word, and for an e-mail
/// address its local part, with and without separators. Terms under 3 characters are ignored.
fn context_terms(word: &str) -> Vec<String> {
    let w = normalise(word);
    let mut terms = Vec::with_capacity(3);
    let local = match w.rsplit_once('@') {
        Some((local, _domain)) => {
            terms.push(w.clone());
            local.to_owned()
        }
        None => w.clone(),
    };
    let joined: String = local.chars().filter(|c| !matches!(c, '.' | '_' | '-' | '+' | ' ')).collect();
    terms.push(local);
    terms.push(joined);
    terms.retain(|t| t.chars().count() >= 3);
    terms.dedup();
    terms
}

/// Whether the password (or a form with substitutions undone) contains a context term and,
/// once every occurrence of it and the digits/symbols around it are taken out, fewer
/// characters remain than the term has: the name is most of the password.
fn is_context_specific<'a>(normalised: &str, words: impl Iterator<Item = &'a str>) -> bool {
    let mut forms = variants(normalised);
    if !forms.iter().any(|f| f == normalised) {
        forms.push(normalised.to_owned());
    }
    words.flat_map(context_terms).any(|term| {
        let t = term.chars().count();
        forms.iter().any(|f| {
            f.contains(term.as_str()) && f.replace(term.as_str(), "").chars().filter(|c| !is_decoration(*c)).count() < t
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::breach::BreachCheckError;
    use async_trait::async_trait;

    const PASSPHRASE: &str = "violet kettle drifts past seven quiet harbours";

    #[test]
    fn common_passwords_are_refused() {
        let policy = PasswordPolicy::default();
        for pw in ["password", "123456", "qwerty", "iloveyou", "Password123!", "P@ssw0rd2024", "iloveyou1234567", "ILOVEYOU!!!!!!!"] {
            // With a second factor the minimum is 8, so short ones hit the blocklist or length.
            let err = policy.check(pw, true, &[]).unwrap_err();
            assert!(matches!(err, PolicyViolation::Common | PolicyViolation::TooShort { .. }), "{pw}: {err:?}");
        }
        for pw in ["password", "iloveyou", "Password123!", "P@ssw0rd2024", "qwertyuiop!!"] {
            assert_eq!(policy.check(pw, true, &[]), Err(PolicyViolation::Common), "{pw}");
        }
        assert_eq!(policy.check("iloveyou1234567", false, &[]), Err(PolicyViolation::Common));
        assert_eq!(policy.check("password1234567890", false, &[]), Err(PolicyViolation::Common));
        let off = PasswordPolicy { blocklist: false, ..PasswordPolicy::default() };
        assert_eq!(off.check("Password123!", true, &[]), Ok(()));
    }

    #[test]
    fn a_long_passphrase_is_accepted() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check(PASSPHRASE, false, &["alice", "alice@example.com"]), Ok(()));
        assert_eq!(policy.check("correct horse battery staple", false, &[]), Ok(()));
        assert!(!PolicyViolation::Common.message().is_empty());
    }

    #[test]
    fn length_rules_depend_on_a_second_factor() {
        let policy = PasswordPolicy::default();
        let fourteen = "zq7vm2kx9wpl4r";
        assert_eq!(fourteen.chars().count(), 14);
        assert_eq!(policy.check(fourteen, false, &[]), Err(PolicyViolation::TooShort { min: 15 }));
        assert_eq!(policy.check(fourteen, true, &[]), Ok(()));
        assert_eq!(policy.check("zq7vm2kx9wpl4rt", false, &[]), Ok(()));
        assert_eq!(policy.check("zq7vm2k", true, &[]), Err(PolicyViolation::TooShort { min: 8 }));
        assert_eq!(policy.check("zq7vm2kx", true, &[]), Ok(()));
        // 256 characters allowed, 257 not; a huge input is refused before normalisation.
        let long: String = "zq7vm2kx9wpl4rt ".repeat(16);
        assert_eq!(long.chars().count(), 256);
        assert_eq!(policy.check(&long, false, &[]), Ok(()));
        assert_eq!(policy.check(&format!("{long}x"), false, &[]), Err(PolicyViolation::TooLong { max: 256 }));
        assert_eq!(policy.check(&"x".repeat(100_000), false, &[]), Err(PolicyViolation::TooLong { max: 256 }));
        // Characters, not bytes: 15 three-byte characters are 15 characters.
        assert_eq!(policy.check("東京タワーの上で富士山を見たよ", false, &[]), Ok(()));
        assert!(PolicyViolation::TooShort { min: 15 }.message().contains("15"));
    }

    #[test]
    fn nfkc_is_applied_first() {
        let policy = PasswordPolicy::default();
        // Fullwidth "ｐａｓｓｗｏｒｄ" is "password" after NFKC.
        assert_eq!(policy.check("ｐａｓｓｗｏｒｄ", true, &[]), Err(PolicyViolation::Common));
        assert_eq!(policy.check("ＰＡＳＳＷＯＲＤ１２３", true, &[]), Err(PolicyViolation::Common));
        // Length is counted after NFKC: "ﬃ" (one character) becomes "ffi" (three).
        assert_eq!(nfkc("ﬃ").chars().count(), 3);
        assert_eq!(policy.check("zq7vm2kx9wpﬃ", false, &[]), Err(PolicyViolation::TooShort { min: 15 }));
        assert_eq!(policy.check("zq7vm2kx9wplﬃ", false, &[]), Ok(()));
    }

    #[test]
    fn names_of_the_account_and_service_are_refused() {
        let policy = PasswordPolicy::default();
        let ctx = ["maximilian.vonbergen", "max.vonbergen@example.org"];
        for pw in ["maximilian.vonbergen", "Maximilian.vonBergen2024", "max.vonbergen1234!", "maxvonbergen-2024!!!", "tessera-tessera-99"] {
            assert_eq!(policy.check(pw, false, &ctx), Err(PolicyViolation::ContextSpecific), "{pw}");
        }
        // A name that is only a small part of a long password is fine.
        assert_eq!(policy.check("max walked past seven quiet harbours", false, &ctx), Ok(()));
        // Short context values (< 3 characters) are ignored.
        assert_eq!(policy.check(PASSPHRASE, false, &["a", "", "ki@x"]), Ok(()));
    }

    #[test]
    fn repetitive_and_sequential_passwords_are_refused() {
        let policy = PasswordPolicy { blocklist: false, ..PasswordPolicy::default() };
        for pw in ["aaaaaaaaaaaaaaaa", "abababababababab", "abcdefghijklmnop", "zyxwvutsrqponmlk", "xyz1xyz1xyz1xyz1",
            "123456789012345", "qwertyuiopasdfgh", "1qaz2wsx3edc4rfv", "abcabcabcabcabc", "aaaaaaaaaaaaaaa"] {
            assert_eq!(policy.check(pw, false, &[]), Err(PolicyViolation::Repetitive), "{pw}");
        }
    }

    /// A breach-check port that answers what it is told, without a network.
    struct Answers(fn() -> Result<bool, BreachCheckError>);

    #[async_trait]
    impl BreachChecker for Answers {
        async fn is_breached(&self, _password: &str) -> Result<bool, BreachCheckError> {
            (self.0)()
        }
    }

    #[tokio::test]
    async fn the_breach_port_refuses_breached_passwords_and_fails_open() {
        let policy = PasswordPolicy::default();
        let breached = Answers(|| Ok(true));
        let clean = Answers(|| Ok(false));
        let down = Answers(|| Err(BreachCheckError::Unavailable("connection refused".into())));
        assert_eq!(policy.check_with_breach_checker(PASSPHRASE, false, &[], Some(&breached)).await, Err(PolicyViolation::Breached));
        assert_eq!(policy.check_with_breach_checker(PASSPHRASE, false, &[], Some(&clean)).await, Ok(()));
        assert_eq!(policy.check_with_breach_checker(PASSPHRASE, false, &[], Some(&down)).await, Ok(()));
        assert_eq!(policy.check_with_breach_checker(PASSPHRASE, false, &[], None).await, Ok(()));
        // The local rules run first: a short password never reaches the checker.
        assert_eq!(policy.check_with_breach_checker("short", false, &[], Some(&breached)).await, Err(PolicyViolation::TooShort { min: 15 }));
    }
}
