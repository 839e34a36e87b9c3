//! The audit log: append, filter by user and time, newest first, limits.

use crate::support::{create, now};
use serde_json::json;
use tessera_core::audit::AuditEvent;
use tessera_core::ids::{AuditEventId, UserId};
use tessera_core::store::AuditQuery;
use tessera_testkit::TestDb;
use time::{Duration, OffsetDateTime};

tessera_testkit::backend_tests!(audit_append_and_query, audit_default_limit_is_100);

fn event(kind: &str, user_id: Option<UserId>, at: OffsetDateTime) -> AuditEvent {
    AuditEvent {
        id: AuditEventId::new(),
        at,
        kind: kind.to_owned(),
        user_id,
        ip: Some("192.0.2.9".into()),
        user_agent: Some("tests".into()),
        detail: json!({"n": at.unix_timestamp(), "nested": {"k": ["v", 1, true]}}),
    }
}

async fn audit_append_and_query(db: TestDb) {
    let store = db.dyn_store();
    let alice = create(store.as_ref(), "alice", None).await;
    let bob = create(store.as_ref(), "bob", None).await;
    let t0 = now() - Duration::hours(10);
    // alice: t0, t0+1h, ..., t0+4h; bob: t0+30m; anonymous: t0+2h30m
    for i in 0..5 {
        store.append_audit_event(&event("login_succeeded", Some(alice.id), t0 + Duration::hours(i))).await.unwrap();
    }
    store.append_audit_event(&event("login_failed", Some(bob.id), t0 + Duration::minutes(30))).await.unwrap();
    let mut anon = event("login_failed", None, t0 + Duration::minutes(150));
    anon.ip = None;
    anon.user_agent = None;
    store.append_audit_event(&anon).await.unwrap();

    // Everything, newest first.
    let all = store.find_audit_events(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
    assert_eq!(all[0].at, t0 + Duration::hours(4));

    // By user.
    let a = store.find_audit_events(&AuditQuery { user_id: Some(alice.id), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(a.len(), 5);
    assert!(a.iter().all(|e| e.user_id == Some(alice.id) && e.kind == "login_succeeded"));
    let times: Vec<OffsetDateTime> = a.iter().map(|e| e.at).collect();
    assert_eq!(times, (0..5).rev().map(|i| t0 + Duration::hours(i)).collect::<Vec<_>>());
    let b = store.find_audit_events(&AuditQuery { user_id: Some(bob.id), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].kind, "login_failed");
    assert_eq!(b[0].ip.as_deref(), Some("192.0.2.9"));
    assert_eq!(b[0].user_agent.as_deref(), Some("tests"));
    assert_eq!(b[0].detail, json!({"n": (t0 + Duration::minutes(30)).unix_timestamp(), "nested": {"k": ["v", 1, true]}}));
    let none = store.find_audit_events(&AuditQuery { user_id: Some(UserId::new()), ..AuditQuery::default() }).await.unwrap();
    assert!(none.is_empty());

    // Time range: since inclusive, until exclusive.
    let q = AuditQuery {
        since: Some(t0 + Duration::hours(1)),
        until: Some(t0 + Duration::hours(3)),
        ..AuditQuery::default()
    };
    let r = store.find_audit_events(&q).await.unwrap();
    let times: Vec<OffsetDateTime> = r.iter().map(|e| e.at).collect();
    assert_eq!(times, vec![t0 + Duration::hours(2) + Duration::minutes(30), t0 + Duration::hours(2), t0 + Duration::hours(1)]);
    let anon_found = r.iter().find(|e| e.user_id.is_none()).expect("anonymous event in range");
    assert_eq!(anon_found.id, anon.id);
    assert!(anon_found.ip.is_none() && anon_found.user_agent.is_none());

    // User and time range together, with a limit: the newest ones.
    let q = AuditQuery { user_id: Some(alice.id), since: Some(t0 + Duration::hours(1)), until: None, limit: 2 };
    let r = store.find_audit_events(&q).await.unwrap();
    let times: Vec<OffsetDateTime> = r.iter().map(|e| e.at).collect();
    assert_eq!(times, vec![t0 + Duration::hours(4), t0 + Duration::hours(3)]);

    let r = store.find_audit_events(&AuditQuery { limit: 1, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].at, t0 + Duration::hours(4));

    // Deleting a user keeps their audit trail.
    store.delete_user(bob.id).await.unwrap();
    let b = store.find_audit_events(&AuditQuery { user_id: Some(bob.id), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(b.len(), 1);
}

async fn audit_default_limit_is_100(db: TestDb) {
    let store = db.dyn_store();
    let t0 = now() - Duration::days(1);
    for i in 0..105 {
        store.append_audit_event(&event("logout", None, t0 + Duration::seconds(i))).await.unwrap();
    }
    let r = store.find_audit_events(&AuditQuery::default()).await.unwrap();
    assert_eq!(r.len(), 100);
    assert_eq!(r[0].at, t0 + Duration::seconds(104));
    let r = store.find_audit_events(&AuditQuery { limit: 500, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(r.len(), 105);
}
