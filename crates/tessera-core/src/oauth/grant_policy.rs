//! How long grants live, and what ends them.
//!
//! - Every grant has an absolute lifetime (`[oauth] grant_max_lifetime`, or the client's
//!   `grant_lifetime`) counted from its creation: a refresh token never outlives it, however
//!   often it is rotated.
//! - A grant without `offline_access` lives only as long as the session it came from: every
//!   way a session ends writes an outbox event in the same transaction, whose consumer
//!   revokes such grants (and publishes it on the revocation feed; see [`crate::outbox`]),
//!   and a refresh checks the session is still live anyway, so a revocation not yet applied
//!   cannot keep a chain alive.
//! - Disabling or deleting a user, or deleting a client, revokes their grants and publishes
//!   the revocation in the same transaction ([`LifecycleStore`]).

use crate::ids::{OutboxId, SessionHandle, UserId};
use crate::oauth::client::{Client, ClientId};
use crate::oauth::model::Grant;
use crate::oauth::scope::Scopes;
use crate::session::{Session, SessionPolicy};
use crate::error::StoreError;
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

/// The scope that lets a grant outlive its session.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Grant lifetime settings.
#[derive(Debug, Clone, Copy)]
pub struct GrantPolicy {
    /// Absolute lifetime of a grant, unless its client sets its own.
    pub max_lifetime: Duration,
    /// The session timeouts, to tell whether a grant's session still lives.
    pub sessions: SessionPolicy,
}

impl Default for GrantPolicy {
    fn default() -> Self {
        Self { max_lifetime: Duration::days(90), sessions: SessionPolicy::default() }
    }
}

impl GrantPolicy {
    /// The absolute lifetime of `client`'s grants.
    pub fn lifetime(&self, client: &Client) -> Duration {
        client
            .grant_lifetime
            .and_then(|s| i64::try_from(s).ok())
            .map_or(self.max_lifetime, Duration::seconds)
    }

    /// When a grant of `client` created at `created_at` ends, whatever its use.
    pub fn grant_expiry(&self, client: &Client, created_at: OffsetDateTime) -> OffsetDateTime {
        created_at.saturating_add(self.lifetime(client))
    }

    /// Whether `session` (of `user`) still lives at `now`.
    pub fn session_live(&self, session: Option<&Session>, user: UserId, now: OffsetDateTime) -> bool {
        session.is_some_and(|s| s.user_id == user && s.is_live(now, &self.sessions))
    }
}

/// Whether a grant with this scope outlives its session.
pub fn is_offline(scope: &str) -> bool {
    Scopes::parse(scope).is_ok_and(|s| s.contains(OFFLINE_ACCESS))
}

/// Store intents that end users, clients and sessions together with their grants. Each is one
/// transaction that also appends the revocation's security events (the event-log lock first).
#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// A session by its public handle (the `sid` of its grants and tokens).
    async fn find_session_by_handle(&self, handle: SessionHandle) -> Result<Option<Session>, StoreError>;
    /// Disables a user: ends every session, revokes every grant (refresh tokens deleted,
    /// access tokens revoked), appends a `session-revoked` event for the user and writes a
    /// grants-revoked outbox event (for back-channel logout); returns that event, if any
    /// grant was revoked. `NotFound` if there is no such user.
    async fn disable_user_revoking_grants(&self, id: UserId, now: OffsetDateTime) -> Result<Option<OutboxId>, StoreError>;
    /// Deletes a user after revoking their grants and access tokens the same way; returns
    /// the grants-revoked outbox event, if any. `NotFound` if there is no such user.
    async fn delete_user_revoking_grants(&self, id: UserId, now: OffsetDateTime) -> Result<Option<OutboxId>, StoreError>;
    /// Deletes a client after revoking its grants and access tokens (a `token-revoked` event
    /// per live access token); returns the grants. `NotFound` if there is no such client.
    async fn delete_client_revoking_grants(&self, id: &ClientId, now: OffsetDateTime) -> Result<Vec<Grant>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_is_read_from_the_scope() {
        assert!(is_offline("openid offline_access"));
        assert!(!is_offline("openid profile"));
        assert!(!is_offline("openid offline_accessx"));
    }

    #[test]
    fn sessions_of_other_users_or_timed_out_are_not_live() {
        let p = GrantPolicy::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let user = UserId::new();
        let s = Session {
            handle: SessionHandle::new(),
            user_id: user,
            created_at: now,
            last_seen_at: now,
            expires_at: now + Duration::days(1),
            auth_time: now,
            ip: None,
            user_agent: None,
            amr: vec![],
        };
        assert!(p.session_live(Some(&s), user, now));
        assert!(!p.session_live(Some(&s), UserId::new(), now));
        assert!(!p.session_live(Some(&s), user, now + Duration::days(2)));
        assert!(!p.session_live(Some(&s), user, now + p.sessions.idle_timeout));
        assert!(!p.session_live(None, user, now));
    }
}
