//! Who may see which token and which security event. Introspection answers `active: false`
//! and the revocation feed stays silent unless the caller is concerned:
//! - an access token: its client, or a resource server in its audience (a client whose id
//!   or registered `resource` is in `aud`);
//! - a refresh token: its client only (resource servers never hold refresh tokens);
//! - a feed event: the clients (or audience resource servers) of the grants it concerns — a
//!   `token-revoked` event the grant of that access token, a `session-revoked` event for one
//!   session the grants made in that session, a user-wide `session-revoked` or
//!   `credential-change` event every grant of that user (revoked or not);
//! - a client registered with `introspection: true` sees every token and every event.

use crate::jose::JwsAlg;
use crate::oauth::OAuthError;
use crate::oauth::client::{Client, ClientId};
use crate::oauth::provider::{Provider, event_body, random_id};
use crate::store::StoreError;
use serde_json::{Value, json};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

/// Whether `caller` may learn about an access token of `client_id` for `audience`.
pub fn may_see_token(caller: &Client, client_id: &str, audience: &[String]) -> bool {
    caller.introspection
        || caller.id.as_str() == client_id
        || audience.iter().any(|a| a == caller.id.as_str() || caller.resource.as_deref() == Some(a.as_str()))
}

/// Whether `caller` may learn about a refresh token bound to `client_id`.
pub fn may_see_refresh_token(caller: &Client, client_id: &ClientId) -> bool {
    caller.introspection || caller.id == *client_id
}

/// The `aud` claim as a list.
pub fn audience_of(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A grant a security event concerns: its client and audience.
#[derive(Debug, Clone)]
pub struct EventParty {
    /// The event's position in the log.
    pub seq: i64,
    /// The grant's client.
    pub client_id: ClientId,
    /// The grant's audience.
    pub audience: Vec<String>,
}

/// The store's answer to "whom does this event concern?".
#[async_trait::async_trait]
pub trait VisibilityStore: Send + Sync + 'static {
    /// For each event with `after < seq <= until`, the grants it concerns (see the module
    /// documentation); events about nothing stored (e.g. a client-credentials token) have none.
    async fn security_event_parties(&self, after: i64, until: i64) -> Result<Vec<EventParty>, StoreError>;
}

/// A batch of the revocation feed for one subscriber.
#[derive(Debug, Default)]
pub struct FeedBatch {
    /// Visible events: (sequence number, signed Security Event Token).
    pub events: Vec<(i64, String)>,
    /// The last sequence number read (visible or not): where the next read starts.
    pub cursor: Option<i64>,
}

impl Provider {
    /// Security events after `after` that concern `client`, each as (sequence number, signed
    /// Security Event Token). Without `after`, replays the window in which tokens issued
    /// before the subscription may still be valid.
    pub async fn security_events(&self, client: &Client, after: Option<i64>, limit: u32) -> Result<FeedBatch, OAuthError> {
        let now = self.clock().now();
        let config = self.config();
        let since = match after {
            Some(_) => OffsetDateTime::UNIX_EPOCH,
            None => now - config.access_token_ttl.max(config.id_token_ttl) - Duration::minutes(5),
        };
        let events = self.store().security_events_after(after.unwrap_or(0), since, limit).await?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(FeedBatch { events: Vec::new(), cursor: after });
        };
        let mut visible: HashMap<i64, bool> = HashMap::new();
        if !client.introspection {
            for p in self.store().security_event_parties(first.seq.saturating_sub(1), last.seq).await? {
                let seen = visible.entry(p.seq).or_default();
                *seen = *seen || may_see_token(client, p.client_id.as_str(), &p.audience);
            }
        }
        let keys = self.keys().current();
        let signer = keys.signer(JwsAlg::EdDSA)?;
        let mut out = Vec::with_capacity(events.len());
        for e in events.iter().filter(|e| client.introspection || visible.get(&e.seq).copied().unwrap_or(false)) {
            let set = json!({
                "iss": config.issuer,
                "aud": client.id,
                "iat": now.unix_timestamp(),
                "jti": random_id()?,
                "events": event_body(e),
            });
            out.push((e.seq, signer.sign_jwt("secevent+jwt", &set)?));
        }
        Ok(FeedBatch { events: out, cursor: Some(last.seq) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client::ClientRegistration;

    fn client(introspection: bool, resource: Option<&str>) -> Client {
        ClientRegistration {
            name: "c".into(),
            redirect_uris: vec!["https://c/cb".into()],
            introspection,
            resource: resource.map(str::to_owned),
            ..Default::default()
        }
        .validate(OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .client
    }

    #[test]
    fn tokens_are_visible_to_their_client_their_audience_and_flagged_clients() {
        let aud = vec!["https://api.example".to_owned()];
        let me = client(false, None);
        assert!(may_see_token(&me, me.id.as_str(), &aud));
        assert!(!may_see_token(&me, "someone-else", &aud));
        assert!(may_see_token(&me, "someone-else", &[me.id.to_string()]));
        assert!(may_see_token(&client(false, Some("https://api.example")), "someone-else", &aud));
        assert!(!may_see_token(&client(false, Some("https://other.example")), "someone-else", &aud));
        assert!(may_see_token(&client(true, None), "someone-else", &aud));
        assert!(!may_see_refresh_token(&client(false, Some("https://api.example")), &ClientId::new("someone-else")));
        assert!(may_see_refresh_token(&client(true, None), &ClientId::new("someone-else")));
    }
}
