//! Sessions: create, find, touch, delete, list, end by handle, purge expired.

use crate::support::{create, now, session_at, start_session};
use tessera_core::ids::{SessionHandle, UserId};
use tessera_core::secret::SecretToken;
use tessera_core::store::{ConflictKind, StoreError};
use tessera_testkit::TestDb;
use time::Duration;

tessera_testkit::backend_tests!(
    session_create_find_roundtrip,
    touch_session_updates_last_seen_and_device,
    delete_session_returns_it_once,
    list_user_sessions_newest_first,
    delete_user_session_only_for_its_owner,
    delete_user_sessions_ends_all_of_one_user,
    delete_expired_sessions_by_absolute_and_idle_time,
    duplicate_session_is_refused,
);

async fn session_create_find_roundtrip(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "alice", None).await;
    let (token, new) = start_session(store.as_ref(), u.id).await;
    let s = store.find_session(&token.hash()).await.unwrap().expect("stored");
    assert_eq!(s.handle, new.session.handle);
    assert_eq!(s.user_id, u.id);
    assert_eq!(s.created_at, new.session.created_at);
    assert_eq!(s.last_seen_at, new.session.last_seen_at);
    assert_eq!(s.expires_at, new.session.expires_at);
    assert_eq!(s.auth_time, new.session.auth_time);
    assert_eq!(s.ip, new.session.ip);
    assert_eq!(s.user_agent, new.session.user_agent);
    assert_eq!(s.amr, vec!["pwd".to_owned()]);
    // Only the hash of the right secret finds it.
    assert!(store.find_session(&SecretToken::generate().unwrap().hash()).await.unwrap().is_none());

    // A session without device details, with several methods.
    let (t2, mut n2) = session_at(u.id, now());
    n2.session.ip = None;
    n2.session.user_agent = None;
    n2.session.amr = vec!["pwd".into(), "otp".into()];
    store.create_session(&n2).await.unwrap();
    let s2 = store.find_session(&t2.hash()).await.unwrap().unwrap();
    assert_eq!(s2.ip, None);
    assert_eq!(s2.user_agent, None);
    assert_eq!(s2.amr, vec!["pwd".to_owned(), "otp".to_owned()]);
}

async fn touch_session_updates_last_seen_and_device(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "bob", None).await;
    let (token, new) = start_session(store.as_ref(), u.id).await;
    let later = new.session.last_seen_at + Duration::minutes(10);
    store.touch_session(&token.hash(), later, Some("198.51.100.7"), Some("curl/8.0")).await.unwrap();
    let s = store.find_session(&token.hash()).await.unwrap().unwrap();
    assert_eq!(s.last_seen_at, later);
    assert_eq!(s.ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(s.user_agent.as_deref(), Some("curl/8.0"));
    assert_eq!(s.created_at, new.session.created_at, "created_at untouched");
    assert_eq!(s.expires_at, new.session.expires_at, "expiry untouched");

    // Missing details keep the recorded ones.
    let later2 = later + Duration::minutes(10);
    store.touch_session(&token.hash(), later2, None, None).await.unwrap();
    let s = store.find_session(&token.hash()).await.unwrap().unwrap();
    assert_eq!(s.last_seen_at, later2);
    assert_eq!(s.ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(s.user_agent.as_deref(), Some("curl/8.0"));

    // Touching a session that does not exist is harmless and creates nothing.
    let ghost = SecretToken::generate().unwrap();
    store.touch_session(&ghost.hash(), later2, None, None).await.unwrap();
    assert!(store.find_session(&ghost.hash()).await.unwrap().is_none());
}

async fn delete_session_returns_it_once(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "carol", None).await;
    let (token, new) = start_session(store.as_ref(), u.id).await;
    let (other, _) = start_session(store.as_ref(), u.id).await;
    let (ended, _) = store.delete_session(&token.hash(), now()).await.unwrap().expect("ended");
    assert_eq!(ended.handle, new.session.handle);
    assert_eq!(ended.user_id, u.id);
    assert!(store.find_session(&token.hash()).await.unwrap().is_none());
    assert!(store.delete_session(&token.hash(), now()).await.unwrap().is_none(), "second delete finds nothing");
    assert!(store.find_session(&other.hash()).await.unwrap().is_some());
}

async fn list_user_sessions_newest_first(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "dave", None).await;
    let other = create(store.as_ref(), "erin", None).await;
    let t0 = now() - Duration::hours(3);
    let mut handles = Vec::new();
    for i in 0..3 {
        let (_, s) = session_at(u.id, t0 + Duration::hours(i));
        store.create_session(&s).await.unwrap();
        handles.push(s.session.handle);
    }
    let (_, foreign) = session_at(other.id, t0);
    store.create_session(&foreign).await.unwrap();

    let listed: Vec<SessionHandle> = store.list_user_sessions(u.id).await.unwrap().iter().map(|s| s.handle).collect();
    assert_eq!(listed, vec![handles[2], handles[1], handles[0]]);

    // Using the oldest session moves it to the top.
    let (tok, s) = session_at(u.id, t0 - Duration::hours(1));
    store.create_session(&s).await.unwrap();
    store.touch_session(&tok.hash(), t0 + Duration::hours(5), None, None).await.unwrap();
    let listed = store.list_user_sessions(u.id).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0].handle, s.session.handle);
    assert!(listed.iter().all(|x| x.user_id == u.id));
    assert!(store.list_user_sessions(UserId::new()).await.unwrap().is_empty());
}

async fn delete_user_session_only_for_its_owner(db: TestDb) {
    let store = db.dyn_store();
    let alice = create(store.as_ref(), "alice", None).await;
    let mallory = create(store.as_ref(), "mallory", None).await;
    let (tok, s) = start_session(store.as_ref(), alice.id).await;
    // Another user cannot end it by its handle.
    assert!(store.delete_user_session(mallory.id, s.session.handle, now()).await.unwrap().is_none());
    assert!(store.find_session(&tok.hash()).await.unwrap().is_some());
    // An unknown handle ends nothing.
    assert!(store.delete_user_session(alice.id, SessionHandle::new(), now()).await.unwrap().is_none());
    // Its owner can, once.
    assert!(store.delete_user_session(alice.id, s.session.handle, now()).await.unwrap().is_some());
    assert!(store.find_session(&tok.hash()).await.unwrap().is_none());
    assert!(store.delete_user_session(alice.id, s.session.handle, now()).await.unwrap().is_none());
}

async fn delete_user_sessions_ends_all_of_one_user(db: TestDb) {
    let store = db.dyn_store();
    let a = create(store.as_ref(), "frank", None).await;
    let b = create(store.as_ref(), "grace", None).await;
    for _ in 0..3 {
        start_session(store.as_ref(), a.id).await;
    }
    let (keep, _) = start_session(store.as_ref(), b.id).await;
    assert_eq!(store.delete_user_sessions(a.id, now()).await.unwrap().0, 3);
    assert_eq!(store.delete_user_sessions(a.id, now()).await.unwrap().0, 0);
    assert!(store.list_user_sessions(a.id).await.unwrap().is_empty());
    assert!(store.find_session(&keep.hash()).await.unwrap().is_some());
}

async fn delete_expired_sessions_by_absolute_and_idle_time(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "heidi", None).await;
    let t = now();
    let idle = Duration::hours(8);

    // Past its absolute expiry although used a moment ago.
    let (expired, mut s) = session_at(u.id, t - Duration::days(15));
    s.session.last_seen_at = t - Duration::minutes(1);
    store.create_session(&s).await.unwrap();
    // Idle for longer than the idle timeout.
    let (idle_tok, s) = session_at(u.id, t - Duration::hours(9));
    store.create_session(&s).await.unwrap();
    // Fresh.
    let (fresh, s) = session_at(u.id, t - Duration::hours(1));
    store.create_session(&s).await.unwrap();
    // Old but in use and not past its absolute expiry.
    let (busy, mut s) = session_at(u.id, t - Duration::days(13));
    s.session.last_seen_at = t - Duration::minutes(5);
    store.create_session(&s).await.unwrap();

    assert_eq!(store.delete_expired_sessions(t, t - idle).await.unwrap().len(), 2);
    assert!(store.find_session(&expired.hash()).await.unwrap().is_none());
    assert!(store.find_session(&idle_tok.hash()).await.unwrap().is_none());
    assert!(store.find_session(&fresh.hash()).await.unwrap().is_some());
    assert!(store.find_session(&busy.hash()).await.unwrap().is_some());
    assert_eq!(store.delete_expired_sessions(t, t - idle).await.unwrap().len(), 0);
}

async fn duplicate_session_is_refused(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "ivan", None).await;
    let (_, s) = start_session(store.as_ref(), u.id).await;
    // Same secret (and handle) again: which of the two keys is reported depends on the backend.
    assert!(matches!(store.create_session(&s).await, Err(StoreError::Conflict(_))));
    // Same public handle under another secret.
    let (_, mut s2) = session_at(u.id, now());
    s2.session.handle = s.session.handle;
    assert!(matches!(store.create_session(&s2).await, Err(StoreError::Conflict(ConflictKind::SessionHandle))));
    assert_eq!(store.list_user_sessions(u.id).await.unwrap().len(), 1);
    // A session for a user that does not exist is refused (foreign key).
    let (_, orphan) = session_at(UserId::new(), now());
    assert!(store.create_session(&orphan).await.is_err());
}
