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

use crate::oauth::client::{Client, ClientId};
use crate::error::StoreError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client::ClientRegistration;
    use time::OffsetDateTime;

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
