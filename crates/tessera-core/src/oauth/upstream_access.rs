//! Which upstream providers' tokens a client may obtain through token exchange (RFC 8693),
//! and with which scopes: the administrator's allow-list on the client
//! (`token_exchange: [{"provider": "github", "scopes": ["repo"]}]`, CLI
//! `--token-exchange github:repo`), its registration rules, and the wire names of the grant
//! and of the token types.

use crate::CoreError;
use crate::oauth::client::GrantType;
use crate::oauth::scope::Scopes;
use crate::vault::valid_provider_name;
use serde::{Deserialize, Serialize};

/// The token-exchange grant type (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The only `subject_token_type` accepted: an access token Tessera issued (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `requested_token_type` (and `issued_token_type`) naming an upstream provider's access
/// token: this prefix followed by the provider's name.
pub const UPSTREAM_TOKEN_TYPE_PREFIX: &str = "urn:tessera:params:oauth:token-type:upstream:";

/// The token type naming `provider`'s access token.
pub fn upstream_token_type(provider: &str) -> String {
    format!("{UPSTREAM_TOKEN_TYPE_PREFIX}{provider}")
}

/// One provider a client may obtain its users' upstream tokens of. Empty `scopes`: whatever
/// scope the kept token carries; otherwise the kept token must carry only these (an upstream
/// token cannot be narrowed, so a token carrying more is not handed out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamAllowance {
    /// The upstream provider's name.
    pub provider: String,
    /// The scopes allowed (empty: any).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl std::str::FromStr for UpstreamAllowance {
    type Err = CoreError;

    /// `PROVIDER` or `PROVIDER:SCOPE,SCOPE` (scopes may hold `:`, provider names do not).
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let (provider, scopes) = match s.split_once(':') {
            Some((p, list)) => (p, list.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect()),
            None => (s, Vec::new()),
        };
        Ok(Self { provider: provider.to_owned(), scopes })
    }
}

impl UpstreamAllowance {
    /// The allowed scopes as a set (empty: any).
    pub fn scope_set(&self) -> Scopes {
        Scopes::from_list(self.scopes.iter().cloned())
    }
}

/// Registration rules: allowances name valid, distinct providers and well-formed scopes; only
/// confidential clients get them; a client with allowances gets the token-exchange grant,
/// and only such a client may list that grant.
pub(crate) fn check_allowances(list: &mut [UpstreamAllowance], public: bool, grant_types: &mut Vec<GrantType>) -> Result<(), CoreError> {
    if list.is_empty() {
        if grant_types.contains(&GrantType::TokenExchange) {
            return Err(CoreError::Invalid("the token-exchange grant needs at least one allowed provider (token_exchange)".into()));
        }
        return Ok(());
    }
    if public {
        return Err(CoreError::Invalid("public clients cannot use token exchange".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in list.iter_mut() {
        if !valid_provider_name(&a.provider) {
            return Err(CoreError::Invalid(format!("{:?} is not a provider name (letters, digits, - _ .)", a.provider)));
        }
        if !seen.insert(a.provider.clone()) {
            return Err(CoreError::Invalid(format!("provider {} is listed twice in token_exchange", a.provider)));
        }
        for s in &a.scopes {
            if s.contains(',') || Scopes::parse(s).map(|p| p.iter().count()).unwrap_or(0) != 1 {
                return Err(CoreError::Invalid(format!("{s:?} is not a scope")));
            }
        }
        a.scopes.sort_unstable();
        a.scopes.dedup();
    }
    if !grant_types.contains(&GrantType::TokenExchange) {
        grant_types.push(GrantType::TokenExchange);
        grant_types.sort_unstable();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn a(s: &str) -> UpstreamAllowance {
        s.parse().unwrap()
    }

    #[test]
    fn allowances_parse_from_the_command_line_form() {
        assert_eq!(a("github"), UpstreamAllowance { provider: "github".into(), scopes: vec![] });
        assert_eq!(a("github:repo,user:email"), UpstreamAllowance { provider: "github".into(), scopes: vec!["repo".into(), "user:email".into()] });
    }

    #[test]
    fn registration_rules() {
        let mut grants = vec![GrantType::AuthorizationCode];
        check_allowances(&mut [a("github:repo")], false, &mut grants).unwrap();
        assert!(grants.contains(&GrantType::TokenExchange), "the grant comes with the allow-list");
        assert!(check_allowances(&mut [a("github")], true, &mut vec![]).is_err(), "public client");
        assert!(check_allowances(&mut [a("git hub")], false, &mut vec![]).is_err(), "bad name");
        assert!(check_allowances(&mut [a("github"), a("github:repo")], false, &mut vec![]).is_err(), "twice");
        assert!(check_allowances(&mut [a("github:re po")], false, &mut vec![]).is_err(), "bad scope");
        assert!(check_allowances(&mut [], false, &mut vec![GrantType::TokenExchange]).is_err(), "grant without allow-list");
        check_allowances(&mut [], false, &mut vec![GrantType::AuthorizationCode]).unwrap();
    }
}
