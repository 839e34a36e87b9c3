//! Users: creation, lookup, canonical uniqueness, updates, disabling, deletion, passwords.

use crate::support::{create, new_user, now, start_session};
use tessera_core::ids::UserId;
use tessera_core::store::{ConflictKind, StoreError};
use tessera_core::user::{Email, UserUpdate, Username, canonical};
use tessera_testkit::TestDb;

tessera_testkit::backend_tests!(
    create_and_find_user,
    username_unique_case_insensitive_and_nfkc,
    email_unique_case_insensitive_and_nfkc,
    update_user_changes_and_removes_email,
    update_user_conflicts,
    disable_ends_all_sessions_atomically,
    delete_user_cascades_sessions,
    upgrade_password_hash_is_conditional,
    change_password_ends_other_sessions_keeps_named_one,
    roles_and_list_users,
);

fn conflict(r: Result<impl std::fmt::Debug, StoreError>) -> ConflictKind {
    match r {
        Err(StoreError::Conflict(what)) => what,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn create_and_find_user(db: TestDb) {
    let store = db.dyn_store();
    let t = now();
    let mut nu = new_user("Alice", Some("Alice@Example.COM"));
    nu.roles = vec!["admin".into(), "".into(), "admin".into()];
    let u = store.create_user(&nu, t).await.unwrap();
    assert_eq!(u.username.as_str(), "Alice");
    assert_eq!(u.email.as_ref().unwrap().as_str(), "Alice@Example.COM");
    assert_eq!(u.display_name.as_ref().unwrap().as_str(), "Test User");
    assert!(!u.disabled);
    assert_eq!(u.roles, vec!["admin".to_owned()]);
    assert_eq!(u.created_at, t);
    assert_eq!(u.updated_at, t);

    let by_id = store.find_user_by_id(u.id).await.unwrap().expect("found by id");
    assert_eq!(by_id.id, u.id);
    assert_eq!(by_id.username, u.username);
    assert_eq!(by_id.email, u.email);
    assert_eq!(by_id.created_at, t);
    assert!(store.find_user_by_id(UserId::new()).await.unwrap().is_none());

    // By canonical username, whatever case was typed.
    for login in ["alice", "ALICE", "\u{FF21}lice"] {
        let c = store.find_user_credentials_by_login(&canonical(login)).await.unwrap().expect(login);
        assert_eq!(c.user.id, u.id);
        assert_eq!(c.password_hash.as_deref(), Some("$argon2id$fake$Alice"));
    }
    // By canonical e-mail.
    let c = store.find_user_credentials_by_login("alice@example.com").await.unwrap().expect("by e-mail");
    assert_eq!(c.user.id, u.id);
    // Only canonical forms are looked up: the store does not fold case itself.
    assert!(store.find_user_credentials_by_login("nobody").await.unwrap().is_none());
    assert!(store.find_user_credentials_by_login("").await.unwrap().is_none());

    assert_eq!(store.find_password_hash(u.id).await.unwrap().as_deref(), Some("$argon2id$fake$Alice"));
    assert_eq!(store.find_password_hash(UserId::new()).await.unwrap(), None);

    // A user without e-mail or password.
    let mut bare = new_user("bare", None);
    bare.password_hash = None;
    bare.display_name = None;
    let b = store.create_user(&bare, t).await.unwrap();
    assert!(b.email.is_none() && b.display_name.is_none());
    assert_eq!(store.find_password_hash(b.id).await.unwrap(), None);
    let c = store.find_user_credentials_by_login("bare").await.unwrap().unwrap();
    assert!(c.password_hash.is_none());
}

async fn username_unique_case_insensitive_and_nfkc(db: TestDb) {
    let store = db.dyn_store();
    create(store.as_ref(), "alice", None).await;
    assert_eq!(conflict(store.create_user(&new_user("alice", None), now()).await), ConflictKind::Username);
    assert_eq!(conflict(store.create_user(&new_user("ALICE", None), now()).await), ConflictKind::Username);
    // U+FF21 FULLWIDTH LATIN CAPITAL LETTER A is "A" after NFKC.
    assert_eq!(conflict(store.create_user(&new_user("\u{FF21}lice", None), now()).await), ConflictKind::Username);
    // Full-width "ＦＩ" is "FI" after width mapping (a ligature such as "ﬁ" is refused by
    // the PRECIS profile before it gets here).
    create(store.as_ref(), "finn", None).await;
    assert_eq!(conflict(store.create_user(&new_user("\u{FF26}\u{FF29}nn", None), now()).await), ConflictKind::Username);
    assert_eq!(conflict(store.create_user(&new_user("FINN", Some("finn@example.com")), now()).await), ConflictKind::Username);
    // Nothing half-written by the refused inserts.
    assert!(store.find_user_credentials_by_login("finn@example.com").await.unwrap().is_none());
    assert_eq!(store.list_users(None, 100).await.unwrap().len(), 2);
    // Different names are fine.
    create(store.as_ref(), "alice2", None).await;
}

async fn email_unique_case_insensitive_and_nfkc(db: TestDb) {
    let store = db.dyn_store();
    create(store.as_ref(), "bob", Some("bob@example.com")).await;
    assert_eq!(conflict(store.create_user(&new_user("bob2", Some("bob@example.com")), now()).await), ConflictKind::Email);
    assert_eq!(conflict(store.create_user(&new_user("bob3", Some("BOB@EXAMPLE.COM")), now()).await), ConflictKind::Email);
    // Fullwidth "ｂ" (U+FF42) and "Ｅ" (U+FF25) normalise to ASCII.
    assert_eq!(
        conflict(store.create_user(&new_user("bob4", Some("\u{FF42}ob@\u{FF25}xample.com")), now()).await),
        ConflictKind::Email
    );
    assert!(store.find_user_credentials_by_login("bob2").await.unwrap().is_none());
    // Several users without e-mail do not collide (NULLs are distinct).
    create(store.as_ref(), "noemail1", None).await;
    create(store.as_ref(), "noemail2", None).await;
}

async fn update_user_changes_and_removes_email(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "carol", Some("carol@example.com")).await;
    let later = now() + time::Duration::seconds(30);

    let changed = store
        .update_user(
            u.id,
            &UserUpdate { email: Some(Some(Email::parse("Carol@New.Example").unwrap())), ..UserUpdate::default() },
            later,
        )
        .await
        .unwrap();
    assert_eq!(changed.email.as_ref().unwrap().as_str(), "Carol@New.Example");
    assert_eq!(changed.username.as_str(), "carol", "username untouched");
    assert_eq!(changed.display_name.as_ref().unwrap().as_str(), "Test User", "display name untouched");
    assert_eq!(changed.updated_at, later);
    assert_eq!(changed.created_at, u.created_at);
    assert!(store.find_user_credentials_by_login("carol@example.com").await.unwrap().is_none());
    assert_eq!(store.find_user_credentials_by_login("carol@new.example").await.unwrap().unwrap().user.id, u.id);
    // The old address is free again.
    create(store.as_ref(), "other", Some("carol@example.com")).await;

    // Remove the e-mail and the display name; rename.
    let removed = store
        .update_user(
            u.id,
            &UserUpdate {
                username: Some(Username::parse("Caroline").unwrap()),
                email: Some(None),
                display_name: Some(None),
            },
            later,
        )
        .await
        .unwrap();
    assert!(removed.email.is_none());
    assert!(removed.display_name.is_none());
    assert_eq!(removed.username.as_str(), "Caroline");
    assert!(store.find_user_credentials_by_login("carol@new.example").await.unwrap().is_none());
    assert!(store.find_user_credentials_by_login("carol").await.unwrap().is_none());
    assert_eq!(store.find_user_credentials_by_login("caroline").await.unwrap().unwrap().user.id, u.id);
    let again = store.find_user_by_id(u.id).await.unwrap().unwrap();
    assert!(again.email.is_none());

    // An empty update changes nothing but the timestamp.
    let same = store.update_user(u.id, &UserUpdate::default(), later).await.unwrap();
    assert_eq!(same.username.as_str(), "Caroline");

    assert!(matches!(
        store.update_user(UserId::new(), &UserUpdate::default(), later).await,
        Err(StoreError::NotFound)
    ));
}

async fn update_user_conflicts(db: TestDb) {
    let store = db.dyn_store();
    let a = create(store.as_ref(), "dave", Some("dave@example.com")).await;
    let b = create(store.as_ref(), "erin", Some("erin@example.com")).await;
    let r = store
        .update_user(b.id, &UserUpdate { username: Some(Username::parse("DAVE").unwrap()), ..UserUpdate::default() }, now())
        .await;
    assert_eq!(conflict(r), ConflictKind::Username);
    let r = store
        .update_user(
            b.id,
            &UserUpdate { email: Some(Some(Email::parse("Dave@Example.com").unwrap())), ..UserUpdate::default() },
            now(),
        )
        .await;
    assert_eq!(conflict(r), ConflictKind::Email);
    // Nothing changed.
    let b2 = store.find_user_by_id(b.id).await.unwrap().unwrap();
    assert_eq!(b2.username.as_str(), "erin");
    assert_eq!(b2.email.unwrap().as_str(), "erin@example.com");
    // Changing the case of one's own name is not a conflict.
    let a2 = store
        .update_user(a.id, &UserUpdate { username: Some(Username::parse("Dave").unwrap()), ..UserUpdate::default() }, now())
        .await
        .unwrap();
    assert_eq!(a2.username.as_str(), "Dave");
}

async fn disable_ends_all_sessions_atomically(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "frank", None).await;
    let other = create(store.as_ref(), "grace", None).await;
    let (t1, _) = start_session(store.as_ref(), u.id).await;
    let (t2, _) = start_session(store.as_ref(), u.id).await;
    let (t3, _) = start_session(store.as_ref(), other.id).await;

    store.set_user_disabled(u.id, true, now()).await.unwrap();
    let found = store.find_user_by_id(u.id).await.unwrap().unwrap();
    assert!(found.disabled);
    assert!(store.find_session(&t1.hash()).await.unwrap().is_none());
    assert!(store.find_session(&t2.hash()).await.unwrap().is_none());
    assert!(store.list_user_sessions(u.id).await.unwrap().is_empty());
    assert!(store.find_session(&t3.hash()).await.unwrap().is_some(), "another user's session is untouched");

    // Enabling does not bring sessions back.
    store.set_user_disabled(u.id, false, now()).await.unwrap();
    assert!(!store.find_user_by_id(u.id).await.unwrap().unwrap().disabled);
    assert!(store.list_user_sessions(u.id).await.unwrap().is_empty());
    // Enabling keeps sessions that exist.
    let (t4, _) = start_session(store.as_ref(), u.id).await;
    store.set_user_disabled(u.id, false, now()).await.unwrap();
    assert!(store.find_session(&t4.hash()).await.unwrap().is_some());

    assert!(matches!(store.set_user_disabled(UserId::new(), true, now()).await, Err(StoreError::NotFound)));
}

async fn delete_user_cascades_sessions(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "heidi", Some("heidi@example.com")).await;
    let keep = create(store.as_ref(), "ivan", None).await;
    let (t1, _) = start_session(store.as_ref(), u.id).await;
    let (t2, _) = start_session(store.as_ref(), u.id).await;
    let (t3, _) = start_session(store.as_ref(), keep.id).await;

    store.delete_user(u.id).await.unwrap();
    assert!(store.find_user_by_id(u.id).await.unwrap().is_none());
    assert!(store.find_user_credentials_by_login("heidi").await.unwrap().is_none());
    assert!(store.find_session(&t1.hash()).await.unwrap().is_none());
    assert!(store.find_session(&t2.hash()).await.unwrap().is_none());
    assert!(store.list_user_sessions(u.id).await.unwrap().is_empty());
    assert!(store.find_session(&t3.hash()).await.unwrap().is_some());
    assert!(matches!(store.delete_user(u.id).await, Err(StoreError::NotFound)));
    // The name and address are free again.
    create(store.as_ref(), "Heidi", Some("HEIDI@example.com")).await;
}

async fn upgrade_password_hash_is_conditional(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "judy", None).await;
    let old = store.find_password_hash(u.id).await.unwrap().unwrap();
    assert!(store.upgrade_password_hash(u.id, &old, "$argon2id$new-1").await.unwrap());
    assert_eq!(store.find_password_hash(u.id).await.unwrap().as_deref(), Some("$argon2id$new-1"));
    // A second (concurrent) upgrade that read the same old hash loses.
    assert!(!store.upgrade_password_hash(u.id, &old, "$argon2id$new-2").await.unwrap());
    assert_eq!(store.find_password_hash(u.id).await.unwrap().as_deref(), Some("$argon2id$new-1"));
    // Unknown user: nothing to upgrade.
    assert!(!store.upgrade_password_hash(UserId::new(), "$argon2id$new-1", "x").await.unwrap());
    // A user without a password is never "upgraded".
    let mut nu = new_user("nopass", None);
    nu.password_hash = None;
    let np = store.create_user(&nu, now()).await.unwrap();
    assert!(!store.upgrade_password_hash(np.id, "", "$argon2id$x").await.unwrap());
    assert_eq!(store.find_password_hash(np.id).await.unwrap(), None);
}

async fn change_password_ends_other_sessions_keeps_named_one(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "ken", None).await;
    let other = create(store.as_ref(), "lena", None).await;
    let (keep, _) = start_session(store.as_ref(), u.id).await;
    let (end1, _) = start_session(store.as_ref(), u.id).await;
    let (end2, _) = start_session(store.as_ref(), u.id).await;
    let (foreign, _) = start_session(store.as_ref(), other.id).await;

    let later = now() + time::Duration::minutes(5);
    let (ended, _) = store.change_password(u.id, "$argon2id$changed", Some(&keep.hash()), later).await.unwrap();
    assert_eq!(ended, 2);
    assert_eq!(store.find_password_hash(u.id).await.unwrap().as_deref(), Some("$argon2id$changed"));
    assert_eq!(store.find_user_by_id(u.id).await.unwrap().unwrap().updated_at, later);
    assert!(store.find_session(&keep.hash()).await.unwrap().is_some());
    assert!(store.find_session(&end1.hash()).await.unwrap().is_none());
    assert!(store.find_session(&end2.hash()).await.unwrap().is_none());
    assert!(store.find_session(&foreign.hash()).await.unwrap().is_some());

    // Without a session to keep, all end.
    let (ended, _) = store.change_password(u.id, "$argon2id$again", None, later).await.unwrap();
    assert_eq!(ended, 1);
    assert!(store.find_session(&keep.hash()).await.unwrap().is_none());
    assert!(store.find_session(&foreign.hash()).await.unwrap().is_some());

    assert!(matches!(store.change_password(UserId::new(), "x", None, later).await, Err(StoreError::NotFound)));
}

async fn roles_and_list_users(db: TestDb) {
    let store = db.dyn_store();
    assert!(!store.any_user_with_role("admin").await.unwrap());
    let a = create(store.as_ref(), "mallory", None).await;
    let b = create(store.as_ref(), "niaj", None).await;
    let c = create(store.as_ref(), "olivia", None).await;
    store.add_user_role(a.id, "administrator").await.unwrap();
    assert!(!store.any_user_with_role("admin").await.unwrap(), "roles match whole words only");
    store.add_user_role(b.id, "admin").await.unwrap();
    store.add_user_role(b.id, "admin").await.unwrap();
    assert_eq!(store.find_user_by_id(b.id).await.unwrap().unwrap().roles, vec!["admin".to_owned()]);
    assert!(store.any_user_with_role("admin").await.unwrap());
    store.set_user_disabled(b.id, true, now()).await.unwrap();
    assert!(!store.any_user_with_role("admin").await.unwrap(), "disabled admins do not count");
    assert!(matches!(store.add_user_role(UserId::new(), "admin").await, Err(StoreError::NotFound)));

    let mut ids = vec![a.id, b.id, c.id];
    ids.sort();
    let all: Vec<UserId> = store.list_users(None, 10).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(all, ids);
    let page1: Vec<UserId> = store.list_users(None, 2).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(page1, ids[..2]);
    let page2: Vec<UserId> = store.list_users(Some(page1[1]), 2).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(page2, ids[2..]);
}
