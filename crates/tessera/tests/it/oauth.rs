//! The OAuth endpoints over HTTP, on both backends: authorization code + PKCE, then the
//! token endpoint under concurrent redemption of one code and concurrent refreshes of one
//! refresh token, checked afterwards at introspection.

use crate::helpers::{PASSWORD, TestApp, spawn_app};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use tessera_core::oauth::client::ClientRegistration;
use tessera_testkit::Backend;

on_both_backends!(
    code_flow_issues_tokens,
    sequential_code_replay_revokes_the_tokens,
    parallel_code_redemption_has_exactly_one_winner,
    parallel_refresh_has_at_most_one_winner,
);

pub const REDIRECT_URI: &str = "https://rp.example/cb";

/// A client's credentials.
#[derive(Debug, Clone)]
pub struct Rp {
    pub id: String,
    pub secret: String,
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref());
    (verifier, challenge)
}

/// An authorization code obtained with `session` (a `tessera_session` cookie value).
pub struct Code {
    pub code: String,
    pub verifier: String,
}

/// Runs `GET /oauth2/authorize` (PKCE S256) as the signed-in user; checks the 303 to the
/// redirect URI with `code`, `state` and `iss`, and returns the code.
pub async fn authorize(base: &str, issuer: &str, rp: &Rp, session: &str, scope: &str) -> Code {
    let (verifier, challenge) = pkce();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/oauth2/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", rp.id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", scope),
            ("state", state.as_str()),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let res = crate::helpers::bare_client()
        .get(url)
        .header(reqwest::header::COOKIE, format!("tessera_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "authorize: {:?}", res.headers());
    let location = res.headers().get(reqwest::header::LOCATION).unwrap().to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{REDIRECT_URI}?")), "{location}");
    let url = reqwest::Url::parse(&location).unwrap();
    let q: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("error"), None, "{location}");
    assert_eq!(get("state").as_deref(), Some(state.as_str()), "{location}");
    assert_eq!(get("iss").as_deref(), Some(issuer), "{location}");
    let code = get("code").unwrap_or_else(|| panic!("no code in {location}"));
    Code { code, verifier }
}

/// `POST {base}{path}` with client_secret_basic and a form; status and JSON body.
pub async fn post_as(base: &str, path: &str, rp: &Rp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = crate::helpers::bare_client()
        .post(format!("{base}{path}"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Redeems a code at the token endpoint.
pub async fn redeem(base: &str, rp: &Rp, code: &Code) -> (StatusCode, Value) {
    post_as(
        base,
        "/oauth2/token",
        rp,
        &[("grant_type", "authorization_code"), ("code", &code.code), ("redirect_uri", REDIRECT_URI), ("code_verifier", &code.verifier)],
    )
    .await
}

/// Refreshes at the token endpoint.
pub async fn refresh(base: &str, rp: &Rp, token: &str) -> (StatusCode, Value) {
    post_as(base, "/oauth2/token", rp, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

/// Whether introspection (by `rp`) calls `token` active.
pub async fn active(base: &str, rp: &Rp, token: &str) -> bool {
    let (status, body) = post_as(base, "/oauth2/introspect", rp, &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "introspection: {body}");
    body["active"].as_bool().unwrap_or_else(|| panic!("introspection without active: {body}"))
}

/// A 200 token response's fields.
pub fn tokens(body: &Value) -> (String, Option<String>) {
    let at = body["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {body}")).to_owned();
    (at, body["refresh_token"].as_str().map(str::to_owned))
}

/// Registers a confidential client with `https://rp.example/cb` that skips consent.
async fn register(app: &TestApp) -> Rp {
    let (client, secret) = app
        .provider
        .register_client(ClientRegistration {
            name: "Relying Party".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            skip_consent: true,
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    Rp { id: client.id.to_string(), secret: secret.expect("a confidential client has a secret") }
}

/// A running app with a registered client and a signed-in user; returns the session.
async fn setup(backend: Backend) -> (TestApp, Rp, String) {
    let app = spawn_app(backend).await;
    let rp = register(&app).await;
    app.create_user("alice", PASSWORD).await;
    let signed_in = app.post_login("alice", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{signed_in:?}");
    let session = crate::helpers::cookie_value(&signed_in.session_cookie().expect("session cookie"));
    (app, rp, session)
}

/// Fires `n` requests at once (released together) and returns their answers.
async fn all_at_once<F, Fut>(n: usize, make: F) -> Vec<(StatusCode, Value)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let fut = make();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn code_flow_issues_tokens(backend: Backend) {
    let (app, rp, session) = setup(backend).await;
    // The cookie client the user signed in with reaches the same decision.
    let code = authorize(&app.base, &app.issuer, &rp, &session, "openid profile offline_access").await;
    let (status, body) = redeem(&app.base, &rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["id_token"].is_string(), "{body}");
    let (at, rt) = tokens(&body);
    let rt = rt.expect("a refresh token");
    assert!(active(&app.base, &rp, &at).await);
    assert!(active(&app.base, &rp, &rt).await);
    let info = crate::helpers::bare_client().get(app.url("/oauth2/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["preferred_username"], "alice");

    // Refresh rotates: the new pair works, the old refresh token is spent.
    let (status, body) = refresh(&app.base, &rp, &rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (at2, rt2) = tokens(&body);
    let rt2 = rt2.unwrap();
    assert_ne!(rt2, rt);
    assert!(active(&app.base, &rp, &at2).await);
    assert!(active(&app.base, &rp, &rt2).await);
    assert!(!active(&app.base, &rp, &rt).await);
}

async fn sequential_code_replay_revokes_the_tokens(backend: Backend) {
    let (app, rp, session) = setup(backend).await;
    let code = authorize(&app.base, &app.issuer, &rp, &session, "openid offline_access").await;
    let (status, body) = redeem(&app.base, &rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (at, rt) = tokens(&body);
    let rt = rt.unwrap();
    assert!(active(&app.base, &rp, &at).await);

    let (status, body) = redeem(&app.base, &rp, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(!active(&app.base, &rp, &at).await, "the access token from a replayed code is revoked");
    assert!(!active(&app.base, &rp, &rt).await, "the refresh token from a replayed code is revoked");
    let (status, body) = refresh(&app.base, &rp, &rt).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let info = crate::helpers::bare_client().get(app.url("/oauth2/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
}

async fn parallel_code_redemption_has_exactly_one_winner(backend: Backend) {
    let (app, rp, session) = setup(backend).await;
    let mut winners_seen = 0;
    for round in 0..3 {
        let code = Arc::new(authorize(&app.base, &app.issuer, &rp, &session, "openid offline_access").await);
        let base = app.base.clone();
        let answers = all_at_once(20, || {
            let (base, rp, code) = (base.clone(), rp.clone(), code.clone());
            async move { redeem(&base, &rp, &code).await }
        })
        .await;
        let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
        let losers: Vec<&(StatusCode, Value)> = answers.iter().filter(|(s, _)| *s != StatusCode::OK).collect();
        assert_eq!(winners.len(), 1, "round {round}: {} redemptions of one code succeeded", winners.len());
        for (status, body) in &losers {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "round {round}: {body}");
            assert_eq!(body["error"], "invalid_grant", "round {round}: {body}");
        }
        eprintln!("round {round} on {backend:?}: {} winner(s), {} invalid_grant", winners.len(), losers.len());
        if let Some(w) = winners.first() {
            winners_seen += 1;
            let (at, rt) = tokens(w);
            // The replays came after the winner's grant was stored: they revoked it.
            assert!(!active(&app.base, &rp, &at).await, "round {round}: the winner's access token is revoked by the replays");
            let rt = rt.unwrap();
            assert!(!active(&app.base, &rp, &rt).await, "round {round}: the winner's refresh token is revoked");
            let (status, _) = refresh(&app.base, &rp, &rt).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        // Whatever happened, the code is spent.
        let (status, body) = redeem(&app.base, &rp, &code).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    }
    eprintln!("{backend:?}: rounds with a winner: {winners_seen}/3");
}

async fn parallel_refresh_has_at_most_one_winner(backend: Backend) {
    let (app, rp, session) = setup(backend).await;
    for round in 0..3 {
        let code = authorize(&app.base, &app.issuer, &rp, &session, "openid offline_access").await;
        let (status, body) = redeem(&app.base, &rp, &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (first_at, rt) = tokens(&body);
        let rt = Arc::new(rt.unwrap());
        let base = app.base.clone();
        let answers = all_at_once(20, || {
            let (base, rp, rt) = (base.clone(), rp.clone(), rt.clone());
            async move { refresh(&base, &rp, &rt).await }
        })
        .await;
        let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
        assert!(winners.len() <= 1, "round {round}: {} refreshes with one token succeeded", winners.len());
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "round {round}: {body}");
            assert_eq!(body["error"], "invalid_grant", "round {round}: {body}");
        }
        eprintln!("round {round} on {backend:?}: {} refresh winner(s)", winners.len());
        // Reuse was detected: the family is dead, including anything the winner got.
        assert!(!active(&app.base, &rp, &first_at).await, "round {round}: the family's first access token is revoked");
        assert!(!active(&app.base, &rp, &rt).await);
        if let Some(w) = winners.first() {
            let (at, new_rt) = tokens(w);
            assert!(!active(&app.base, &rp, &at).await, "round {round}: the winner's access token is revoked");
            let new_rt = new_rt.unwrap();
            assert!(!active(&app.base, &rp, &new_rt).await, "round {round}: the winner's refresh token is revoked");
            let (status, body) = refresh(&app.base, &rp, &new_rt).await;
            assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
        }
    }
}
