//! Back-channel logout delivery: due logout tokens are POSTed to the clients' URIs, up to
//! [`CONCURRENCY`] at a time, with exponential backoff between attempts. The HTTP client
//! follows no redirects, uses no proxy, and resolves names itself: unless
//! `[oauth] allow_private_backchannel` is set, a target whose address (an IP literal, or
//! any address its name resolves to when connecting) is private, loopback or link-local is
//! refused, so a client cannot make the server reach its internal network, also not by
//! re-pointing a name after registration (DNS rebinding).

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tessera_core::oauth::model::LogoutDelivery;
use tessera_core::oauth::provider::Provider;
use tessera_core::oauth::target::is_public;

/// Deliveries in flight at once (each waits at most 10 s).
pub const CONCURRENCY: usize = 8;

/// Most attempts per logout token (about a day with exponential backoff).
const MAX_ATTEMPTS: i64 = 12;

/// Resolves with the system resolver and keeps only public addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicOnly;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let refused: BoxError = format!("{host} resolves to no public address").into();
                return Err(refused);
            }
            Ok::<Addrs, BoxError>(Box::new(public.into_iter()))
        })
    }
}

/// The HTTP client for deliveries.
fn http_client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    if allow_private { builder.build() } else { builder.dns_resolver(PublicOnly).build() }
}

/// Whether `uri` names an IP address that is not public (names are checked by the resolver).
pub(crate) fn literal_private_target(uri: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(uri) else { return true };
    let host = url.host_str().unwrap_or("");
    host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| !is_public(ip))
}

/// Runs forever: every second, sends the due logout tokens.
pub async fn deliver_logout_tokens(provider: Provider) {
    let allow_private = provider.config().allow_private_backchannel;
    let client = match http_client(allow_private) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout disabled: no HTTP client");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = provider.clock().now();
        let due = match provider.store().due_logout_deliveries(now, 50).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "back-channel logout queue unreadable");
                continue;
            }
        };
        futures_util::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |d| deliver_one(&provider, &client, allow_private, d, now))
            .await;
    }
}

async fn deliver_one(provider: &Provider, client: &reqwest::Client, allow_private: bool, d: LogoutDelivery, now: time::OffsetDateTime) {
    let ok = if !allow_private && literal_private_target(&d.uri) {
        tracing::warn!(client_id = %d.client_id, "back-channel logout target is not a public address; not sent");
        false
    } else {
        let sent = client.post(&d.uri).form(&[("logout_token", d.logout_token.as_str())]).send().await;
        matches!(&sent, Ok(r) if r.status().is_success())
    };
    let result = if ok || d.attempts + 1 >= MAX_ATTEMPTS {
        if !ok {
            tracing::warn!(client_id = %d.client_id, "back-channel logout abandoned after {MAX_ATTEMPTS} attempts");
        }
        provider.store().finish_logout_delivery(d.id).await
    } else {
        let backoff = time::Duration::seconds(2_i64.saturating_pow(u32::try_from(d.attempts + 1).unwrap_or(16)).min(3600));
        tracing::info!(client_id = %d.client_id, attempt = d.attempts + 1, "back-channel logout failed; will retry");
        provider.store().retry_logout_delivery(d.id, now + backoff).await
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "back-channel logout queue could not be updated");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn literal_private_targets_are_recognised() {
        for uri in ["http://127.0.0.1:8080/b", "http://[::1]/b", "http://10.0.0.2/b", "http://169.254.169.254/b", "not a url"] {
            assert!(literal_private_target(uri), "{uri}");
        }
        for uri in ["https://rp.example/b", "https://8.8.8.8/b", "http://localhost/b"] {
            assert!(!literal_private_target(uri), "{uri} (names are left to the resolver)");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        let err = PublicOnly.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(err.to_string().contains("no public address"), "{err}");
    }
}
