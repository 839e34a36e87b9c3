//! Token exchange (RFC 8693) of upstream tokens kept in the credential vault, over HTTP on
//! both backends: an allowed client exchanges its user's access token for the kept upstream
//! token (audited; listed on the account page, and gone once the user drops it there), and
//! each refusal answers its RFC error — a client not allowed the grant, a provider or scope
//! not allowed, another client's subject token, a revoked subject token, nothing kept — and
//! dropping kept tokens from the account page needs a recent sign-in.

use crate::helpers::{PASSWORD, TestApp, field_value, spawn_app, spawn_app_with_clock};
use crate::oauth::{REDIRECT_URI, Rp, authorize, post_as, redeem, tokens};
use reqwest::StatusCode;
use serde_json::Value;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::store::AuditQuery;
use tessera_core::upstream::{TokenKeeper, UpstreamSecret, UpstreamTokenSet};
use tessera_core::user::User;
use tessera_testkit::Backend;
use time::{Duration, OffsetDateTime};

on_both_backends!(an_allowed_client_gets_the_kept_upstream_token, each_refusal_has_its_error, dropping_kept_tokens_needs_a_recent_sign_in);

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const GITHUB: &str = "urn:tessera:params:oauth:token-type:upstream:github";

async fn register(app: &TestApp, name: &str, allow: &[&str]) -> Rp {
    let (client, secret) = app
        .provider
        .register_client(ClientRegistration {
            name: name.into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            skip_consent: true,
            token_exchange: allow.iter().map(|a| a.parse().unwrap()).collect(),
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    Rp { id: client.id.to_string(), secret: secret.unwrap() }
}

/// Signs `username` in on the app's cookie client; returns the user and the session cookie.
async fn sign_in(app: &TestApp, username: &str) -> (User, String) {
    let user = app.create_user(username, PASSWORD).await;
    let signed_in = app.post_login(username, PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{signed_in:?}");
    (user, crate::helpers::cookie_value(&signed_in.session_cookie().unwrap()))
}

/// An access token `rp` obtained for the session's user.
async fn access_token(app: &TestApp, rp: &Rp, session: &str) -> String {
    let code = authorize(&app.base, &app.issuer, rp, session, "openid profile").await;
    let (status, body) = redeem(&app.base, rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokens(&body).0
}

/// Keeps GitHub tokens for `user` the way federation does after a sign-in.
async fn keep_github(app: &TestApp, user: &User, access: &str, scope: &str) {
    let now = OffsetDateTime::now_utc();
    let set = UpstreamTokenSet {
        access_token: UpstreamSecret::new(access),
        refresh_token: Some(UpstreamSecret::new("ghr_refresh")),
        expires_at: Some(now + Duration::hours(1)),
        scope: Some(scope.into()),
    };
    app.vault.keep(&user.id, "github", "583231", set, now).await.unwrap();
}

async fn exchange(app: &TestApp, rp: &Rp, subject: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", GRANT), ("subject_token", subject), ("subject_token_type", ACCESS_TOKEN), ("requested_token_type", GITHUB)];
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        form.push((*k, *v));
    }
    post_as(&app.base, "/oauth2/token", rp, &form).await
}

fn assert_error(answer: &(StatusCode, Value), code: &str) {
    assert_eq!(answer.1["error"], code, "{}", answer.1);
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
    assert!(answer.1.get("access_token").is_none());
}

async fn an_allowed_client_gets_the_kept_upstream_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let rp = register(&app, "Code search", &["github:repo,user:email"]).await;
    let (alice, session) = sign_in(&app, "alice").await;
    keep_github(&app, &alice, "gho_alice", "repo,user:email").await;
    let at = access_token(&app, &rp, &session).await;

    let (status, body) = exchange(&app, &rp, &at, &[("scope", "repo")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_token"], "gho_alice");
    assert_eq!(body["issued_token_type"], GITHUB);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "repo user:email", "the scope the upstream token carries");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((3500..=3600).contains(&expires_in), "{body}");
    assert!(body.get("refresh_token").is_none(), "the upstream refresh token never leaves the vault");
    // Without a scope parameter, too.
    let (status, body) = exchange(&app, &rp, &at, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert!(discovery["grant_types_supported"].as_array().unwrap().iter().any(|g| g == GRANT), "{discovery}");

    let events = app.accounts.audit_events(&AuditQuery { user_id: Some(alice.id), ..AuditQuery::default() }).await.unwrap();
    let exchanged = events.iter().find(|e| e.kind == "upstream_token_exchanged").expect("the exchange is audited");
    assert_eq!(exchanged.detail["provider"], "github");
    assert_eq!(exchanged.detail["client_id"], rp.id.as_str());
    assert!(events.iter().any(|e| e.kind == "upstream_tokens_kept"));
    assert!(!serde_json::to_string(&events).unwrap().contains("gho_alice"), "never the token");

    // The account page lists the kept tokens (never the token), and the user drops them.
    let page = app.get("/account").await;
    assert!(page.body.contains("data-upstream-provider=\"github\""), "{}", page.body);
    assert!(!page.body.contains("gho_alice"));
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let refused = app.client.post(app.url("/account/upstream-tokens/github/drop")).form(&[("csrf_token", "forged")]).send().await.unwrap();
    assert_ne!(refused.status(), StatusCode::SEE_OTHER, "a forged CSRF token drops nothing");
    assert_eq!(app.vault.list(alice.id).await.unwrap().len(), 1);
    let dropped = app.client.post(app.url("/account/upstream-tokens/github/drop")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(dropped.status(), StatusCode::SEE_OTHER);
    assert_eq!(dropped.headers()["location"].to_str().unwrap(), "/account?done=upstream_tokens_dropped");
    assert!(app.vault.list(alice.id).await.unwrap().is_empty());
    assert!(!app.get("/account").await.body.contains("data-upstream-provider"));
    // Nothing kept any more: invalid_grant.
    assert_error(&exchange(&app, &rp, &at, &[]).await, "invalid_grant");
}

async fn each_refusal_has_its_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let allowed = register(&app, "Code search", &["github:repo,user:email"]).await;
    let plain = register(&app, "Plain app", &[]).await;
    let (alice, session) = sign_in(&app, "alice").await;
    keep_github(&app, &alice, "gho_alice", "repo,user:email").await;
    let at = access_token(&app, &allowed, &session).await;
    let plain_at = access_token(&app, &plain, &session).await;

    // A client the administrator did not allow the grant.
    assert_error(&exchange(&app, &plain, &plain_at, &[]).await, "unauthorized_client");
    // A provider the client is not allowed.
    assert_error(&exchange(&app, &allowed, &at, &[("requested_token_type", "urn:tessera:params:oauth:token-type:upstream:gitlab")]).await, "invalid_target");
    // A scope the client is not allowed.
    assert_error(&exchange(&app, &allowed, &at, &[("scope", "admin:org")]).await, "invalid_scope");
    // Another client's access token as the subject.
    assert_error(&exchange(&app, &allowed, &plain_at, &[]).await, "invalid_grant");
    // Not an access token at all; malformed requests.
    assert_error(&exchange(&app, &allowed, "not-a-token", &[]).await, "invalid_grant");
    assert_error(&exchange(&app, &allowed, &at, &[("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")]).await, "invalid_request");
    assert_error(&exchange(&app, &allowed, &at, &[("requested_token_type", ACCESS_TOKEN)]).await, "invalid_request");
    // A user for whom nothing is kept.
    let bob_session = {
        let bob = app.create_user("bob", PASSWORD).await;
        assert!(app.vault.list(bob.id).await.unwrap().is_empty());
        let login = crate::helpers::client();
        let page = login.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let csrf = field_value(&page, "csrf_token").unwrap();
        let res = login
            .post(app.url("/login"))
            .form(&[("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", "bob"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        let cookie = crate::helpers::set_cookie_header(res.headers(), "tessera_session").expect("bob signed in");
        crate::helpers::cookie_value(&cookie)
    };
    let bob_at = access_token(&app, &allowed, &bob_session).await;
    assert_error(&exchange(&app, &allowed, &bob_at, &[]).await, "invalid_grant");

    // The subject token works, until its client revokes it.
    assert_eq!(exchange(&app, &allowed, &at, &[]).await.0, StatusCode::OK);
    let (status, _) = post_as(&app.base, "/oauth2/revoke", &allowed, &[("token", at.as_str())]).await;
    assert_eq!(status, StatusCode::OK);
    assert_error(&exchange(&app, &allowed, &at, &[]).await, "invalid_grant");

    // A kept token carrying more than the client is allowed is not handed out.
    let narrow = register(&app, "Repo only", &["github:repo"]).await;
    let narrow_at = access_token(&app, &narrow, &session).await;
    assert_error(&exchange(&app, &narrow, &narrow_at, &[]).await, "invalid_scope");
    // Public clients cannot be allowed the grant.
    let public = app
        .provider
        .register_client(ClientRegistration {
            name: "SPA".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            public: true,
            token_exchange: vec!["github".parse().unwrap()],
            ..ClientRegistration::default()
        })
        .await;
    assert!(public.is_err());
}

async fn dropping_kept_tokens_needs_a_recent_sign_in(backend: Backend) {
    let clock = tessera_core::clock::ManualClock::new(OffsetDateTime::now_utc());
    let app = spawn_app_with_clock(backend, &[], std::sync::Arc::new(clock.clone())).await;
    let (alice, _) = sign_in(&app, "alice").await;
    keep_github(&app, &alice, "gho_alice", "repo").await;
    clock.advance(Duration::minutes(11));
    let page = app.get("/account").await;
    assert!(page.body.contains("data-upstream-provider=\"github\""));
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let refused = app.client.post(app.url("/account/upstream-tokens/github/drop")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    let to = refused.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/login?reauth=1&return_to=%2Faccount"), "{to}");
    assert_eq!(app.vault.list(alice.id).await.unwrap().len(), 1, "nothing dropped without a recent sign-in");
    // Not a provider name, or nothing kept: nothing happens.
    let odd = app.client.post(app.url("/account/upstream-tokens/a%20b/drop")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(odd.status(), StatusCode::NOT_FOUND);
}
