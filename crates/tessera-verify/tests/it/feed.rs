//! The revocation feed against a fake SSE server.

use crate::support::*;
use serde_json::json;
use std::time::Duration;
use tessera_verify::{FeedFailurePolicy, RevocationReason, Verifier, VerifyError};

async fn subscribed(policy: FeedFailurePolicy) -> (FakeIssuer, TestKey, Verifier, tessera_verify::FeedHandle) {
    let key = TestKey::ed25519("ed-1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    verifier.refresh_keys().await.unwrap();
    let feed = verifier.subscribe(issuer.feed_config().with_policy(policy)).unwrap();
    assert!(feed.wait_connected(Duration::from_secs(5)).await, "feed connects");
    (issuer, key, verifier, feed)
}

fn token_with_sid(key: &TestKey, issuer: &str, sid: &str) -> String {
    key.token(&with(claims(issuer), "sid", json!(sid)))
}

#[tokio::test]
async fn a_revoked_session_is_refused_within_a_second() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailClosed).await;
    let token = token_with_sid(&key, &issuer.issuer, "sid-live");
    let other = token_with_sid(&key, &issuer.issuer, "sid-other");
    assert!(verifier.verify(&token).await.is_ok());

    issuer.emit(key.set(&issuer.issuer, "ev-1", session_revoked("sid-live")));
    let took = eventually(Duration::from_secs(2), async || verifier.verify(&token).await.is_err()).await;
    let took = took.expect("revocation applied");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Revoked(RevocationReason::Session)));
    assert!(verifier.verify(&other).await.is_ok(), "other sessions unaffected");
    assert_eq!(feed.status().last_event_id.as_deref(), Some("1"));
    assert_eq!(feed.status().events_applied, 1);
    let auth = issuer.stream_auth();
    assert_eq!(auth[0].as_deref(), Some("Basic b3JkZXJzLWFwaTpzM2NyZXQ="), "HTTP Basic client_id:client_secret");
}

#[tokio::test]
async fn credential_change_and_token_revocation_are_applied() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailClosed).await;
    let base = claims(&issuer.issuer);
    let sub = base["sub"].as_str().unwrap().to_owned();
    let t = now();
    let before = key.token(&with(with(base.clone(), "iat", json!(t - 5)), "jti", json!("a")));
    let after = key.token(&with(with(base.clone(), "iat", json!(t + 5)), "jti", json!("b")));
    let revoked_jti = key.token(&with(with(base.clone(), "sub", json!("someone-else")), "jti", json!("dead")));
    issuer.emit(key.set(&issuer.issuer, "ev-1", credential_change(&sub, t)));
    issuer.emit(key.set(&issuer.issuer, "ev-2", token_revoked("dead")));
    eventually(Duration::from_secs(2), async || feed.status().events_applied == 2).await.expect("events applied");
    assert_eq!(verifier.verify(&before).await, Err(VerifyError::Revoked(RevocationReason::Subject)));
    assert!(verifier.verify(&after).await.is_ok(), "tokens issued after the change are fine");
    assert_eq!(verifier.verify(&revoked_jti).await, Err(VerifyError::Revoked(RevocationReason::Token)));
}

#[tokio::test]
async fn session_revoked_without_a_session_revokes_the_subject() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailClosed).await;
    let base = claims(&issuer.issuer);
    let sub = base["sub"].as_str().unwrap().to_owned();
    let event = json!({"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
        "subject": {"format":"complex","user":{"format":"opaque","id":sub}}, "event_timestamp": now()}});
    issuer.emit(key.set(&issuer.issuer, "ev-1", event));
    eventually(Duration::from_secs(2), async || feed.status().events_applied == 1).await.expect("event applied");
    assert_eq!(verifier.verify(&key.token(&base)).await, Err(VerifyError::Revoked(RevocationReason::Subject)));
}

#[tokio::test]
async fn invalid_sets_are_ignored_but_their_id_is_kept() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailClosed).await;
    let attacker = TestKey::ed25519("ed-1"); // same kid, other key
    issuer.emit(attacker.set(&issuer.issuer, "ev-1", session_revoked("s1")));
    // Wrong audience.
    let header = json!({"alg":"EdDSA","typ":"secevent+jwt","kid":"ed-1"});
    issuer.emit(key.sign(&header, &json!({"iss": issuer.issuer, "aud": "someone-else", "iat": now(), "jti": "x", "events": session_revoked("s2")})));
    // Wrong typ.
    let header = json!({"alg":"EdDSA","typ":"at+jwt","kid":"ed-1"});
    issuer.emit(key.sign(&header, &json!({"iss": issuer.issuer, "aud": CLIENT_ID, "iat": now(), "jti": "y", "events": session_revoked("s3")})));
    eventually(Duration::from_secs(2), async || feed.status().last_event_id.as_deref() == Some("3")).await.expect("ids advance");
    assert_eq!(feed.status().events_applied, 0);
    for sid in ["s1", "s2", "s3"] {
        assert!(verifier.verify(&token_with_sid(&key, &issuer.issuer, sid)).await.is_ok());
    }
}

#[tokio::test]
async fn a_set_signed_by_a_new_key_triggers_one_jwks_refetch() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailClosed).await;
    let rotated = TestKey::ed25519("ed-2");
    issuer.set_keys(&[&key, &rotated]);
    let before = issuer.fetches();
    issuer.emit(rotated.set(&issuer.issuer, "ev-1", session_revoked("s9")));
    eventually(Duration::from_secs(2), async || feed.status().events_applied == 1).await.expect("event applied");
    assert_eq!(issuer.fetches(), before + 1);
    assert!(verifier.verify(&token_with_sid(&key, &issuer.issuer, "s9")).await.is_err());
}

#[tokio::test]
async fn reconnect_resumes_after_the_last_event_without_loss() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailOpen { max: Duration::from_secs(60) }).await;
    issuer.emit(key.set(&issuer.issuer, "ev-1", session_revoked("s1")));
    issuer.emit(key.set(&issuer.issuer, "ev-2", session_revoked("s2")));
    eventually(Duration::from_secs(2), async || feed.status().last_event_id.as_deref() == Some("2")).await.expect("events 1-2");

    // The server drops the connection after event 2 and emits 3-4 while the client is away.
    issuer.set_stream_open(false);
    issuer.drop_streams().await;
    eventually(Duration::from_secs(2), async || !feed.status().connected).await.expect("client notices");
    issuer.emit(key.set(&issuer.issuer, "ev-3", session_revoked("s3")));
    issuer.emit(key.set(&issuer.issuer, "ev-4", token_revoked("jti-4")));
    tokio::time::sleep(Duration::from_millis(200)).await; // a refused reconnect or two
    issuer.set_stream_open(true);

    assert!(feed.wait_connected(Duration::from_secs(5)).await, "reconnects");
    eventually(Duration::from_secs(2), async || feed.status().last_event_id.as_deref() == Some("4")).await.expect("events 3-4");
    let requests = issuer.stream_requests();
    assert_eq!(requests.first(), Some(&None), "first connection has no Last-Event-ID");
    assert!(requests.iter().skip(1).all(|r| r.as_deref() == Some("2")), "every reconnect resumes after 2: {requests:?}");
    assert_eq!(requests.last().unwrap().as_deref(), Some("2"));
    assert_eq!(feed.status().events_applied, 4, "no event lost or applied twice");
    for sid in ["s1", "s2", "s3"] {
        assert_eq!(
            verifier.verify(&token_with_sid(&key, &issuer.issuer, sid)).await,
            Err(VerifyError::Revoked(RevocationReason::Session))
        );
    }
    let t = key.token(&with(claims(&issuer.issuer), "jti", json!("jti-4")));
    assert_eq!(verifier.verify(&t).await, Err(VerifyError::Revoked(RevocationReason::Token)));
}

#[tokio::test]
async fn fail_closed_refuses_while_the_feed_is_down() {
    let key = TestKey::ed25519("ed-1");
    let issuer = FakeIssuer::start(&[&key]).await;
    issuer.set_stream_open(false);
    let verifier = issuer.verifier();
    let feed = verifier.subscribe(issuer.feed_config().with_policy(FeedFailurePolicy::FailClosed)).unwrap();
    let token = key.token(&claims(&issuer.issuer));
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::FeedUnavailable));
    issuer.set_stream_open(true);
    assert!(feed.wait_connected(Duration::from_secs(5)).await);
    assert!(verifier.verify(&token).await.is_ok());
    // Down again: refused at once.
    issuer.set_stream_open(false);
    issuer.drop_streams().await;
    eventually(Duration::from_secs(2), async || !feed.status().connected).await.expect("disconnect noticed");
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::FeedUnavailable));
}

#[tokio::test]
async fn fail_open_accepts_for_at_most_max_after_the_last_contact() {
    let key = TestKey::ed25519("ed-1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    verifier.refresh_keys().await.unwrap();
    // The feed URL points at a port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events/v1/stream", dead.local_addr().unwrap());
    drop(dead);
    let config = issuer.feed_config().with_url(url).with_policy(FeedFailurePolicy::FailOpen { max: Duration::from_millis(400) });
    let feed = verifier.subscribe(config).unwrap();
    let token = key.token(&claims(&issuer.issuer));
    assert!(verifier.verify(&token).await.is_ok(), "accepted within max");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::FeedUnavailable));
    assert!(!feed.status().connected);
}

#[tokio::test]
async fn fail_open_after_a_disconnect_counts_from_the_last_contact() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailOpen { max: Duration::from_millis(500) }).await;
    let token = key.token(&claims(&issuer.issuer));
    issuer.set_stream_open(false);
    issuer.drop_streams().await;
    eventually(Duration::from_secs(2), async || !feed.status().connected).await.expect("disconnect noticed");
    assert!(verifier.verify(&token).await.is_ok(), "still within max");
    let refused = eventually(Duration::from_secs(2), async || verifier.verify(&token).await == Err(VerifyError::FeedUnavailable)).await;
    assert!(refused.is_some(), "refused once max has passed");
    issuer.set_stream_open(true);
    assert!(feed.wait_connected(Duration::from_secs(5)).await);
    assert!(verifier.verify(&token).await.is_ok(), "accepted again once reconnected");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_feed_and_subscribing_twice_is_refused() {
    let (issuer, key, verifier, feed) = subscribed(FeedFailurePolicy::FailClosed).await;
    assert!(matches!(verifier.subscribe(issuer.feed_config()), Err(tessera_verify::ConfigError::AlreadySubscribed)));
    let token = key.token(&claims(&issuer.issuer));
    assert!(verifier.verify(&token).await.is_ok());
    feed.stop();
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::FeedUnavailable), "fail-closed once stopped");
}
