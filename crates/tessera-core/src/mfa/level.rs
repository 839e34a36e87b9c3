//! Authentication methods and levels: the RFC 8176 `amr` values a session records, how
//! factors combine into multi-factor authentication, and the `acr` values (assurance levels)
//! relying parties ask for with `acr_values` and read in ID tokens.

use serde::Serialize;

/// `amr` value: password.
pub const AMR_PWD: &str = "pwd";
/// `amr` value: one-time password (TOTP, or a single-use recovery code).
pub const AMR_OTP: &str = "otp";
/// `amr` value: proof of possession of a hardware-bound key (a device-bound passkey).
pub const AMR_HWK: &str = "hwk";
/// `amr` value: proof of possession of a software-held key (a synced passkey).
pub const AMR_SWK: &str = "swk";
/// `amr` value: more than one factor.
pub const AMR_MFA: &str = "mfa";
/// `amr` value: federated — signed in through an upstream provider whose own methods are not
/// known or not trusted (counts as one factor, like a password).
pub const AMR_FED: &str = "fed";

/// `acr` of a single-factor authentication.
pub const ACR_SINGLE_FACTOR: &str = "urn:tessera:acr:single-factor";
/// `acr` of a multi-factor authentication (the OpenID PAPE URI that Auth0 also accepts).
pub const ACR_MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// `acr` of a phishing-resistant authentication (a passkey), OpenID EAP ACR Values `phr`.
pub const ACR_PHISHING_RESISTANT: &str = "phr";

/// Every `acr` value this server issues and understands, weakest first.
pub const ACR_VALUES_SUPPORTED: [&str; 3] = [ACR_SINGLE_FACTOR, ACR_MULTI_FACTOR, ACR_PHISHING_RESISTANT];

/// One proof a user gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// A password (something known).
    Password,
    /// A TOTP code from an authenticator app (something held).
    Totp,
    /// A single-use recovery code (a look-up secret: something held).
    RecoveryCode,
    /// A passkey with user verification: possession plus a PIN or biometric on the device,
    /// so multi-factor by itself. `synced` when the authenticator says it is backed up.
    Passkey {
        /// Backup eligible (synced between devices): `swk`, else `hwk`.
        synced: bool,
    },
}

impl Factor {
    /// Its `amr` value.
    pub fn amr(&self) -> &'static str {
        match self {
            Factor::Password => AMR_PWD,
            Factor::Totp | Factor::RecoveryCode => AMR_OTP,
            Factor::Passkey { synced: true } => AMR_SWK,
            Factor::Passkey { synced: false } => AMR_HWK,
        }
    }

    /// The stable name used in audit records.
    pub fn name(&self) -> &'static str {
        match self {
            Factor::Password => "password",
            Factor::Totp => "totp",
            Factor::RecoveryCode => "recovery_code",
            Factor::Passkey { .. } => "passkey",
        }
    }
}

/// The `amr` list after adding `factor` to what a session already proved: the factor's
/// value once, and `mfa` when a knowledge factor (or an upstream sign-in, `fed`) and a
/// possession factor are both present or
/// a user-verifying passkey was used.
pub fn combine(existing: &[String], factor: Factor) -> Vec<String> {
    let mut amr: Vec<String> = existing.iter().filter(|m| m.as_str() != AMR_MFA).cloned().collect();
    if !amr.iter().any(|m| m == factor.amr()) {
        amr.push(factor.amr().to_owned());
    }
    let has = |v: &str| amr.iter().any(|m| m == v);
    let knowledge = has(AMR_PWD) || has(AMR_FED);
    let possession = has(AMR_OTP) || has(AMR_HWK) || has(AMR_SWK);
    let passkey = has(AMR_HWK) || has(AMR_SWK);
    if (knowledge && possession) || passkey {
        amr.push(AMR_MFA.to_owned());
    }
    amr
}

/// An assurance level, ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthLevel {
    /// One factor.
    SingleFactor,
    /// Two factors of different kinds (or a user-verifying passkey).
    MultiFactor,
    /// Multi-factor with a passkey (bound to the origin, so phishing-resistant).
    PhishingResistant,
}

impl AuthLevel {
    /// The level a session's `amr` reaches.
    pub fn of(amr: &[String]) -> Self {
        let has = |v: &str| amr.iter().any(|m| m == v);
        if has(AMR_MFA) && (has(AMR_HWK) || has(AMR_SWK)) {
            AuthLevel::PhishingResistant
        } else if has(AMR_MFA) {
            AuthLevel::MultiFactor
        } else {
            AuthLevel::SingleFactor
        }
    }

    /// Its `acr` value.
    pub fn acr(&self) -> &'static str {
        match self {
            AuthLevel::SingleFactor => ACR_SINGLE_FACTOR,
            AuthLevel::MultiFactor => ACR_MULTI_FACTOR,
            AuthLevel::PhishingResistant => ACR_PHISHING_RESISTANT,
        }
    }

    /// The level an `acr` value names; `None` for values this server does not know.
    pub fn from_acr(acr: &str) -> Option<Self> {
        match acr {
            ACR_SINGLE_FACTOR => Some(AuthLevel::SingleFactor),
            ACR_MULTI_FACTOR | "mfa" => Some(AuthLevel::MultiFactor),
            ACR_PHISHING_RESISTANT => Some(AuthLevel::PhishingResistant),
            _ => None,
        }
    }

    /// Stable stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthLevel::SingleFactor => "single_factor",
            AuthLevel::MultiFactor => "multi_factor",
            AuthLevel::PhishingResistant => "phishing_resistant",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "single_factor" => Some(AuthLevel::SingleFactor),
            "multi_factor" => Some(AuthLevel::MultiFactor),
            "phishing_resistant" => Some(AuthLevel::PhishingResistant),
            _ => None,
        }
    }
}

/// The level `acr_values` asks for: values are alternatives in order of preference, so the
/// weakest known one is enough. Unknown values are ignored (OIDC Core §3.1.2.1: `acr_values`
/// is a voluntary request); `None` when no known value was asked for.
pub fn requested_level(acr_values: &[String]) -> Option<AuthLevel> {
    acr_values.iter().filter_map(|v| AuthLevel::from_acr(v)).min()
}

/// The `acr` claim for a session with `amr`: the first requested value it satisfies, else
/// the strongest level it reaches.
pub fn acr_claim(amr: &[String], requested: &[String]) -> String {
    let level = AuthLevel::of(amr);
    requested
        .iter()
        .find(|v| AuthLevel::from_acr(v).is_some_and(|l| l <= level))
        .map(|v| match v.as_str() {
            // The alias answers with the full URI.
            "mfa" => ACR_MULTI_FACTOR.to_owned(),
            other => other.to_owned(),
        })
        .unwrap_or_else(|| level.acr().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn password_plus_totp_is_multi_factor() {
        let amr = combine(&v(&["pwd"]), Factor::Totp);
        assert_eq!(amr, v(&["pwd", "otp", "mfa"]));
        assert_eq!(AuthLevel::of(&amr), AuthLevel::MultiFactor);
        assert_eq!(AuthLevel::of(&v(&["pwd"])), AuthLevel::SingleFactor);
    }

    #[test]
    fn a_user_verifying_passkey_is_multi_factor_and_phishing_resistant() {
        let amr = combine(&[], Factor::Passkey { synced: false });
        assert_eq!(amr, v(&["hwk", "mfa"]));
        assert_eq!(AuthLevel::of(&amr), AuthLevel::PhishingResistant);
        assert_eq!(combine(&v(&["pwd"]), Factor::Passkey { synced: true }), v(&["pwd", "swk", "mfa"]));
    }

    #[test]
    fn an_upstream_sign_in_is_one_factor_and_a_second_makes_it_multi_factor() {
        assert_eq!(AuthLevel::of(&v(&["fed"])), AuthLevel::SingleFactor);
        let amr = combine(&v(&["fed"]), Factor::Totp);
        assert_eq!(amr, v(&["fed", "otp", "mfa"]));
        assert_eq!(AuthLevel::of(&amr), AuthLevel::MultiFactor);
    }

    #[test]
    fn combining_twice_does_not_repeat_values() {
        let amr = combine(&combine(&v(&["pwd"]), Factor::Totp), Factor::RecoveryCode);
        assert_eq!(amr, v(&["pwd", "otp", "mfa"]));
    }

    #[test]
    fn acr_values_are_alternatives_and_unknown_ones_are_ignored() {
        assert_eq!(requested_level(&v(&["phr", ACR_MULTI_FACTOR])), Some(AuthLevel::MultiFactor));
        assert_eq!(requested_level(&v(&["urn:other"])), None);
        assert_eq!(requested_level(&v(&["mfa"])), Some(AuthLevel::MultiFactor));
    }

    #[test]
    fn acr_claim_names_the_first_satisfied_request_or_the_level() {
        let mfa = v(&["pwd", "otp", "mfa"]);
        assert_eq!(acr_claim(&mfa, &v(&["phr", ACR_MULTI_FACTOR])), ACR_MULTI_FACTOR);
        assert_eq!(acr_claim(&mfa, &[]), ACR_MULTI_FACTOR);
        assert_eq!(acr_claim(&v(&["pwd"]), &[]), ACR_SINGLE_FACTOR);
        assert_eq!(acr_claim(&mfa, &v(&["mfa"])), ACR_MULTI_FACTOR);
    }
}
