//! What ends grants, over HTTP on both backends: disabling or deleting a user and deleting a
//! client revoke their grants and tokens and publish it on the revocation feed; grants have an
//! absolute lifetime that rotation never extends; grants without `offline_access` end with
//! their session however it ends; refresh tokens go only to clients that may have them.

use crate::admin_access::{ADMIN_KEY, app_with_key, call, claims, register, sign_in, sign_out, user};
use crate::helpers::{TestApp, bare_client, spawn_app_with_clock};
use crate::oauth::{Rp, active, authorize, redeem, refresh, tokens};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tessera_core::clock::{Clock, ManualClock};
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::oauth::model::SecurityEventKind;
use tessera_testkit::Backend;
use time::{Duration, OffsetDateTime};

on_both_backends!(
    disabling_a_user_revokes_their_grants_and_publishes_it,
    deleting_a_user_revokes_their_tokens_and_publishes_it,
    deleting_a_client_revokes_its_tokens_and_publishes_it,
    refresh_chains_end_at_their_absolute_lifetime,
    refresh_chains_end_with_their_session_unless_offline,
    no_refresh_token_without_the_refresh_token_grant_type,
);

const CODE_AND_REFRESH: &str = "openid offline_access";

async fn ordinary(app: &TestApp) -> Rp {
    register(app, ClientRegistration { name: "Relying Party".into(), ..ClientRegistration::default() }).await
}

/// Signs `who` in and gets tokens for `rp` with `scope`: (access token, refresh token).
async fn grant(app: &TestApp, rp: &Rp, session: &str, scope: &str) -> (String, String) {
    let code = authorize(&app.base, &app.issuer, rp, session, scope).await;
    let (status, body) = redeem(&app.base, rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (at, rt) = tokens(&body);
    (at, rt.expect("a refresh token"))
}

fn assert_invalid_grant(r: &(StatusCode, Value), what: &str) {
    assert_eq!((r.0, r.1["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{what}: {}", r.1);
}

/// Subscribes to the revocation feed as `rp` and reads Security Event Tokens until one
/// satisfies `want` (the server's events carry no timing; the bound only stops a hang).
async fn feed_shows(app: &TestApp, rp: &Rp, want: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut res = bare_client().get(app.url("/events/v1/stream")).basic_auth(&rp.id, Some(&rp.secret)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut text = String::new();
    let mut seen = Vec::new();
    let read = async {
        while let Some(chunk) = res.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            seen = text.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| claims(d.trim())).collect();
            if seen.iter().any(&want) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(StdDuration::from_secs(20), read).await;
    assert!(seen.iter().any(&want), "the feed shows the revocation: {seen:?}");
    seen
}

fn revokes_session_of(user: &str) -> impl Fn(&Value) -> bool + '_ {
    move |set: &Value| {
        set["events"].as_object().is_some_and(|e| e.iter().any(|(k, v)| k.ends_with("/session-revoked") && v["subject"]["user"]["id"] == json!(user)))
    }
}

fn revokes_token(jti: &str) -> impl Fn(&Value) -> bool + '_ {
    move |set: &Value| {
        set["events"].as_object().is_some_and(|e| e.iter().any(|(k, v)| k == "urn:tessera:event-type:token-revoked" && v["subject"]["id"] == json!(jti)))
    }
}

async fn disabling_a_user_revokes_their_grants_and_publishes_it(backend: Backend) {
    let app = app_with_key(backend).await;
    let bob = user(&app, "bob", &[]).await;
    user(&app, "carol", &[]).await;
    let rp = ordinary(&app).await;
    let (_, s) = sign_in(&app, "bob").await;
    let (at, rt) = grant(&app, &rp, &s, CODE_AND_REFRESH).await;
    let (_, s) = sign_in(&app, "carol").await;
    let (carol_at, carol_rt) = grant(&app, &rp, &s, CODE_AND_REFRESH).await;

    let a = call(&app, "PATCH", &format!("/admin/v1/users/{}", bob.id), Some(ADMIN_KEY), Some(("application/json", r#"{"disabled": true}"#))).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_invalid_grant(&refresh(&app.base, &rp, &rt).await, "refresh of a disabled user's offline grant");
    assert!(!active(&app.base, &rp, &at).await, "a disabled user's access token is inactive");
    feed_shows(&app, &rp, revokes_session_of(&bob.id.to_string())).await;
    feed_shows(&app, &rp, revokes_token(claims(&at)["jti"].as_str().unwrap())).await;
    // Nobody else's grant is touched.
    assert!(active(&app.base, &rp, &carol_at).await);
    assert_eq!(refresh(&app.base, &rp, &carol_rt).await.0, StatusCode::OK);
}

async fn deleting_a_user_revokes_their_tokens_and_publishes_it(backend: Backend) {
    let app = app_with_key(backend).await;
    let bob = user(&app, "bob", &[]).await;
    let rp = ordinary(&app).await;
    let (_, s) = sign_in(&app, "bob").await;
    let (at, rt) = grant(&app, &rp, &s, CODE_AND_REFRESH).await;
    assert!(active(&app.base, &rp, &at).await);

    let a = call(&app, "DELETE", &format!("/admin/v1/users/{}", bob.id), Some(ADMIN_KEY), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    assert_invalid_grant(&refresh(&app.base, &rp, &rt).await, "refresh of a deleted user's grant");
    assert!(!active(&app.base, &rp, &at).await, "a deleted user's access token is inactive at introspection");
    let ui = bare_client().get(app.url("/oauth2/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::UNAUTHORIZED);
    feed_shows(&app, &rp, revokes_token(claims(&at)["jti"].as_str().unwrap())).await;
    feed_shows(&app, &rp, revokes_session_of(&bob.id.to_string())).await;
}

async fn deleting_a_client_revokes_its_tokens_and_publishes_it(backend: Backend) {
    let app = app_with_key(backend).await;
    user(&app, "bob", &[]).await;
    let rp = ordinary(&app).await;
    let other = ordinary(&app).await;
    let (_, s) = sign_in(&app, "bob").await;
    let (at, rt) = grant(&app, &rp, &s, CODE_AND_REFRESH).await;
    let (other_at, _) = grant(&app, &other, &s, CODE_AND_REFRESH).await;
    let app_ref = &app;
    let userinfo = |t: String| async move { bare_client().get(app_ref.url("/oauth2/userinfo")).bearer_auth(t).send().await.unwrap().status() };
    assert_eq!(userinfo(at.clone()).await, StatusCode::OK);

    let a = call(&app, "DELETE", &format!("/admin/v1/clients/{}", rp.id), Some(ADMIN_KEY), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    assert_eq!(userinfo(at.clone()).await, StatusCode::UNAUTHORIZED, "the deleted client's access token is refused");
    let (status, body) = refresh(&app.base, &rp, &rt).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(userinfo(other_at).await, StatusCode::OK, "other clients' tokens live on");
    // Published on the event log the feed serves (the deleted client cannot subscribe).
    let jti = claims(&at)["jti"].as_str().unwrap().to_owned();
    let events = app.provider.store().security_events_after(0, OffsetDateTime::UNIX_EPOCH, 1000).await.unwrap();
    assert!(events.iter().any(|e| e.kind == SecurityEventKind::TokenRevoked && e.subject == jti), "{events:?}");
}

async fn refresh_chains_end_at_their_absolute_lifetime(backend: Backend) {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let app = spawn_app_with_clock(backend, &[("TESSERA_OAUTH__GRANT_MAX_LIFETIME", "2d")], Arc::new(clock.clone())).await;
    user(&app, "bob", &[]).await;
    let rp = ordinary(&app).await;
    let short = register(&app, ClientRegistration { name: "Short".into(), grant_lifetime: Some(3600), ..ClientRegistration::default() }).await;
    let (_, s) = sign_in(&app, "bob").await;
    let (_, mut rt) = grant(&app, &rp, &s, CODE_AND_REFRESH).await;
    let (_, mut short_rt) = grant(&app, &short, &s, CODE_AND_REFRESH).await;
    let start = clock.now().unix_timestamp();

    // The client's own lifetime (an hour) ends its chain, used or not.
    clock.advance(Duration::minutes(30));
    let r = refresh(&app.base, &short, &short_rt).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    short_rt = tokens(&r.1).1.unwrap();
    let (_, info) = crate::oauth::post_as(&app.base, "/oauth2/introspect", &short, &[("token", short_rt.as_str())]).await;
    assert!(info["exp"].as_i64().unwrap() <= start + 3600, "rotation does not extend the grant: {info}");
    clock.advance(Duration::minutes(31));
    assert_invalid_grant(&refresh(&app.base, &short, &short_rt).await, "refresh past the client's grant lifetime");

    // The server's default (two days) ends the other, though it is refreshed every 12 hours.
    for _ in 0..3 {
        clock.advance(Duration::hours(12));
        let r = refresh(&app.base, &rp, &rt).await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.1);
        rt = tokens(&r.1).1.unwrap();
    }
    clock.advance(Duration::hours(12) + Duration::seconds(1));
    assert_invalid_grant(&refresh(&app.base, &rp, &rt).await, "refresh past grant_max_lifetime");
}

async fn refresh_chains_end_with_their_session_unless_offline(backend: Backend) {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let app = spawn_app_with_clock(backend, &[], Arc::new(clock.clone())).await;
    let bob = user(&app, "bob", &[]).await;
    let rp = ordinary(&app).await;

    // A session that times out (idle, 8 hours) while nothing purges it.
    let (_, s) = sign_in(&app, "bob").await;
    let (_, online) = grant(&app, &rp, &s, "openid").await;
    let (_, offline) = grant(&app, &rp, &s, CODE_AND_REFRESH).await;
    clock.advance(Duration::hours(1));
    let r = refresh(&app.base, &rp, &online).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let online = tokens(&r.1).1.unwrap();
    clock.advance(Duration::hours(9));
    assert_invalid_grant(&refresh(&app.base, &rp, &online).await, "refresh after the session timed out");
    assert_eq!(refresh(&app.base, &rp, &offline).await.0, StatusCode::OK, "offline_access outlives the session");

    // The purge job ending timed-out sessions revokes their grants and publishes it.
    let (_, s) = sign_in(&app, "bob").await;
    let (at, online) = grant(&app, &rp, &s, "openid").await;
    let sid = claims(&at)["sid"].as_str().unwrap().to_owned();
    clock.advance(Duration::hours(9));
    assert!(app.accounts.purge_expired_sessions().await.unwrap() >= 1);
    assert_invalid_grant(&refresh(&app.base, &rp, &online).await, "refresh after the purge");
    feed_shows(&app, &rp, |set| {
        set["events"].as_object().is_some_and(|e| e.values().any(|v| v["subject"]["session"]["id"] == json!(sid)))
    })
    .await;

    // Signing out ends the session's grants but not the offline one.
    let (c, s) = sign_in(&app, "bob").await;
    let (_, online) = grant(&app, &rp, &s, "openid").await;
    let (_, offline) = grant(&app, &rp, &s, CODE_AND_REFRESH).await;
    sign_out(&app, &c).await;
    assert_invalid_grant(&refresh(&app.base, &rp, &online).await, "refresh after signing out");
    assert_eq!(refresh(&app.base, &rp, &offline).await.0, StatusCode::OK);

    // A session that reached its absolute timeout (14 days) ends its grants too.
    let (_, s) = sign_in(&app, "bob").await;
    let (_, online) = grant(&app, &rp, &s, "openid").await;
    assert_eq!(app.accounts.list_sessions(bob.id).await.unwrap().len(), 1);
    for _ in 0..60 {
        // Used every 7 hours, the session never idles out; it ends after 14 days.
        clock.advance(Duration::hours(7));
        let page = bare_client().get(app.url("/account")).header("cookie", format!("tessera_session={s}")).send().await.unwrap();
        if page.status() != StatusCode::OK {
            break;
        }
    }
    assert_invalid_grant(&refresh(&app.base, &rp, &online).await, "refresh after the session's absolute timeout");
}

async fn no_refresh_token_without_the_refresh_token_grant_type(backend: Backend) {
    let app = app_with_key(backend).await;
    user(&app, "bob", &[]).await;
    let codes_only = register(&app, ClientRegistration { name: "Codes only".into(), grant_types: vec!["authorization_code".into()], ..ClientRegistration::default() }).await;
    let rp = ordinary(&app).await;
    let (_, s) = sign_in(&app, "bob").await;
    let code = authorize(&app.base, &app.issuer, &codes_only, &s, CODE_AND_REFRESH).await;
    let (status, body) = redeem(&app.base, &codes_only, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none(), "no refresh token for a client without the refresh_token grant: {body}");
    let code = authorize(&app.base, &app.issuer, &rp, &s, CODE_AND_REFRESH).await;
    let (status, body) = redeem(&app.base, &rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}
