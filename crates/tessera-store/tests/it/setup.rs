//! The first-administrator setup token: single use, expiry, replacement, races.

use crate::support::now;
use std::sync::Arc;
use tessera_core::secret::SecretToken;
use tessera_core::store::Store;
use tessera_testkit::TestDb;
use time::Duration;

tessera_testkit::backend_tests!(
    setup_token_is_consumed_exactly_once,
    setup_token_is_not_consumed_after_expiry,
    replacing_setup_token_invalidates_the_old_one,
    concurrent_consumption_succeeds_exactly_once,
);

async fn setup_token_is_consumed_exactly_once(db: TestDb) {
    let store = db.dyn_store();
    let t = now();
    let token = SecretToken::generate().unwrap();
    assert!(!store.setup_token_valid(&token.hash(), t).await.unwrap(), "nothing stored yet");
    assert!(!store.consume_setup_token(&token.hash(), t).await.unwrap());

    store.replace_setup_token(&token.hash(), t + Duration::hours(24)).await.unwrap();
    assert!(store.setup_token_valid(&token.hash(), t).await.unwrap());
    assert!(store.setup_token_valid(&token.hash(), t).await.unwrap(), "checking does not use it up");
    let wrong = SecretToken::generate().unwrap();
    assert!(!store.setup_token_valid(&wrong.hash(), t).await.unwrap());
    assert!(!store.consume_setup_token(&wrong.hash(), t).await.unwrap());

    assert!(store.consume_setup_token(&token.hash(), t).await.unwrap());
    assert!(!store.consume_setup_token(&token.hash(), t).await.unwrap());
    assert!(!store.setup_token_valid(&token.hash(), t).await.unwrap());
}

async fn setup_token_is_not_consumed_after_expiry(db: TestDb) {
    let store = db.dyn_store();
    let t = now();
    let token = SecretToken::generate().unwrap();
    let expires = t + Duration::hours(24);
    store.replace_setup_token(&token.hash(), expires).await.unwrap();
    assert!(store.setup_token_valid(&token.hash(), expires - Duration::seconds(1)).await.unwrap());
    // At the expiry instant it is no longer valid.
    assert!(!store.setup_token_valid(&token.hash(), expires).await.unwrap());
    assert!(!store.consume_setup_token(&token.hash(), expires).await.unwrap());
    assert!(!store.consume_setup_token(&token.hash(), expires + Duration::hours(1)).await.unwrap());
    // Still usable before expiry: a late failed attempt did not destroy it...
    assert!(store.consume_setup_token(&token.hash(), expires - Duration::seconds(1)).await.unwrap());
    // ...but only once.
    assert!(!store.consume_setup_token(&token.hash(), t).await.unwrap());
}

async fn replacing_setup_token_invalidates_the_old_one(db: TestDb) {
    let store = db.dyn_store();
    let t = now();
    let old = SecretToken::generate().unwrap();
    let new = SecretToken::generate().unwrap();
    store.replace_setup_token(&old.hash(), t + Duration::hours(24)).await.unwrap();
    store.replace_setup_token(&new.hash(), t + Duration::hours(24)).await.unwrap();
    assert!(!store.setup_token_valid(&old.hash(), t).await.unwrap());
    assert!(!store.consume_setup_token(&old.hash(), t).await.unwrap());
    assert!(store.setup_token_valid(&new.hash(), t).await.unwrap());
    // Replacing with the same token again is fine (e.g. restarting with the same link).
    store.replace_setup_token(&new.hash(), t + Duration::hours(48)).await.unwrap();
    assert!(store.setup_token_valid(&new.hash(), t + Duration::hours(30)).await.unwrap());
    assert!(store.consume_setup_token(&new.hash(), t).await.unwrap());
    assert!(!store.consume_setup_token(&new.hash(), t).await.unwrap());
}

async fn concurrent_consumption_succeeds_exactly_once(db: TestDb) {
    let store: Arc<dyn Store> = db.dyn_store();
    let t = now();
    let token = SecretToken::generate().unwrap();
    store.replace_setup_token(&token.hash(), t + Duration::hours(24)).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let hash = token.hash();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.consume_setup_token(&hash, t).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task.await.expect("task did not panic").expect("no database error") {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one of 20 concurrent consumers wins");
    assert!(!store.setup_token_valid(&token.hash(), t).await.unwrap());
}
