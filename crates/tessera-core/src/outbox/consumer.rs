//! Applies outbox events: revokes the grants of ended sessions (deciding here which grants
//! survive: `offline_access` ones outlive a single session's end), publishes the security
//! events of the revocation feed, and queues back-channel logout tokens.
//!
//! Every event is claimed first (one claimant at a time, across nodes; a claim lapses after
//! [`LEASE`], so a crashed claimant's events are taken up again) and applied at least once:
//! - session-end events are applied by one store transaction that also marks them done, so
//!   a second application finds them done and changes nothing;
//! - a grants-revoked event queues the logout tokens, then is marked done; only a crash
//!   between the two queues them twice (back-channel logout is at-least-once delivery).

use crate::clock::SharedClock;
use crate::oauth::OAuthError;
use crate::oauth::grant_policy::is_offline;
use crate::oauth::model::{NewSecurityEvent, SecurityEventKind};
use crate::outbox::{ApplyEvents, DomainEvent, LogoutQueue, OutboxEntry, OutboxId, OutboxStore, Revocation};
use crate::error::StoreError;
use async_trait::async_trait;
use std::sync::Arc;
use time::Duration;

/// How long a claim holds an event: the consumer that claimed it must finish by then, or
/// another one takes it up (a crashed node's events are applied after this).
pub const LEASE: Duration = Duration::seconds(30);

/// How old an event must be before the outbox job takes it: younger ones are the writing
/// request's to apply (it does so right after writing them).
pub const SETTLE: Duration = Duration::seconds(5);

/// How many events one claim of pending events takes.
const BATCH: u32 = 100;

/// Why applying an event failed (it is retried once its claim lapses).
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Logout(#[from] OAuthError),
}

/// The outbox consumer.
#[derive(Clone)]
pub struct OutboxConsumer {
    store: Arc<dyn OutboxStore>,
    logouts: Arc<dyn LogoutQueue>,
    clock: SharedClock,
}

impl std::fmt::Debug for OutboxConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxConsumer")
    }
}

impl OutboxConsumer {
    /// A consumer applying events through `store`, sending logouts through `logouts`.
    pub fn new(store: Arc<dyn OutboxStore>, logouts: Arc<dyn LogoutQueue>, clock: SharedClock) -> Self {
        Self { store, logouts, clock }
    }

    /// One pass of the outbox job: claims the events written at least `settle` ago that
    /// nobody holds (younger ones are left to the request that wrote them), applies them and
    /// what they lead to; returns how many were applied. Failures are logged and left for a
    /// later pass; only a failure to claim is an error.
    pub async fn apply_pending(&self, settle: Duration) -> Result<u64, StoreError> {
        let mut applied = 0;
        loop {
            let now = self.clock.now();
            let batch = self.store.claim_pending_events(now - settle, now, now + LEASE, BATCH).await?;
            if batch.is_empty() {
                return Ok(applied);
            }
            for entry in batch {
                applied += self.apply_claimed(entry).await;
            }
        }
    }

    /// Applies a claimed event and then the events it leads to; returns how many were applied.
    async fn apply_claimed(&self, first: OutboxEntry) -> u64 {
        let mut applied = 0;
        let mut next = Some(first);
        while let Some(entry) = next.take() {
            let (id, attempts) = (entry.id, entry.attempts);
            match self.apply(entry).await {
                Ok(follow_up) => {
                    applied += 1;
                    if let Some(f) = follow_up {
                        next = self.claim(f).await;
                    }
                }
                Err(e) => tracing::error!(event = %id, attempts, error = %e, "outbox event could not be applied; it will be retried"),
            }
        }
        applied
    }

    async fn claim(&self, id: OutboxId) -> Option<OutboxEntry> {
        let now = self.clock.now();
        match self.store.claim_event(id, now, now + LEASE).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::error!(event = %id, error = %e, "outbox event could not be claimed; the outbox job will apply it");
                None
            }
        }
    }

    /// Applies one claimed event; returns the event it wrote, if any.
    async fn apply(&self, entry: OutboxEntry) -> Result<Option<OutboxId>, ApplyError> {
        let now = self.clock.now();
        let (revoke, event) = match entry.event {
            DomainEvent::SessionEnded { user, session } => {
                // Grants with `offline_access` outlive the session they came from.
                let grants = self.store.find_session_grants(session).await?;
                let ids = grants.iter().filter(|g| !is_offline(&g.scope)).map(|g| g.id).collect();
                let event = NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: user.to_string(), session: Some(session.to_string()) };
                (Revocation::Grants(ids), event)
            }
            DomainEvent::AllSessionsEnded { user } => (
                Revocation::EveryGrantOf(user),
                NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: user.to_string(), session: None },
            ),
            DomainEvent::CredentialsChanged { user } => (
                Revocation::EveryGrantOf(user),
                NewSecurityEvent { kind: SecurityEventKind::CredentialChange, subject: user.to_string(), session: None },
            ),
            DomainEvent::GrantsRevoked { grants } => {
                self.logouts.queue_logouts(&grants).await?;
                self.store.complete_event(entry.id).await?;
                return Ok(None);
            }
        };
        Ok(self.store.apply_revocation(entry.id, &revoke, &event, now).await?)
    }
}

#[async_trait]
impl ApplyEvents for OutboxConsumer {
    async fn apply_now(&self, ids: &[OutboxId]) {
        for id in ids {
            if let Some(entry) = self.claim(*id).await {
                self.apply_claimed(entry).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::{SessionHandle, UserId};
    use crate::oauth::client::ClientId;
    use crate::oauth::model::{Grant, GrantId};
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use time::OffsetDateTime;

    /// An outbox in memory: events with their lease, the grants of one session, and what
    /// was applied.
    #[derive(Default)]
    struct Memory {
        events: Mutex<BTreeMap<i64, (DomainEvent, Option<OffsetDateTime>, u32)>>,
        session_grants: Vec<Grant>,
        applied: Mutex<Vec<(Revocation, NewSecurityEvent)>>,
    }

    #[async_trait]
    impl OutboxStore for Memory {
        async fn claim_event(&self, id: OutboxId, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<Option<OutboxEntry>, StoreError> {
            let mut events = self.events.lock().unwrap();
            let Some((event, claimed, attempts)) = events.get_mut(&id.get()) else { return Ok(None) };
            if claimed.is_some_and(|c| c > now) {
                return Ok(None);
            }
            *claimed = Some(lease_until);
            *attempts += 1;
            Ok(Some(OutboxEntry { id, event: event.clone(), attempts: *attempts }))
        }
        async fn claim_pending_events(&self, _: OffsetDateTime, now: OffsetDateTime, lease_until: OffsetDateTime, _: u32) -> Result<Vec<OutboxEntry>, StoreError> {
            let ids: Vec<i64> = self.events.lock().unwrap().keys().copied().collect();
            let mut claimed = Vec::new();
            for id in ids {
                claimed.extend(self.claim_event(OutboxId::new(id), now, lease_until).await?);
            }
            Ok(claimed)
        }
        async fn find_session_grants(&self, sid: SessionHandle) -> Result<Vec<Grant>, StoreError> {
            Ok(self.session_grants.iter().filter(|g| g.sid == Some(sid)).cloned().collect())
        }
        async fn apply_revocation(&self, id: OutboxId, revoke: &Revocation, event: &NewSecurityEvent, _: OffsetDateTime) -> Result<Option<OutboxId>, StoreError> {
            let mut events = self.events.lock().unwrap();
            if events.remove(&id.get()).is_none() {
                return Ok(None);
            }
            self.applied.lock().unwrap().push((revoke.clone(), event.clone()));
            let Revocation::Grants(ids) = revoke else { return Ok(None) };
            let grants: Vec<Grant> = self.session_grants.iter().filter(|g| ids.contains(&g.id)).cloned().collect();
            events.insert(100 + id.get(), (DomainEvent::GrantsRevoked { grants }, None, 0));
            Ok(Some(OutboxId::new(100 + id.get())))
        }
        async fn complete_event(&self, id: OutboxId) -> Result<bool, StoreError> {
            Ok(self.events.lock().unwrap().remove(&id.get()).is_some())
        }
    }

    /// Records logouts, or refuses them all.
    #[derive(Default)]
    struct Logouts {
        sent: Mutex<Vec<GrantId>>,
        refuse: bool,
    }

    #[async_trait]
    impl LogoutQueue for Logouts {
        async fn queue_logouts(&self, grants: &[Grant]) -> Result<(), OAuthError> {
            if self.refuse {
                return Err(OAuthError::ServerError("no signing key".into()));
            }
            self.sent.lock().unwrap().extend(grants.iter().map(|g| g.id));
            Ok(())
        }
    }

    fn grant(user: UserId, sid: SessionHandle, scope: &str) -> Grant {
        let t = OffsetDateTime::UNIX_EPOCH;
        Grant {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            client_id: ClientId::new("rp"),
            scope: scope.into(),
            sid: Some(sid),
            auth_time: t,
            amr: vec![],
            acr: None,
            audience: vec![],
            created_at: t,
            revoked_at: None,
        }
    }

    fn setup(refuse: bool) -> (Arc<Memory>, Arc<Logouts>, OutboxConsumer, ManualClock, Vec<Grant>, UserId, SessionHandle) {
        let (user, sid) = (UserId::new(), SessionHandle::new());
        let grants = vec![grant(user, sid, "openid"), grant(user, sid, "openid offline_access"), grant(user, SessionHandle::new(), "openid")];
        let store = Arc::new(Memory { session_grants: grants.clone(), ..Memory::default() });
        store.events.lock().unwrap().insert(1, (DomainEvent::SessionEnded { user, session: sid }, None, 0));
        let logouts = Arc::new(Logouts { refuse, ..Logouts::default() });
        let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH + Duration::days(1000));
        let consumer = OutboxConsumer::new(store.clone(), logouts.clone(), Arc::new(clock.clone()));
        (store, logouts, consumer, clock, grants, user, sid)
    }

    #[tokio::test]
    async fn a_session_end_revokes_its_grants_but_not_offline_ones_then_logs_them_out() {
        let (store, logouts, consumer, _, grants, user, sid) = setup(false);
        consumer.apply_now(&[OutboxId::new(1)]).await;
        let applied = store.applied.lock().unwrap().clone();
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].0, Revocation::Grants(vec![grants[0].id]), "offline_access outlives the session; other sessions are not touched");
        assert_eq!((applied[0].1.kind, applied[0].1.subject.clone(), applied[0].1.session.clone()), (SecurityEventKind::SessionRevoked, user.to_string(), Some(sid.to_string())));
        assert_eq!(*logouts.sent.lock().unwrap(), vec![grants[0].id]);
        assert!(store.events.lock().unwrap().is_empty(), "both events done");
        // Applying again changes nothing.
        consumer.apply_now(&[OutboxId::new(1)]).await;
        assert_eq!(store.applied.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_event_waits_for_its_lease_then_the_job_retries_it() {
        let (store, _, consumer, clock, _, _, _) = setup(true);
        consumer.apply_now(&[OutboxId::new(1)]).await;
        assert_eq!(store.applied.lock().unwrap().len(), 1, "revoked and published");
        assert_eq!(store.events.lock().unwrap().len(), 1, "the logout event is left");
        assert_eq!(consumer.apply_pending(Duration::ZERO).await.unwrap(), 0, "still claimed");
        clock.advance(LEASE);
        assert_eq!(consumer.apply_pending(Duration::ZERO).await.unwrap(), 0, "claimed again, and failed again");
        assert_eq!(store.events.lock().unwrap().values().next().map(|e| e.2), Some(2));
    }

    #[tokio::test]
    async fn user_wide_events_revoke_every_grant() {
        let (store, _, consumer, _, _, user, _) = setup(false);
        store.events.lock().unwrap().insert(2, (DomainEvent::CredentialsChanged { user }, None, 0));
        store.events.lock().unwrap().insert(3, (DomainEvent::AllSessionsEnded { user }, None, 0));
        assert_eq!(consumer.apply_pending(Duration::ZERO).await.unwrap(), 4, "three events and one logout event");
        let applied: Vec<_> = store.applied.lock().unwrap().iter().map(|(r, e)| (r.clone(), e.kind, e.session.clone())).collect();
        assert_eq!(
            applied[1..],
            [
                (Revocation::EveryGrantOf(user), SecurityEventKind::CredentialChange, None),
                (Revocation::EveryGrantOf(user), SecurityEventKind::SessionRevoked, None)
            ]
        );
    }
}
