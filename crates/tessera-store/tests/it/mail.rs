//! The mail outbox and e-mail challenges on both backends: a due message is claimed by one
//! caller until its lease lapses (also under concurrency), marking sent and rescheduling
//! need the claim's lease, a rescheduled message waits for its time; a challenge is read
//! without being used up, and used up once only — by the browser that asked, before it
//! expires — even under 50 concurrent attempts.

use crate::support::{create, now, start_session};
use std::sync::Arc;
use tessera_core::mail::challenge::{ChallengePurpose, ChallengeStore, NewChallenge};
use tessera_core::mail::{MailId, MailOutbox};
use tessera_core::outbox::OutboxStore;
use tessera_core::secret::{SecretToken, TokenHash};
use tessera_core::store::Store;
use tessera_testkit::TestDb;
use time::Duration;

tessera_testkit::backend_tests!(
    a_due_message_is_claimed_once_until_its_lease_lapses,
    concurrent_claims_share_messages_without_overlap,
    sent_and_rescheduled_need_the_claims_lease,
    a_challenge_is_read_without_being_used_up,
    a_reset_challenge_is_used_once_under_concurrency,
    a_challenge_from_another_browser_or_expired_changes_nothing,
    a_new_challenge_replaces_the_users_earlier_one,
    a_verification_marks_the_current_address_once_and_a_change_clears_it,
    a_sign_in_code_is_used_once_and_wrong_codes_use_it_up,
);

async fn a_due_message_is_claimed_once_until_its_lease_lapses(db: TestDb) {
    let t = now();
    let id = db.store.enqueue_mail(b"sealed-1", t).await.unwrap();
    let claimed = db.store.claim_due_mail(t, t + Duration::seconds(120), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].sealed.as_slice(), claimed[0].attempts), (id, b"sealed-1".as_slice(), 0));
    assert!(db.store.claim_due_mail(t, t + Duration::seconds(120), 10).await.unwrap().is_empty(), "held by the lease");
    let later = t + Duration::seconds(119);
    assert!(db.store.claim_due_mail(later, later + Duration::seconds(120), 10).await.unwrap().is_empty());
    // The claimant crashed: after the lease the message is due again (at least once).
    let lapsed = t + Duration::seconds(120);
    let again = db.store.claim_due_mail(lapsed, lapsed + Duration::seconds(120), 10).await.unwrap();
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(db.store.count_unsent_mail().await.unwrap(), 1);
}

async fn concurrent_claims_share_messages_without_overlap(db: TestDb) {
    let t = now();
    let mut ids = Vec::new();
    for i in 0..30u8 {
        ids.push(db.store.enqueue_mail(&[i], t).await.unwrap());
    }
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.claim_due_mail(t, t + Duration::seconds(60), 5).await.unwrap() }));
    }
    let mut got: Vec<MailId> = Vec::new();
    for task in tasks {
        got.extend(task.await.unwrap().into_iter().map(|m| m.id));
    }
    got.sort_unstable();
    let before = got.len();
    got.dedup();
    assert_eq!(got.len(), before, "no message claimed twice");
    assert!(got.len() >= 5 && got.len() <= 30, "{} claimed", got.len());
}

async fn sent_and_rescheduled_need_the_claims_lease(db: TestDb) {
    let t = now();
    let a = db.store.enqueue_mail(b"a", t).await.unwrap();
    let b = db.store.enqueue_mail(b"b", t).await.unwrap();
    let lease = t + Duration::seconds(60);
    let claimed = db.store.claim_due_mail(t, lease, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a, b]);
    assert!(!db.store.mark_mail_sent(a, lease + Duration::seconds(1), t).await.unwrap(), "another lease marks nothing");
    assert!(db.store.mark_mail_sent(a, lease, t).await.unwrap());
    assert!(!db.store.mark_mail_sent(a, lease, t).await.unwrap(), "sent once");
    assert!(db.store.reschedule_mail(b, lease, t + Duration::seconds(30), "451 try later").await.unwrap());
    assert!(!db.store.reschedule_mail(b, lease, t + Duration::seconds(30), "again").await.unwrap(), "the claim ended");
    assert_eq!(db.store.count_unsent_mail().await.unwrap(), 1);
    assert!(db.store.claim_due_mail(t + Duration::seconds(29), lease, 10).await.unwrap().is_empty(), "not due before its time");
    let due = t + Duration::seconds(30);
    let retried = db.store.claim_due_mail(due, due + Duration::seconds(60), 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts, retried[0].sealed.as_slice()), (b, 1, b"b".as_slice()));
    assert_eq!(db.store.purge_sent_mail(t + Duration::seconds(1)).await.unwrap(), 1, "the sent one is purged");
}

fn challenge(user: tessera_core::ids::UserId, browser: &TokenHash, minutes: i64) -> (SecretToken, NewChallenge) {
    let token = SecretToken::generate().unwrap();
    let t = now();
    let c = NewChallenge {
        hash: token.hash(),
        purpose: ChallengePurpose::PasswordReset,
        user_id: user,
        email: "alice@example.com".into(),
        browser: *browser,
        code: None,
        created_at: t,
        expires_at: t + Duration::minutes(minutes),
    };
    (token, c)
}

async fn a_challenge_is_read_without_being_used_up(db: TestDb) {
    let alice = create(db.store.as_ref(), "alice", Some("alice@example.com")).await;
    let browser = TokenHash::of(b"browser");
    let (token, c) = challenge(alice.id, &browser, 15);
    db.store.create_challenge_with_mail(&c, b"mail").await.unwrap();
    assert_eq!(db.store.count_unsent_mail().await.unwrap(), 1, "the mail is queued with it");
    for _ in 0..3 {
        let found = db.store.find_challenge(&token.hash(), now()).await.unwrap().unwrap();
        assert_eq!((found.user_id, found.purpose, found.browser), (alice.id, ChallengePurpose::PasswordReset, browser));
    }
    assert!(db.store.find_challenge(&token.hash(), now() + Duration::minutes(15)).await.unwrap().is_none(), "expired");
    assert!(db.store.find_challenge(&TokenHash::of(b"other"), now()).await.unwrap().is_none());
}

async fn a_reset_challenge_is_used_once_under_concurrency(db: TestDb) {
    let alice = create(db.store.as_ref(), "alice", Some("alice@example.com")).await;
    start_session(db.store.as_ref(), alice.id).await;
    start_session(db.store.as_ref(), alice.id).await;
    let browser = TokenHash::of(b"browser");
    let (token, c) = challenge(alice.id, &browser, 15);
    db.store.create_challenge_with_mail(&c, b"mail").await.unwrap();
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (s, h) = (store.clone(), token.hash());
        tasks.push(tokio::spawn(async move { s.reset_password_with_challenge(&h, &browser, &format!("$argon2id$new{i}"), now()).await }));
    }
    let mut done = Vec::new();
    for task in tasks {
        if let Some(d) = task.await.unwrap().unwrap() {
            done.push(d);
        }
    }
    assert_eq!(done.len(), 1, "exactly one reset");
    assert_eq!((done[0].user_id, done[0].sessions_ended), (alice.id, 2));
    assert!(db.store.list_user_sessions(alice.id).await.unwrap().is_empty(), "every session ended");
    let hash = db.store.find_password_hash(alice.id).await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$new"));
    let events = db.store.claim_pending_events(now() + Duration::seconds(1), now(), now() + Duration::seconds(30), 10).await.unwrap();
    assert_eq!(events.len(), 1, "one credentials-changed event (revokes every grant)");
    assert!(db.store.find_challenge(&token.hash(), now()).await.unwrap().is_none());
}

async fn a_challenge_from_another_browser_or_expired_changes_nothing(db: TestDb) {
    let alice = create(db.store.as_ref(), "alice", Some("alice@example.com")).await;
    start_session(db.store.as_ref(), alice.id).await;
    let browser = TokenHash::of(b"browser");
    let (token, c) = challenge(alice.id, &browser, 15);
    db.store.create_challenge_with_mail(&c, b"mail").await.unwrap();
    let other = TokenHash::of(b"scanner");
    assert!(db.store.reset_password_with_challenge(&token.hash(), &other, "$x", now()).await.unwrap().is_none());
    let late = now() + Duration::minutes(15);
    assert!(db.store.reset_password_with_challenge(&token.hash(), &browser, "$x", late).await.unwrap().is_none());
    assert_eq!(db.store.find_password_hash(alice.id).await.unwrap().unwrap(), "$argon2id$fake$alice");
    assert_eq!(db.store.list_user_sessions(alice.id).await.unwrap().len(), 1);
    assert!(db.store.find_challenge(&token.hash(), now()).await.unwrap().is_some(), "still usable by its browser");
    // A disabled user's link changes nothing either.
    db.store.set_user_disabled(alice.id, true, now()).await.unwrap();
    assert!(db.store.reset_password_with_challenge(&token.hash(), &browser, "$x", now()).await.unwrap().is_none());
    assert_eq!(db.store.find_password_hash(alice.id).await.unwrap().unwrap(), "$argon2id$fake$alice");
    assert_eq!(db.store.purge_expired_challenges(late).await.unwrap(), 1);
}

async fn a_new_challenge_replaces_the_users_earlier_one(db: TestDb) {
    let alice = create(db.store.as_ref(), "alice", Some("alice@example.com")).await;
    let browser = TokenHash::of(b"browser");
    let (first, c1) = challenge(alice.id, &browser, 15);
    db.store.create_challenge_with_mail(&c1, b"one").await.unwrap();
    let (second, c2) = challenge(alice.id, &browser, 15);
    db.store.create_challenge_with_mail(&c2, b"two").await.unwrap();
    assert!(db.store.find_challenge(&first.hash(), now()).await.unwrap().is_none(), "the older link stops working");
    assert!(db.store.find_challenge(&second.hash(), now()).await.unwrap().is_some());
    assert_eq!(db.store.count_unsent_mail().await.unwrap(), 2, "both mails are still sent");
}

fn verification(user: tessera_core::ids::UserId, email: &str, browser: &TokenHash) -> (SecretToken, NewChallenge) {
    let (token, mut c) = challenge(user, browser, 30);
    c.purpose = ChallengePurpose::VerifyEmail;
    c.email = email.into();
    (token, c)
}

async fn a_verification_marks_the_current_address_once_and_a_change_clears_it(db: TestDb) {
    let alice = create(db.store.as_ref(), "alice", Some("alice@example.com")).await;
    let bob = create(db.store.as_ref(), "bob", Some("bob@example.com")).await;
    let browser = TokenHash::of(b"browser");
    let (token, c) = verification(alice.id, "alice@example.com", &browser);
    db.store.create_challenge_with_mail(&c, b"mail").await.unwrap();
    let other = TokenHash::of(b"other");
    assert!(db.store.verify_email_with_challenge(&token.hash(), Some(&other), None, now()).await.unwrap().is_none(), "another browser");
    assert!(db.store.verify_email_with_challenge(&token.hash(), Some(&other), Some(bob.id), now()).await.unwrap().is_none(), "another user");
    assert_eq!(db.store.verify_email_with_challenge(&token.hash(), None, Some(alice.id), now()).await.unwrap(), Some(alice.id), "the owner, signed in");
    assert!(db.store.verify_email_with_challenge(&token.hash(), Some(&browser), None, now()).await.unwrap().is_none(), "once");
    assert!(db.store.find_user_by_id(alice.id).await.unwrap().unwrap().email_verified());

    use tessera_core::user::{Email, UserUpdate};
    let same = UserUpdate { username: None, email: Some(Some(Email::parse("ALICE@example.com").unwrap())), display_name: None };
    assert!(db.store.update_user(alice.id, &same, now()).await.unwrap().email_verified(), "the same address in another case stays confirmed");
    let new = UserUpdate { username: None, email: Some(Some(Email::parse("alice@new.example").unwrap())), display_name: None };
    assert!(!db.store.update_user(alice.id, &new, now()).await.unwrap().email_verified(), "a new address is unconfirmed");

    // A link mailed to the old address cannot confirm the new one.
    let (old_link, c) = verification(alice.id, "ALICE@example.com", &browser);
    db.store.create_challenge_with_mail(&c, b"mail").await.unwrap();
    assert!(db.store.verify_email_with_challenge(&old_link.hash(), Some(&browser), None, now()).await.unwrap().is_none());
    assert!(!db.store.find_user_by_id(alice.id).await.unwrap().unwrap().email_verified());
}

async fn a_sign_in_code_is_used_once_and_wrong_codes_use_it_up(db: TestDb) {
    let alice = create(db.store.as_ref(), "alice", Some("alice@example.com")).await;
    let browser = TokenHash::of(b"browser");
    let code = TokenHash::of(b"123456");
    let (link, mut c) = challenge(alice.id, &browser, 10);
    c.purpose = ChallengePurpose::SignIn;
    c.code = Some(code);
    db.store.create_challenge_with_mail(&c, b"mail").await.unwrap();
    let other = TokenHash::of(b"other");
    assert!(db.store.take_sign_in_by_code(&other, &code, 5, now()).await.unwrap().is_none(), "another browser");
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.take_sign_in_by_code(&browser, &code, 5, now()).await.unwrap() }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(winners, 1, "once only");
    assert!(db.store.take_sign_in_by_link(&link.hash(), &browser, 5, now()).await.unwrap().is_none(), "its link went with it");

    // Five wrong codes use a challenge up, the right code included.
    let (link, mut c) = challenge(alice.id, &browser, 10);
    c.purpose = ChallengePurpose::SignIn;
    c.code = Some(code);
    db.store.create_challenge_with_mail(&c, b"mail").await.unwrap();
    for _ in 0..5 {
        db.store.record_sign_in_code_failure(&browser).await.unwrap();
    }
    assert!(db.store.take_sign_in_by_code(&browser, &code, 5, now()).await.unwrap().is_none());
    assert!(db.store.take_sign_in_by_link(&link.hash(), &browser, 5, now()).await.unwrap().is_none());
}
