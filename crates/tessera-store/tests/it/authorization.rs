//! Consent records, code binding and event visibility on both backends: a pending consent is
//! taken once, only by its session and before it lapses; a code is consumed (or replayed)
//! only by its own client; each security event names the grants it concerns.

use crate::oauth::{code, grant, grant_revoked_at, live_grant, stored_client};
use crate::support::{create, now};
use tessera_core::ids::SessionHandle;
use tessera_core::oauth::consent::{ConsentStore, PendingConsent};
use tessera_core::oauth::model::{CodeConsumption, NewSecurityEvent, SecurityEventKind};
use tessera_core::oauth::provider::AuthorizeParams;
use tessera_core::oauth::visibility::VisibilityStore;
use tessera_core::secret::SecretToken;
use tessera_core::store::OAuthStore;
use tessera_testkit::TestDb;
use time::Duration;

tessera_testkit::backend_tests!(
    a_pending_consent_is_taken_once_by_its_session_before_it_lapses,
    a_code_is_consumed_and_replayed_only_by_its_client,
    security_events_name_the_grants_they_concern,
);

async fn a_pending_consent_is_taken_once_by_its_session_before_it_lapses(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let sid = SessionHandle::new();
    let handle = SecretToken::generate().unwrap();
    let request = AuthorizeParams {
        client_id: Some(c.id.to_string()),
        max_age: Some("30".into()),
        resource: vec!["https://api.example".into()],
        ..Default::default()
    };
    let record = PendingConsent {
        hash: handle.hash(),
        sid,
        user_id: user.id,
        client_id: c.id.clone(),
        request,
        created_at: now(),
        expires_at: now() + Duration::minutes(10),
    };
    db.store.create_pending_consent(&record).await.unwrap();

    assert!(db.store.take_pending_consent(&handle.hash(), SessionHandle::new(), now()).await.unwrap().is_none(), "another session's");
    assert!(db.store.take_pending_consent(&record.hash, sid, record.expires_at).await.unwrap().is_none(), "lapsed");
    assert!(db.store.take_pending_consent(&SecretToken::generate().unwrap().hash(), sid, now()).await.unwrap().is_none(), "unknown");
    let got = db.store.take_pending_consent(&handle.hash(), sid, now()).await.unwrap().expect("its own session takes it");
    assert_eq!((got.sid, got.user_id, &got.client_id), (sid, user.id, &c.id));
    assert_eq!(got.request.max_age.as_deref(), Some("30"));
    assert_eq!(got.request.resource, vec!["https://api.example".to_owned()]);
    assert_eq!(got.expires_at, record.expires_at);
    assert!(db.store.take_pending_consent(&handle.hash(), sid, now()).await.unwrap().is_none(), "taken once");

    // Concurrent answers: exactly one gets it.
    let again = PendingConsent { hash: SecretToken::generate().unwrap().hash(), ..record.clone() };
    db.store.create_pending_consent(&again).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = db.store.clone();
            let hash = again.hash.clone();
            tokio::spawn(async move { store.take_pending_consent(&hash, sid, now()).await.unwrap().is_some() })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);

    // Lapsed records are purged.
    let old = PendingConsent { hash: SecretToken::generate().unwrap().hash(), expires_at: now() - Duration::seconds(1), ..record.clone() };
    db.store.create_pending_consent(&old).await.unwrap();
    assert_eq!(db.store.purge_expired_consents(now()).await.unwrap(), 1);
}

async fn a_code_is_consumed_and_replayed_only_by_its_client(db: TestDb) {
    let c = stored_client(&db, "App").await;
    let other = stored_client(&db, "Other").await;
    let user = create(db.store.as_ref(), "alice", None).await;
    let sid = SessionHandle::new();
    let secret = SecretToken::generate().unwrap();
    db.store.create_authorization_code(&code(secret.hash(), &c, user.id, sid, now() + Duration::seconds(60)), now()).await.unwrap();

    let found = db.store.find_authorization_code(&secret.hash()).await.unwrap().expect("found");
    assert_eq!(found.client_id, c.id);
    assert!(db.store.find_authorization_code(&SecretToken::generate().unwrap().hash()).await.unwrap().is_none());

    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &other.id, now()).await.unwrap(), CodeConsumption::Unknown));
    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Consumed(_)));
    let g = grant(&c, user.id, Some(sid), "openid");
    assert!(db.store.create_grant(&g, None, None, Some(&secret.hash())).await.unwrap());

    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &other.id, now()).await.unwrap(), CodeConsumption::Unknown));
    assert_eq!(grant_revoked_at(&db, g.id).await, None, "another client's presentation revokes nothing");
    assert!(matches!(db.store.consume_authorization_code(&secret.hash(), &c.id, now()).await.unwrap(), CodeConsumption::Replayed));
    assert!(grant_revoked_at(&db, g.id).await.is_some(), "its own client's replay revokes the grant from the code");
}

async fn security_events_name_the_grants_they_concern(db: TestDb) {
    let a = stored_client(&db, "A").await;
    let b = stored_client(&db, "B").await;
    let alice = create(db.store.as_ref(), "alice", None).await;
    let bob = create(db.store.as_ref(), "bob", None).await;
    let s1 = SessionHandle::new();
    let (_, _, at_a) = live_grant(&db, &a, alice.id, Some(s1), "openid").await;
    let (_, _, _) = live_grant(&db, &b, bob.id, None, "openid").await;

    let t = now();
    db.store.revoke_access_token(&at_a.jti, t + Duration::minutes(5), t).await.unwrap();
    let session = NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: alice.id.to_string(), session: Some(s1.to_string()) };
    let user = NewSecurityEvent { kind: SecurityEventKind::CredentialChange, subject: bob.id.to_string(), session: None };
    let stranger = NewSecurityEvent { kind: SecurityEventKind::TokenRevoked, subject: "not-a-recorded-jti".into(), session: None };
    db.store.append_security_events(&[session, user, stranger], t).await.unwrap();

    let events = db.store.security_events_after(0, t - Duration::hours(1), 100).await.unwrap();
    assert_eq!(events.len(), 4);
    let parties = db.store.security_event_parties(0, events[3].seq).await.unwrap();
    let of = |seq: i64| {
        let mut v: Vec<String> = parties.iter().filter(|p| p.seq == seq).map(|p| p.client_id.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(of(events[0].seq), vec![a.id.to_string()], "a token's grant");
    assert_eq!(of(events[1].seq), vec![a.id.to_string()], "the grants of a session");
    assert_eq!(of(events[2].seq), vec![b.id.to_string()], "the grants of a user");
    assert!(of(events[3].seq).is_empty(), "an unrecorded token concerns no grant");
    assert!(parties.iter().all(|p| p.audience == vec!["https://issuer.example".to_owned()]));
    assert!(db.store.security_event_parties(events[3].seq, events[3].seq + 10).await.unwrap().is_empty(), "the range is exclusive of after");
}
