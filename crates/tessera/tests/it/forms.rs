//! Forms and headers (SPEC §1.7): every state-changing form refuses a POST without a valid
//! `csrf_token` (and changes nothing), every HTML page carries the security headers (HSTS
//! only when the issuer is https), and CORS answers only registered public-client origins on
//! the token, userinfo and JWKS endpoints, never on the authorization endpoint.

use crate::helpers::{Answer, PASSWORD, TestApp, field_value, spawn_app_with_env};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use std::collections::BTreeMap;
use tessera_core::oauth::client::ClientRegistration;
use tessera_testkit::Backend;

on_both_backends!(
    anonymous_forms_refuse_a_missing_or_foreign_csrf_token,
    signed_in_forms_refuse_a_missing_or_foreign_csrf_token,
    oauth_forms_refuse_a_missing_or_foreign_csrf_token,
    security_headers_on_every_html_page_over_http,
    security_headers_on_every_html_page_with_an_https_issuer,
    cors_only_for_registered_public_client_origins,
);

const REDIRECT_URI: &str = "https://rp.example/cb";
const POST_LOGOUT_URI: &str = "https://rp.example/bye";
const SPA_ORIGIN: &str = "https://spa.example:8443";

/// A browser: a redirect-free client without a cookie store and a cookie jar kept by hand
/// (so `Secure` cookies of an https issuer are still sent to the plain-http test server).
struct Browser {
    base: String,
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self { base: app.base.clone(), http: crate::helpers::bare_client(), jar: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, a: &Answer) {
        for v in a.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let first = v.split(';').next().unwrap_or("");
            let Some((k, val)) = first.split_once('=') else { continue };
            if val.is_empty() || v.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_owned(), val.to_owned());
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let req = if self.jar.is_empty() { req } else { req.header(COOKIE, self.cookie_header()) };
        let a = Answer::of(req.send().await.unwrap()).await;
        self.keep(&a);
        a
    }

    async fn get(&mut self, path: &str) -> Answer {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    fn session(&self) -> Option<&str> {
        self.jar.get("tessera_session").map(String::as_str)
    }

    /// Signs in through the login page; returns the account page's CSRF token.
    async fn sign_in(&mut self, username: &str) -> String {
        let page = self.get("/login").await;
        let csrf = field_value(&page.body, "csrf_token").unwrap();
        let r = self.post("/login", &[("csrf_token", &csrf), ("return_to", "/account"), ("username", username), ("password", PASSWORD)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "sign-in: {}", r.body);
        let account = self.get("/account").await;
        assert_eq!(account.status, StatusCode::OK);
        field_value(&account.body, "csrf_token").expect("the account page has forms")
    }
}

/// Undoes askama's HTML escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#61;", "=")
        .replace("&#43;", "+")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// A refused form: 403 for a present but wrong token; a form without the field at all may
/// instead be refused as unreadable (400). Never a redirect, never a new session.
fn assert_refused(a: &Answer, what: &str, missing: bool) {
    if missing {
        assert!(
            a.status == StatusCode::FORBIDDEN || a.status == StatusCode::BAD_REQUEST,
            "{what}: a form without csrf_token is refused, got {} {}",
            a.status,
            a.body
        );
    } else {
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{what}: {}", a.body);
    }
    assert!(a.location().is_none(), "{what}: no redirect on a refused form");
    assert!(a.session_cookie().is_none(), "{what}: no session cookie on a refused form");
}

/// The variants of a bad token: missing, empty, forged, and a valid token bound to
/// something else (another anchor or session).
fn bad_tokens(foreign: &str) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("forged", Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into())),
        ("foreign", Some(foreign.to_owned())),
    ]
}

fn with_token<'a>(token: &'a Option<String>, rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form: Vec<(&str, &str)> = Vec::new();
    if let Some(t) = token {
        form.push(("csrf_token", t.as_str()));
    }
    form.extend_from_slice(rest);
    form
}

/// `/login`, `/signup` and `/setup`: bound to the `tessera_csrf` anchor cookie.
async fn anonymous_forms_refuse_a_missing_or_foreign_csrf_token(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_SIGNUP__ENABLED", "true")]).await;
    app.create_user("alice", PASSWORD).await;
    let mut me = Browser::new(&app);
    let mut other = Browser::new(&app);
    let login_page = me.get("/login").await;
    let mine = field_value(&login_page.body, "csrf_token").unwrap();
    let theirs = field_value(&other.get("/login").await.body, "csrf_token").unwrap();
    assert!(me.jar.contains_key("tessera_csrf") && other.jar.contains_key("tessera_csrf"));
    assert_ne!(mine, theirs, "each anchor has its own token");

    // /login
    for (what, token) in bad_tokens(&theirs) {
        let form = with_token(&token, &[("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)]);
        let r = me.post("/login", &form).await;
        assert_refused(&r, &format!("POST /login, {what} token"), token.is_none());
        assert!(me.session().is_none());
    }
    // My token without my anchor cookie (e.g. a cross-site form with a leaked token).
    let r = Answer::of(
        app.client
            .post(app.url("/login"))
            .form(&[("csrf_token", mine.as_str()), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_refused(&r, "POST /login without the anchor cookie", false);
    let r = me.post("/login", &[("csrf_token", &mine), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the valid token works");

    // /signup
    let mut me = Browser::new(&app);
    let signup = me.get("/signup").await;
    assert_eq!(signup.status, StatusCode::OK);
    let mine = field_value(&signup.body, "csrf_token").unwrap();
    let fields = [("return_to", "/account"), ("username", "mallory"), ("email", "mallory@example.com"), ("name", "Mallory"), ("password", PASSWORD)];
    for (what, token) in bad_tokens(&theirs) {
        let r = me.post("/signup", &with_token(&token, &fields)).await;
        assert_refused(&r, &format!("POST /signup, {what} token"), token.is_none());
        assert!(app.accounts.find_user_by_login("mallory").await.is_err(), "{what}: no account was created");
    }
    let r = me.post("/signup", &with_token(&Some(mine), &fields)).await;
    assert_eq!(r.status, StatusCode::OK, "the valid token works: {}", r.body);
    assert!(app.accounts.find_user_by_login("mallory").await.is_ok());

    // /setup
    let setup = app.accounts.ensure_setup_token().await.unwrap().expect("no administrator yet");
    let link = setup.expose().to_owned();
    let mut me = Browser::new(&app);
    let page = me.get(&format!("/setup?token={link}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let mine = field_value(&page.body, "csrf_token").unwrap();
    let fields = [("token", link.as_str()), ("username", "root"), ("email", "root@example.com"), ("name", "Root"), ("password", PASSWORD)];
    for (what, token) in bad_tokens(&theirs) {
        let r = me.post("/setup", &with_token(&token, &fields)).await;
        assert_refused(&r, &format!("POST /setup, {what} token"), token.is_none());
        assert!(app.accounts.find_user_by_login("root").await.is_err(), "{what}: no administrator was created");
        assert!(app.accounts.setup_token_valid(&setup).await.unwrap(), "{what}: the setup link is not used up");
    }
    let r = me.post("/setup", &with_token(&Some(mine), &fields)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the valid token works: {}", r.body);
    assert!(app.accounts.find_user_by_login("root").await.is_ok());
}

/// `/logout`, `/account/password`, `/account/sessions/{h}/end`: bound to the session.
async fn signed_in_forms_refuse_a_missing_or_foreign_csrf_token(backend: Backend) {
    let app = spawn_app_with_env(backend, &[]).await;
    let alice = app.create_user("alice", PASSWORD).await;
    let mut a = Browser::new(&app);
    let mut b = Browser::new(&app);
    let mine = a.sign_in("alice").await;
    let theirs = b.sign_in("alice").await;
    assert_ne!(mine, theirs, "each session has its own token");
    // A pre-sign-in token (anchored on a cookie) is no signed-in token either.
    let anon = field_value(&Browser::new(&app).get("/login").await.body, "csrf_token").unwrap();
    let session_a = a.session().unwrap().to_owned();
    let session_b = b.session().unwrap().to_owned();
    let sessions = app.accounts.list_sessions(alice.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    let handles: Vec<String> = sessions.iter().map(|s| s.handle.to_string()).collect();

    let mut cases = bad_tokens(&theirs);
    cases.push(("pre-sign-in", Some(anon)));
    for (what, token) in &cases {
        let missing = token.is_none();
        let r = a.post("/logout", &with_token(token, &[])).await;
        assert_refused(&r, &format!("POST /logout, {what} token"), missing);
        assert_eq!(app.account_with_cookie(&session_a).await.status, StatusCode::OK, "{what}: still signed in");

        let fields = [("current_password", PASSWORD), ("new_password", "an entirely new passphrase 42")];
        let r = a.post("/account/password", &with_token(token, &fields)).await;
        assert_refused(&r, &format!("POST /account/password, {what} token"), missing);

        for h in &handles {
            let r = a.post(&format!("/account/sessions/{h}/end"), &with_token(token, &[])).await;
            assert_refused(&r, &format!("POST /account/sessions/{{h}}/end, {what} token"), missing);
        }
        assert_eq!(app.account_with_cookie(&session_a).await.status, StatusCode::OK, "{what}: session A lives");
        assert_eq!(app.account_with_cookie(&session_b).await.status, StatusCode::OK, "{what}: session B lives");
    }
    // The password did not change: it still signs in, the new one does not.
    assert!(app.accounts.login("alice", &tessera_core::secret::Password::new(PASSWORD), None, &crate::helpers::ctx()).await.is_ok());
    assert_eq!(app.accounts.list_sessions(alice.id).await.unwrap().len(), 3);

    // The valid tokens work.
    let other_handle = current_handle(&app, &session_b).await;
    assert!(handles.contains(&other_handle));
    let r = a.post(&format!("/account/sessions/{other_handle}/end"), &[("csrf_token", &mine)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_ne!(app.account_with_cookie(&session_b).await.status, StatusCode::OK, "session B ended");
    let r = a.post("/account/password", &[("csrf_token", &mine), ("current_password", PASSWORD), ("new_password", "an entirely new passphrase 42")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mine = field_value(&a.get("/account").await.body, "csrf_token").unwrap();
    let r = a.post("/logout", &[("csrf_token", &mine)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_ne!(app.account_with_cookie(&session_a).await.status, StatusCode::OK, "signed out");
}

/// The handle of the session behind a cookie, read from its account page.
async fn current_handle(app: &TestApp, session: &str) -> String {
    let page = app.account_with_cookie(session).await.body;
    // The current session is the one without an "end" form.
    let all: Vec<String> = page
        .match_indices("/account/sessions/")
        .map(|(i, _)| page[i + "/account/sessions/".len()..].split('/').next().unwrap().to_owned())
        .collect();
    let alice_sessions: Vec<String> = app
        .accounts
        .list_sessions(app.accounts.find_user_by_login("alice").await.unwrap().id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.handle.to_string())
        .collect();
    alice_sessions.into_iter().find(|h| !all.contains(h)).expect("the current session has no end form")
}

async fn register(app: &TestApp, public: bool, redirect: &str, skip_consent: bool) -> String {
    let (client, _) = app
        .provider
        .register_client(ClientRegistration {
            name: "Relying Party".into(),
            redirect_uris: vec![redirect.into()],
            post_logout_redirect_uris: vec![POST_LOGOUT_URI.into()],
            public,
            skip_consent,
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    client.id.to_string()
}

fn authorize_path(client_id: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("scope", "openid profile"),
        ("state", "st-123"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params("http://x/oauth2/authorize", &params).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap())
}

/// `/oauth2/consent` (bound to the session) and `/oauth2/logout/confirm` (bound to the
/// anchor cookie).
async fn oauth_forms_refuse_a_missing_or_foreign_csrf_token(backend: Backend) {
    let app = spawn_app_with_env(backend, &[]).await;
    app.create_user("alice", PASSWORD).await;
    let client_id = register(&app, false, REDIRECT_URI, false).await;
    let mut a = Browser::new(&app);
    let mut b = Browser::new(&app);
    a.sign_in("alice").await;
    b.sign_in("alice").await;
    let path = authorize_path(&client_id, REDIRECT_URI, &[]);
    let consent = a.get(&path).await;
    assert_eq!(consent.status, StatusCode::OK, "consent page: {}", consent.body);
    let mine = field_value(&consent.body, "csrf_token").unwrap();
    let handle = field_value(&consent.body, "consent").unwrap();
    let theirs = field_value(&b.get(&path).await.body, "csrf_token").unwrap();
    let anon = field_value(&Browser::new(&app).get("/login").await.body, "csrf_token").unwrap();

    let mut cases = bad_tokens(&theirs);
    cases.push(("pre-sign-in", Some(anon)));
    for (what, token) in &cases {
        let r = a.post("/oauth2/consent", &with_token(token, &[("consent", &handle), ("decision", "allow")])).await;
        assert_refused(&r, &format!("POST /oauth2/consent, {what} token"), token.is_none());
    }
    // Consent was not recorded: the next authorization still asks.
    assert_eq!(a.get(&path).await.status, StatusCode::OK);
    let r = a.post("/oauth2/consent", &[("csrf_token", &mine), ("consent", &handle), ("decision", "allow")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location().unwrap().starts_with(&format!("{REDIRECT_URI}?code=")) || r.location().unwrap().contains("code="));

    // RP-initiated logout without an id_token_hint asks for confirmation.
    let logout = {
        let u = reqwest::Url::parse_with_params("http://x/oauth2/logout", &[("client_id", client_id.as_str()), ("post_logout_redirect_uri", POST_LOGOUT_URI)]).unwrap();
        format!("{}?{}", u.path(), u.query().unwrap())
    };
    let page = a.get(&logout).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let mine = field_value(&page.body, "csrf_token").expect("logout confirmation form");
    let request = unescape(&field_value(&page.body, "request").unwrap());
    let theirs = field_value(&b.get(&logout).await.body, "csrf_token").unwrap();
    let session_a = a.session().unwrap().to_owned();
    for (what, token) in bad_tokens(&theirs) {
        let r = a.post("/oauth2/logout/confirm", &with_token(&token, &[("request", &request), ("decision", "logout")])).await;
        assert_refused(&r, &format!("POST /oauth2/logout/confirm, {what} token"), token.is_none());
        assert_eq!(app.account_with_cookie(&session_a).await.status, StatusCode::OK, "{what}: still signed in");
    }
    let r = a.post("/oauth2/logout/confirm", &[("csrf_token", &mine), ("request", &request), ("decision", "logout")]).await;
    assert!(r.status == StatusCode::OK || r.status == StatusCode::SEE_OTHER, "{} {}", r.status, r.body);
    assert_ne!(app.account_with_cookie(&session_a).await.status, StatusCode::OK, "signed out");
}

fn check_headers(a: &Answer, what: &str, https: bool) {
    let h = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("{what}: no {name} header"));
    let ct = h("content-type");
    assert!(ct.starts_with("text/html"), "{what}: an HTML page, got {ct} ({})", a.status);
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'") || csp.contains("default-src 'self'"), "{what}: {csp}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert!(["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"].contains(&h("referrer-policy")), "{what}");
    assert!(["DENY", "SAMEORIGIN"].contains(&h("x-frame-options").to_ascii_uppercase().as_str()), "{what}");
    let hsts = a.headers.get("strict-transport-security");
    if https {
        let v = hsts.unwrap_or_else(|| panic!("{what}: HSTS with an https issuer")).to_str().unwrap();
        let max_age: u64 = v.split(';').find_map(|p| p.trim().strip_prefix("max-age=")).unwrap().parse().unwrap();
        assert!(max_age >= 86_400, "{what}: {v}");
    } else {
        assert!(hsts.is_none(), "{what}: no HSTS over plain http");
    }
}

/// Visits every kind of HTML page and checks its headers.
async fn every_html_page(app: &TestApp, https: bool) {
    app.create_user("alice", PASSWORD).await;
    let code_client = register(app, false, REDIRECT_URI, false).await;
    let quick_client = register(app, false, "https://quick.example/cb", true).await;
    let mut me = Browser::new(app);
    let mut pages: Vec<(&str, Answer)> = Vec::new();
    pages.push(("login", me.get("/login").await));
    pages.push(("signup", me.get("/signup").await));
    let setup = app.accounts.ensure_setup_token().await.unwrap().unwrap();
    pages.push(("setup", me.get(&format!("/setup?token={}", setup.expose())).await));
    pages.push(("setup, used link (403)", me.get("/setup?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await));
    pages.push(("404", me.get("/no/such/page").await));
    pages.push(("405", me.send(me.http.put(format!("{}/login", me.base))).await));
    pages.push(("400 unreadable form", me.post("/login", &[("nonsense", "1")]).await));
    pages.push(("400 authorize, unknown client", me.get(&authorize_path("nobody", REDIRECT_URI, &[])).await));
    pages.push(("failed sign-in (401)", me.post("/login", &[("csrf_token", "x"), ("return_to", "/"), ("username", "a"), ("password", "b")]).await));
    me.sign_in("alice").await;
    pages.push(("account", me.get("/account").await));
    pages.push(("consent", me.get(&authorize_path(&code_client, REDIRECT_URI, &[])).await));
    pages.push(("form_post", me.get(&authorize_path(&quick_client, "https://quick.example/cb", &[("response_mode", "form_post")])).await));
    pages.push(("logout confirmation", me.get(&format!("/oauth2/logout?client_id={code_client}")).await));
    let expected = [
        ("login", 200),
        ("signup", 200),
        ("setup", 200),
        ("setup, used link (403)", 403),
        ("404", 404),
        ("405", 405),
        ("400 unreadable form", 400),
        ("400 authorize, unknown client", 400),
        ("account", 200),
        ("consent", 200),
        ("form_post", 200),
        ("logout confirmation", 200),
    ];
    for (what, status) in expected {
        let a = &pages.iter().find(|(w, _)| *w == what).unwrap().1;
        assert_eq!(a.status.as_u16(), status, "{what}: {}", a.body);
    }
    let form_post = &pages.iter().find(|(w, _)| *w == "form_post").unwrap().1;
    assert!(form_post.body.contains("action=\"https://quick.example/cb\"") && form_post.body.contains("name=\"code\""));
    assert!(!form_post.body.contains("<script>"), "the form_post page has no inline script");
    for (what, a) in &pages {
        check_headers(a, what, https);
        assert_eq!(a.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{what}");
    }
}

async fn security_headers_on_every_html_page_over_http(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_SIGNUP__ENABLED", "true")]).await;
    assert!(app.issuer.starts_with("http://"));
    every_html_page(&app, false).await;
}

/// HSTS is keyed on the issuer's scheme (TLS is usually terminated in front of Tessera).
async fn security_headers_on_every_html_page_with_an_https_issuer(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_SIGNUP__ENABLED", "true"), ("TESSERA_ISSUER", "https://id.example.test")]).await;
    assert_eq!(app.issuer, "https://id.example.test");
    every_html_page(&app, true).await;
    // Cookies are Secure, and `__Host-` prefixed, on an https issuer.
    let a = Browser::new(&app).get("/login").await;
    let c = crate::helpers::set_cookie_header(&a.headers, "__Host-tessera_csrf").unwrap();
    assert!(c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite"), "{c}");
}

fn acao(a: &Answer) -> Option<&str> {
    a.headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok())
}

/// CORS only for the origins of registered public clients' redirect URIs, on token,
/// userinfo and JWKS; never on the authorization endpoint.
async fn cors_only_for_registered_public_client_origins(backend: Backend) {
    let app = spawn_app_with_env(backend, &[]).await;
    register(&app, true, &format!("{SPA_ORIGIN}/callback"), false).await;
    register(&app, false, "https://confidential.example/cb", false).await;
    let http = crate::helpers::bare_client();
    let call = |method: reqwest::Method, path: &str, origin: Option<&str>| {
        let mut req = http.request(method.clone(), app.url(path));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if method == reqwest::Method::POST {
            req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body("grant_type=authorization_code&code=nope");
        }
        if method == reqwest::Method::OPTIONS {
            req = req.header("access-control-request-method", "POST").header("access-control-request-headers", "content-type");
        }
        async move { Answer::of(req.send().await.unwrap()).await }
    };
    let endpoints = [(reqwest::Method::POST, "/oauth2/token"), (reqwest::Method::GET, "/oauth2/userinfo"), (reqwest::Method::GET, "/oauth2/jwks")];
    for (method, path) in &endpoints {
        let ok = call(method.clone(), path, Some(SPA_ORIGIN)).await;
        assert_eq!(acao(&ok), Some(SPA_ORIGIN), "{method} {path} from the SPA's origin");
        assert_ne!(acao(&ok), Some("*"));
        let pre = call(reqwest::Method::OPTIONS, path, Some(SPA_ORIGIN)).await;
        assert!(pre.status.is_success(), "preflight {path}: {}", pre.status);
        assert_eq!(acao(&pre), Some(SPA_ORIGIN), "preflight {path}");
        assert!(pre.headers.get("access-control-allow-methods").is_some(), "preflight {path}");
        for origin in [
            "https://evil.example",
            "https://confidential.example",
            "https://spa.example",
            "http://spa.example:8443",
            "https://spa.example:8443.evil.example",
            "null",
            "*",
        ] {
            let r = call(method.clone(), path, Some(origin)).await;
            assert_eq!(acao(&r), None, "{method} {path} from {origin}");
            let pre = call(reqwest::Method::OPTIONS, path, Some(origin)).await;
            assert_eq!(acao(&pre), None, "preflight {path} from {origin}");
            assert!(!pre.status.is_success() || pre.headers.get("access-control-allow-methods").is_none(), "preflight {path} from {origin}");
        }
        let none = call(method.clone(), path, None).await;
        assert_eq!(acao(&none), None, "{method} {path} without Origin");
    }
    let authorize = authorize_path("whatever", REDIRECT_URI, &[]);
    for method in [reqwest::Method::GET, reqwest::Method::OPTIONS, reqwest::Method::POST] {
        let r = call(method.clone(), &authorize, Some(SPA_ORIGIN)).await;
        let cors: Vec<&str> = r.headers.keys().map(|k| k.as_str()).filter(|k| k.starts_with("access-control-")).collect();
        assert!(cors.is_empty(), "{method} /oauth2/authorize sends no CORS headers: {cors:?}");
    }
}
