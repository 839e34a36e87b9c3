//! What one client can learn or break about another's tokens (issue 11, holes 6 and 7, and
//! client-assertion `iat`): introspection answers `active: false` for other clients' tokens
//! unless the caller is in their audience or allowed to introspect; the revocation feed shows
//! a subscriber only events about its own grants; a code presented by a stranger, or with a
//! wrong redirect URI or verifier, is neither used up nor revoked; only its own client's
//! replay revokes what it issued.

use crate::attacks::Keys;
use crate::helpers::{PASSWORD, TestApp, bare_client, ctx, spawn_app_with_env};
use crate::oauth::{Code, REDIRECT_URI, Rp, active, pkce, post_as, redeem, tokens};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::oauth::provider::event_types;
use tessera_testkit::Backend;

on_both_backends!(
    introspection_shows_a_client_only_what_concerns_it,
    the_feed_shows_a_subscriber_only_events_about_its_grants,
    a_stranger_presenting_a_code_neither_uses_it_up_nor_revokes,
    client_assertions_issued_in_the_future_are_refused,
);

const API: &str = "https://api.example";

async fn app(backend: Backend) -> TestApp {
    spawn_app_with_env(backend, &[("TESSERA_OAUTH__RESOURCES", API)]).await
}

async fn register(app: &TestApp, name: &str, f: impl FnOnce(&mut ClientRegistration)) -> Rp {
    let mut reg = ClientRegistration {
        name: name.into(),
        redirect_uris: vec![REDIRECT_URI.into()],
        skip_consent: true,
        grant_types: vec!["authorization_code".into(), "refresh_token".into(), "client_credentials".into()],
        ..ClientRegistration::default()
    };
    f(&mut reg);
    let (client, secret) = app.provider.register_client(reg).await.unwrap();
    Rp { id: client.id.to_string(), secret: secret.unwrap_or_default() }
}

async fn session_of(app: &TestApp, username: &str) -> String {
    app.create_user(username, PASSWORD).await;
    crate::consent::sign_in(app, username).await
}

/// An authorization code for `rp` (skip-consent), with extra parameters.
async fn code_for(app: &TestApp, rp: &Rp, session: &str, extra: &[(&str, &str)]) -> Code {
    let (verifier, challenge) = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", rp.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid offline_access"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params(&app.url("/oauth2/authorize"), &params).unwrap();
    let res = bare_client().get(url).header(reqwest::header::COOKIE, format!("tessera_session={session}")).send().await.unwrap();
    let location = res.headers().get(reqwest::header::LOCATION).expect("a redirect").to_str().unwrap().to_owned();
    let code = reqwest::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
    Code { code: code.unwrap_or_else(|| panic!("no code in {location}")), verifier }
}

/// (access token, refresh token) for `rp`.
async fn tokens_for(app: &TestApp, rp: &Rp, session: &str, extra: &[(&str, &str)]) -> (String, String) {
    let code = code_for(app, rp, session, extra).await;
    let (status, body) = redeem(&app.base, rp, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (at, rt) = tokens(&body);
    (at, rt.expect("a refresh token"))
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn introspection_shows_a_client_only_what_concerns_it(backend: Backend) {
    let app = app(backend).await;
    let a = register(&app, "A", |_| {}).await;
    let b = register(&app, "B", |_| {}).await;
    let api = register(&app, "API", |r| r.resource = Some(API.into())).await;
    let trusted = register(&app, "Trusted", |r| r.introspection = true).await;
    let session = session_of(&app, "alice").await;
    let (at, rt) = tokens_for(&app, &a, &session, &[]).await;
    let (api_at, _) = tokens_for(&app, &a, &session, &[("resource", API)]).await;

    assert!(active(&app.base, &a, &at).await && active(&app.base, &a, &rt).await, "its own client sees its tokens");
    assert!(!active(&app.base, &b, &at).await, "another client does not see A's access token");
    assert!(!active(&app.base, &b, &rt).await, "another client does not see A's refresh token");
    let (_, body) = post_as(&app.base, "/oauth2/introspect", &b, &[("token", &at)]).await;
    assert_eq!(body, json!({"active": false}), "nothing else is told");
    assert!(!active(&app.base, &api, &at).await, "a resource server does not see tokens for another audience");
    assert!(active(&app.base, &api, &api_at).await, "a resource server sees tokens issued for its resource");
    assert!(!active(&app.base, &b, &api_at).await);
    assert!(!active(&app.base, &api, &rt).await, "resource servers never see refresh tokens");
    for t in [&at, &rt, &api_at] {
        assert!(active(&app.base, &trusted, t).await, "a client allowed to introspect sees every token");
    }
    // The flag and the resource are validated and kept.
    let err = app.provider.register_client(ClientRegistration { name: "x".into(), resource: Some("https://unknown.example".into()), grant_types: vec!["client_credentials".into()], ..Default::default() }).await;
    assert!(err.is_err(), "a resource must be a configured one");
    let stored = app.provider.find_client(&trusted.id).await.unwrap().unwrap();
    assert!(stored.introspection && stored.resource.is_none());
    assert_eq!(app.provider.find_client(&api.id).await.unwrap().unwrap().resource.as_deref(), Some(API));
}

/// What a Security Event Token is about: `token:<jti>` or `user:<id>`.
fn about(set: &Value) -> String {
    let events = &set["events"];
    if let Some(e) = events.get(event_types::TOKEN_REVOKED) {
        return format!("token:{}", e["subject"]["id"].as_str().unwrap());
    }
    let e = events.get(event_types::SESSION_REVOKED).or_else(|| events.get(event_types::CREDENTIAL_CHANGE)).expect("a known event");
    format!("user:{}", e["subject"]["user"]["id"].as_str().unwrap())
}

/// Reads `rp`'s feed (from the start of the replay window) until an event about `last`;
/// returns what each event was about, in order.
async fn feed_until(app: &TestApp, rp: &Rp, last: &str) -> Vec<String> {
    let read = async {
        let mut res = bare_client().get(app.url("/events/v1/stream")).basic_auth(&rp.id, Some(&rp.secret)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (mut seen, mut buf) = (Vec::new(), String::new());
        while let Some(chunk) = res.chunk().await.unwrap() {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(nl) = buf.find('\n') {
                let line: String = buf.drain(..=nl).collect();
                if let Some(set) = line.trim_end().strip_prefix("data:") {
                    let set = claims(set.trim());
                    assert_eq!(set["aud"], json!(rp.id), "a SET addressed to its subscriber");
                    seen.push(about(&set));
                    if seen.last().map(String::as_str) == Some(last) {
                        return seen;
                    }
                }
            }
        }
        panic!("the feed ended before an event about {last}: {seen:?}")
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.unwrap_or_else(|_| panic!("no event about {last} on {}'s feed", rp.id))
}

async fn revoke(app: &TestApp, rp: &Rp, token: &str) -> String {
    let (status, body) = post_as(&app.base, "/oauth2/revoke", rp, &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    format!("token:{}", claims(token)["jti"].as_str().unwrap())
}

async fn the_feed_shows_a_subscriber_only_events_about_its_grants(backend: Backend) {
    let app = app(backend).await;
    let a = register(&app, "A", |_| {}).await;
    let b = register(&app, "B", |_| {}).await;
    let trusted = register(&app, "Trusted", |r| r.introspection = true).await;
    let alice = session_of(&app, "alice").await;
    let bob = session_of(&app, "bob").await;
    let (at_a, _) = tokens_for(&app, &a, &alice, &[]).await;
    let (at_b, _) = tokens_for(&app, &b, &bob, &[]).await;
    let (at_b2, _) = tokens_for(&app, &b, &bob, &[]).await;

    let b_first = revoke(&app, &b, &at_b).await;
    let a_token = revoke(&app, &a, &at_a).await;
    let alice_id = app.accounts.find_user_by_login("alice").await.unwrap().id;
    app.accounts.end_all_sessions(alice_id, &ctx()).await.unwrap();
    let alice_ended = format!("user:{alice_id}");
    let b_last = revoke(&app, &b, &at_b2).await;

    let seen_by_a = feed_until(&app, &a, &alice_ended).await;
    assert!(seen_by_a.contains(&a_token), "A hears of its own token: {seen_by_a:?}");
    assert!(!seen_by_a.contains(&b_first), "A does not hear of B's token: {seen_by_a:?}");

    let seen_by_b = feed_until(&app, &b, &b_last).await;
    assert!(seen_by_b.contains(&b_first), "{seen_by_b:?}");
    assert!(!seen_by_b.contains(&a_token), "B does not hear of A's token: {seen_by_b:?}");
    assert!(!seen_by_b.contains(&alice_ended), "B does not hear of alice, who never used it: {seen_by_b:?}");

    let seen_by_trusted = feed_until(&app, &trusted, &b_last).await;
    for e in [&b_first, &a_token, &alice_ended] {
        assert!(seen_by_trusted.contains(e), "a client allowed to introspect hears everything: {e} in {seen_by_trusted:?}");
    }
}

async fn present(app: &TestApp, who: &Rp, public: bool, code: &str, redirect_uri: &str, verifier: &str) -> (StatusCode, Value) {
    let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri), ("code_verifier", verifier)];
    if !public {
        return post_as(&app.base, "/oauth2/token", who, &form).await;
    }
    let mut form = form.to_vec();
    form.push(("client_id", &who.id));
    let res = bare_client().post(app.url("/oauth2/token")).form(&form).send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

fn invalid_grant((status, body): (StatusCode, Value), what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], "invalid_grant", "{what}: {body}");
}

async fn a_stranger_presenting_a_code_neither_uses_it_up_nor_revokes(backend: Backend) {
    let app = app(backend).await;
    let a = register(&app, "A", |_| {}).await;
    let b = register(&app, "B", |_| {}).await;
    let stranger = register(&app, "Stranger", |r| {
        r.public = true;
        r.grant_types = vec!["authorization_code".into()];
    })
    .await;
    let session = session_of(&app, "alice").await;
    let code = code_for(&app, &a, &session, &[]).await;
    let (wrong_verifier, _) = pkce();

    // Before redemption: strangers, and A itself with a wrong redirect URI or verifier.
    invalid_grant(present(&app, &stranger, true, &code.code, REDIRECT_URI, &code.verifier).await, "a public stranger");
    invalid_grant(present(&app, &b, false, &code.code, REDIRECT_URI, &code.verifier).await, "another confidential client");
    invalid_grant(present(&app, &a, false, &code.code, "https://rp.example/other", &code.verifier).await, "A, wrong redirect_uri");
    invalid_grant(present(&app, &a, false, &code.code, REDIRECT_URI, &wrong_verifier).await, "A, wrong verifier");
    // None of that used the code up.
    let (status, body) = redeem(&app.base, &a, &code).await;
    assert_eq!(status, StatusCode::OK, "A can still redeem its code: {body}");
    let (at, rt) = tokens(&body);
    let rt = rt.unwrap();

    // After redemption: a stranger's or a wrong presentation revokes nothing.
    invalid_grant(present(&app, &stranger, true, &code.code, REDIRECT_URI, &code.verifier).await, "a public stranger, after");
    invalid_grant(present(&app, &b, false, &code.code, REDIRECT_URI, &code.verifier).await, "another client, after");
    invalid_grant(present(&app, &a, false, &code.code, REDIRECT_URI, &wrong_verifier).await, "A, wrong verifier, after");
    assert!(active(&app.base, &a, &at).await && active(&app.base, &a, &rt).await, "A's tokens survive others' presentations");

    // A's own replay is a replay: what the code issued is revoked.
    invalid_grant(redeem(&app.base, &a, &code).await, "A's replay");
    assert!(!active(&app.base, &a, &at).await && !active(&app.base, &a, &rt).await, "a replay by its own client revokes");
}

/// A signed private_key_jwt assertion with these claims.
fn assertion(keys: &Keys, claims: &Value) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": keys.kid("EdDSA")});
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = keys.sign("EdDSA", input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

async fn client_assertions_issued_in_the_future_are_refused(backend: Backend) {
    let app = app(backend).await;
    let keys = Keys::generate("pkj");
    let rp = register(&app, "PKJ", |r| {
        r.token_endpoint_auth_method = Some("private_key_jwt".into());
        r.jwks = Some(json!({"keys": [keys.jwk("EdDSA")]}));
        r.grant_types = vec!["client_credentials".into()];
        r.redirect_uris = vec![];
    })
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token_request = async |claims: Value| {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", &assertion(&keys, &claims)),
        ];
        let res = bare_client().post(app.url("/oauth2/token")).form(&form).send().await.unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    let claims = |extra: Value| {
        let mut c = json!({"iss": rp.id, "sub": rp.id, "aud": format!("{}/oauth2/token", app.issuer),
                           "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string()});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let (status, body) = token_request(claims(json!({"iat": now}))).await;
    assert_eq!(status, StatusCode::OK, "a current assertion works: {body}");
    for (what, extra) in [
        ("iat an hour ahead", json!({"iat": now + 3600})),
        ("iat five minutes ahead", json!({"iat": now + 300})),
        ("nbf five minutes ahead", json!({"iat": now, "nbf": now + 300})),
    ] {
        let (status, body) = token_request(claims(extra)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    }
}
