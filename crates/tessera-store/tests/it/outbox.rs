//! The outbox on both backends: ending sessions writes events in the same transaction; a
//! claim is won once, also under concurrency; applying an event revokes what the consumer
//! decided (offline grants survive a single session's end), publishes it and writes the
//! back-channel logout event, exactly once however often it is applied.

use crate::oauth::{grant_revoked_at, live_grant, stored_client};
use crate::support::{create, now, start_session};
use std::sync::{Arc, Mutex};
use tessera_core::clock::ManualClock;
use tessera_core::ids::{OutboxId, SessionHandle};
use tessera_core::oauth::OAuthError;
use tessera_core::oauth::grant_policy::LifecycleStore;
use tessera_core::oauth::model::{Grant, GrantId, NewSecurityEvent, SecurityEventKind};
use tessera_core::outbox::consumer::{LEASE, OutboxConsumer};
use tessera_core::outbox::{ApplyEvents, DomainEvent, LogoutQueue, OutboxStore, Revocation};
use tessera_core::store::{OAuthStore, Store};
use tessera_testkit::TestDb;
use time::{Duration, OffsetDateTime};

tessera_testkit::backend_tests!(
    ending_sessions_writes_events_in_the_same_transaction,
    an_event_is_claimed_once_until_its_lease_lapses,
    concurrent_claims_have_one_winner,
    session_revocation_skips_offline_grants,
    user_revocation_revokes_every_grant,
    a_deleted_users_grants_reach_back_channel_logout,
);

/// Records the grants it was asked to send logout tokens for.
#[derive(Default)]
struct Logouts(Mutex<Vec<GrantId>>);

#[async_trait::async_trait]
impl LogoutQueue for Logouts {
    async fn queue_logouts(&self, grants: &[Grant]) -> Result<(), OAuthError> {
        self.0.lock().unwrap().extend(grants.iter().map(|g| g.id));
        Ok(())
    }
}

fn consumer(db: &TestDb, logouts: &Arc<Logouts>) -> OutboxConsumer {
    OutboxConsumer::new(db.store.clone(), logouts.clone(), Arc::new(ManualClock::new(now())))
}

fn sorted(mut ids: Vec<GrantId>) -> Vec<GrantId> {
    ids.sort_unstable();
    ids
}

async fn security_events(db: &TestDb) -> Vec<(SecurityEventKind, String, Option<String>)> {
    let events = db.store.security_events_after(0, OffsetDateTime::UNIX_EPOCH, 1000).await.unwrap();
    events.into_iter().filter(|e| e.kind != SecurityEventKind::TokenRevoked).map(|e| (e.kind, e.subject, e.session)).collect()
}

async fn ending_sessions_writes_events_in_the_same_transaction(db: TestDb) {
    let store = db.dyn_store();
    let alice = create(store.as_ref(), "alice", None).await;
    let (t1, s1) = start_session(store.as_ref(), alice.id).await;
    let (_, s2) = start_session(store.as_ref(), alice.id).await;
    let (_, s3) = start_session(store.as_ref(), alice.id).await;
    let t = now();

    let (ended, e1) = store.delete_session(&t1.hash(), t).await.unwrap().expect("ended");
    assert_eq!(ended.handle, s1.session.handle);
    let e2 = store.delete_user_session(alice.id, s2.session.handle, t).await.unwrap().expect("ended");
    assert!(store.delete_user_session(alice.id, s2.session.handle, t).await.unwrap().is_none(), "no event for nothing ended");
    let (n, e3) = store.change_password(alice.id, "$argon2id$new", Some(&s3.id_hash), t).await.unwrap();
    assert_eq!(n, 0, "the named session is kept");
    let (n, e4) = store.delete_user_sessions(alice.id, t).await.unwrap();
    assert_eq!(n, 1);

    let claimed = db.store.claim_pending_events(t, t, t + LEASE, 100).await.unwrap();
    let ids: Vec<OutboxId> = claimed.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![e1, e2, e3, e4], "in write order");
    assert!(matches!(claimed[0].event, DomainEvent::SessionEnded { user, session } if user == alice.id && session == s1.session.handle));
    assert!(matches!(claimed[1].event, DomainEvent::SessionEnded { session, .. } if session == s2.session.handle));
    assert!(matches!(claimed[2].event, DomainEvent::CredentialsChanged { user } if user == alice.id));
    assert!(matches!(claimed[3].event, DomainEvent::AllSessionsEnded { user } if user == alice.id));
    assert!(claimed.iter().all(|e| e.attempts == 1));

    // Timed-out sessions: one event each; events not yet `written_by` are not taken.
    let (_, old) = start_session(store.as_ref(), alice.id).await;
    let later = t + Duration::days(15);
    let expired = store.delete_expired_sessions(later, later - Duration::hours(8)).await.unwrap();
    assert_eq!(expired.len(), 1);
    // (The four above are still held by their claims until `t + LEASE`.)
    assert!(db.store.claim_pending_events(t, t, t + LEASE, 100).await.unwrap().is_empty());
    let claimed = db.store.claim_pending_events(later, t, t + LEASE, 100).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(matches!(claimed[0].event, DomainEvent::SessionEnded { session, .. } if session == old.session.handle));

    // A failed change writes nothing.
    assert!(store.change_password(tessera_core::ids::UserId::new(), "x", None, later).await.is_err());
    let lapsed = later + LEASE;
    assert_eq!(db.store.claim_pending_events(later, lapsed, lapsed + LEASE, 100).await.unwrap().len(), 5, "the five events, leases lapsed");
}

async fn an_event_is_claimed_once_until_its_lease_lapses(db: TestDb) {
    let store = db.dyn_store();
    let alice = create(store.as_ref(), "alice", None).await;
    let t = now();
    let (_, event) = store.delete_user_sessions(alice.id, t).await.unwrap();

    let first = db.store.claim_event(event, t, t + LEASE).await.unwrap().expect("claimed");
    assert_eq!((first.id, first.attempts), (event, 1));
    assert!(db.store.claim_event(event, t, t + LEASE).await.unwrap().is_none(), "held by the first claim");
    assert!(db.store.claim_pending_events(t, t, t + LEASE, 100).await.unwrap().is_empty());
    // The claimant crashed: once its lease lapses another takes the event up.
    let later = t + LEASE;
    let second = db.store.claim_event(event, later, later + LEASE).await.unwrap().expect("claimed again");
    assert_eq!(second.attempts, 2);

    // Done is done: completed events are not claimed again.
    assert!(db.store.complete_event(event).await.unwrap());
    assert!(!db.store.complete_event(event).await.unwrap());
    let much_later = later + Duration::days(1);
    assert!(db.store.claim_event(event, much_later, much_later + LEASE).await.unwrap().is_none());
}

async fn concurrent_claims_have_one_winner(db: TestDb) {
    let store = db.dyn_store();
    let alice = create(store.as_ref(), "alice", None).await;
    let t = now();
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(store.delete_user_sessions(alice.id, t).await.unwrap().1);
    }
    // Twenty consumers (nodes) claim at once, one by id and the others by batch.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = db.store.clone();
        let first = events[0];
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                s.claim_event(first, t, t + LEASE).await.unwrap().into_iter().map(|e| e.id).collect::<Vec<_>>()
            } else {
                s.claim_pending_events(t, t, t + LEASE, 100).await.unwrap().into_iter().map(|e| e.id).collect()
            }
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    won.sort_unstable();
    assert_eq!(won, events, "every event claimed exactly once");
}

async fn session_revocation_skips_offline_grants(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let (token, s) = start_session(db.store.as_ref(), user.id).await;
    let sid = s.session.handle;
    let other_sid = SessionHandle::new();
    let (online, online_rt, online_at) = live_grant(&db, &c, user.id, Some(sid), "openid profile").await;
    let (offline, offline_rt, offline_at) = live_grant(&db, &c, user.id, Some(sid), "openid offline_access").await;
    // Scope words that merely contain "offline_access" do not count as it.
    let (lookalike, lookalike_rt, _) = live_grant(&db, &c, user.id, Some(sid), "openid offline_accessory").await;
    let (elsewhere, elsewhere_rt, _) = live_grant(&db, &c, user.id, Some(other_sid), "openid").await;

    let (_, event) = db.store.delete_session(&token.hash(), now()).await.unwrap().expect("ended");
    let logouts = Arc::new(Logouts::default());
    consumer(&db, &logouts).apply_now(&[event]).await;
    assert_eq!(sorted(logouts.0.lock().unwrap().clone()), sorted(vec![online.id, lookalike.id]), "logouts for what was revoked");

    assert!(db.store.find_refresh_token(&online_rt).await.unwrap().is_none());
    assert!(db.store.find_refresh_token(&lookalike_rt).await.unwrap().is_none());
    assert!(db.store.access_token_revoked(&online_at.jti).await.unwrap());
    let off = db.store.find_refresh_token(&offline_rt).await.unwrap().expect("offline grant kept");
    assert!(off.grant.revoked_at.is_none());
    assert!(!db.store.access_token_revoked(&offline_at.jti).await.unwrap());
    assert!(db.store.find_refresh_token(&elsewhere_rt).await.unwrap().is_some(), "other sessions' grants kept");
    assert_eq!(grant_revoked_at(&db, offline.id).await, None);
    assert_eq!(grant_revoked_at(&db, elsewhere.id).await, None);
    assert_eq!(security_events(&db).await, vec![(SecurityEventKind::SessionRevoked, user.id.to_string(), Some(sid.to_string()))]);

    // Again: nothing more (the event is done; applying it once more changes nothing).
    consumer(&db, &logouts).apply_now(&[event]).await;
    let t = now() + Duration::days(1);
    assert!(db.store.claim_pending_events(t, t, t + LEASE, 100).await.unwrap().is_empty(), "nothing left in the outbox");
    let again = NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: user.id.to_string(), session: Some(sid.to_string()) };
    assert_eq!(db.store.apply_revocation(event, &Revocation::Grants(vec![offline.id]), &again, now()).await.unwrap(), None);
    assert_eq!(grant_revoked_at(&db, offline.id).await, None, "a done event revokes nothing");
    assert_eq!(security_events(&db).await.len(), 1);
    assert_eq!(logouts.0.lock().unwrap().len(), 2);
}

async fn user_revocation_revokes_every_grant(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let alice = create(db.store.as_ref(), "alice", None).await;
    let bob = create(db.store.as_ref(), "bob", None).await;
    let (g1, rt1, at1) = live_grant(&db, &c, alice.id, Some(SessionHandle::new()), "openid").await;
    let (g2, rt2, _) = live_grant(&db, &c, alice.id, Some(SessionHandle::new()), "openid offline_access").await;
    let (g3, rt3, _) = live_grant(&db, &c, alice.id, None, "openid offline_access").await;
    let (bob_g, bob_rt, bob_at) = live_grant(&db, &c, bob.id, None, "openid").await;

    let t = now();
    let (_, event) = db.store.change_password(alice.id, "$argon2id$new", None, t).await.unwrap();
    db.store.claim_event(event, t, t + LEASE).await.unwrap().expect("claimed");
    let published = NewSecurityEvent { kind: SecurityEventKind::CredentialChange, subject: alice.id.to_string(), session: None };
    let follow_up = db.store.apply_revocation(event, &Revocation::EveryGrantOf(alice.id), &published, t).await.unwrap().expect("logout event");
    for rt in [&rt1, &rt2, &rt3] {
        assert!(db.store.find_refresh_token(rt).await.unwrap().is_none());
    }
    assert!(db.store.access_token_revoked(&at1.jti).await.unwrap());
    assert!(db.store.find_refresh_token(&bob_rt).await.unwrap().is_some());
    assert!(!db.store.access_token_revoked(&bob_at.jti).await.unwrap());
    assert_eq!(grant_revoked_at(&db, bob_g.id).await, None);
    assert_eq!(security_events(&db).await, vec![(SecurityEventKind::CredentialChange, alice.id.to_string(), None)]);

    // The follow-up carries the revoked grants to back-channel logout.
    let entry = db.store.claim_event(follow_up, t, t + LEASE).await.unwrap().expect("claimed");
    let DomainEvent::GrantsRevoked { grants } = entry.event else { panic!("{:?}", entry.event) };
    assert_eq!(sorted(grants.iter().map(|g| g.id).collect()), sorted(vec![g1.id, g2.id, g3.id]));
    assert!(grants.iter().all(|g| g.user_id == alice.id && g.client_id == c.id && g.revoked_at.is_some()));

    // Applied twice (a lease lapsed meanwhile): the second changes nothing.
    assert_eq!(db.store.apply_revocation(event, &Revocation::EveryGrantOf(alice.id), &published, t).await.unwrap(), None);
    assert_eq!(security_events(&db).await.len(), 1);
    // A user without live grants: the event is done and publishes, but there is nothing to log out.
    let (_, event) = db.store.delete_user_sessions(alice.id, t).await.unwrap();
    let published = NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: alice.id.to_string(), session: None };
    assert_eq!(db.store.apply_revocation(event, &Revocation::EveryGrantOf(alice.id), &published, t).await.unwrap(), None);
    assert_eq!(security_events(&db).await.len(), 2);
}

async fn a_deleted_users_grants_reach_back_channel_logout(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let alice = create(db.store.as_ref(), "alice", None).await;
    let (g, _, _) = live_grant(&db, &c, alice.id, Some(SessionHandle::new()), "openid").await;
    let event = db.store.delete_user_revoking_grants(alice.id, now()).await.unwrap().expect("logout event");
    assert!(db.store.find_user_by_id(alice.id).await.unwrap().is_none());

    let logouts = Arc::new(Logouts::default());
    consumer(&db, &logouts).apply_now(&[event]).await;
    assert_eq!(*logouts.0.lock().unwrap(), vec![g.id], "the grant, though deleted with its user");
    consumer(&db, &logouts).apply_now(&[event]).await;
    assert_eq!(logouts.0.lock().unwrap().len(), 1, "once");

    // A user without grants leaves no event.
    let bob = create(db.store.as_ref(), "bob", None).await;
    assert_eq!(db.store.disable_user_revoking_grants(bob.id, now()).await.unwrap(), None);
}
