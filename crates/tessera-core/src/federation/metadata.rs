//! Provider metadata: the endpoints of a provider (from OpenID Connect discovery, checked
//! against the configured issuer, or from its configuration) and its signing keys (JWKS),
//! cached; an unknown `kid` refetches the keys at most once a minute.

use super::client::UpstreamClient;
use super::model::{ProviderId, ProviderKind, ProviderRecord, TENANT_PLACEHOLDER, check_upstream_url, is_loopback_host};
use crate::CoreError;
use crate::jose::VerifyingKey;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};
use url::Url;

/// How long discovery documents and keys are kept.
pub const METADATA_TTL: Duration = Duration::hours(1);
/// The least time between two fetches of a provider's keys forced by an unknown `kid`.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::seconds(60);

/// A provider's endpoints.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorization: Url,
    /// Token endpoint.
    pub token: Url,
    /// Userinfo endpoint.
    pub userinfo: Option<Url>,
    /// The address list (GitHub's `/user/emails`).
    pub emails: Option<Url>,
    /// JWKS (OpenID Connect).
    pub jwks_uri: Option<Url>,
    /// The discovered issuer (OpenID Connect).
    pub issuer: Option<String>,
    /// RFC 9207: the provider sends `iss` with its authorization responses.
    pub iss_parameter: bool,
    /// Use `client_secret_post` (the provider does not list `client_secret_basic`).
    pub secret_post: bool,
    /// Only loopback-configured providers may be reached on loopback addresses.
    pub allow_loopback: bool,
}

struct Cached<T> {
    value: T,
    fetched_at: OffsetDateTime,
}

/// The caches, keyed by provider id.
#[derive(Default)]
pub struct MetadataCache {
    endpoints: Mutex<HashMap<ProviderId, Cached<Endpoints>>>,
    keys: Mutex<HashMap<ProviderId, Cached<Vec<VerifyingKey>>>>,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetadataCache")
    }
}

fn unavailable(what: &str) -> impl FnOnce(super::client::UpstreamHttpError) -> CoreError + '_ {
    move |e| CoreError::Invalid(format!("The provider's {what} could not be fetched ({e})."))
}

impl MetadataCache {
    /// The provider's endpoints (discovered for OpenID Connect).
    pub async fn endpoints(&self, p: &ProviderRecord, client: &dyn UpstreamClient, now: OffsetDateTime) -> Result<Endpoints, CoreError> {
        if let Ok(map) = self.endpoints.lock()
            && let Some(c) = map.get(&p.id).filter(|c| now - c.fetched_at < METADATA_TTL)
        {
            return Ok(c.value.clone());
        }
        let e = match &p.kind {
            ProviderKind::OAuth2 { authorization_endpoint, token_endpoint, userinfo_endpoint, emails_endpoint } => Endpoints {
                authorization: authorization_endpoint.clone(),
                token: token_endpoint.clone(),
                userinfo: Some(userinfo_endpoint.clone()),
                emails: emails_endpoint.clone(),
                jwks_uri: None,
                issuer: None,
                iss_parameter: false,
                secret_post: true,
                allow_loopback: is_loopback_host(authorization_endpoint),
            },
            ProviderKind::Oidc { issuer } => discover(issuer, client).await?,
        };
        if let Ok(mut map) = self.endpoints.lock() {
            map.insert(p.id, Cached { value: e.clone(), fetched_at: now });
        }
        Ok(e)
    }

    /// The provider's keys; `refetch` (an unknown `kid`) fetches them again unless that
    /// happened within [`JWKS_REFETCH_INTERVAL`].
    pub async fn keys(&self, p: &ProviderRecord, e: &Endpoints, client: &dyn UpstreamClient, now: OffsetDateTime, refetch: bool) -> Result<Vec<VerifyingKey>, CoreError> {
        if let Ok(map) = self.keys.lock()
            && let Some(c) = map.get(&p.id)
        {
            let age = now - c.fetched_at;
            if age < METADATA_TTL && (!refetch || age < JWKS_REFETCH_INTERVAL) {
                return Ok(c.value.clone());
            }
        }
        let uri = e.jwks_uri.as_ref().ok_or_else(|| CoreError::Invalid("The provider publishes no keys (jwks_uri).".into()))?;
        let doc = client.get_json(uri, None, e.allow_loopback).await.map_err(unavailable("keys"))?;
        let keys: Vec<VerifyingKey> = doc
            .get("keys")
            .and_then(Value::as_array)
            .map(|ks| {
                ks.iter()
                    .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
                    .filter_map(|k| VerifyingKey::from_jwk(k).ok())
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(mut map) = self.keys.lock() {
            map.insert(p.id, Cached { value: keys.clone(), fetched_at: now });
        }
        Ok(keys)
    }

    /// Forgets a provider (deleted or changed).
    pub fn forget(&self, id: ProviderId) {
        if let Ok(mut m) = self.endpoints.lock() {
            m.remove(&id);
        }
        if let Ok(mut m) = self.keys.lock() {
            m.remove(&id);
        }
    }
}

/// OpenID Connect discovery: `<issuer>/.well-known/openid-configuration`, whose `issuer`
/// must be the configured one exactly (a multi-tenant template is discovered as `common`).
async fn discover(issuer: &str, client: &dyn UpstreamClient) -> Result<Endpoints, CoreError> {
    let base = issuer.replace(TENANT_PLACEHOLDER, "common");
    let url = check_upstream_url(&format!("{}/.well-known/openid-configuration", base.trim_end_matches('/')))?;
    let allow_loopback = is_loopback_host(&url);
    let doc = client.get_json(&url, None, allow_loopback).await.map_err(unavailable("discovery document"))?;
    let s = |k: &str| doc.get(k).and_then(Value::as_str);
    if s("issuer") != Some(issuer) {
        return Err(CoreError::Invalid("The provider's discovery document names another issuer.".into()));
    }
    let endpoint = |k: &str| -> Result<Url, CoreError> {
        check_upstream_url(s(k).ok_or_else(|| CoreError::Invalid(format!("The provider's discovery document has no {k}.")))?)
    };
    let methods: Vec<&str> = doc
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["client_secret_basic"]);
    Ok(Endpoints {
        authorization: endpoint("authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
        userinfo: s("userinfo_endpoint").map(check_upstream_url).transpose()?,
        emails: None,
        jwks_uri: Some(endpoint("jwks_uri")?),
        issuer: Some(issuer.to_owned()),
        iss_parameter: doc.get("authorization_response_iss_parameter_supported").and_then(Value::as_bool) == Some(true),
        secret_post: !methods.contains(&"client_secret_basic") && methods.contains(&"client_secret_post"),
        allow_loopback,
    })
}
