//! Account flows over the real stores: sign-in, failures and their audit trail, session
//! timeouts under a manual clock, and re-hashing of imported bcrypt hashes at sign-in.

use tessera_core::CoreError;
use tessera_core::accounts::{Accounts, CreateUser};
use tessera_core::clock::ManualClock;
use tessera_core::secret::{Password, SecretToken};
use tessera_core::session::RequestContext;
use tessera_core::store::{AuditQuery, Store};
use tessera_core::user::User;
use tessera_testkit::{TestDb, manual_clock};
use time::Duration;

tessera_testkit::backend_tests!(
    login_succeeds_by_username_or_email,
    failed_logins_are_indistinguishable_and_audited,
    session_idle_timeout_ends_session,
    session_absolute_timeout_ends_session,
    login_rehashes_imported_bcrypt_hash,
    logout_and_purge,
);

const PASSWORD: &str = "correct horse battery staple";

fn ctx() -> RequestContext {
    RequestContext::new(Some("192.0.2.44".parse().unwrap()), Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"))
}

async fn user(accounts: &Accounts, name: &str, email: Option<&str>) -> User {
    accounts
        .create_user(
            CreateUser {
                username: name.into(),
                email: email.map(str::to_owned),
                display_name: None,
                password: Some(Password::new(PASSWORD)),
                roles: vec![],
            },
            &ctx(),
        )
        .await
        .unwrap()
}

fn setup(db: &TestDb) -> (Accounts, ManualClock) {
    let clock = manual_clock();
    (tessera_testkit::accounts(db.dyn_store(), clock.clone()), clock)
}

async fn login_succeeds_by_username_or_email(db: TestDb) {
    let (accounts, _clock) = setup(&db);
    let u = user(&accounts, "Alice", Some("alice@example.com")).await;
    let stored = db.store.find_password_hash(u.id).await.unwrap().unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains(PASSWORD));

    for login in ["Alice", "alice", " ALICE ", "Alice@Example.com"] {
        let started = accounts.login(login, &Password::new(PASSWORD), None, &ctx()).await.expect(login);
        assert_eq!(started.user.id, u.id);
        assert_eq!(started.session.amr, vec!["pwd".to_owned()]);
        let found = db.store.find_session(&started.token.hash()).await.unwrap().expect("session stored");
        assert_eq!(found.handle, started.session.handle);
        let who = accounts.authenticate(&started.token, &ctx()).await.unwrap();
        assert_eq!(who.user.id, u.id);
        assert_eq!(who.session.handle, started.session.handle);
    }
    // Each sign-in started a new session.
    assert_eq!(accounts.list_sessions(u.id).await.unwrap().len(), 4);
    let ok = accounts
        .audit_events(&AuditQuery { user_id: Some(u.id), ..AuditQuery::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "login_succeeded")
        .count();
    assert_eq!(ok, 4);
    // The stored hash was current: not rehashed.
    assert_eq!(db.store.find_password_hash(u.id).await.unwrap().unwrap(), stored);
}

async fn failed_logins_are_indistinguishable_and_audited(db: TestDb) {
    let (accounts, _clock) = setup(&db);
    let u = user(&accounts, "bob", None).await;
    let d = user(&accounts, "dora", None).await;
    let (_, _) = (u.id, d.id);
    let before = accounts.login("dora", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    accounts.set_disabled(d.id, true, &ctx()).await.unwrap();
    // Disabling ended the session.
    assert!(matches!(accounts.authenticate(&before.token, &ctx()).await, Err(CoreError::Unauthenticated)));

    let attempts = [
        ("bob", "wrong password entirely", "wrong_password"),
        ("nobody", PASSWORD, "unknown_user"),
        ("dora", PASSWORD, "disabled"),
        ("", PASSWORD, "unknown_user"),
        ("bob", "", "wrong_password"),
    ];
    for (login, pw, _) in attempts {
        let r = accounts.login(login, &Password::new(pw), None, &ctx()).await;
        assert!(matches!(r, Err(CoreError::InvalidCredentials)), "{login}: {r:?}");
    }
    // An overlong password fails the same way.
    let long = "x".repeat(Password::MAX_BYTES + 1);
    assert!(matches!(accounts.login("bob", &Password::new(long), None, &ctx()).await, Err(CoreError::InvalidCredentials)));

    let failed: Vec<_> = accounts
        .audit_events(&AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "login_failed")
        .collect();
    assert_eq!(failed.len(), attempts.len() + 1);
    // Every failure is recorded with its reason (for administrators) and client.
    for (login, _, reason) in attempts {
        assert!(
            failed.iter().any(|e| e.detail["login"] == login && e.detail["reason"] == reason),
            "no login_failed event for {login:?} ({reason}): {failed:#?}"
        );
    }
    assert!(failed.iter().all(|e| e.ip.as_deref() == Some("192.0.2.44")));
    let for_bob = failed.iter().filter(|e| e.user_id == Some(u.id)).count();
    assert_eq!(for_bob, 3);
    assert!(failed.iter().any(|e| e.user_id == Some(d.id)));
    assert!(failed.iter().any(|e| e.user_id.is_none() && e.detail["login"] == "nobody"));
    // No sessions were started by the failures.
    assert!(db.store.list_user_sessions(u.id).await.unwrap().is_empty());
    assert!(db.store.list_user_sessions(d.id).await.unwrap().is_empty());
}

async fn session_idle_timeout_ends_session(db: TestDb) {
    let (accounts, clock) = setup(&db);
    let policy = *accounts.session_policy();
    let u = user(&accounts, "carol", None).await;
    let s = accounts.login("carol", &Password::new(PASSWORD), None, &ctx()).await.unwrap();

    // Used within the idle timeout: stays alive, and use resets the idle clock.
    clock.advance(policy.idle_timeout - Duration::minutes(1));
    accounts.authenticate(&s.token, &ctx()).await.unwrap();
    clock.advance(policy.idle_timeout - Duration::minutes(1));
    accounts.authenticate(&s.token, &ctx()).await.unwrap();
    assert!(db.store.find_session(&s.token.hash()).await.unwrap().is_some());

    // Idle for the whole timeout: ended, and the row is gone.
    clock.advance(policy.idle_timeout);
    assert!(matches!(accounts.authenticate(&s.token, &ctx()).await, Err(CoreError::Unauthenticated)));
    assert!(db.store.find_session(&s.token.hash()).await.unwrap().is_none());
    assert!(matches!(accounts.authenticate(&s.token, &ctx()).await, Err(CoreError::Unauthenticated)));
    assert!(accounts.list_sessions(u.id).await.unwrap().is_empty());
    // An unknown token is simply unauthenticated.
    let ghost = SecretToken::generate().unwrap();
    assert!(matches!(accounts.authenticate(&ghost, &ctx()).await, Err(CoreError::Unauthenticated)));
}

async fn session_absolute_timeout_ends_session(db: TestDb) {
    let (accounts, clock) = setup(&db);
    let policy = *accounts.session_policy();
    user(&accounts, "dave", None).await;
    let s = accounts.login("dave", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    let step = policy.idle_timeout - Duration::hours(1);
    let mut elapsed = Duration::ZERO;
    // Used steadily, never idle for long: alive until the absolute timeout.
    while elapsed + step < policy.absolute_timeout {
        clock.advance(step);
        elapsed += step;
        accounts.authenticate(&s.token, &ctx()).await.unwrap_or_else(|e| panic!("alive after {elapsed}: {e}"));
    }
    let row = db.store.find_session(&s.token.hash()).await.unwrap().unwrap();
    assert!(row.last_seen_at > s.session.last_seen_at, "use was recorded");
    clock.advance(policy.absolute_timeout - elapsed);
    assert!(matches!(accounts.authenticate(&s.token, &ctx()).await, Err(CoreError::Unauthenticated)));
    assert!(db.store.find_session(&s.token.hash()).await.unwrap().is_none());
}

async fn login_rehashes_imported_bcrypt_hash(db: TestDb) {
    let (accounts, _clock) = setup(&db);
    let legacy = bcrypt::hash(PASSWORD, 4).unwrap();
    assert!(legacy.starts_with("$2"));
    let u = accounts
        .import_user(
            CreateUser { username: "erin".into(), email: None, display_name: None, password: None, roles: vec![] },
            &legacy,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(db.store.find_password_hash(u.id).await.unwrap().as_deref(), Some(legacy.as_str()));

    // A wrong password does not touch the hash.
    assert!(matches!(accounts.login("erin", &Password::new("not the password at all"), None, &ctx()).await, Err(CoreError::InvalidCredentials)));
    assert_eq!(db.store.find_password_hash(u.id).await.unwrap().as_deref(), Some(legacy.as_str()));

    accounts.login("erin", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    let upgraded = db.store.find_password_hash(u.id).await.unwrap().unwrap();
    assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
    let rehashed = accounts
        .audit_events(&AuditQuery { user_id: Some(u.id), ..AuditQuery::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "password_rehashed")
        .count();
    assert_eq!(rehashed, 1);

    // The new hash works and is not replaced again.
    accounts.login("erin", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    assert_eq!(db.store.find_password_hash(u.id).await.unwrap().unwrap(), upgraded);

    // Unsupported hashes are refused at import.
    let r = accounts
        .import_user(
            CreateUser { username: "frank".into(), email: None, display_name: None, password: None, roles: vec![] },
            "md5$abc",
            &ctx(),
        )
        .await;
    assert!(matches!(r, Err(CoreError::Invalid(_))), "{r:?}");
}

async fn logout_and_purge(db: TestDb) {
    let (accounts, clock) = setup(&db);
    let policy = *accounts.session_policy();
    let u = user(&accounts, "grace", None).await;
    let a = accounts.login("grace", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    let b = accounts.login("grace", &Password::new(PASSWORD), None, &ctx()).await.unwrap();
    accounts.logout(&a.token, &ctx()).await.unwrap();
    assert!(matches!(accounts.authenticate(&a.token, &ctx()).await, Err(CoreError::Unauthenticated)));
    accounts.logout(&a.token, &ctx()).await.unwrap(); // again: harmless
    assert!(accounts.authenticate(&b.token, &ctx()).await.is_ok());
    assert_eq!(accounts.list_sessions(u.id).await.unwrap().len(), 1);

    clock.advance(policy.idle_timeout + Duration::seconds(1));
    assert_eq!(accounts.purge_expired_sessions().await.unwrap(), 1);
    assert!(db.store.find_session(&b.token.hash()).await.unwrap().is_none());
}
