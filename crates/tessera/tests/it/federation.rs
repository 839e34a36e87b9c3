//! Upstream sign-in over real HTTP: a fake OpenID provider (axum on a loopback port, ID
//! tokens signed with core's JOSE code) stands in for the upstream. The happy path creates a
//! user just in time and lists the identity on the account page; a replayed `state`, a wrong
//! `nonce`, a foreign `iss` and a tampered ID token each end on an error page without a
//! session; an address held by a local account is linked only after its password, or right
//! away (audited) when the provider is trusted and the address verified.

use crate::helpers::{Answer, PASSWORD, TestApp, set_cookie_header, spawn_app_with_env};
use axum::extract::{Form, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tessera_core::jose::{JwsAlg, SigningKey};
use tessera_core::secret::TokenHash;
use tessera_testkit::Backend;

const ADMIN_KEY: &str = "admin-key-for-federation-tests-0123456789";

on_both_backends!(
    upstream_sign_in_creates_a_user_just_in_time_and_refuses_a_replayed_state,
    wrong_nonce_foreign_issuer_and_tampered_id_token_leave_no_session,
    unverified_address_of_a_local_account_is_linked_only_after_its_password,
    trusted_verified_address_is_linked_and_audited,
    vault_tokens_are_handed_to_the_token_keeper,
);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Good,
    WrongNonce,
    ForeignIssuer,
    Tampered,
}

struct Op {
    issuer: String,
    key: SigningKey,
    mode: Mutex<Mode>,
    email: Mutex<(String, bool)>,
    /// code → (nonce, code_challenge)
    codes: Mutex<HashMap<String, (String, String)>>,
}

async fn discovery(State(op): State<Arc<Op>>) -> Json<Value> {
    let i = &op.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
}

async fn jwks(State(op): State<Arc<Op>>) -> Json<Value> {
    Json(json!({"keys": [op.key.public_jwk()]}))
}

async fn authorize(State(op): State<Arc<Op>>, Query(q): Query<HashMap<String, String>>) -> axum::response::Redirect {
    let code = format!("code-{}", uuid::Uuid::new_v4());
    op.codes.lock().unwrap().insert(code.clone(), (q["nonce"].clone(), q["code_challenge"].clone()));
    let to = format!("{}?code={code}&state={}&iss={}", q["redirect_uri"], q["state"], op.issuer);
    axum::response::Redirect::to(&to)
}

async fn token(State(op): State<Arc<Op>>, headers: axum::http::HeaderMap, Form(f): Form<HashMap<String, String>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("tessera:upstream-secret"));
    if basic != expected {
        return (axum::http::StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let Some((nonce, challenge)) = op.codes.lock().unwrap().remove(&f["code"]) else {
        return (axum::http::StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    };
    let s256 = URL_SAFE_NO_PAD.encode(TokenHash::of(f["code_verifier"].as_bytes()).as_bytes());
    if s256 != challenge {
        return (axum::http::StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": "pkce"}))).into_response();
    }
    let mode = *op.mode.lock().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = json!({"iss": op.issuer, "aud": "tessera", "sub": "upstream-alice", "nonce": nonce, "iat": now, "exp": now + 300});
    match mode {
        Mode::WrongNonce => claims["nonce"] = json!("not-the-nonce"),
        Mode::ForeignIssuer => claims["iss"] = json!("https://evil.example.com"),
        _ => {}
    }
    let mut id_token = op.key.sign_jwt("JWT", &claims).unwrap();
    if mode == Mode::Tampered {
        let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
        claims["sub"] = json!("upstream-admin");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        id_token = parts.join(".");
    }
    Json(json!({"access_token": "upstream-access", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})).into_response()
}

async fn userinfo(State(op): State<Arc<Op>>) -> Json<Value> {
    let (email, verified) = op.email.lock().unwrap().clone();
    Json(json!({"sub": "upstream-alice", "email": email, "email_verified": verified, "preferred_username": "alice"}))
}

async fn spawn_op() -> Arc<Op> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let (key, _) = SigningKey::generate(JwsAlg::RS256).unwrap();
    let op = Arc::new(Op {
        issuer,
        key,
        mode: Mutex::new(Mode::Good),
        email: Mutex::new(("alice@corp.example".into(), true)),
        codes: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        .with_state(op.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    op
}

async fn app_with_op(backend: Backend, trust_email: bool) -> (TestApp, Arc<Op>) {
    let app = spawn_app_with_env(backend, &[("TESSERA_ADMIN__API_KEY", ADMIN_KEY)]).await;
    let op = spawn_op().await;
    let res = app
        .client
        .post(app.url("/admin/v1/idps"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"name": "corp", "issuer": op.issuer, "client_id": "tessera", "client_secret": "upstream-secret",
                      "jit": true, "trust_email": trust_email}))
        .send()
        .await
        .unwrap();
    let a = Answer::of(res).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["callback_url"], format!("{}/login/upstream/corp/callback", app.issuer));
    let listed = Answer::of(app.client.get(app.url("/admin/v1/idps")).bearer_auth(ADMIN_KEY).send().await.unwrap()).await;
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains("\"corp\"") && !listed.body.contains("upstream-secret"), "listed, secret never shown");
    let anonymous = Answer::of(app.client.get(app.url("/admin/v1/idps")).send().await.unwrap()).await;
    assert_eq!(anonymous.status, 401);
    (app, op)
}

/// `GET` at the issuer's own address (`http://localhost:PORT`): the browser-binding cookie
/// is set for the issuer's host, where the provider sends the browser back to.
async fn iget(app: &TestApp, path: &str) -> Answer {
    Answer::of(app.client.get(format!("{}{path}", app.issuer)).send().await.unwrap()).await
}

/// Starts a sign-in at Tessera, lets the fake OP answer, and returns the callback URL.
async fn through_upstream(app: &TestApp) -> String {
    let start = iget(app, "/login/upstream/corp?return_to=/account").await;
    assert_eq!(start.status, 303, "{}", start.body);
    assert!(set_cookie_header(&start.headers, "tessera_upstream").is_some());
    let at_op = Answer::of(app.client.get(start.location().unwrap()).send().await.unwrap()).await;
    assert_eq!(at_op.status, 303);
    at_op.location().unwrap().to_owned()
}

async fn upstream_sign_in_creates_a_user_just_in_time_and_refuses_a_replayed_state(backend: Backend) {
    let (app, _op) = app_with_op(backend, false).await;
    let (_, login, _) = app.get_login().await;
    assert!(login.contains("Continue with corp"), "the login page offers the provider");

    let callback = through_upstream(&app).await;
    assert!(callback.starts_with(&format!("{}/login/upstream/corp/callback?", app.issuer)));
    let done = Answer::of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some("/account"));
    assert!(done.session_cookie().is_some());
    let account = iget(&app, "/account").await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("id=\"account-username\">alice<"), "a user was created just in time");
    assert!(account.body.contains("identity-provider\">corp<"), "the account page lists the identity");
    // The identity is the user's only way in (no password, no passkey): unlinking is refused.
    let csrf = crate::helpers::field_value(&account.body, "csrf_token").unwrap();
    let at = account.body.find("data-identity=\"").unwrap() + "data-identity=\"".len();
    let id = &account.body[at..at + 36];
    let unlink = Answer::of(
        app.client.post(format!("{}/account/identities/{id}/unlink", app.issuer)).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap(),
    )
    .await;
    assert_eq!(unlink.status, 409, "{}", unlink.body);
    assert!(unlink.body.contains("only way to sign in"));
    assert!(iget(&app, "/account").await.body.contains("identity-provider\">corp<"), "still linked");

    // The same answer again: the state was used up.
    let replay = Answer::of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("Sign-in failed"));
    assert!(replay.session_cookie().is_none());
}

async fn wrong_nonce_foreign_issuer_and_tampered_id_token_leave_no_session(backend: Backend) {
    let (app, op) = app_with_op(backend, false).await;
    for mode in [Mode::WrongNonce, Mode::ForeignIssuer, Mode::Tampered] {
        *op.mode.lock().unwrap() = mode;
        let callback = through_upstream(&app).await;
        let done = Answer::of(app.client.get(&callback).send().await.unwrap()).await;
        assert_eq!(done.status, 400, "{}", done.body);
        assert!(done.body.contains("ID token was refused"), "{}", done.body);
        assert!(done.session_cookie().is_none());
        assert_eq!(iget(&app, "/account").await.status, 303, "not signed in");
    }
    // A callback without the browser's cookie is refused too.
    *op.mode.lock().unwrap() = Mode::Good;
    let callback = through_upstream(&app).await;
    let stranger = Answer::of(crate::helpers::bare_client().get(&callback).send().await.unwrap()).await;
    assert_eq!(stranger.status, 400);
    assert!(stranger.session_cookie().is_none());
}

async fn create_local(app: &TestApp, username: &str, email: &str) -> tessera_core::user::User {
    app.accounts
        .create_user(
            tessera_core::accounts::CreateUser {
                username: username.into(),
                email: Some(email.into()),
                display_name: None,
                password: Some(tessera_core::secret::Password::new(PASSWORD)),
                roles: vec![],
            },
            &crate::helpers::ctx(),
        )
        .await
        .unwrap()
}

async fn unverified_address_of_a_local_account_is_linked_only_after_its_password(backend: Backend) {
    let (app, op) = app_with_op(backend, true).await;
    create_local(&app, "alice-local", "alice@corp.example").await;
    *op.email.lock().unwrap() = ("alice@corp.example".into(), false);
    let callback = through_upstream(&app).await;
    let done = Answer::of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), Some("/login/link"));
    assert!(done.session_cookie().is_none(), "not linked, not signed in");
    let page = iget(&app, "/login/link").await;
    assert!(page.body.contains("alice-local"));
    let csrf = crate::helpers::field_value(&page.body, "csrf_token").unwrap();
    let wrong = Answer::of(
        app.client.post(format!("{}/login/link", app.issuer)).form(&[("csrf_token", csrf.as_str()), ("password", "not the password")]).send().await.unwrap(),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.session_cookie().is_none());
    let right = Answer::of(
        app.client.post(format!("{}/login/link", app.issuer)).form(&[("csrf_token", csrf.as_str()), ("password", PASSWORD)]).send().await.unwrap(),
    )
    .await;
    assert_eq!(right.status, 303, "{}", right.body);
    assert!(right.session_cookie().is_some());
    let account = iget(&app, "/account").await;
    assert!(account.body.contains("id=\"account-username\">alice-local<"));
    assert!(account.body.contains("identity-provider\">corp<"));
}

async fn trusted_verified_address_is_linked_and_audited(backend: Backend) {
    let (app, _op) = app_with_op(backend, true).await;
    let local = create_local(&app, "alice-local", "alice@corp.example").await;
    let callback = through_upstream(&app).await;
    let done = Answer::of(app.client.get(&callback).send().await.unwrap()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.session_cookie().is_some());
    let account = iget(&app, "/account").await;
    assert!(account.body.contains("id=\"account-username\">alice-local<"), "linked to the local account");
    let events = app
        .accounts
        .audit_events(&tessera_core::store::AuditQuery { user_id: Some(local.id), ..Default::default() })
        .await
        .unwrap();
    let linked = events.iter().find(|e| e.kind == "identity_linked").expect("the link is audited");
    assert_eq!(linked.detail["reason"], "verified_email");
    assert!(events.iter().any(|e| e.kind == "login_succeeded" && e.detail["amr"] == json!(["fed"])));
}

/// Records what federation hands to the credential vault.
#[derive(Default)]
struct RecordingKeeper(Mutex<Vec<(tessera_core::ids::UserId, String, String, String)>>);

#[async_trait::async_trait]
impl tessera_core::upstream::TokenKeeper for RecordingKeeper {
    async fn keep(
        &self,
        user: &tessera_core::ids::UserId,
        provider: &str,
        subject: &str,
        tokens: tessera_core::upstream::UpstreamTokenSet,
        _now: time::OffsetDateTime,
    ) -> Result<(), tessera_core::CoreError> {
        self.0.lock().unwrap().push((*user, provider.into(), subject.into(), tokens.access_token.expose().into()));
        Ok(())
    }
}

async fn vault_tokens_are_handed_to_the_token_keeper(backend: Backend) {
    use tessera_core::federation::{CallbackParams, Completed, NewProvider, ProviderKind, ProviderName};
    crate::helpers::install_crypto();
    let db = tessera_testkit::TestDb::new(backend).await.unwrap();
    let clock: tessera_core::clock::SharedClock = Arc::new(tessera_core::clock::SystemClock);
    let accounts = tessera_testkit::accounts(db.dyn_store(), tessera_core::clock::SystemClock);
    let keeper = Arc::new(RecordingKeeper::default());
    let fed = tessera::upstream::federation(db.store.clone(), &accounts, clock, "http://127.0.0.1:9", &[7u8; 32])
        .unwrap()
        .with_token_keeper(keeper.clone());
    let op = spawn_op().await;
    let ctx = crate::helpers::ctx();
    let new = |name: &str, vault: bool| NewProvider {
        name: ProviderName::parse(name).unwrap(),
        kind: ProviderKind::Oidc { issuer: op.issuer.clone() },
        client_id: "tessera".into(),
        client_secret: tessera_core::upstream::UpstreamSecret::new("upstream-secret"),
        scopes: vec![],
        domains: vec!["corp.example".into()],
        jit: true,
        trust_email: false,
        vault_tokens: vault,
    };
    fed.create_provider(new("corp", true), &ctx).await.unwrap();
    assert_eq!(fed.provider_for_login("someone@Corp.Example").await.unwrap().as_deref(), Some("corp"));
    assert_eq!(fed.provider_for_login("someone@other.example").await.unwrap(), None);
    let begun = fed.begin("corp", "/account").await.unwrap();
    let at_op = crate::helpers::bare_client().get(begun.redirect.as_str()).send().await.unwrap();
    let callback = reqwest::Url::parse(at_op.headers()["location"].to_str().unwrap()).unwrap();
    let q: HashMap<String, String> = callback.query_pairs().into_owned().collect();
    let params = CallbackParams { code: q.get("code").cloned(), state: q.get("state").cloned(), iss: q.get("iss").cloned(), error: None };
    let done = fed.complete("corp", params, Some(&begun.browser), None, &ctx).await.unwrap();
    let Completed::SignedIn { outcome: tessera_core::accounts::LoginOutcome::SignedIn(started), return_to } = done else {
        panic!("signed in")
    };
    assert_eq!(return_to, "/account");
    assert_eq!(started.session.amr, vec!["fed"]);
    let kept = keeper.0.lock().unwrap().clone();
    assert_eq!(kept, vec![(started.user.id, "corp".to_owned(), "upstream-alice".to_owned(), "upstream-access".to_owned())]);
}
