//! `HttpUpstream`, the HTTP implementation of core's federation port `UpstreamClient`:
//! discovery, JWKS, token and userinfo requests to upstream providers. No redirects, no
//! proxy, connect and total timeouts, bodies capped at [`MAX_BODY_BYTES`], and the
//! back-channel client's resolver that keeps only public addresses — loopback is reached
//! only for providers configured on a loopback address (development and tests).

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::time::Duration;
use tessera_core::federation::model::{Url, is_loopback_host};
use tessera_core::federation::{UpstreamClient, UpstreamHttpError};

/// Largest upstream response read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The client.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    public: reqwest::Client,
    loopback: reqwest::Client,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent("tessera")
}

impl HttpUpstream {
    /// Builds both clients.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self { public: builder().dns_resolver(crate::backchannel::PublicOnly).build()?, loopback: builder().build()? })
    }

    fn pick(&self, url: &Url, allow_loopback: bool) -> Result<&reqwest::Client, UpstreamHttpError> {
        if allow_loopback && is_loopback_host(url) {
            return Ok(&self.loopback);
        }
        if crate::backchannel::literal_private_target(url.as_str()) {
            return Err(UpstreamHttpError::Unreachable("not a public address".into()));
        }
        Ok(&self.public)
    }
}

/// Builds the federation service: the store, this HTTP client, the account flows (through
/// which sessions are established), and client secrets sealed with the `upstream-secrets`
/// purpose key. The credential vault's `TokenKeeper` is added by the caller.
pub fn federation(
    store: std::sync::Arc<tessera_store::SqlStore>,
    accounts: &tessera_core::accounts::Accounts,
    clock: tessera_core::clock::SharedClock,
    issuer: &str,
    master_key: &[u8; 32],
) -> anyhow::Result<tessera_core::federation::Federation> {
    let sealer = tessera_core::jose::KeySealer::new(&crate::keys::derive(master_key, "upstream-secrets")?)?;
    let settings = tessera_core::federation::FederationSettings { issuer: issuer.to_owned(), sealer: std::sync::Arc::new(sealer) };
    Ok(tessera_core::federation::Federation::new(
        store,
        std::sync::Arc::new(HttpUpstream::new()?),
        std::sync::Arc::new(accounts.clone()),
        clock,
        settings,
    ))
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn read_json(resp: reqwest::Response) -> Result<Value, UpstreamHttpError> {
    let status = resp.status();
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| UpstreamHttpError::Unreachable(e.to_string()))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(UpstreamHttpError::BadBody("too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        return Err(UpstreamHttpError::Status { status: status.as_u16(), body: json.filter(Value::is_object) });
    }
    json.ok_or_else(|| UpstreamHttpError::BadBody("not JSON".into()))
}

fn unreachable(e: reqwest::Error) -> UpstreamHttpError {
    UpstreamHttpError::Unreachable(e.without_url().to_string())
}

#[async_trait]
impl UpstreamClient for HttpUpstream {
    async fn get_json(&self, url: &Url, bearer: Option<&str>, allow_loopback: bool) -> Result<Value, UpstreamHttpError> {
        let mut req = self.pick(url, allow_loopback)?.get(url.as_str()).header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        read_json(req.send().await.map_err(unreachable)?).await
    }

    async fn post_form(&self, url: &Url, form: &[(&str, &str)], basic: Option<(&str, &str)>, allow_loopback: bool) -> Result<Value, UpstreamHttpError> {
        let mut req = self.pick(url, allow_loopback)?.post(url.as_str()).header(reqwest::header::ACCEPT, "application/json").form(form);
        if let Some((id, secret)) = basic {
            let creds = STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)));
            req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {creds}"));
        }
        read_json(req.send().await.map_err(unreachable)?).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(form_encode("plain-id_1.x"), "plain-id_1.x");
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_the_provider_is_on_loopback() {
        let c = HttpUpstream::new().unwrap();
        let url = Url::parse("http://127.0.0.1:9/x").unwrap();
        assert!(matches!(c.get_json(&url, None, false).await, Err(UpstreamHttpError::Unreachable(_))));
        let meta = Url::parse("http://169.254.169.254/latest").unwrap();
        assert!(matches!(c.get_json(&meta, None, true).await, Err(UpstreamHttpError::Unreachable(_))));
    }
}

/// The vault's refresher, bound after start-up: federation needs the account flows, which
/// need the outbox consumer, which needs the provider, which holds the vault — so the vault
/// is built first and its refresher is pointed at federation once federation exists.
#[derive(Clone, Default)]
pub struct LateRefresher(std::sync::Arc<std::sync::OnceLock<tessera_core::federation::Federation>>);

impl LateRefresher {
    /// Points the refresher at `federation` (the first call wins).
    pub fn set(&self, federation: tessera_core::federation::Federation) {
        let _ = self.0.set(federation);
    }
}

#[async_trait::async_trait]
impl tessera_core::upstream::UpstreamRefresher for LateRefresher {
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &tessera_core::upstream::UpstreamSecret,
    ) -> Result<tessera_core::upstream::UpstreamTokenSet, tessera_core::CoreError> {
        match self.0.get() {
            Some(federation) => federation.refresh(provider, refresh_token).await,
            None => Err(tessera_core::CoreError::Internal("upstream sign-in is not set up yet".into())),
        }
    }
}
