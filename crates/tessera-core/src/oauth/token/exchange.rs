//! The token-exchange grant (RFC 8693) for upstream tokens: a confidential client presents an
//! access token Tessera issued to it for a user (`subject_token`, type
//! `urn:ietf:params:oauth:token-type:access_token`) and names an upstream provider
//! (`requested_token_type=urn:tessera:params:oauth:token-type:upstream:<provider>`); if the
//! administrator allowed that client that provider ([`UpstreamAllowance`]) and the credential
//! vault keeps a token of that provider for the user, the answer is that upstream access token
//! (refreshed first if it has expired). Checks run in a fixed order: the request's form
//! (`invalid_request`), the client (`unauthorized_client`), the provider (`invalid_target`),
//! the requested scope against the allowance (`invalid_scope`), the subject token and its user
//! (`invalid_grant`), the kept token (`invalid_grant`), its scope (`invalid_scope`).

use super::{TokenParams, active_user};
use crate::ids::UserId;
use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::context::OAuthContext;
use crate::oauth::introspect::verify_access_token;
use crate::oauth::scope::Scopes;
use crate::oauth::upstream_access::{ACCESS_TOKEN_TYPE, UPSTREAM_TOKEN_TYPE_PREFIX, UpstreamAllowance, upstream_token_type};
use crate::vault::{VaultError, scope_list};
use serde::Serialize;

/// A successful exchange (RFC 8693 §2.2.1). `Debug` never shows the token.
#[derive(Clone, Serialize)]
pub struct ExchangedToken {
    /// The upstream access token.
    pub access_token: String,
    /// `urn:tessera:params:oauth:token-type:upstream:<provider>`.
    pub issued_token_type: String,
    /// `Bearer`: the upstream token is an access token.
    pub token_type: &'static str,
    /// Seconds until it expires, when the upstream said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// The scope it carries, when the upstream said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for ExchangedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangedToken")
            .field("issued_token_type", &self.issued_token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// An exchange request, read from the token endpoint's parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ExchangeRequest<'a> {
    /// The subject token (an access token issued here).
    pub subject_token: &'a str,
    /// The upstream provider named by `requested_token_type`.
    pub provider: &'a str,
    /// The scope asked for, if any.
    pub scope: Option<Scopes>,
}

/// Reads the parameters RFC 8693 §2.1 defines, refusing what this server does not do:
/// another subject token type, delegation (`actor_token`), `audience`/`resource` (the
/// requested token type names the upstream).
pub(crate) fn read_request(p: &TokenParams) -> Result<ExchangeRequest<'_>, OAuthError> {
    let subject_token = p.subject_token.as_deref().ok_or_else(|| OAuthError::request("subject_token is required"))?;
    match p.subject_token_type.as_deref() {
        Some(ACCESS_TOKEN_TYPE) => {}
        Some(_) => return Err(OAuthError::request(format!("subject_token_type must be {ACCESS_TOKEN_TYPE}"))),
        None => return Err(OAuthError::request("subject_token_type is required")),
    }
    if p.actor_token.is_some() || p.actor_token_type.is_some() {
        return Err(OAuthError::request("delegation (actor_token) is not supported"));
    }
    let requested = p.requested_token_type.as_deref().ok_or_else(|| OAuthError::request("requested_token_type is required"))?;
    let provider = requested
        .strip_prefix(UPSTREAM_TOKEN_TYPE_PREFIX)
        .ok_or_else(|| OAuthError::request(format!("requested_token_type must be {UPSTREAM_TOKEN_TYPE_PREFIX}<provider>")))?;
    if !p.audience.is_empty() || !p.resource.is_empty() {
        return Err(OAuthError::InvalidTarget("audience and resource are not used: requested_token_type names the upstream".into()));
    }
    let scope = p.scope.as_deref().map(Scopes::parse).transpose().map_err(OAuthError::InvalidScope)?;
    Ok(ExchangeRequest { subject_token, provider, scope })
}

/// The client's allowance for `provider`: `invalid_target` if it has none.
pub(crate) fn allowance<'c>(client: &'c Client, provider: &str) -> Result<&'c UpstreamAllowance, OAuthError> {
    client
        .token_exchange
        .iter()
        .find(|a| a.provider == provider)
        .ok_or_else(|| OAuthError::InvalidTarget(format!("this client may not obtain tokens of provider {provider:?}")))
}

/// Before anything is looked up: each scope asked for must be allowed.
pub(crate) fn check_requested_scope(allowed: &UpstreamAllowance, requested: Option<&Scopes>) -> Result<(), OAuthError> {
    let (Some(req), false) = (requested, allowed.scopes.is_empty()) else { return Ok(()) };
    let bad = req.not_in(&allowed.scope_set());
    if bad.is_empty() { Ok(()) } else { Err(OAuthError::InvalidScope(format!("scope not allowed for this client: {}", bad.join(" ")))) }
}

/// Once the kept token is known: each scope asked for must be one it carries, and — when the
/// allowance names scopes — it must carry no other (an upstream token cannot be narrowed).
/// Returns the scope to report: the one the token carries, space-separated.
pub(crate) fn check_kept_scope(allowed: &UpstreamAllowance, kept: Option<&str>, requested: Option<&Scopes>) -> Result<Option<String>, OAuthError> {
    let kept = kept.map(|k| Scopes::from_list(scope_list(k)));
    if let Some(req) = requested.filter(|r| !r.is_empty()) {
        let Some(kept) = &kept else {
            return Err(OAuthError::InvalidScope("the kept token's scope is not known".into()));
        };
        let missing = req.not_in(kept);
        if !missing.is_empty() {
            return Err(OAuthError::InvalidScope(format!("the kept token does not carry: {}", missing.join(" "))));
        }
    }
    if !allowed.scopes.is_empty() {
        let Some(kept) = &kept else {
            return Err(OAuthError::InvalidScope("the kept token's scope is not known, and this client is allowed only some scopes".into()));
        };
        let extra = kept.not_in(&allowed.scope_set());
        if !extra.is_empty() {
            return Err(OAuthError::InvalidScope(format!("the kept token carries scopes this client is not allowed: {}", extra.join(" "))));
        }
    }
    Ok(kept.map(|k| k.to_string()).filter(|k| !k.is_empty()))
}

/// The user of a subject token: a live access token issued here, to this very client (a
/// client cannot obtain upstream tokens with another client's token), for a user who still
/// exists and is enabled.
async fn subject_user(ctx: &OAuthContext, client: &Client, token: &str) -> Result<UserId, OAuthError> {
    let at = match verify_access_token(ctx, token).await {
        Ok(at) => at,
        Err(e) if e.is_fault() => return Err(e),
        Err(_) => return Err(OAuthError::grant("the subject token is not a valid access token")),
    };
    if at.claims.client_id != client.id.as_str() {
        return Err(OAuthError::grant("the subject token was not issued to this client"));
    }
    let user: UserId = at.claims.sub.parse().map_err(|_| OAuthError::grant("the subject token is not a user's"))?;
    Ok(active_user(ctx, user).await?.id)
}

/// The grant: `client`'s user's upstream token of the provider the request names.
pub(super) async fn upstream_token(ctx: &OAuthContext, client: &Client, p: &TokenParams) -> Result<ExchangedToken, OAuthError> {
    let req = read_request(p)?;
    if client.is_public() {
        return Err(OAuthError::UnauthorizedClient("public clients cannot use token exchange".into()));
    }
    let allowed = allowance(client, req.provider)?;
    check_requested_scope(allowed, req.scope.as_ref())?;
    let vault = ctx.upstream.get().ok_or_else(|| OAuthError::InvalidTarget("no upstream tokens are kept on this server".into()))?;
    let user = subject_user(ctx, client, req.subject_token).await?;
    let now = ctx.now();
    let live = match vault.live_access_token(user, req.provider, now).await {
        Ok(t) => t,
        Err(VaultError::NothingKept) => return Err(OAuthError::grant(format!("no tokens of {} are kept for this user", req.provider))),
        Err(VaultError::Expired) => return Err(OAuthError::grant("the kept upstream token has expired and cannot be refreshed")),
        Err(VaultError::RefreshFailed(cause)) => {
            tracing::warn!(provider = req.provider, %user, cause, "a kept upstream token could not be refreshed");
            return Err(OAuthError::grant("the kept upstream token has expired and the upstream refused to refresh it"));
        }
        Err(VaultError::Core(e)) => return Err(e.into()),
    };
    let scope = check_kept_scope(allowed, live.scope.as_deref(), req.scope.as_ref())?;
    vault.record_exchange(user, req.provider, client.id.as_str(), scope.as_deref()).await;
    Ok(ExchangedToken {
        access_token: live.access_token.expose().to_owned(),
        issued_token_type: upstream_token_type(req.provider),
        token_type: "Bearer",
        expires_in: live.expires_at.map(|t| (t - now).whole_seconds().max(0)),
        scope,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use time::OffsetDateTime;

    fn params(pairs: &[(&str, &str)]) -> TokenParams {
        let mut p = TokenParams {
            subject_token: Some("eyJ.x.y".into()),
            subject_token_type: Some(ACCESS_TOKEN_TYPE.into()),
            requested_token_type: Some(upstream_token_type("github")),
            ..TokenParams::default()
        };
        for (k, v) in pairs {
            let v = (!v.is_empty()).then(|| (*v).to_owned());
            match *k {
                "subject_token" => p.subject_token = v,
                "subject_token_type" => p.subject_token_type = v,
                "requested_token_type" => p.requested_token_type = v,
                "actor_token" => p.actor_token = v,
                "scope" => p.scope = v,
                "audience" => p.audience = v.into_iter().collect(),
                other => panic!("no parameter {other}"),
            }
        }
        p
    }

    fn code(r: Result<impl std::fmt::Debug, OAuthError>) -> &'static str {
        r.err().map_or("ok", |e| e.code())
    }

    #[test]
    fn a_well_formed_request_names_the_provider() {
        let p = params(&[("scope", "repo")]);
        let r = read_request(&p).unwrap();
        assert_eq!(r.provider, "github");
        assert_eq!(r.scope, Some(Scopes::parse("repo").unwrap()));
    }

    #[test]
    fn malformed_requests_are_invalid_request_or_invalid_target() {
        assert_eq!(code(read_request(&params(&[("subject_token", "")]))), "invalid_request");
        assert_eq!(code(read_request(&params(&[("subject_token_type", "")]))), "invalid_request");
        assert_eq!(code(read_request(&params(&[("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")]))), "invalid_request");
        assert_eq!(code(read_request(&params(&[("requested_token_type", "")]))), "invalid_request");
        assert_eq!(code(read_request(&params(&[("requested_token_type", ACCESS_TOKEN_TYPE)]))), "invalid_request");
        assert_eq!(code(read_request(&params(&[("actor_token", "x")]))), "invalid_request");
        assert_eq!(code(read_request(&params(&[("audience", "https://api.example")]))), "invalid_target");
        assert_eq!(code(read_request(&params(&[("scope", "a\"b")]))), "invalid_scope");
    }

    fn allowed(s: &str) -> UpstreamAllowance {
        s.parse().unwrap()
    }

    fn scopes(s: &str) -> Scopes {
        Scopes::parse(s).unwrap()
    }

    #[test]
    fn requested_scopes_must_be_allowed() {
        assert_eq!(code(check_requested_scope(&allowed("github:repo"), Some(&scopes("repo")))), "ok");
        assert_eq!(code(check_requested_scope(&allowed("github:repo"), Some(&scopes("repo admin:org")))), "invalid_scope");
        assert_eq!(code(check_requested_scope(&allowed("github"), Some(&scopes("admin:org")))), "ok", "no scope list: any");
        assert_eq!(code(check_requested_scope(&allowed("github:repo"), None)), "ok");
    }

    #[test]
    fn the_kept_token_must_carry_what_is_asked_and_nothing_unallowed() {
        let a = allowed("github:repo,user:email");
        assert_eq!(check_kept_scope(&a, Some("repo,user:email"), Some(&scopes("repo"))).unwrap().as_deref(), Some("repo user:email"));
        assert_eq!(check_kept_scope(&a, Some("repo"), None).unwrap().as_deref(), Some("repo"));
        assert_eq!(code(check_kept_scope(&a, Some("user:email"), Some(&scopes("repo")))), "invalid_scope", "not carried");
        assert_eq!(code(check_kept_scope(&a, Some("repo admin:org"), None)), "invalid_scope", "carries more than allowed");
        assert_eq!(code(check_kept_scope(&a, None, None)), "invalid_scope", "unknown scope, limited allowance");
        let any = allowed("github");
        assert_eq!(check_kept_scope(&any, None, None).unwrap(), None);
        assert_eq!(code(check_kept_scope(&any, None, Some(&scopes("repo")))), "invalid_scope", "asked for, but unknown");
        assert_eq!(check_kept_scope(&any, Some("repo admin:org"), None).unwrap().as_deref(), Some("admin:org repo"));
    }

    #[test]
    fn only_allowed_providers_are_targets() {
        let mut client = crate::oauth::client::ClientRegistration {
            name: "app".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            token_exchange: vec![allowed("github:repo")],
            ..Default::default()
        }
        .validate(OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .client;
        assert!(allowance(&client, "github").is_ok());
        assert_eq!(code(allowance(&client, "gitlab")), "invalid_target");
        client.token_exchange.clear();
        assert_eq!(code(allowance(&client, "github")), "invalid_target");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = ExchangedToken { access_token: "gho_secret".into(), issued_token_type: upstream_token_type("github"), token_type: "Bearer", expires_in: None, scope: None };
        assert!(!format!("{t:?}").contains("gho_secret"));
    }
}
