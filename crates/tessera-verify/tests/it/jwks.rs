//! The JWKS cache: refetch on an unknown `kid`, rate-limited; old keys kept on failure.

use crate::support::*;
use std::time::Duration;
use tessera_verify::{JwksSource, Verifier, VerifyError};

#[tokio::test]
async fn unknown_kid_refetches_once_and_a_second_miss_within_the_window_does_not() {
    let known = TestKey::ed25519("known");
    let issuer = FakeIssuer::start(&[&known]).await;
    let verifier = issuer.verifier();
    verifier.refresh_keys().await.unwrap();
    assert_eq!(issuer.fetches(), 1);

    let stranger = TestKey::ed25519("stranger-1");
    let token = stranger.token(&claims(&issuer.issuer));
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey));
    assert_eq!(issuer.fetches(), 2, "exactly one refetch for the unknown kid");

    let other = TestKey::ed25519("stranger-2");
    assert_eq!(verifier.verify(&other.token(&claims(&issuer.issuer))).await, Err(VerifyError::UnknownKey));
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey));
    assert_eq!(issuer.fetches(), 2, "no refetch within the rate-limit window");

    // Known keys keep working without fetching.
    assert!(verifier.verify(&known.token(&claims(&issuer.issuer))).await.is_ok());
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn a_rotated_in_key_is_picked_up_by_the_refetch() {
    let old = TestKey::ed25519("old");
    let issuer = FakeIssuer::start(&[&old]).await;
    let verifier = issuer.verifier();
    verifier.refresh_keys().await.unwrap();
    let new = TestKey::p256("new");
    issuer.set_keys(&[&old, &new]);
    assert!(verifier.verify(&new.token(&claims(&issuer.issuer))).await.is_ok());
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn concurrent_misses_share_one_refetch() {
    let key = TestKey::ed25519("k");
    let issuer = FakeIssuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    let token = key.token(&claims(&issuer.issuer));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (v, t) = (verifier.clone(), token.clone());
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_cached_keys() {
    let key = TestKey::ed25519("k");
    let issuer = FakeIssuer::start(&[&key]).await;
    let mut config = issuer.config();
    // The JWKS URL of a second server that we stop after the first fetch.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let jwks = serde_json::json!({"keys": [key.jwk.clone()]}).to_string();
    let app = axum::Router::new().route("/jwks", axum::routing::get(move || async move { jwks }));
    tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async { rx.await.ok(); }).await.unwrap();
    });
    let mut remote = remote_with_interval(Duration::from_millis(1));
    remote.url = Some(format!("http://{addr}/jwks"));
    config.jwks = JwksSource::Remote(remote);
    let verifier = Verifier::new(config).unwrap();
    verifier.refresh_keys().await.unwrap();
    tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(verifier.refresh_keys().await, Err(VerifyError::KeysUnavailable));
    assert!(verifier.verify(&key.token(&claims(&issuer.issuer))).await.is_ok(), "old set still served");
}

#[tokio::test]
async fn an_unreachable_issuer_gives_keys_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let verifier = Verifier::new(tessera_verify::VerifierConfig::new(dead.clone(), [AUD])).unwrap();
    let key = TestKey::ed25519("k");
    assert_eq!(verifier.verify(&key.token(&claims(&dead))).await, Err(VerifyError::KeysUnavailable));
}

#[tokio::test]
async fn keys_are_refreshed_in_the_background_once_max_age_has_passed() {
    let key = TestKey::ed25519("k");
    let issuer = FakeIssuer::start(&[&key]).await;
    issuer.jwks_max_age.store(1, std::sync::atomic::Ordering::SeqCst);
    let config = issuer.config().with_jwks(JwksSource::Remote(remote_with_interval(Duration::from_millis(10))));
    let verifier = Verifier::new(config).unwrap();
    let token = key.token(&claims(&issuer.issuer));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.fetches(), 1, "fresh for max-age");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(verifier.verify(&token).await.is_ok(), "stale keys still serve while refreshing");
    assert!(eventually(Duration::from_secs(2), async || issuer.fetches() == 2).await.is_some(), "refreshed in the background");
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.fetches(), 2, "one refresh per expiry");
}
