//! `MfaStore` conformance on both backends: pending sign-ins (single use, lapse, failure
//! counter), session upgrades that rotate the id, TOTP enrolment and single-use steps,
//! recovery codes, passkeys, WebAuthn ceremonies, purging, cascades on user deletion, the
//! clients' `require_mfa` column, and single use under concurrency.

use crate::support::{create, now, start_session};
use std::sync::Arc;
use tessera_core::ids::{PasskeyId, UserId};
use tessera_core::jose::JwsAlg;
use tessera_core::mfa::level::AuthLevel;
use tessera_core::mfa::model::{Ceremony, CeremonyPurpose, FactorSummary, PasskeyRecord, PendingLogin};
use tessera_core::oauth::client::{AuthMethod, Client, ClientId, GrantType};
use tessera_core::secret::{SecretToken, TokenHash};
use tessera_core::store::{ConflictKind, MfaStore, OAuthStore, Store, StoreError};
use tessera_store::{ConnectOptions, SqlStore};
use tessera_testkit::{Backend, TestDb};
use time::{Duration, OffsetDateTime};

tessera_testkit::backend_tests!(
    pending_login_round_trip_and_lapse,
    pending_login_take_is_single_use,
    pending_login_failures_are_counted,
    upgrade_session_rotates_the_id_and_keeps_the_handle,
    upgrade_session_of_an_ended_session_is_none,
    totp_enrolment_confirmation_and_single_use_steps,
    recovery_codes_are_single_use_and_replaced_as_a_set,
    factor_summary_counts_each_factor,
    passkeys_register_list_rename_delete,
    duplicate_passkey_credential_is_a_conflict,
    ceremonies_are_single_use_and_lapse,
    purge_removes_lapsed_pending_logins_and_ceremonies,
    deleting_a_user_removes_their_factors,
    client_require_mfa_round_trips,
    existing_clients_do_not_require_mfa_after_migration,
    concurrent_recovery_code_use_has_one_winner,
    concurrent_totp_step_use_has_one_winner,
    concurrent_pending_login_take_has_one_winner,
    concurrent_recovery_code_replacements_leave_one_set,
);

// ------------------------------------------------------------------ fixtures

fn hash() -> TokenHash {
    SecretToken::generate().unwrap().hash()
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_owned()).collect()
}

fn pending(user_id: UserId, upgrade: Option<TokenHash>, expires_at: OffsetDateTime) -> PendingLogin {
    PendingLogin {
        user_id,
        amr: strings(&["pwd"]),
        required: AuthLevel::MultiFactor,
        upgrade,
        failures: 0,
        expires_at,
    }
}

fn passkey(user_id: UserId, credential_id: &[u8], name: &str, created_at: OffsetDateTime) -> PasskeyRecord {
    PasskeyRecord {
        id: PasskeyId::new(),
        user_id,
        credential_id: credential_id.to_vec(),
        name: name.to_owned(),
        data: format!(r#"{{"cred":"{name}","counter":0}}"#),
        created_at,
        last_used_at: None,
    }
}

fn ceremony(user_id: Option<UserId>, purpose: CeremonyPurpose, expires_at: OffsetDateTime) -> Ceremony {
    Ceremony { user_id, purpose, state: r#"{"challenge":"c2VjcmV0","rs":{}}"#.into(), expires_at }
}

fn client(require_mfa: bool) -> Client {
    Client {
        id: ClientId::generate().unwrap(),
        name: "Bank".into(),
        secret_hash: Some(TokenHash::of(b"secret of Bank")),
        redirect_uris: vec!["https://bank.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec!["openid".into()],
        skip_consent: true,
        require_mfa,
        introspection: false,
        resource: None,
        auth_method: AuthMethod::ClientSecretBasic,
        backchannel_logout_uri: None,
        id_token_alg: JwsAlg::EdDSA,
        jwks: None,
        admin_api: false,
        grant_lifetime: None,
        token_exchange: vec![],
        created_at: now(),
    }
}

fn assert_same_pending(got: &PendingLogin, want: &PendingLogin) {
    assert_eq!(got.user_id, want.user_id);
    assert_eq!(got.amr, want.amr);
    assert_eq!(got.required, want.required);
    assert_eq!(got.upgrade, want.upgrade);
    assert_eq!(got.failures, want.failures);
    assert_eq!(got.expires_at, want.expires_at);
}

fn assert_same_passkey(got: &PasskeyRecord, want: &PasskeyRecord) {
    assert_eq!(got.id, want.id);
    assert_eq!(got.user_id, want.user_id);
    assert_eq!(got.credential_id, want.credential_id);
    assert_eq!(got.name, want.name);
    assert_eq!(got.data, want.data);
    assert_eq!(got.created_at, want.created_at);
    assert_eq!(got.last_used_at, want.last_used_at);
}

/// Runs `n` copies of `f` released at once; returns how many returned true.
async fn race<F, Fut>(n: usize, f: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            let fut = f();
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("task did not panic").expect("no database error") {
            wins += 1;
        }
    }
    wins
}

// ------------------------------------------------------------------ pending sign-ins

async fn pending_login_round_trip_and_lapse(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "alice", None).await;
    let t = now();
    let h = hash();
    let session = hash();
    let mut p = pending(u.id, Some(session), t + Duration::minutes(5));
    p.amr = strings(&["pwd", "hwk"]);
    p.required = AuthLevel::PhishingResistant;
    p.failures = 2;
    store.create_pending_login(&h, &p).await.unwrap();

    let got = store.find_pending_login(&h, t).await.unwrap().expect("stored");
    assert_same_pending(&got, &p);
    // Finding does not use it up.
    assert!(store.find_pending_login(&h, t).await.unwrap().is_some());
    // Only the right hash finds it.
    assert!(store.find_pending_login(&hash(), t).await.unwrap().is_none());
    // At and after its expiry it is gone, for finding and for taking.
    assert!(store.find_pending_login(&h, p.expires_at).await.unwrap().is_none());
    assert!(store.find_pending_login(&h, p.expires_at + Duration::seconds(1)).await.unwrap().is_none());
    assert!(store.take_pending_login(&h, p.expires_at).await.unwrap().is_none());
    // A refused (lapsed) take did not delete it: still there before expiry.
    assert!(store.find_pending_login(&h, t).await.unwrap().is_some());

    // Without a session to upgrade, with the weakest level.
    let h2 = hash();
    let mut p2 = pending(u.id, None, t + Duration::minutes(5));
    p2.required = AuthLevel::SingleFactor;
    store.create_pending_login(&h2, &p2).await.unwrap();
    assert_same_pending(&store.find_pending_login(&h2, t).await.unwrap().unwrap(), &p2);

    // A second pending sign-in under the same hash is refused.
    assert!(matches!(store.create_pending_login(&h2, &p2).await, Err(StoreError::Conflict(_))));
}

async fn pending_login_take_is_single_use(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "bob", None).await;
    let t = now();
    let h = hash();
    let p = pending(u.id, None, t + Duration::minutes(5));
    store.create_pending_login(&h, &p).await.unwrap();

    let taken = store.take_pending_login(&h, t).await.unwrap().expect("first take gets it");
    assert_same_pending(&taken, &p);
    assert!(store.take_pending_login(&h, t).await.unwrap().is_none(), "second take gets nothing");
    assert!(store.find_pending_login(&h, t).await.unwrap().is_none());
    assert_eq!(store.record_pending_failure(&h).await.unwrap(), None, "nothing to count against");
    assert!(store.take_pending_login(&hash(), t).await.unwrap().is_none());
}

async fn pending_login_failures_are_counted(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "carol", None).await;
    let t = now();
    let h = hash();
    store.create_pending_login(&h, &pending(u.id, None, t + Duration::minutes(5))).await.unwrap();
    assert_eq!(store.record_pending_failure(&h).await.unwrap(), Some(1));
    assert_eq!(store.record_pending_failure(&h).await.unwrap(), Some(2));
    assert_eq!(store.record_pending_failure(&h).await.unwrap(), Some(3));
    assert_eq!(store.find_pending_login(&h, t).await.unwrap().unwrap().failures, 3);
    assert_eq!(store.take_pending_login(&h, t).await.unwrap().unwrap().failures, 3);
    assert_eq!(store.record_pending_failure(&h).await.unwrap(), None);
    assert_eq!(store.record_pending_failure(&hash()).await.unwrap(), None);

    // Another pending sign-in counts separately.
    let other = hash();
    store.create_pending_login(&other, &pending(u.id, None, t + Duration::minutes(5))).await.unwrap();
    assert_eq!(store.record_pending_failure(&other).await.unwrap(), Some(1));
}

// ------------------------------------------------------------------ session upgrade

async fn upgrade_session_rotates_the_id_and_keeps_the_handle(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "dave", None).await;
    let (old, new_session) = start_session(store.as_ref(), u.id).await;
    let (bystander, _) = start_session(store.as_ref(), u.id).await;
    let before = new_session.session;
    let new = hash();
    let amr = strings(&["pwd", "otp", "mfa"]);
    let auth_time = before.auth_time + Duration::minutes(30);

    let s = store.upgrade_session(u.id, &old.hash(), &new, &amr, auth_time).await.unwrap().expect("session exists");
    assert_eq!(s.handle, before.handle, "the handle (and so its grants) stays");
    assert_eq!(s.user_id, u.id);
    assert_eq!(s.amr, amr);
    assert_eq!(s.auth_time, auth_time);
    assert_eq!(s.created_at, before.created_at);
    assert_eq!(s.expires_at, before.expires_at);
    assert_eq!(s.ip, before.ip);
    assert_eq!(s.user_agent, before.user_agent);

    assert!(store.find_session(&old.hash()).await.unwrap().is_none(), "the old id no longer works");
    let found = store.find_session(&new).await.unwrap().expect("found by the new id");
    assert_eq!(found.handle, before.handle);
    assert_eq!(found.amr, amr);
    assert_eq!(found.auth_time, auth_time);
    assert_eq!(store.list_user_sessions(u.id).await.unwrap().len(), 2, "rotated, not added");
    assert_eq!(store.find_session(&bystander.hash()).await.unwrap().unwrap().amr, strings(&["pwd"]), "other sessions untouched");

    // The old id cannot be upgraded again; the new one can.
    assert!(store.upgrade_session(u.id, &old.hash(), &hash(), &amr, auth_time).await.unwrap().is_none());
    let newer = hash();
    let s2 = store.upgrade_session(u.id, &new, &newer, &strings(&["pwd", "hwk", "mfa"]), auth_time).await.unwrap().unwrap();
    assert_eq!(s2.handle, before.handle);
    assert_eq!(s2.amr, strings(&["pwd", "hwk", "mfa"]));
    assert!(store.find_session(&new).await.unwrap().is_none());

    // Rotating onto an id that is in use is refused and changes nothing.
    let r = store.upgrade_session(u.id, &newer, &bystander.hash(), &amr, auth_time).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert!(store.find_session(&newer).await.unwrap().is_some());

    // Another user's session cannot be upgraded, nor one past its absolute expiry.
    let other = create(store.as_ref(), "mallory", None).await;
    assert!(store.upgrade_session(other.id, &newer, &hash(), &amr, auth_time).await.unwrap().is_none());
    assert!(store.upgrade_session(u.id, &newer, &hash(), &amr, before.expires_at).await.unwrap().is_none());
    assert!(store.find_session(&newer).await.unwrap().is_some(), "nothing changed");
}

async fn upgrade_session_of_an_ended_session_is_none(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "erin", None).await;
    let (token, _) = start_session(store.as_ref(), u.id).await;
    store.delete_session(&token.hash(), now()).await.unwrap().expect("ended");
    let new = hash();
    assert!(store.upgrade_session(u.id, &token.hash(), &new, &strings(&["pwd", "otp", "mfa"]), now()).await.unwrap().is_none());
    assert!(store.find_session(&new).await.unwrap().is_none(), "nothing created");
    assert!(store.upgrade_session(u.id, &hash(), &hash(), &[], now()).await.unwrap().is_none());
}

// ------------------------------------------------------------------ TOTP and recovery codes

async fn totp_enrolment_confirmation_and_single_use_steps(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "frank", None).await;
    let t = now();
    assert!(store.find_totp(u.id).await.unwrap().is_none());
    assert!(!store.confirm_totp(u.id, 100, t).await.unwrap(), "nothing to confirm");
    assert!(!store.use_totp_step(u.id, 100).await.unwrap(), "no authenticator");

    // Enrol; while unconfirmed it does not count and cannot be used.
    assert!(store.begin_totp_enrolment(u.id, b"sealed-1", t).await.unwrap());
    let rec = store.find_totp(u.id).await.unwrap().unwrap();
    assert_eq!(rec.user_id, u.id);
    assert_eq!(rec.sealed_secret, b"sealed-1");
    assert_eq!(rec.confirmed_at, None);
    assert_eq!(rec.last_step, 0);
    assert_eq!(rec.created_at, t);
    assert!(!store.find_factor_summary(u.id).await.unwrap().totp);
    assert!(!store.use_totp_step(u.id, 100).await.unwrap(), "unconfirmed enrolment cannot sign in");

    // Restart while unconfirmed: a new secret replaces the old one.
    let t2 = t + Duration::minutes(2);
    assert!(store.begin_totp_enrolment(u.id, b"sealed-2", t2).await.unwrap());
    let rec = store.find_totp(u.id).await.unwrap().unwrap();
    assert_eq!(rec.sealed_secret, b"sealed-2");
    assert_eq!(rec.created_at, t2);
    assert_eq!(rec.confirmed_at, None);

    // Confirm with the first accepted code's step.
    let t3 = t2 + Duration::minutes(1);
    assert!(store.confirm_totp(u.id, 1000, t3).await.unwrap());
    assert!(!store.confirm_totp(u.id, 1001, t3).await.unwrap(), "already confirmed");
    let rec = store.find_totp(u.id).await.unwrap().unwrap();
    assert_eq!(rec.confirmed_at, Some(t3));
    assert_eq!(rec.last_step, 1000);
    assert_eq!(rec.sealed_secret, b"sealed-2");
    assert!(store.find_factor_summary(u.id).await.unwrap().totp);

    // A confirmed authenticator is never replaced by a new enrolment.
    assert!(!store.begin_totp_enrolment(u.id, b"sealed-3", t3).await.unwrap());
    let rec = store.find_totp(u.id).await.unwrap().unwrap();
    assert_eq!(rec.sealed_secret, b"sealed-2");
    assert_eq!(rec.confirmed_at, Some(t3));
    assert_eq!(rec.last_step, 1000);

    // The confirming step and earlier ones are refused; later ones once each.
    assert!(!store.use_totp_step(u.id, 1000).await.unwrap());
    assert!(!store.use_totp_step(u.id, 999).await.unwrap());
    assert!(store.use_totp_step(u.id, 1001).await.unwrap());
    assert!(!store.use_totp_step(u.id, 1001).await.unwrap(), "same step twice");
    assert!(store.use_totp_step(u.id, 1005).await.unwrap());
    assert!(!store.use_totp_step(u.id, 1003).await.unwrap(), "earlier than the last accepted");
    assert_eq!(store.find_totp(u.id).await.unwrap().unwrap().last_step, 1005);

    // Another user's authenticator is separate.
    let other = create(store.as_ref(), "grace", None).await;
    assert!(!store.use_totp_step(other.id, 2000).await.unwrap());
    assert!(store.find_totp(other.id).await.unwrap().is_none());

    // Remove; then enrolment starts afresh.
    assert!(store.delete_totp(u.id).await.unwrap());
    assert!(!store.delete_totp(u.id).await.unwrap());
    assert!(store.find_totp(u.id).await.unwrap().is_none());
    assert!(!store.use_totp_step(u.id, 2000).await.unwrap());
    assert!(!store.find_factor_summary(u.id).await.unwrap().totp);
    assert!(store.begin_totp_enrolment(u.id, b"sealed-4", t3).await.unwrap());
    let rec = store.find_totp(u.id).await.unwrap().unwrap();
    assert_eq!((rec.sealed_secret.as_slice(), rec.confirmed_at, rec.last_step), (b"sealed-4".as_slice(), None, 0));
}

async fn recovery_codes_are_single_use_and_replaced_as_a_set(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "heidi", None).await;
    let other = create(store.as_ref(), "ivan", None).await;
    let t = now();
    let first: Vec<TokenHash> = (0..3).map(|_| hash()).collect();
    store.replace_recovery_codes(u.id, &first, t).await.unwrap();
    assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 3);

    // Not another user's, and not an unknown one.
    assert!(!store.use_recovery_code(other.id, &first[0], t).await.unwrap());
    assert!(!store.use_recovery_code(u.id, &hash(), t).await.unwrap());

    // Each works exactly once.
    assert!(store.use_recovery_code(u.id, &first[0], t).await.unwrap());
    assert!(!store.use_recovery_code(u.id, &first[0], t).await.unwrap());
    assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 2);
    assert!(store.use_recovery_code(u.id, &first[1], t).await.unwrap());
    assert!(!store.use_recovery_code(u.id, &first[1], t + Duration::days(1)).await.unwrap());
    assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 1);

    // A new set invalidates every old code, used or not.
    let second: Vec<TokenHash> = (0..4).map(|_| hash()).collect();
    store.replace_recovery_codes(u.id, &second, t).await.unwrap();
    assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 4);
    for old in &first {
        assert!(!store.use_recovery_code(u.id, old, t).await.unwrap());
    }
    for new in &second {
        assert!(store.use_recovery_code(u.id, new, t).await.unwrap());
    }
    assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 0);

    // The same code hash may belong to two users independently.
    store.replace_recovery_codes(other.id, &second[..1], t).await.unwrap();
    assert!(store.use_recovery_code(other.id, &second[0], t).await.unwrap());

    // An empty set removes them all; an unknown user is not found.
    store.replace_recovery_codes(u.id, &second, t).await.unwrap();
    store.replace_recovery_codes(u.id, &[], t).await.unwrap();
    assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 0);
    assert!(!store.use_recovery_code(u.id, &second[0], t).await.unwrap());
    assert!(matches!(store.replace_recovery_codes(UserId::new(), &first, t).await, Err(StoreError::NotFound)));
}

async fn factor_summary_counts_each_factor(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "judy", None).await;
    let other = create(store.as_ref(), "mallory", None).await;
    let t = now();
    let empty = store.find_factor_summary(u.id).await.unwrap();
    assert_eq!(empty, FactorSummary::default());
    assert!(!empty.has_second_factor());
    assert_eq!(store.find_factor_summary(UserId::new()).await.unwrap(), FactorSummary::default());

    store.create_passkey(&passkey(u.id, b"cred-a", "Laptop", t)).await.unwrap();
    store.create_passkey(&passkey(u.id, b"cred-b", "Phone", t)).await.unwrap();
    store.create_passkey(&passkey(other.id, b"cred-c", "Other", t)).await.unwrap();
    let codes: Vec<TokenHash> = (0..5).map(|_| hash()).collect();
    store.replace_recovery_codes(u.id, &codes, t).await.unwrap();
    store.use_recovery_code(u.id, &codes[2], t).await.unwrap();
    store.begin_totp_enrolment(u.id, b"sealed", t).await.unwrap();
    let s = store.find_factor_summary(u.id).await.unwrap();
    assert_eq!(s, FactorSummary { totp: false, passkeys: 2, recovery_codes: 4 });
    assert!(s.has_second_factor());
    store.confirm_totp(u.id, 1, t).await.unwrap();
    assert_eq!(store.find_factor_summary(u.id).await.unwrap(), FactorSummary { totp: true, passkeys: 2, recovery_codes: 4 });
    assert_eq!(store.find_factor_summary(other.id).await.unwrap(), FactorSummary { totp: false, passkeys: 1, recovery_codes: 0 });
}

// ------------------------------------------------------------------ passkeys

async fn passkeys_register_list_rename_delete(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "niaj", None).await;
    let other = create(store.as_ref(), "olivia", None).await;
    let t = now();
    let first = passkey(u.id, &[1, 2, 3, 0, 255], "YubiKey", t);
    let second = passkey(u.id, b"second-credential", "Phone", t + Duration::seconds(10));
    let theirs = passkey(other.id, b"their-credential", "Theirs", t);
    // Registered out of order: listed oldest first.
    store.create_passkey(&second).await.unwrap();
    store.create_passkey(&first).await.unwrap();
    store.create_passkey(&theirs).await.unwrap();

    let mine = store.list_passkeys(u.id).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert_same_passkey(&mine[0], &first);
    assert_same_passkey(&mine[1], &second);
    let listed = store.list_passkeys(other.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_same_passkey(&listed[0], &theirs);
    assert!(store.list_passkeys(UserId::new()).await.unwrap().is_empty());

    // Found by the authenticator's credential id (binary, exact).
    assert_same_passkey(&store.find_passkey_by_credential(&[1, 2, 3, 0, 255]).await.unwrap().unwrap(), &first);
    assert_same_passkey(&store.find_passkey_by_credential(b"their-credential").await.unwrap().unwrap(), &theirs);
    assert!(store.find_passkey_by_credential(&[1, 2, 3]).await.unwrap().is_none());
    assert!(store.find_passkey_by_credential(b"").await.unwrap().is_none());

    // A use records the new state and when.
    let used_at = t + Duration::minutes(7);
    store.record_passkey_use(first.id, r#"{"counter":8}"#, used_at).await.unwrap();
    let p = store.find_passkey_by_credential(&first.credential_id).await.unwrap().unwrap();
    assert_eq!(p.data, r#"{"counter":8}"#);
    assert_eq!(p.last_used_at, Some(used_at));
    assert_eq!(p.name, "YubiKey");
    assert_same_passkey(&store.list_passkeys(u.id).await.unwrap()[1], &second);
    assert!(matches!(store.record_passkey_use(PasskeyId::new(), "{}", used_at).await, Err(StoreError::NotFound)));

    // Renaming and deleting only by the owner.
    assert!(!store.rename_passkey(other.id, first.id, "Stolen").await.unwrap());
    assert!(!store.rename_passkey(u.id, PasskeyId::new(), "Ghost").await.unwrap());
    assert!(store.rename_passkey(u.id, first.id, "Blue key").await.unwrap());
    assert_eq!(store.list_passkeys(u.id).await.unwrap()[0].name, "Blue key");
    assert!(!store.delete_passkey(other.id, first.id).await.unwrap());
    assert_eq!(store.list_passkeys(u.id).await.unwrap().len(), 2);
    assert!(store.delete_passkey(u.id, first.id).await.unwrap());
    assert!(!store.delete_passkey(u.id, first.id).await.unwrap());
    let left = store.list_passkeys(u.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, second.id);
    assert!(store.find_passkey_by_credential(&first.credential_id).await.unwrap().is_none());
    assert_eq!(store.list_passkeys(other.id).await.unwrap().len(), 1);
    // The credential id can be registered again once deleted.
    store.create_passkey(&passkey(other.id, &first.credential_id, "Reused", t)).await.unwrap();
}

async fn duplicate_passkey_credential_is_a_conflict(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "peggy", None).await;
    let other = create(store.as_ref(), "rupert", None).await;
    let t = now();
    let p = passkey(u.id, b"shared-credential-id", "Mine", t);
    store.create_passkey(&p).await.unwrap();
    for owner in [u.id, other.id] {
        match store.create_passkey(&passkey(owner, b"shared-credential-id", "Copy", t)).await {
            Err(StoreError::Conflict(what)) => assert_eq!(what, ConflictKind::PasskeyCredential),
            x => panic!("expected Conflict(PasskeyCredential), got {x:?}"),
        }
    }
    let mine = store.list_passkeys(u.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_same_passkey(&mine[0], &p);
    assert!(store.list_passkeys(other.id).await.unwrap().is_empty());
    assert_eq!(store.find_passkey_by_credential(b"shared-credential-id").await.unwrap().unwrap().user_id, u.id);
}

// ------------------------------------------------------------------ ceremonies

async fn ceremonies_are_single_use_and_lapse(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "sybil", None).await;
    let t = now();
    let h = hash();
    let c = ceremony(Some(u.id), CeremonyPurpose::Register, t + Duration::minutes(5));
    store.create_ceremony(&h, &c).await.unwrap();
    assert!(store.take_ceremony(&hash(), t).await.unwrap().is_none());
    let got = store.take_ceremony(&h, t).await.unwrap().expect("first take gets it");
    assert_eq!(got.user_id, Some(u.id));
    assert_eq!(got.purpose, CeremonyPurpose::Register);
    assert_eq!(got.state, c.state);
    assert_eq!(got.expires_at, c.expires_at);
    assert!(store.take_ceremony(&h, t).await.unwrap().is_none(), "single use");

    // Passwordless: nobody named yet.
    let h2 = hash();
    store.create_ceremony(&h2, &ceremony(None, CeremonyPurpose::Passwordless, t + Duration::minutes(5))).await.unwrap();
    let got = store.take_ceremony(&h2, t).await.unwrap().unwrap();
    assert_eq!((got.user_id, got.purpose), (None, CeremonyPurpose::Passwordless));

    // Lapsed at its expiry.
    let h3 = hash();
    let c3 = ceremony(Some(u.id), CeremonyPurpose::SecondFactor, t + Duration::minutes(5));
    store.create_ceremony(&h3, &c3).await.unwrap();
    assert!(store.take_ceremony(&h3, c3.expires_at).await.unwrap().is_none());
    assert!(store.take_ceremony(&h3, c3.expires_at + Duration::hours(1)).await.unwrap().is_none());
    // …but a refused take does not delete a live one.
    let got = store.take_ceremony(&h3, t).await.unwrap().unwrap();
    assert_eq!(got.purpose, CeremonyPurpose::SecondFactor);
}

async fn purge_removes_lapsed_pending_logins_and_ceremonies(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "trent", None).await;
    let t = now();
    let (lapsed1, lapsed2, live) = (hash(), hash(), hash());
    store.create_pending_login(&lapsed1, &pending(u.id, None, t - Duration::seconds(1))).await.unwrap();
    store.create_pending_login(&lapsed2, &pending(u.id, None, t)).await.unwrap();
    store.create_pending_login(&live, &pending(u.id, None, t + Duration::minutes(5))).await.unwrap();
    let (c_lapsed, c_live) = (hash(), hash());
    store.create_ceremony(&c_lapsed, &ceremony(None, CeremonyPurpose::Passwordless, t - Duration::minutes(1))).await.unwrap();
    store.create_ceremony(&c_live, &ceremony(Some(u.id), CeremonyPurpose::Register, t + Duration::minutes(5))).await.unwrap();

    assert_eq!(store.purge_expired_mfa(t).await.unwrap(), 3);
    assert_eq!(store.purge_expired_mfa(t).await.unwrap(), 0);
    // The lapsed ones are really gone: not even an earlier clock finds them.
    let earlier = t - Duration::hours(1);
    assert!(store.find_pending_login(&lapsed1, earlier).await.unwrap().is_none());
    assert!(store.find_pending_login(&lapsed2, earlier).await.unwrap().is_none());
    assert!(store.take_ceremony(&c_lapsed, earlier).await.unwrap().is_none());
    assert!(store.find_pending_login(&live, t).await.unwrap().is_some());
    assert!(store.take_ceremony(&c_live, t).await.unwrap().is_some());
}

// ------------------------------------------------------------------ cascades and clients

async fn deleting_a_user_removes_their_factors(db: TestDb) {
    let store = db.dyn_store();
    let u = create(store.as_ref(), "victor", None).await;
    let keep = create(store.as_ref(), "walter", None).await;
    let t = now();
    let later = t + Duration::minutes(10);
    for who in [u.id, keep.id] {
        store.begin_totp_enrolment(who, b"sealed", t).await.unwrap();
        store.confirm_totp(who, 5, t).await.unwrap();
        store.replace_recovery_codes(who, &[hash(), hash()], t).await.unwrap();
    }
    let pk = passkey(u.id, b"victor-key", "Key", t);
    store.create_passkey(&pk).await.unwrap();
    store.create_passkey(&passkey(keep.id, b"walter-key", "Key", t)).await.unwrap();
    let (p, p_keep, c, c_keep) = (hash(), hash(), hash(), hash());
    store.create_pending_login(&p, &pending(u.id, None, later)).await.unwrap();
    store.create_pending_login(&p_keep, &pending(keep.id, None, later)).await.unwrap();
    store.create_ceremony(&c, &ceremony(Some(u.id), CeremonyPurpose::Register, later)).await.unwrap();
    store.create_ceremony(&c_keep, &ceremony(Some(keep.id), CeremonyPurpose::Register, later)).await.unwrap();

    store.delete_user(u.id).await.unwrap();
    // Every lookup below is by the deleted id or by a hash, so rows left behind would show.
    assert!(store.find_totp(u.id).await.unwrap().is_none());
    assert_eq!(store.find_factor_summary(u.id).await.unwrap(), FactorSummary::default());
    assert!(store.list_passkeys(u.id).await.unwrap().is_empty());
    assert!(store.find_passkey_by_credential(b"victor-key").await.unwrap().is_none());
    assert!(store.find_pending_login(&p, t).await.unwrap().is_none());
    assert!(store.take_ceremony(&c, t).await.unwrap().is_none());

    // The other user keeps everything.
    assert_eq!(store.find_factor_summary(keep.id).await.unwrap(), FactorSummary { totp: true, passkeys: 1, recovery_codes: 2 });
    assert!(store.find_pending_login(&p_keep, t).await.unwrap().is_some());
    assert!(store.take_ceremony(&c_keep, t).await.unwrap().is_some());
    // The credential id is free again.
    store.create_passkey(&passkey(keep.id, b"victor-key", "Reused", t)).await.unwrap();
}

async fn client_require_mfa_round_trips(db: TestDb) {
    let strict = client(true);
    let relaxed = client(false);
    db.store.create_client(&strict).await.unwrap();
    db.store.create_client(&relaxed).await.unwrap();
    let got = db.store.find_client(&strict.id).await.unwrap().unwrap();
    assert!(got.require_mfa);
    assert!(got.skip_consent);
    assert_eq!(got.name, strict.name);
    assert!(!db.store.find_client(&relaxed.id).await.unwrap().unwrap().require_mfa);
    let all = db.store.list_clients().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().find(|c| c.id == strict.id).map(|c| c.require_mfa), Some(true));
    assert_eq!(all.iter().find(|c| c.id == relaxed.id).map(|c| c.require_mfa), Some(false));
}

/// A client registered before migration 5 does not require MFA after it.
async fn existing_clients_do_not_require_mfa_after_migration(db: TestDb) {
    let (dir, earlier): (&str, [&str; 4]) = match db.backend {
        Backend::Sqlite => (
            "sqlite",
            [
                include_str!("../../migrations/sqlite/0001_foundation.sql"),
                include_str!("../../migrations/sqlite/0002_oauth.sql"),
                include_str!("../../migrations/sqlite/0003_security_events.sql"),
                include_str!("../../migrations/sqlite/0004_throttle.sql"),
            ],
        ),
        Backend::Postgres => (
            "postgres",
            [
                include_str!("../../migrations/postgres/0001_foundation.sql"),
                include_str!("../../migrations/postgres/0002_oauth.sql"),
                include_str!("../../migrations/postgres/0003_security_events.sql"),
                include_str!("../../migrations/postgres/0004_throttle.sql"),
            ],
        ),
    };
    let (url, _guard) = TestDb::fresh_url(db.backend).await.unwrap();
    let mut script = String::from(
        "CREATE TABLE tessera_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);\n",
    );
    for (i, sql) in earlier.iter().enumerate() {
        script.push_str(sql);
        script.push_str(&format!("\nINSERT INTO tessera_migrations (version, name, applied_at) VALUES ({}, 'v{}', 0);\n", i + 1, i + 1));
    }
    script.push_str(
        "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, \
         skip_consent, auth_method, backchannel_logout_uri, id_token_alg, jwks, created_at) \
         VALUES ('old-client', 'Old', NULL, '[\"https://old.example/cb\"]', '[]', '[\"authorization_code\"]', '[\"openid\"]', \
         FALSE, 'none', NULL, 'EdDSA', NULL, 1700000000);\n",
    );
    match db.backend {
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let store = SqlStore::connect(&url, &ConnectOptions::default()).await.unwrap();
    let applied = store.migrate(now()).await.unwrap();
    assert_eq!(applied.first(), Some(&5), "the MFA migration was pending ({dir}): {applied:?}");
    assert!(applied.windows(2).all(|w| w[0] < w[1]), "later migrations follow in order ({dir}): {applied:?}");
    let old = store.find_client(&ClientId::new("old-client")).await.unwrap().expect("kept");
    assert!(!old.require_mfa);
    assert_eq!(old.auth_method, AuthMethod::None);
    // The new tables work on the migrated database.
    let u = create(&store, "xavier", None).await;
    assert!(store.begin_totp_enrolment(u.id, b"sealed", now()).await.unwrap());
    store.close().await;
}

// ------------------------------------------------------------------ concurrency

async fn concurrent_recovery_code_use_has_one_winner(db: TestDb) {
    let store: Arc<dyn Store> = db.dyn_store();
    let u = create(store.as_ref(), "yvonne", None).await;
    for _round in 0..3 {
        let codes = vec![hash(), hash()];
        store.replace_recovery_codes(u.id, &codes, now()).await.unwrap();
        let wins = race(10, || {
            let store = store.clone();
            let code = codes[0];
            async move { store.use_recovery_code(u.id, &code, now()).await }
        })
        .await;
        assert_eq!(wins, 1, "exactly one of 10 concurrent uses of a recovery code wins");
        assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 1);
        assert!(!store.use_recovery_code(u.id, &codes[0], now()).await.unwrap());
    }
}

async fn concurrent_totp_step_use_has_one_winner(db: TestDb) {
    let store: Arc<dyn Store> = db.dyn_store();
    let u = create(store.as_ref(), "zoe", None).await;
    store.begin_totp_enrolment(u.id, b"sealed", now()).await.unwrap();
    store.confirm_totp(u.id, 10, now()).await.unwrap();
    for step in [11, 12, 20] {
        let wins = race(10, || {
            let store = store.clone();
            async move { store.use_totp_step(u.id, step).await }
        })
        .await;
        assert_eq!(wins, 1, "exactly one of 10 concurrent uses of step {step} wins");
        assert_eq!(store.find_totp(u.id).await.unwrap().unwrap().last_step, step);
    }
}

async fn concurrent_pending_login_take_has_one_winner(db: TestDb) {
    let store: Arc<dyn Store> = db.dyn_store();
    let u = create(store.as_ref(), "amy", None).await;
    let h = hash();
    store.create_pending_login(&h, &pending(u.id, None, now() + Duration::minutes(5))).await.unwrap();
    let wins = race(10, || {
        let store = store.clone();
        async move { store.take_pending_login(&h, now()).await.map(|p| p.is_some()) }
    })
    .await;
    assert_eq!(wins, 1, "exactly one of 10 concurrent takes gets the pending sign-in");
}

async fn concurrent_recovery_code_replacements_leave_one_set(db: TestDb) {
    let store: Arc<dyn Store> = db.dyn_store();
    let u = create(store.as_ref(), "bea", None).await;
    let sets: Vec<Vec<TokenHash>> = (0..6).map(|_| (0..3).map(|_| hash()).collect()).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(sets.len()));
    let tasks: Vec<_> = sets
        .iter()
        .cloned()
        .map(|set| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.replace_recovery_codes(u.id, &set, now()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.find_factor_summary(u.id).await.unwrap().recovery_codes, 3, "one whole set survives, never a mix");
    let mut surviving = 0;
    for set in &sets {
        let mut usable = 0;
        for code in set {
            if store.use_recovery_code(u.id, code, now()).await.unwrap() {
                usable += 1;
            }
        }
        assert!(usable == 0 || usable == 3, "a set is valid whole or not at all ({usable} of 3)");
        surviving += usize::from(usable == 3);
    }
    assert_eq!(surviving, 1);
}
