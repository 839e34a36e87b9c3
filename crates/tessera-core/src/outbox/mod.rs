//! The transactional outbox: domain events are written in the same transaction as the change
//! that causes them (a session ended, every session of a user ended, credentials changed,
//! grants revoked), so a crash after the change cannot lose what must follow it. The
//! [`consumer`] applies them afterwards — right after the causing request, and from a
//! background job for whatever is left — at least once and idempotently: an event is marked
//! done in the transaction that makes its effects, or after effects that repeat harmlessly.
//!
//! This module holds the model and the ports; writers (the account flows) need nothing else.

pub mod consumer;

pub use crate::ids::OutboxId;
use crate::ids::{SessionHandle, UserId};
use crate::oauth::OAuthError;
use crate::oauth::model::{Grant, GrantId, NewSecurityEvent};
use crate::error::StoreError;
use async_trait::async_trait;
use time::OffsetDateTime;

/// What happened, as written to the outbox.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    /// One session ended (signed out, ended from the account page, timed out): its grants
    /// without `offline_access` are revoked and a `session-revoked` event is published.
    SessionEnded {
        /// Whose session.
        user: UserId,
        /// The session (the `sid` of its grants).
        session: SessionHandle,
    },
    /// Every session of a user ended (an administrator ended them): every grant of the user
    /// is revoked and a user-wide `session-revoked` event is published.
    AllSessionsEnded {
        /// The user.
        user: UserId,
    },
    /// The user's password changed: every grant is revoked and a `credential-change` event
    /// is published.
    CredentialsChanged {
        /// The user.
        user: UserId,
    },
    /// These grants were revoked (and published) by the transaction that wrote the event:
    /// their clients are sent back-channel logout tokens.
    GrantsRevoked {
        /// The grants as they were when revoked.
        grants: Vec<Grant>,
    },
}

/// A claimed outbox event.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    /// Its id.
    pub id: OutboxId,
    /// The event.
    pub event: DomainEvent,
    /// How many times it has been claimed, this time included.
    pub attempts: u32,
}

/// Which grants applying an event revokes: decided by the consumer, carried out by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// These grants (those still live).
    Grants(Vec<GrantId>),
    /// Every live grant of the user.
    EveryGrantOf(UserId),
}

/// The outbox's store port: claiming events and applying them. Events are written by the
/// store intents that cause them (ending sessions, changing passwords, disabling users).
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Claims event `id` until `lease_until`, unless it is done or another claim on it runs
    /// past `now`; the event if this call claimed it. Of concurrent claims, one wins.
    async fn claim_event(&self, id: OutboxId, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<Option<OutboxEntry>, StoreError>;
    /// Claims up to `limit` events written at or before `written_by` that are not done and
    /// not held by a claim running past `now`, oldest first (each claimed as by
    /// [`OutboxStore::claim_event`]).
    async fn claim_pending_events(
        &self,
        written_by: OffsetDateTime,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The live grants that came from session `sid`.
    async fn find_session_grants(&self, sid: SessionHandle) -> Result<Vec<Grant>, StoreError>;
    /// Applies a session-end event in one transaction (the event-log lock first): marks event
    /// `id` done — if it was done already, nothing else happens — revokes what `revoke`
    /// names (refresh tokens deleted, `token-revoked` events for live access tokens), appends
    /// `event`, and writes a [`DomainEvent::GrantsRevoked`] event for the grants it revoked.
    /// Returns that event's id, if there were any.
    async fn apply_revocation(
        &self,
        id: OutboxId,
        revoke: &Revocation,
        event: &NewSecurityEvent,
        now: OffsetDateTime,
    ) -> Result<Option<OutboxId>, StoreError>;
    /// Marks event `id` done (its effects are made); false if it was done already.
    async fn complete_event(&self, id: OutboxId) -> Result<bool, StoreError>;
}

/// The OAuth side's part in applying events: sending back-channel logout tokens.
#[async_trait]
pub trait LogoutQueue: Send + Sync + 'static {
    /// Queues signed logout tokens for the clients of `grants` that registered a
    /// back-channel logout URI.
    async fn queue_logouts(&self, grants: &[Grant]) -> Result<(), OAuthError>;
}

#[async_trait]
impl LogoutQueue for crate::oauth::provider::Provider {
    async fn queue_logouts(&self, grants: &[Grant]) -> Result<(), OAuthError> {
        self.queue_backchannel_logouts(grants).await
    }
}

/// Applies just-written events now: what the writers of events call after the change, so its
/// effects are in place when the request answers. Best effort: what fails is left to the
/// outbox job.
#[async_trait]
pub trait ApplyEvents: Send + Sync + 'static {
    /// Applies these events, and the events applying them writes.
    async fn apply_now(&self, ids: &[OutboxId]);
}
