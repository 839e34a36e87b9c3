//! The admin API over HTTP, on both backends: only the admin API key or a token minted for
//! the admin API opens it (audience `<issuer>/admin/v1`, scope `tessera:admin`, an
//! `admin_api` client, an administrator, a live session); callers are authenticated before
//! anything of the request is parsed; client metadata is validated like the CLI's.

use crate::helpers::{Answer, PASSWORD, TestApp, bare_client, client, ctx, field_value, spawn_app_with_env};
use crate::oauth::{REDIRECT_URI, Rp, authorize, pkce, redeem, refresh, tokens};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_core::accounts::CreateUser;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::secret::Password;
use tessera_core::user::User;
use tessera_testkit::Backend;

on_both_backends!(
    an_administrators_token_for_an_ordinary_client_gets_403,
    an_admin_api_token_works_until_its_session_ends,
    only_administrators_get_admin_api_tokens_and_never_offline,
    anonymous_requests_are_refused_before_their_body_or_query_is_read,
    client_metadata_is_validated_by_the_admin_api,
);

pub const ADMIN_KEY: &str = "admin-key-for-the-admin-access-tests-0123456789";

pub async fn app_with_key(backend: Backend) -> TestApp {
    spawn_app_with_env(backend, &[("TESSERA_ADMIN__API_KEY", ADMIN_KEY)]).await
}

/// Creates a user with these roles.
pub async fn user(app: &TestApp, name: &str, roles: &[&str]) -> User {
    let input = CreateUser {
        username: name.into(),
        email: None,
        display_name: None,
        password: Some(Password::new(PASSWORD)),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    };
    app.accounts.create_user(input, &ctx()).await.unwrap()
}

/// Signs `name` in through the login form with a fresh cookie-keeping client; returns the
/// client (for the account page and sign-out) and the session cookie's value.
pub async fn sign_in(app: &TestApp, name: &str) -> (reqwest::Client, String) {
    let c = client();
    let page = Answer::of(c.get(app.url("/login")).send().await.unwrap()).await;
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let form = [("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", name), ("password", PASSWORD)];
    let a = Answer::of(c.post(app.url("/login")).form(&form).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{a:?}");
    let session = crate::helpers::cookie_value(&a.session_cookie().unwrap());
    (c, session)
}

/// Signs out through the account page's sign-out form.
pub async fn sign_out(app: &TestApp, c: &reqwest::Client) {
    let page = Answer::of(c.get(app.url("/account")).send().await.unwrap()).await;
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let res = c.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

/// Registers a client with `https://rp.example/cb` that skips consent.
pub async fn register(app: &TestApp, reg: ClientRegistration) -> Rp {
    let reg = ClientRegistration { redirect_uris: vec![REDIRECT_URI.into()], skip_consent: true, ..reg };
    let (client, secret) = app.provider.register_client(reg).await.unwrap();
    Rp { id: client.id.to_string(), secret: secret.unwrap_or_default() }
}

/// An `admin_api` client.
pub async fn console(app: &TestApp) -> Rp {
    register(app, ClientRegistration { name: "Console".into(), admin_api: true, ..ClientRegistration::default() }).await
}

/// An admin API token (and refresh token) for the signed-in `session`, through `console`.
pub async fn admin_token(app: &TestApp, console: &Rp, session: &str) -> (String, Option<String>) {
    let code = authorize(&app.base, &app.issuer, console, session, "openid tessera:admin").await;
    let (status, body) = redeem(&app.base, console, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokens(&body)
}

/// The claims of a JWT.
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Calls the admin API with `Authorization: Bearer <token>` (or nothing) and a raw body.
pub async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>, body: Option<(&str, &str)>) -> Answer {
    let mut rb = bare_client().request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some((content_type, b)) = body {
        rb = rb.header(reqwest::header::CONTENT_TYPE, content_type).body(b.to_owned());
    }
    Answer::of(rb.send().await.unwrap()).await
}

async fn call_json(app: &TestApp, method: &str, path: &str, token: &str, body: &Value) -> Answer {
    call(app, method, path, Some(token), Some(("application/json", &body.to_string()))).await
}

/// The error parameters of an authorization request that ends in an error redirect.
async fn authorize_error(app: &TestApp, rp: &Rp, session: &str, scope: &str, extra: &[(&str, &str)]) -> (String, String) {
    let (_, challenge) = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", rp.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scope),
        ("state", "s"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params(&app.url("/oauth2/authorize"), &params).unwrap();
    let res = bare_client().get(url).header(reqwest::header::COOKIE, format!("tessera_session={session}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{scope} {extra:?}");
    let location = reqwest::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
    let get = |k: &str| location.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    assert_eq!(get("code"), None, "no code for {scope} {extra:?}: {location}");
    (get("error").unwrap_or_default(), get("error_description").unwrap_or_default())
}

async fn an_administrators_token_for_an_ordinary_client_gets_403(backend: Backend) {
    let app = app_with_key(backend).await;
    user(&app, "alice", &["admin"]).await;
    let (_, session) = sign_in(&app, "alice").await;
    let rp = register(&app, ClientRegistration { name: "Ordinary".into(), ..ClientRegistration::default() }).await;
    let public = register(&app, ClientRegistration { name: "Public".into(), public: true, ..ClientRegistration::default() }).await;

    // Public clients authenticate with their client_id alone.
    let token_request = |client: &Rp, form: Vec<(&'static str, String)>| {
        let mut form = form;
        let rb = bare_client().post(app.url("/oauth2/token"));
        let rb = if client.secret.is_empty() {
            form.push(("client_id", client.id.clone()));
            rb
        } else {
            rb.basic_auth(&client.id, Some(&client.secret))
        };
        async move {
            let res = rb.form(&form).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    };
    for (label, client, scope) in [("confidential", &rp, "openid profile"), ("public, offline", &public, "openid profile offline_access")] {
        let code = authorize(&app.base, &app.issuer, client, &session, scope).await;
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.code.clone()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("code_verifier", code.verifier.clone()),
        ];
        let (at, rt) = tokens(&token_request(client, form).await);
        let a = call(&app, "GET", "/admin/v1/users", Some(&at), None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{label}: {a:?}");
        let a = call_json(&app, "POST", "/admin/v1/users", &at, &json!({"username": "eve", "roles": ["admin"]})).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{label}: {a:?}");
        // A token refreshed from the ordinary grant is no better.
        if let Some(rt) = rt {
            let body = token_request(client, vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", rt)]).await;
            let a = call(&app, "GET", "/admin/v1/users", Some(&tokens(&body).0), None).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{label} refreshed: {a:?}");
        }
    }
    assert!(app.accounts.find_user_by_login("eve").await.is_err(), "no administrator was created");

    // The ordinary client cannot ask for the admin scope or the admin API's audience.
    let (error, _) = authorize_error(&app, &rp, &session, "openid tessera:admin", &[]).await;
    assert_eq!(error, "invalid_scope");
    let admin_api = format!("{}/admin/v1", app.issuer);
    let (error, _) = authorize_error(&app, &rp, &session, "openid", &[("resource", admin_api.as_str())]).await;
    assert_eq!(error, "invalid_scope");

    // The admin API key still works.
    assert_eq!(call(&app, "GET", "/admin/v1/users", Some(ADMIN_KEY), None).await.status, StatusCode::OK);
}

async fn an_admin_api_token_works_until_its_session_ends(backend: Backend) {
    let app = app_with_key(backend).await;
    let alice = user(&app, "alice", &["admin"]).await;
    let console = console(&app).await;

    // Minted for the admin API: its audience alone and its scope; it works.
    let (c, session) = sign_in(&app, "alice").await;
    let (at, rt) = admin_token(&app, &console, &session).await;
    let cl = claims(&at);
    assert_eq!(cl["aud"], json!(format!("{}/admin/v1", app.issuer)), "{cl}");
    assert!(cl["scope"].as_str().unwrap().split(' ').any(|s| s == "tessera:admin"), "{cl}");
    assert_eq!(call(&app, "GET", "/admin/v1/users", Some(&at), None).await.status, StatusCode::OK);
    let a = call_json(&app, "POST", "/admin/v1/users", &at, &json!({"username": "bob", "password": PASSWORD})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let rt = rt.expect("the console may refresh while the session lives");
    let (status, body) = refresh(&app.base, &console, &rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (at2, rt2) = tokens(&body);
    assert_eq!(call(&app, "GET", "/admin/v1/users", Some(&at2), None).await.status, StatusCode::OK);

    // Signing out ends it: the tokens stop working and the grant cannot be refreshed.
    sign_out(&app, &c).await;
    for t in [&at, &at2] {
        let a = call(&app, "GET", "/admin/v1/users", Some(t), None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
    }
    let (status, body) = refresh(&app.base, &console, &rt2.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    // So does an administrator ending every session of the user.
    let (_, session) = sign_in(&app, "alice").await;
    let (at, _) = admin_token(&app, &console, &session).await;
    assert_eq!(call(&app, "GET", "/admin/v1/audit", Some(&at), None).await.status, StatusCode::OK);
    let a = call(&app, "DELETE", &format!("/admin/v1/users/{}/sessions", alice.id), Some(ADMIN_KEY), None).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(call(&app, "GET", "/admin/v1/audit", Some(&at), None).await.status, StatusCode::UNAUTHORIZED);

    // And disabling the administrator.
    let (_, session) = sign_in(&app, "alice").await;
    let (at, _) = admin_token(&app, &console, &session).await;
    assert_eq!(call(&app, "GET", "/admin/v1/clients", Some(&at), None).await.status, StatusCode::OK);
    app.accounts.set_disabled(alice.id, true, &ctx()).await.unwrap();
    assert_ne!(call(&app, "GET", "/admin/v1/clients", Some(&at), None).await.status, StatusCode::OK);
}

async fn only_administrators_get_admin_api_tokens_and_never_offline(backend: Backend) {
    let app = app_with_key(backend).await;
    user(&app, "alice", &["admin"]).await;
    user(&app, "mallory", &[]).await;
    let console = console(&app).await;

    let (_, mallory) = sign_in(&app, "mallory").await;
    let (error, _) = authorize_error(&app, &console, &mallory, "openid tessera:admin", &[]).await;
    assert_eq!(error, "access_denied", "a user without the admin role gets no admin API token");
    // The same console serves ordinary sign-ins, whose tokens do not open the admin API.
    let code = authorize(&app.base, &app.issuer, &console, &mallory, "openid").await;
    let (status, body) = redeem(&app.base, &console, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(call(&app, "GET", "/admin/v1/users", Some(&tokens(&body).0), None).await.status, StatusCode::FORBIDDEN);

    let (_, alice) = sign_in(&app, "alice").await;
    let (error, _) = authorize_error(&app, &console, &alice, "openid tessera:admin offline_access", &[]).await;
    assert_eq!(error, "invalid_scope", "never an offline grant");
    let (error, _) = authorize_error(&app, &console, &alice, "openid tessera:admin", &[("resource", app.issuer.as_str())]).await;
    assert_eq!(error, "invalid_target", "never combined with other audiences");
    let admin_api = format!("{}/admin/v1", app.issuer);
    let (at, _) = {
        let (verifier, challenge) = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", console.id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "tessera:admin"),
            ("resource", admin_api.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let url = reqwest::Url::parse_with_params(&app.url("/oauth2/authorize"), &params).unwrap();
        let res = bare_client().get(url).header(reqwest::header::COOKIE, format!("tessera_session={alice}")).send().await.unwrap();
        let location = reqwest::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        let code = location.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("a code");
        let (status, body) = redeem(&app.base, &console, &crate::oauth::Code { code, verifier }).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens(&body)
    };
    assert_eq!(claims(&at)["aud"], json!(admin_api), "the admin API named as the resource");
    assert_eq!(call(&app, "GET", "/admin/v1/users", Some(&at), None).await.status, StatusCode::OK);

    // The admin API announces itself as a protected resource (RFC 9728).
    let meta = call(&app, "GET", "/.well-known/oauth-protected-resource/admin/v1", None, None).await;
    assert_eq!(meta.status, StatusCode::OK);
    let meta: Value = serde_json::from_str(&meta.body).unwrap();
    assert_eq!(meta["resource"], json!(admin_api));
    assert_eq!(meta["scopes_supported"], json!(["tessera:admin"]));
}

async fn anonymous_requests_are_refused_before_their_body_or_query_is_read(backend: Backend) {
    let app = app_with_key(backend).await;
    user(&app, "alice", &["admin"]).await;
    let (_, session) = sign_in(&app, "alice").await;
    let rp = register(&app, ClientRegistration { name: "Ordinary".into(), ..ClientRegistration::default() }).await;
    let code = authorize(&app.base, &app.issuer, &rp, &session, "openid").await;
    let ordinary = tokens(&redeem(&app.base, &rp, &code).await.1).0;
    let nil = uuid::Uuid::nil();
    let json = "application/json";
    let requests: Vec<(&str, String, Option<(&str, &str)>)> = vec![
        ("POST", "/admin/v1/users".into(), Some((json, r#"{"bogus_field": 1}"#))),
        ("POST", "/admin/v1/users".into(), Some((json, "not json at all"))),
        ("POST", "/admin/v1/users".into(), Some(("text/plain", r#"{"username": "x"}"#))),
        ("PATCH", format!("/admin/v1/users/{nil}"), Some((json, r#"{"disabled": "yes please"}"#))),
        ("POST", "/admin/v1/clients".into(), Some((json, r#"{"name": 1, "redirect_uris": "x"}"#))),
        ("GET", "/admin/v1/users?bogus_param=1".into(), None),
        ("GET", "/admin/v1/users?limit=-5".into(), None),
        ("GET", "/admin/v1/audit?since=yesterday".into(), None),
        ("GET", "/admin/v1/users/not-a-uuid".into(), None),
    ];
    for (method, path, body) in &requests {
        let a = call(&app, method, path, None, *body).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}: {a:?}");
        assert!(a.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"), "{a:?}");
        for leak in ["bogus", "unknown field", "missing field", "invalid type", "expected"] {
            assert!(!a.body.contains(leak), "{method} {path} leaks {leak:?}: {}", a.body);
        }
        let a = call(&app, method, path, Some("not-a-token"), *body).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path} with a bad token: {a:?}");
        let a = call(&app, method, path, Some(&ordinary), *body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {path} with an ordinary token: {a:?}");
        // Authenticated, the same request is refused for what it says.
        let a = call(&app, method, path, Some(ADMIN_KEY), *body).await;
        assert!(a.status.is_client_error() && a.status != StatusCode::UNAUTHORIZED && a.status != StatusCode::FORBIDDEN, "{method} {path}: {a:?}");
    }
    // The OpenAPI document stays public.
    assert_eq!(call(&app, "GET", "/admin/v1/openapi.json", None, None).await.status, StatusCode::OK);
}

async fn client_metadata_is_validated_by_the_admin_api(backend: Backend) {
    let app = app_with_key(backend).await;
    let create = |body: Value| {
        let app = &app;
        async move { call_json(app, "POST", "/admin/v1/clients", ADMIN_KEY, &body).await }
    };
    let refused = [
        json!({"name": "a", "redirect_uris": ["file:///etc/passwd"]}),
        json!({"name": "a", "redirect_uris": ["https://user:secret@rp.example/cb"]}),
        json!({"name": "a", "redirect_uris": ["https://attacker.example@rp.example/cb"]}),
        json!({"name": "a", "redirect_uris": ["http://rp.example/cb"]}),
        json!({"name": "a", "redirect_uris": ["http://127.0.0.1.evil.example/cb"]}),
        json!({"name": "a", "redirect_uris": ["myapp:/cb"], "public": true}),
        json!({"name": "a", "redirect_uris": ["https://rp.example/cb"], "post_logout_redirect_uris": ["javascript:alert(1)"]}),
        json!({"name": "a", "redirect_uris": ["https://rp.example/cb"], "post_logout_redirect_uris": ["file:/tmp/x"]}),
        json!({"name": "a", "redirect_uris": ["https://rp.example/cb"], "backchannel_logout_uri": "http://rp.example/bcl"}),
        json!({"name": "a", "redirect_uris": ["https://rp.example/cb"], "backchannel_logout_uri": "https://u:p@rp.example/bcl"}),
        json!({"name": "a", "redirect_uris": ["https://rp.example/cb"], "scopes": ["openid", "tessera:admin"]}),
        json!({"name": "a", "grant_types": ["client_credentials"], "admin_api": true}),
        json!({"name": "a", "redirect_uris": ["https://rp.example/cb"], "grant_lifetime": 0}),
    ];
    for body in refused {
        let a = create(body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {a:?}");
    }
    let accepted = [
        json!({"name": "a", "redirect_uris": ["https://rp.example/cb"], "backchannel_logout_uri": "https://rp.example/bcl"}),
        json!({"name": "a", "redirect_uris": ["http://127.0.0.1:8000/cb", "http://[::1]/cb", "http://localhost:3000/cb"], "public": true}),
        json!({"name": "a", "redirect_uris": ["com.example.app:/oauth2redirect"], "public": true}),
    ];
    for body in accepted {
        let a = create(body.clone()).await;
        assert_eq!(a.status, StatusCode::CREATED, "{body}: {a:?}");
    }
    let a = create(json!({"name": "console", "redirect_uris": ["https://rp.example/cb"], "admin_api": true, "grant_lifetime": 3600})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["client"]["admin_api"], json!(true));
    assert_eq!(body["client"]["grant_lifetime"], json!(3600));
    assert!(body["client"]["scopes"].as_array().unwrap().contains(&json!("tessera:admin")), "{body}");
}
