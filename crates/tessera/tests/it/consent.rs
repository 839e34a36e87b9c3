//! Consent bound to the authorization decision (issue 11, hole 2): the consent form carries
//! only the handle of a server-side record the authorization endpoint made; a replayed,
//! forged, or another session's form gets an error page, never a code; a request the
//! authorization endpoint would refuse (a client requiring MFA, a single-factor session)
//! cannot be pushed through the consent endpoint.

use crate::helpers::{Answer, PASSWORD, TestApp, bare_client, cookie_value, field_value, spawn_app};
use crate::oauth::{REDIRECT_URI, Rp, pkce};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use tessera_core::oauth::client::ClientRegistration;
use tessera_testkit::Backend;

on_both_backends!(
    a_consent_form_gives_one_code_and_its_replay_gets_none,
    a_consent_form_cannot_be_answered_by_another_session,
    a_forged_consent_request_cannot_skip_the_client_policy,
    a_denied_consent_is_used_up,
);

async fn register(app: &TestApp, require_mfa: bool) -> Rp {
    let (client, secret) = app
        .provider
        .register_client(ClientRegistration {
            name: "Consenting RP".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            require_mfa,
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    Rp { id: client.id.to_string(), secret: secret.unwrap() }
}

/// Signs in through the login form in a browser of its own: a new session each time.
pub(crate) async fn sign_in(app: &TestApp, username: &str) -> String {
    let browser = crate::helpers::client();
    let page = Answer::of(browser.get(app.url("/login")).send().await.unwrap()).await;
    let csrf = field_value(&page.body, "csrf_token").expect("login form");
    let form = [("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", username), ("password", PASSWORD)];
    let a = Answer::of(browser.post(app.url("/login")).header(reqwest::header::ORIGIN, &app.issuer).form(&form).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{a:?}");
    cookie_value(&a.session_cookie().expect("session cookie"))
}

/// The query of an authorization request of `client_id`.
fn authorize_query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let (_, challenge) = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile"),
        ("state", "st-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    reqwest::Url::parse_with_params("http://x/oauth2/authorize", &params).unwrap().query().unwrap().to_owned()
}

async fn get_with(app: &TestApp, session: &str, path: &str) -> Answer {
    Answer::of(bare_client().get(app.url(path)).header(COOKIE, format!("tessera_session={session}")).send().await.unwrap()).await
}

/// The consent page for `client_id`: its CSRF token and consent handle.
async fn consent_page(app: &TestApp, session: &str, client_id: &str) -> (String, String) {
    let page = get_with(app, session, &format!("/oauth2/authorize?{}", authorize_query(client_id, &[]))).await;
    assert_eq!(page.status, StatusCode::OK, "a consent page: {:?} {}", page.location(), page.body);
    let csrf = field_value(&page.body, "csrf_token").expect("csrf_token");
    let handle = field_value(&page.body, "consent").expect("the consent form carries a handle");
    assert!(field_value(&page.body, "request").is_none(), "the request stays on the server");
    (csrf, handle)
}

async fn post_consent(app: &TestApp, session: &str, form: &[(&str, &str)]) -> Answer {
    let req = bare_client()
        .post(app.url("/oauth2/consent"))
        .header(COOKIE, format!("tessera_session={session}"))
        .header(reqwest::header::ORIGIN, &app.issuer)
        .form(form);
    Answer::of(req.send().await.unwrap()).await
}

fn code_in(a: &Answer) -> Option<String> {
    let url = reqwest::Url::parse(a.location()?).ok()?;
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

fn assert_no_code(a: &Answer, what: &str) {
    assert!(code_in(a).is_none(), "{what}: a code was issued: {:?}", a.location());
    assert!(!a.body.contains("name=\"code\""), "{what}: a code was posted: {}", a.body);
    assert!(a.status.is_client_error(), "{what}: an error page, got {} {:?}", a.status, a.location());
}

async fn a_consent_form_gives_one_code_and_its_replay_gets_none(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let rp = register(&app, false).await;
    let session = sign_in(&app, "alice").await;
    let (csrf, handle) = consent_page(&app, &session, &rp.id).await;
    let form = [("csrf_token", csrf.as_str()), ("consent", handle.as_str()), ("decision", "allow")];

    let first = post_consent(&app, &session, &form).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert!(first.location().unwrap().starts_with(&format!("{REDIRECT_URI}?")), "{:?}", first.location());
    assert!(code_in(&first).is_some(), "allow gives a code: {:?}", first.location());

    let replay = post_consent(&app, &session, &form).await;
    assert_no_code(&replay, "the same consent form again");
    // Tampered or made-up handles are refused the same way.
    for bad in [format!("{handle}x"), "A".repeat(43), String::new()] {
        let r = post_consent(&app, &session, &[("csrf_token", &csrf), ("consent", &bad), ("decision", "allow")]).await;
        assert_no_code(&r, &format!("handle {bad:?}"));
    }
}

async fn a_consent_form_cannot_be_answered_by_another_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("mallory", PASSWORD).await;
    let rp = register(&app, false).await;
    let alice = sign_in(&app, "alice").await;
    let (_, handle) = consent_page(&app, &alice, &rp.id).await;

    // Another session (another user, or the same user elsewhere) with its own valid CSRF
    // token cannot answer it.
    for who in ["mallory", "alice"] {
        let other = sign_in(&app, who).await;
        let (their_csrf, _) = consent_page(&app, &other, &rp.id).await;
        let r = post_consent(&app, &other, &[("csrf_token", &their_csrf), ("consent", &handle), ("decision", "allow")]).await;
        assert_no_code(&r, &format!("{who}'s other session"));
    }
    // The session it was shown in still can: those attempts did not use it up.
    let (csrf, _) = consent_page(&app, &alice, &rp.id).await;
    let r = post_consent(&app, &alice, &[("csrf_token", &csrf), ("consent", &handle), ("decision", "allow")]).await;
    assert!(code_in(&r).is_some(), "{} {:?} {}", r.status, r.location(), r.body);
}

async fn a_forged_consent_request_cannot_skip_the_client_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let strict = register(&app, true).await;
    let plain = register(&app, false).await;
    let session = sign_in(&app, "alice").await;

    // The authorization endpoint sends a password-only session to step up.
    let direct = get_with(&app, &session, &format!("/oauth2/authorize?{}", authorize_query(&strict.id, &[]))).await;
    assert_eq!(direct.status, StatusCode::SEE_OTHER);
    assert!(direct.location().unwrap().starts_with("/login/mfa"), "{:?}", direct.location());

    // The consent endpoint used to take the request from the form and issue a code for it.
    let page = get_with(&app, &session, &format!("/oauth2/authorize?{}", authorize_query(&plain.id, &[]))).await;
    let csrf = field_value(&page.body, "csrf_token").expect("a consent page with a CSRF token");
    for (what, request) in [
        ("require_mfa client", authorize_query(&strict.id, &[])),
        ("acr_values multi-factor", authorize_query(&plain.id, &[("acr_values", "http://schemas.openid.net/pape/policies/2007/06/multi-factor")])),
        ("max_age=0", authorize_query(&plain.id, &[("max_age", "0")])),
        ("prompt=login", authorize_query(&plain.id, &[("prompt", "login")])),
    ] {
        let r = post_consent(&app, &session, &[("csrf_token", &csrf), ("request", &request), ("decision", "allow")]).await;
        assert_no_code(&r, what);
        let r = post_consent(&app, &session, &[("csrf_token", &csrf), ("consent", &request), ("decision", "allow")]).await;
        assert_no_code(&r, &format!("{what} as the handle"));
    }
}

async fn a_denied_consent_is_used_up(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let rp = register(&app, false).await;
    let session = sign_in(&app, "alice").await;
    let (csrf, handle) = consent_page(&app, &session, &rp.id).await;
    let denied = post_consent(&app, &session, &[("csrf_token", &csrf), ("consent", &handle), ("decision", "deny")]).await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.body);
    assert!(denied.location().unwrap().contains("error=access_denied"), "{:?}", denied.location());
    let after = post_consent(&app, &session, &[("csrf_token", &csrf), ("consent", &handle), ("decision", "allow")]).await;
    assert_no_code(&after, "allow after deny");
}
