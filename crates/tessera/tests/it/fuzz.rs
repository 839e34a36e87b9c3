//! Bounded, deterministic property-based fuzzing of the endpoints that parse untrusted input
//! (issue 5): random authorization queries, token/introspection/revocation/login forms,
//! bearer strings and admin JSON. Properties: no answer is a 5xx, no request hangs, no
//! redirect leaves the server or the registered redirect URI, and the server keeps answering
//! `/healthz`. One in-process server (SQLite) per property; 256 cases each from a fixed seed,
//! no failure persistence.

use crate::attacks::{ADMIN_KEY, http};
use crate::helpers::{PASSWORD, TestApp, ctx, field_value, spawn_app_with_env};
use crate::oauth::{REDIRECT_URI, Rp, pkce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, LOCATION};
use serde_json::{Value, json};
use std::time::Instant;
use tessera_core::accounts::CreateUser;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::secret::Password;
use tessera_testkit::Backend;
use tokio::runtime::Runtime;

const SEED: [u8; 32] = *b"tessera-issue-5-fuzz-seed-000001";
const FORM: &str = "application/x-www-form-urlencoded";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn runner() -> TestRunner {
    let config = Config { cases: 256, failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED))
}

/// What the properties draw their "valid" values from.
struct Fixture {
    app: TestApp,
    rp: Rp,
    public_id: String,
    session: String,
    access_token: String,
    refresh_token: String,
    challenge: String,
    login_csrf: String,
    login_cookie: String,
}

async fn fixture() -> Fixture {
    let app = spawn_app_with_env(Backend::Sqlite, &[("TESSERA_ADMIN__API_KEY", ADMIN_KEY), ("TESSERA_SIGNUP__ENABLED", "true")]).await;
    let (client, secret) = app
        .provider
        .register_client(ClientRegistration {
            name: "RP".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into(), "client_credentials".into()],
            skip_consent: true,
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    let rp = Rp { id: client.id.to_string(), secret: secret.unwrap() };
    let public_id = app
        .provider
        .register_client(ClientRegistration {
            name: "SPA".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            public: true,
            ..ClientRegistration::default()
        })
        .await
        .unwrap()
        .0
        .id
        .to_string();
    let input = CreateUser { username: "alice".into(), email: None, display_name: None, password: Some(Password::new(PASSWORD)), roles: vec!["admin".into()] };
    app.accounts.create_user(input, &ctx()).await.unwrap();
    let signed_in = app.post_login("alice", PASSWORD).await;
    let session = crate::helpers::cookie_value(&signed_in.session_cookie().unwrap());
    let code = crate::oauth::authorize(&app.base, &app.issuer, &rp, &session, "openid profile offline_access").await;
    let (_, body) = crate::oauth::redeem(&app.base, &rp, &code).await;
    let (access_token, refresh_token) = crate::oauth::tokens(&body);
    let (_, challenge) = pkce();
    // A login form's CSRF token and the cookie it is bound to.
    let res = http().get(app.url("/login")).send().await.unwrap();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let login_csrf = field_value(&res.text().await.unwrap(), "csrf_token").unwrap();
    Fixture { app, rp, public_id, session, access_token, refresh_token: refresh_token.unwrap(), challenge, login_csrf, login_cookie: cookie }
}

/// One server per property, on its own runtime; `prop` gets the fixture and a case.
fn fuzz<S: Strategy>(name: &str, strategy: S, prop: impl Fn(&Fixture, S::Value) -> reqwest::RequestBuilder)
where
    S::Value: std::fmt::Debug,
{
    let rt = Runtime::new().unwrap();
    let fx = rt.block_on(fixture());
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let seen = std::cell::RefCell::new(&mut statuses);
    let result = runner().run(&strategy, |case| {
        let rb = prop(&fx, case);
        let answer = rt.block_on(async {
            let res = match rb.send().await {
                Ok(r) => r,
                Err(e) if e.is_timeout() => return Err(TestCaseError::fail(format!("no answer within 10 s: {e}"))),
                Err(e) if e.is_builder() => return Ok(None),
                Err(e) => return Err(TestCaseError::fail(format!("transport error: {e:?}"))),
            };
            let status = res.status();
            let location = res.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body = res.text().await.unwrap_or_default();
            let health = http().get(fx.app.url("/healthz")).send().await.map_err(|e| TestCaseError::fail(format!("/healthz: {e}")))?;
            prop_assert_eq!(health.status(), StatusCode::OK, "/healthz after the case");
            Ok(Some((status, location, body)))
        })?;
        let Some((status, location, body)) = answer else { return Ok(()) };
        *seen.borrow_mut().entry(status.as_u16()).or_default() += 1;
        prop_assert!(status.as_u16() < 500, "{} {}", status, body.chars().take(300).collect::<String>());
        if let Some(loc) = location {
            let local = loc.starts_with('/') && !loc.starts_with("//") && !loc.starts_with("/\\");
            prop_assert!(local || loc.starts_with(&format!("{REDIRECT_URI}?")), "redirect to {loc:?}");
        }
        Ok(())
    });
    drop(fx);
    drop(rt);
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!("{name}: 256 cases in {:.1} s, statuses {statuses:?}", started.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------ strategies

/// Any text: arbitrary Unicode, URL-ish ASCII, or control characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._~+/=-]{0,64}",
        2 => any::<String>(),
        1 => "[\\x00-\\x1f\"'<>&%#?;\\\\ ]{0,16}",
        1 => "[0-9]{1,25}",
        1 => Just(String::new()),
        1 => ".{200,600}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec!["username", "email", "name", "password", "password_hash", "roles", "disabled", "iss", "sub", "exp"]).prop_map(str::to_owned),
        text(),
    ]
}

/// Something shaped like a JWT: base64url JSON, base64url JSON, random bytes.
fn jwt_like() -> impl Strategy<Value = String> {
    (json_value(), json_value(), prop::collection::vec(any::<u8>(), 0..80), any::<bool>()).prop_map(|(h, p, s, alg)| {
        let mut h = h;
        if alg {
            h = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "x", "extra": h});
        }
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(h.to_string()), URL_SAFE_NO_PAD.encode(p.to_string()), URL_SAFE_NO_PAD.encode(s))
    })
}

/// A parameter: its name, and either a pick among the fixture's valid values for it (by
/// `Index`) or a random value.
#[derive(Debug, Clone)]
struct Param {
    name: String,
    pick: Option<Index>,
    value: String,
}

/// Parameters: each of `specs` (name, probability of being present), valid values 3 times
/// out of 4; sometimes a few unknown ones; sometimes one of them twice.
fn params(specs: &'static [(&'static str, f64)]) -> impl Strategy<Value = Vec<Param>> {
    let known: Vec<BoxedStrategy<Option<Param>>> = specs
        .iter()
        .map(|(name, p)| {
            let value = (prop::option::weighted(0.75, any::<Index>()), prop_oneof![3 => text(), 1 => jwt_like()]);
            prop::option::weighted(*p, value).prop_map(move |v| v.map(|(pick, value)| Param { name: (*name).to_owned(), pick, value })).boxed()
        })
        .collect();
    let extra = prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec((text(), text()), 1..4)];
    (known, extra, prop::option::weighted(0.1, any::<Index>()), any::<Index>()).prop_map(|(known, extra, dup, at)| {
        let mut out: Vec<Param> = known.into_iter().flatten().collect();
        if let (Some(d), false) = (dup, out.is_empty()) {
            let again = out[d.index(out.len())].clone();
            out.push(Param { pick: None, ..again });
        }
        for (name, value) in extra {
            let i = at.index(out.len() + 1);
            out.insert(i, Param { name, pick: None, value });
        }
        out
    })
}

/// The fixture's valid values for parameter `name`.
fn valid(fx: &Fixture, name: &str) -> Vec<String> {
    let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match name {
        "client_id" => vec![fx.rp.id.clone(), fx.public_id.clone()],
        "redirect_uri" => v(&[REDIRECT_URI, "https://rp.example/cb/", "https://evil.example/cb"]),
        "response_type" => v(&["code", "token", "code id_token"]),
        "scope" => v(&["openid", "openid profile email offline_access", "openid admin", ""]),
        "code_challenge" => vec![fx.challenge.clone()],
        "code_challenge_method" => v(&["S256", "plain"]),
        "response_mode" => v(&["query", "form_post", "fragment"]),
        "prompt" => v(&["none", "login", "consent", "select_account", "none login"]),
        "max_age" => v(&["0", "-1", "99999999999999999999", "1.5"]),
        "resource" => v(&["https://api.example", "urn:x", "https://api.example#f"]),
        "grant_type" => v(&["authorization_code", "refresh_token", "client_credentials", "password", "urn:ietf:params:oauth:grant-type:jwt-bearer"]),
        "refresh_token" | "token" => vec![fx.refresh_token.clone(), fx.access_token.clone()],
        "code_verifier" => vec!["a".repeat(43), "a".repeat(129)],
        "client_secret" => vec![fx.rp.secret.clone()],
        "client_assertion_type" => v(&[ASSERTION_TYPE]),
        "token_type_hint" => v(&["access_token", "refresh_token"]),
        "csrf_token" => vec![fx.login_csrf.clone()],
        "return_to" => v(&["/account", "//evil.example", "https://evil.example", "/\\evil.example"]),
        "username" => v(&["alice", "ALICE", "alice\u{0}"]),
        "password" => vec![PASSWORD.to_owned()],
        "id_token_hint" => vec![fx.access_token.clone()],
        "state" | "nonce" | "login_hint" => v(&["x", "\r\nSet-Cookie: a=1"]),
        _ => Vec::new(),
    }
}

fn materialise(fx: &Fixture, ps: &[Param]) -> Vec<(String, String)> {
    ps.iter()
        .map(|p| {
            let pool = valid(fx, &p.name);
            let value = match (&p.pick, pool.is_empty()) {
                (Some(i), false) => pool[i.index(pool.len())].clone(),
                _ => p.value.clone(),
            };
            (p.name.clone(), value)
        })
        .collect()
}

fn form_encode(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

const AUTHORIZE: &[(&str, f64)] = &[
    ("response_type", 0.9),
    ("client_id", 0.9),
    ("redirect_uri", 0.9),
    ("scope", 0.8),
    ("code_challenge", 0.9),
    ("code_challenge_method", 0.9),
    ("state", 0.5),
    ("nonce", 0.3),
    ("prompt", 0.2),
    ("max_age", 0.1),
    ("id_token_hint", 0.1),
    ("login_hint", 0.2),
    ("response_mode", 0.3),
    ("resource", 0.1),
    ("acr_values", 0.05),
    ("request", 0.02),
    ("request_uri", 0.02),
];
const TOKEN: &[(&str, f64)] = &[
    ("grant_type", 0.95),
    ("code", 0.5),
    ("redirect_uri", 0.4),
    ("code_verifier", 0.4),
    ("refresh_token", 0.4),
    ("scope", 0.3),
    ("resource", 0.1),
    ("client_id", 0.2),
    ("client_secret", 0.1),
    ("client_assertion_type", 0.1),
    ("client_assertion", 0.1),
];
const INTROSPECT: &[(&str, f64)] = &[
    ("token", 0.95),
    ("token_type_hint", 0.3),
    ("client_id", 0.1),
    ("client_secret", 0.05),
    ("client_assertion_type", 0.05),
    ("client_assertion", 0.05),
];
const LOGIN: &[(&str, f64)] = &[
    ("csrf_token", 0.95),
    ("return_to", 0.95),
    ("username", 0.95),
    ("password", 0.95),
    ("pow_challenge", 0.1),
    ("pow_nonce", 0.1),
];

/// How the client authenticates: Basic with the real secret (half the time), random Basic,
/// or nothing.
fn basic(fx: &Fixture, rb: reqwest::RequestBuilder, how: u8, junk: &str) -> reqwest::RequestBuilder {
    match how % 4 {
        0 | 1 => rb.basic_auth(&fx.rp.id, Some(&fx.rp.secret)),
        2 => rb.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(junk))),
        _ => rb,
    }
}

fn form_post(fx: &Fixture, path: &str, body: String, ct: bool) -> reqwest::RequestBuilder {
    let rb = http().post(fx.app.url(path)).body(body);
    if ct { rb.header(CONTENT_TYPE, FORM) } else { rb.header(CONTENT_TYPE, "text/plain") }
}

// ------------------------------------------------------------------------------ properties

#[test]
fn fuzz_authorize_query() {
    let strategy = (params(AUTHORIZE), any::<bool>(), any::<bool>(), "[ -~]{0,200}");
    fuzz("authorize", strategy, |fx, (ps, signed_in, raw, junk)| {
        let mut q = form_encode(&materialise(fx, &ps));
        if raw {
            q.push('&');
            q.push_str(&junk);
        }
        let rb = http().get(format!("{}?{q}", fx.app.url("/oauth2/authorize")));
        if signed_in { rb.header(COOKIE, format!("tessera_session={}", fx.session)) } else { rb }
    });
}

#[test]
fn fuzz_token_form() {
    let strategy = (params(TOKEN), any::<u8>(), text(), prop::bool::weighted(0.9));
    fuzz("token", strategy, |fx, (ps, how, junk, ct)| {
        basic(fx, form_post(fx, "/oauth2/token", form_encode(&materialise(fx, &ps)), ct), how, &junk)
    });
}

#[test]
fn fuzz_introspect_form() {
    let strategy = (params(INTROSPECT), any::<u8>(), text(), prop::bool::weighted(0.9));
    fuzz("introspect", strategy, |fx, (ps, how, junk, ct)| {
        basic(fx, form_post(fx, "/oauth2/introspect", form_encode(&materialise(fx, &ps)), ct), how, &junk)
    });
}

#[test]
fn fuzz_revoke_form() {
    let strategy = (params(INTROSPECT), any::<u8>(), text(), prop::bool::weighted(0.9));
    fuzz("revoke", strategy, |fx, (ps, how, junk, ct)| {
        basic(fx, form_post(fx, "/oauth2/revoke", form_encode(&materialise(fx, &ps)), ct), how, &junk)
    });
}

#[test]
fn fuzz_login_form() {
    let strategy = (params(LOGIN), any::<bool>());
    fuzz("login", strategy, |fx, (ps, with_cookie)| {
        let rb = form_post(fx, "/login", form_encode(&materialise(fx, &ps)), true);
        if with_cookie { rb.header(COOKIE, fx.login_cookie.clone()) } else { rb }
    });
}

#[test]
fn fuzz_userinfo_bearer() {
    let bearer = prop_oneof![
        3 => "[!-~]{1,200}",
        2 => jwt_like(),
        1 => prop::collection::vec(any::<u8>(), 1..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| format!("MUTATE:{}:{b}", i.index(10_000))),
    ];
    let strategy = (bearer, select(vec!["Bearer ", "bearer ", "BEARER  ", "Basic ", "", "Bearer", "DPoP "]), prop::collection::vec(any::<u8>(), 0..4));
    fuzz("userinfo", strategy, |fx, (token, scheme, obs)| {
        // Mutations of the genuine token: one byte changed.
        let token = match token.strip_prefix("MUTATE:") {
            Some(rest) => {
                let (i, b) = rest.split_once(':').unwrap();
                let mut t = fx.access_token.clone().into_bytes();
                let i = i.parse::<usize>().unwrap() % t.len();
                t[i] = b.parse::<u8>().unwrap().clamp(0x21, 0x7e);
                String::from_utf8(t).unwrap()
            }
            None => token,
        };
        let mut value = format!("{scheme}{token}").into_bytes();
        value.extend(obs.into_iter().map(|b| b | 0x80)); // obs-text bytes
        let rb = http().get(fx.app.url("/oauth2/userinfo"));
        match HeaderValue::from_bytes(&value) {
            Ok(v) => rb.header(AUTHORIZATION, v),
            Err(_) => rb.header(AUTHORIZATION, format!("Bearer {}", URL_SAFE_NO_PAD.encode(&value))),
        }
    });
}

/// Strings shaped like stored password hashes (PHC, bcrypt, PBKDF2), mangled.
fn password_hash() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".to_owned()),
        Just("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned()),
        Just("$pbkdf2-sha256$29000$N2bMWasFwBgjhFCKEQKiVA$2Ug5TVHv3Q1e2Qx5z0hWtMfZ3CfwdEvbkvXgYJqX9Gs".to_owned()),
        "\\$(argon2id|argon2i|2b|2a|2y|pbkdf2-sha256|scrypt)\\$[ -~]{0,80}",
        "\\$argon2id\\$v=[0-9]{1,12}\\$m=[0-9]{1,22},t=[0-9]{1,22},p=[0-9]{1,22}\\$[A-Za-z0-9+/]{0,30}\\$[A-Za-z0-9+/]{0,60}",
        "\\$2b\\$[0-9]{1,3}\\$[./A-Za-z0-9]{0,60}",
        "\\$pbkdf2-sha256\\$[0-9]{1,22}\\$[A-Za-z0-9./+]{0,30}\\$[A-Za-z0-9./+]{0,60}",
        text(),
    ]
}

#[test]
fn fuzz_admin_users_json() {
    let username = prop_oneof![3 => "[a-z][a-z0-9._-]{2,20}", 1 => text()];
    let email = prop_oneof![3 => "[a-z]{1,8}@[a-z]{1,8}\\.example", 1 => text()];
    let secret = prop_oneof![
        2 => (Just("password"), "[ -~]{12,64}"),
        2 => (Just("password_hash"), password_hash()),
        1 => (Just("password"), text()),
    ];
    let user_shaped = (username, prop::option::of(email), prop::option::of(text()), prop::option::of(secret), prop::collection::vec(prop_oneof![Just("admin".to_owned()), text()], 0..3))
        .prop_map(|(u, e, n, secret, roles)| {
            let mut v = json!({"username": u, "email": e, "name": n, "roles": roles});
            if let Some((field, value)) = secret {
                v[field] = json!(value);
            }
            v
        });
    let body = prop_oneof![1 => json_value(), 3 => user_shaped];
    let strategy = (body, 0u8..6, prop::bool::weighted(0.9), "[ -~]{0,80}");
    fuzz("admin users", strategy, |fx, (body, how, authed, query)| {
        let rb = match how {
            0 => http().get(format!("{}?{}", fx.app.url("/admin/v1/users"), query)),
            1 => http().patch(fx.app.url(&format!("/admin/v1/users/{}", uuid::Uuid::nil()))).header(CONTENT_TYPE, "application/json").body(body.to_string()),
            _ => http().post(fx.app.url("/admin/v1/users")).header(CONTENT_TYPE, "application/json").body(body.to_string()),
        };
        if authed { rb.bearer_auth(ADMIN_KEY) } else { rb }
    });
}
