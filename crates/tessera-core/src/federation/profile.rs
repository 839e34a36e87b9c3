//! Who the provider says the user is: the code exchanged for tokens (PKCE, client secret
//! Basic or in the form), then the verified ID token (OpenID Connect, with the userinfo
//! endpoint for claims the ID token leaves out) or the userinfo endpoint (plain OAuth 2.0;
//! GitHub's `/user/emails` gives the `primary && verified` address).

use super::client::{UpstreamClient, UpstreamHttpError};
use super::decide::upstream_amr;
use super::idtoken::{self, Expected, IdTokenError};
use super::metadata::{Endpoints, MetadataCache};
use super::model::{ProviderKind, ProviderRecord};
use crate::CoreError;
use crate::jose::JwsError;
use crate::secret::TokenHash;
use crate::upstream::{UpstreamSecret, UpstreamTokenSet};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

/// The upstream user.
#[derive(Debug, Clone)]
pub struct UpstreamUser {
    /// The issuer identities are keyed by.
    pub issuer: String,
    /// The subject.
    pub subject: String,
    /// The address upstream gave.
    pub email: Option<String>,
    /// Whether upstream says the address is verified.
    pub email_verified: bool,
    /// Username candidates (`preferred_username`, GitHub `login`, the address).
    pub username_hints: Vec<String>,
    /// The `amr` this sign-in gives.
    pub amr: Vec<String>,
}

/// A refusal whose text is safe to show.
pub(super) fn refused(msg: &str) -> CoreError {
    CoreError::Invalid(msg.to_owned())
}

fn http_failure(what: &str) -> impl FnOnce(UpstreamHttpError) -> CoreError + '_ {
    move |e| {
        tracing::warn!(error = %e, "upstream {what} failed");
        refused(&format!("The provider's {what} failed."))
    }
}

/// Parses a token endpoint answer (GitHub answers errors with 200 and an `error` member).
pub(super) fn token_set(body: &Value, now: OffsetDateTime) -> Result<UpstreamTokenSet, CoreError> {
    if body.get("error").is_some() {
        return Err(refused("The provider refused to exchange the sign-in code."));
    }
    let access = body.get("access_token").and_then(Value::as_str).filter(|s| !s.is_empty());
    let access = access.ok_or_else(|| refused("The provider's token response has no access token."))?;
    Ok(UpstreamTokenSet {
        access_token: UpstreamSecret::new(access),
        refresh_token: body.get("refresh_token").and_then(Value::as_str).map(UpstreamSecret::new),
        expires_at: body.get("expires_in").and_then(Value::as_i64).filter(|s| *s > 0).map(|s| now + Duration::seconds(s)),
        scope: body.get("scope").and_then(Value::as_str).map(str::to_owned),
    })
}

/// Redeems the authorization code.
pub(super) async fn exchange<'a>(
    client: &dyn UpstreamClient,
    p: &'a ProviderRecord,
    e: &Endpoints,
    secret: &'a UpstreamSecret,
    form: &[(&'a str, &'a str)],
) -> Result<Value, CoreError> {
    let mut form = form.to_vec();
    let basic = if e.secret_post {
        form.push(("client_id", p.client_id.as_str()));
        form.push(("client_secret", secret.expose()));
        None
    } else {
        Some((p.client_id.as_str(), secret.expose()))
    };
    client.post_form(&e.token, &form, basic, e.allow_loopback).await.map_err(http_failure("token endpoint"))
}

fn str_claim(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn verified_claim(m: &Map<String, Value>) -> bool {
    matches!(m.get("email_verified"), Some(Value::Bool(true))) || m.get("email_verified").and_then(Value::as_str) == Some("true")
}

/// The user of an OpenID Connect sign-in: the ID token checked (refetching the keys once on
/// an unknown `kid`), then the userinfo endpoint for an address the ID token leaves out.
#[allow(clippy::too_many_arguments)]
pub(super) async fn oidc_user(
    client: &dyn UpstreamClient,
    cache: &MetadataCache,
    p: &ProviderRecord,
    e: &Endpoints,
    tokens: &Value,
    access: &UpstreamSecret,
    nonce_hash: &TokenHash,
    now: OffsetDateTime,
) -> Result<UpstreamUser, CoreError> {
    let ProviderKind::Oidc { issuer } = &p.kind else { return Err(CoreError::Internal("not an OIDC provider".into())) };
    let id_token = tokens.get("id_token").and_then(Value::as_str).ok_or_else(|| refused("The provider sent no ID token."))?;
    let expected = Expected { issuer, client_id: &p.client_id, nonce_hash, now };
    let keys = cache.keys(p, e, client, now, false).await?;
    let claims = match idtoken::validate(id_token, &keys, expected) {
        Err(IdTokenError::Jws(JwsError::UnknownKey)) => {
            let keys = cache.keys(p, e, client, now, true).await?;
            idtoken::validate(id_token, &keys, expected)
        }
        other => other,
    }
    .map_err(|err| {
        tracing::warn!(provider = p.name.as_str(), error = %err, "upstream ID token refused");
        refused(&format!("The provider's ID token was refused: {err}."))
    })?;
    let subject = str_claim(&claims, "sub").ok_or_else(|| refused("The ID token has no subject."))?;
    let mut profile = claims.clone();
    if str_claim(&claims, "email").is_none()
        && let Some(userinfo) = &e.userinfo
    {
        let info = client.get_json(userinfo, Some(access.expose()), e.allow_loopback).await.map_err(http_failure("userinfo endpoint"))?;
        let info = info.as_object().cloned().unwrap_or_default();
        // OpenID Connect Core §5.3.2: the userinfo `sub` must be the ID token's.
        if str_claim(&info, "sub").as_deref() == Some(subject.as_str()) {
            for k in ["email", "email_verified", "preferred_username"] {
                if let Some(v) = info.get(k) {
                    profile.insert(k.to_owned(), v.clone());
                }
            }
        }
    }
    let amr: Option<Vec<String>> = claims
        .get("amr")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect());
    let email = str_claim(&profile, "email");
    Ok(UpstreamUser {
        issuer: str_claim(&claims, "iss").unwrap_or_default(),
        subject,
        email_verified: email.is_some() && verified_claim(&profile),
        username_hints: [str_claim(&profile, "preferred_username"), email.clone()].into_iter().flatten().collect(),
        email,
        amr: upstream_amr(amr.as_deref()),
    })
}

/// The user of a plain OAuth 2.0 sign-in: `/user` (`id` or `sub` is the subject) and, when
/// configured, `/user/emails` (the `primary && verified` address).
pub(super) async fn oauth2_user(client: &dyn UpstreamClient, p: &ProviderRecord, e: &Endpoints, access: &UpstreamSecret) -> Result<UpstreamUser, CoreError> {
    let userinfo = e.userinfo.as_ref().ok_or_else(|| refused("The provider has no userinfo endpoint."))?;
    let info = client.get_json(userinfo, Some(access.expose()), e.allow_loopback).await.map_err(http_failure("userinfo endpoint"))?;
    let info = info.as_object().cloned().unwrap_or_default();
    let subject = match info.get("id").or_else(|| info.get("sub")) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(refused("The provider's user information has no id.")),
    };
    let (mut email, mut verified) = (str_claim(&info, "email"), verified_claim(&info));
    if let Some(emails) = &e.emails {
        let list = client.get_json(emails, Some(access.expose()), e.allow_loopback).await.map_err(http_failure("e-mail list"))?;
        let primary = list.as_array().and_then(|a| {
            a.iter().find(|m| m.get("primary").and_then(Value::as_bool) == Some(true) && m.get("verified").and_then(Value::as_bool) == Some(true))
        });
        match primary.and_then(|m| m.get("email")).and_then(Value::as_str) {
            Some(addr) => (email, verified) = (Some(addr.to_owned()), true),
            None => verified = false,
        }
    }
    Ok(UpstreamUser {
        issuer: p.kind.identity_issuer(),
        subject,
        email_verified: email.is_some() && verified,
        username_hints: [str_claim(&info, "login"), str_claim(&info, "preferred_username"), email.clone()].into_iter().flatten().collect(),
        email,
        amr: upstream_amr(None),
    })
}
