//! Strong authentication over HTTP, on both backends: TOTP enrolment and sign-in with codes
//! computed by an independent RFC 6238 implementation (below, on aws-lc-rs HMAC-SHA-1),
//! single use of TOTP steps and recovery codes, abandoning a pending sign-in after too many
//! wrong codes, re-authentication before sensitive actions, and the OAuth side: clients
//! that require MFA, `acr_values` step-up, `prompt=none`, and `amr`/`acr` in ID tokens.

use crate::helpers::{Answer, PASSWORD, TestApp, alert_text, cookie_value, field_value, set_cookie_header, spawn_app, spawn_app_with_env};
use crate::oauth::{REDIRECT_URI, Rp, pkce, post_as};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use tessera_core::oauth::client::ClientRegistration;
use tessera_testkit::Backend;

on_both_backends!(
    totp_enrolment_then_password_and_code_sign_in,
    a_totp_code_works_once_and_recovery_codes_once_each,
    too_many_wrong_codes_abandon_the_pending_sign_in,
    sensitive_actions_need_a_recent_sign_in,
    require_mfa_client_steps_up_a_password_session,
    acr_values_with_prompt_none_is_interaction_required,
    max_age_zero_asks_to_sign_in_again,
    second_factor_forms_and_endpoints_refuse_cross_site_requests,
    guessing_codes_through_step_ups_is_throttled,
    regenerated_recovery_codes_replace_the_old_ones,
);

const MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// The RFC 6238 code of `secret` at `unix`, computed independently of the server.
pub(crate) fn totp_at(secret_b32: &str, unix: u64) -> String {
    tessera_testkit::totp_code(secret_b32, unix)
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

// ---------------------------------------------------------------- page helpers

fn between<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = body.find(start)? + start.len();
    let j = body[i..].find(end)?;
    Some(&body[i..i + j])
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> Answer {
    Answer::of(app.client.post(app.url(path)).form(form).send().await.unwrap()).await
}

async fn account_csrf(app: &TestApp) -> String {
    let page = app.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    field_value(&page.body, "csrf_token").expect("csrf token on the account page")
}

/// Enrols TOTP through the account page; returns the secret and the recovery codes shown.
pub(crate) async fn enrol_totp(app: &TestApp) -> (String, Vec<String>) {
    let csrf = account_csrf(app).await;
    let setup = post_form(app, "/account/totp", &[("csrf_token", &csrf)]).await;
    assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
    assert!(setup.body.contains("data:image/svg+xml;base64,"), "the setup page shows a QR code");
    let secret = between(&setup.body, "id=\"totp-secret\" class=\"secret\">", "</code>").expect("manual key").replace(' ', "");
    let csrf = field_value(&setup.body, "csrf_token").unwrap();
    let wrong = post_form(app, "/account/totp/confirm", &[("csrf_token", &csrf), ("code", "000000")]).await;
    if totp_at(&secret, now_unix()) != "000000" {
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "a wrong first code is refused: {wrong:?}");
        assert!(alert_text(&wrong.body).is_some());
    }
    let code = totp_at(&secret, now_unix());
    let done = post_form(app, "/account/totp/confirm", &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(done.status, StatusCode::OK, "{done:?}");
    let codes: Vec<String> = done
        .body
        .split("<li><code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next())
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes: {}", done.body);
    (secret, codes)
}

/// Password sign-in that must stop at the second-factor page.
async fn password_then_mfa_page(app: &TestApp) -> String {
    let first = app.post_login("alice", PASSWORD).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{first:?}");
    assert!(first.location().unwrap().starts_with("/login/mfa"), "{first:?}");
    assert!(first.session_cookie().is_none(), "no session before the second factor");
    assert!(set_cookie_header(&first.headers, "tessera_mfa").is_some());
    let page = app.get("/login/mfa?return_to=/account").await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(page.body.contains("autocomplete=\"one-time-code\""));
    field_value(&page.body, "csrf_token").unwrap()
}

async fn answer(app: &TestApp, csrf: &str, method: &str, code: &str) -> Answer {
    post_form(app, "/login/mfa", &[("csrf_token", csrf), ("return_to", "/account"), ("method", method), ("code", code)]).await
}

async fn sign_out(app: &TestApp) {
    let csrf = account_csrf(app).await;
    let out = post_form(app, "/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
}

async fn signed_in_app(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let signed = app.post_login("alice", PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{signed:?}");
    app
}

// ---------------------------------------------------------------- TOTP and recovery codes

async fn totp_enrolment_then_password_and_code_sign_in(backend: Backend) {
    let app = signed_in_app(backend).await;
    let (secret, _) = enrol_totp(&app).await;
    let account = app.get("/account").await;
    assert!(account.body.contains("Authenticator app: <strong>on</strong>"), "{}", account.body);
    sign_out(&app).await;

    let csrf = password_then_mfa_page(&app).await;
    // The enrolment used the current step; the next step's code (±1 window) signs in.
    let next = totp_at(&secret, now_unix() + 30);
    let done = answer(&app, &csrf, "totp", &next).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{done:?}");
    assert_eq!(done.location(), Some("/account"));
    assert!(done.session_cookie().is_some());
    assert_eq!(app.get("/account").await.status, StatusCode::OK);

    let events = app.accounts.audit_events(&Default::default()).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for k in ["totp_enrolled", "recovery_codes_generated", "mfa_required", "mfa_succeeded", "mfa_failed"] {
        assert!(kinds.contains(&k), "audit has {k}: {kinds:?}");
    }
    let last_login = events.iter().find(|e| e.kind == "login_succeeded").unwrap();
    assert_eq!(last_login.detail["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{last_login:?}");
}

async fn a_totp_code_works_once_and_recovery_codes_once_each(backend: Backend) {
    let app = signed_in_app(backend).await;
    let (secret, codes) = enrol_totp(&app).await;
    sign_out(&app).await;

    let next = totp_at(&secret, now_unix() + 30);
    let csrf = password_then_mfa_page(&app).await;
    assert_eq!(answer(&app, &csrf, "totp", &next).await.status, StatusCode::SEE_OTHER);
    sign_out(&app).await;

    // The same code (same step) again: refused, still on the second-factor page.
    let csrf = password_then_mfa_page(&app).await;
    let replay = answer(&app, &csrf, "totp", &next).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{replay:?}");
    assert!(alert_text(&replay.body).unwrap().contains("already used"), "{replay:?}");
    assert!(replay.session_cookie().is_none());
    // An earlier step's code (the enrolment's) is refused too.
    let earlier = answer(&app, &csrf, "totp", &totp_at(&secret, now_unix())).await;
    assert_eq!(earlier.status, StatusCode::UNAUTHORIZED, "{earlier:?}");

    // A recovery code, typed loosely, works once.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let ok = answer(&app, &csrf, "recovery", &typed).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    sign_out(&app).await;
    let csrf = password_then_mfa_page(&app).await;
    let again = answer(&app, &csrf, "recovery", &codes[0]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "a used recovery code is refused: {again:?}");
    assert_eq!(answer(&app, &csrf, "recovery", &codes[1]).await.status, StatusCode::SEE_OTHER);
    let account = app.get("/account").await;
    assert!(account.body.contains("Recovery codes left: <strong>8</strong>"), "{}", account.body);
}

async fn too_many_wrong_codes_abandon_the_pending_sign_in(backend: Backend) {
    let app = signed_in_app(backend).await;
    let (secret, _) = enrol_totp(&app).await;
    sign_out(&app).await;
    let csrf = password_then_mfa_page(&app).await;
    let good = totp_at(&secret, now_unix() + 30);
    let wrong = if good == "111111" { "222222" } else { "111111" };
    for i in 0..4 {
        let r = answer(&app, &csrf, "totp", wrong).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}: {r:?}");
        assert!(r.body.contains("id=\"totp-form\""), "still the second-factor page");
    }
    let fifth = answer(&app, &csrf, "totp", wrong).await;
    assert_eq!(fifth.status, StatusCode::UNAUTHORIZED, "{fifth:?}");
    assert!(fifth.body.contains("action=\"/login\""), "back to the password form: {}", fifth.body);
    // Even the right code cannot finish the abandoned sign-in.
    let late = answer(&app, &csrf, "totp", &good).await;
    assert_eq!(late.status, StatusCode::SEE_OTHER, "{late:?}");
    assert!(late.location().unwrap().starts_with("/login?"), "{late:?}");
    assert!(late.session_cookie().is_none());
}

// ---------------------------------------------------------------- re-authentication

async fn sensitive_actions_need_a_recent_sign_in(backend: Backend) {
    let app = spawn_app_with_env(backend, &[("TESSERA_SESSION__REAUTH_WINDOW", "1s")]).await;
    app.create_user("alice", PASSWORD).await;
    let first = app.post_login("alice", PASSWORD).await;
    let session = first.session_cookie().unwrap();
    let before = app.accounts.list_sessions(app.accounts.find_user_by_login("alice").await.unwrap().id).await.unwrap();
    assert_eq!(before.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let csrf = account_csrf(&app).await;
    let page = app.get("/account").await;
    assert!(page.body.contains("id=\"reauth-link\""), "the account page offers to confirm it is you");
    let refused = post_form(&app, "/account/totp", &[("csrf_token", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER, "{refused:?}");
    let to = refused.location().unwrap().to_owned();
    assert!(to.starts_with("/login?reauth=1&return_to=%2Faccount&login_hint=alice"), "{to}");
    let pw = post_form(&app, "/account/password", &[("csrf_token", &csrf), ("current_password", PASSWORD), ("new_password", "another long passphrase here")]).await;
    assert_eq!(pw.status, StatusCode::SEE_OTHER);
    assert!(pw.location().unwrap().starts_with("/login?reauth=1"), "{pw:?}");
    let login_page = app.get(&to).await;
    assert!(login_page.body.contains("id=\"reauth-notice\""));
    assert!(login_page.body.contains("value=\"alice\""), "the username is filled in");

    // Signing in again upgrades the same session in place: a new id, the same handle.
    let again = app.post_login("alice", PASSWORD).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let renewed = again.session_cookie().unwrap();
    assert_ne!(cookie_value(&renewed), cookie_value(&session), "the session id rotates");
    let after = app.accounts.list_sessions(before[0].user_id).await.unwrap();
    assert_eq!(after.len(), 1, "re-authentication adds no session");
    assert_eq!(after[0].handle, before[0].handle, "and keeps the session (its grants stay)");
    assert!(after[0].auth_time > before[0].auth_time);
    let old = crate::helpers::account_with_cookie(&app.base, &cookie_value(&session)).await;
    assert_eq!(old.status, StatusCode::SEE_OTHER, "the old id no longer signs in");
    let csrf = account_csrf(&app).await;
    let setup = post_form(&app, "/account/totp", &[("csrf_token", &csrf)]).await;
    assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
}

// ---------------------------------------------------------------- OAuth

async fn register(app: &TestApp, require_mfa: bool) -> Rp {
    let (client, secret) = app
        .provider
        .register_client(ClientRegistration {
            name: "Relying Party".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            skip_consent: true,
            require_mfa,
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    Rp { id: client.id.to_string(), secret: secret.unwrap() }
}

struct Request {
    url: String,
    verifier: String,
}

fn authorize_url(app: &TestApp, rp: &Rp, extra: &[(&str, &str)]) -> Request {
    let (verifier, challenge) = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", rp.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params(&app.url("/oauth2/authorize"), &params).unwrap();
    Request { url: url.path().to_owned() + "?" + url.query().unwrap(), verifier }
}

fn query_of(location: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(location).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn param(q: &[(String, String)], k: &str) -> Option<String> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

async fn id_token_claims(app: &TestApp, rp: &Rp, location: &str, verifier: &str) -> Value {
    let q = query_of(location);
    let code = param(&q, "code").unwrap_or_else(|| panic!("no code: {location}"));
    let (status, body) = post_as(
        &app.base,
        "/oauth2/token",
        rp,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT_URI), ("code_verifier", verifier)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id_token"].as_str().unwrap();
    let payload = id.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn require_mfa_client_steps_up_a_password_session(backend: Backend) {
    // Signed in with a password only; the authenticator app comes afterwards.
    let app = signed_in_app(backend).await;
    let (secret, _) = enrol_totp(&app).await;
    let plain = register(&app, false).await;
    let strict = register(&app, true).await;

    // A client without requirements gets a single-factor ID token at once.
    let r = authorize_url(&app, &plain, &[]);
    let direct = app.get(&r.url).await;
    assert_eq!(direct.status, StatusCode::SEE_OTHER, "{direct:?}");
    let claims = id_token_claims(&app, &plain, direct.location().unwrap(), &r.verifier).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], "urn:tessera:acr:single-factor");

    // The strict client sends the session to step up: only the second factor is asked for.
    let r = authorize_url(&app, &strict, &[]);
    let step = app.get(&r.url).await;
    assert_eq!(step.status, StatusCode::SEE_OTHER, "{step:?}");
    let to = step.location().unwrap().to_owned();
    assert!(to.starts_with("/login/mfa?level=multi_factor&return_to="), "{to}");
    let page = app.get(&to).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(!page.body.contains("type=\"password\""), "no password is asked for");
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let return_to = reqwest::Url::parse(&app.url(&to)).unwrap().query_pairs().find(|(k, _)| k == "return_to").unwrap().1.into_owned();
    let done = post_form(&app, "/login/mfa", &[("csrf_token", &csrf), ("return_to", &return_to), ("method", "totp"), ("code", &totp_at(&secret, now_unix() + 30))]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{done:?}");
    let back = done.location().unwrap().to_owned();
    assert!(back.starts_with("/oauth2/authorize?"), "{back}");
    let sessions = app.accounts.list_sessions(app.accounts.find_user_by_login("alice").await.unwrap().id).await.unwrap();
    assert_eq!(sessions.len(), 1, "the step-up upgraded the session in place");
    let finished = app.get(&back).await;
    assert_eq!(finished.status, StatusCode::SEE_OTHER, "{finished:?}");
    let claims = id_token_claims(&app, &strict, finished.location().unwrap(), &r.verifier).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], MULTI_FACTOR, "{claims}");

    // acr_values=phr cannot be met by a TOTP code: the page asks for a passkey only.
    let r = authorize_url(&app, &plain, &[("acr_values", "phr")]);
    let phr = app.get(&r.url).await;
    let to = phr.location().unwrap().to_owned();
    assert!(to.starts_with("/login/mfa?level=phishing_resistant"), "{to}");
    let page = app.get(&to).await;
    assert!(!page.body.contains("id=\"totp-form\""), "a TOTP code is not offered for phr");
}

async fn acr_values_with_prompt_none_is_interaction_required(backend: Backend) {
    let app = signed_in_app(backend).await;
    let rp = register(&app, false).await;
    let r = authorize_url(&app, &rp, &[("acr_values", MULTI_FACTOR), ("prompt", "none")]);
    let res = app.get(&r.url).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{res:?}");
    let q = query_of(res.location().unwrap());
    assert_eq!(param(&q, "error").as_deref(), Some("interaction_required"), "{q:?}");
    assert_eq!(param(&q, "state").as_deref(), Some("st"));
    // Unknown acr values are a voluntary request: ignored.
    let r = authorize_url(&app, &rp, &[("acr_values", "urn:example:unknown")]);
    let res = app.get(&r.url).await;
    let claims = id_token_claims(&app, &rp, res.location().unwrap(), &r.verifier).await;
    assert_eq!(claims["acr"], "urn:tessera:acr:single-factor");
    let discovery: Value = app.client.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let supported = discovery["acr_values_supported"].as_array().unwrap();
    for v in ["urn:tessera:acr:single-factor", MULTI_FACTOR, "phr"] {
        assert!(supported.iter().any(|s| s == v), "{v} in {supported:?}");
    }
}

async fn max_age_zero_asks_to_sign_in_again(backend: Backend) {
    let app = signed_in_app(backend).await;
    let (secret, _) = enrol_totp(&app).await;
    let rp = register(&app, false).await;
    // Right after signing in (within the same second): max_age=0 still means signing in again.
    let r = authorize_url(&app, &rp, &[("max_age", "0")]);
    let res = app.get(&r.url).await;
    let to = res.location().unwrap().to_owned();
    assert!(to.starts_with("/login?return_to="), "max_age=0 means signing in again: {to}");
    let return_to = reqwest::Url::parse(&app.url(&to)).unwrap().query_pairs().find(|(k, _)| k == "return_to").unwrap().1.into_owned();
    assert!(!return_to.contains("max_age"), "the way back does not loop: {return_to}");
    // Password, then (the user has an authenticator) the code.
    let (_, _, csrf) = app.get_login().await;
    let first = app.post_login_form(&[("csrf_token", &csrf), ("return_to", &return_to), ("username", "alice"), ("password", PASSWORD)]).await;
    let mfa = first.location().unwrap().to_owned();
    assert!(mfa.starts_with("/login/mfa"), "{first:?}");
    let page = app.get(&mfa).await;
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let done = post_form(&app, "/login/mfa", &[("csrf_token", &csrf), ("return_to", &return_to), ("method", "totp"), ("code", &totp_at(&secret, now_unix() + 30))]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{done:?}");
    let finished = app.get(done.location().unwrap()).await;
    let claims = id_token_claims(&app, &rp, finished.location().unwrap(), &r.verifier).await;
    let auth_time = claims["auth_time"].as_u64().unwrap();
    assert!(auth_time + 2 >= now_unix(), "a fresh auth_time: {claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");
}

// ---------------------------------------------------------------- CSRF

async fn post_json(app: &TestApp, path: &str, body: Value, origin: Option<&str>) -> Answer {
    let mut rb = app.client.post(app.url(path)).json(&body);
    if let Some(o) = origin {
        rb = rb.header(reqwest::header::ORIGIN, o);
    }
    Answer::of(rb.send().await.unwrap()).await
}

async fn second_factor_forms_and_endpoints_refuse_cross_site_requests(backend: Backend) {
    let app = signed_in_app(backend).await;
    let (_, codes) = enrol_totp(&app).await;
    let mine = account_csrf(&app).await;
    let anon = {
        let other = crate::helpers::client();
        let page = Answer::of(other.get(app.url("/login")).send().await.unwrap()).await;
        field_value(&page.body, "csrf_token").unwrap()
    };
    let fake = uuid::Uuid::now_v7().to_string();
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/account/totp".into(), vec![]),
        ("/account/totp/confirm".into(), vec![("code", "123456")]),
        ("/account/totp/delete".into(), vec![]),
        ("/account/recovery-codes".into(), vec![]),
        (format!("/account/passkeys/{fake}/rename"), vec![("name", "x")]),
        (format!("/account/passkeys/{fake}/delete"), vec![]),
    ];
    for (path, rest) in &forms {
        for token in [None, Some(""), Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Some(anon.as_str())] {
            let mut form: Vec<(&str, &str)> = token.map(|t| vec![("csrf_token", t)]).unwrap_or_default();
            form.extend_from_slice(rest);
            let r = post_form(&app, path, &form).await;
            assert!(
                r.status == StatusCode::FORBIDDEN || (token.is_none() && r.status == StatusCode::BAD_REQUEST),
                "POST {path} with token {token:?}: {} {}",
                r.status,
                r.body
            );
        }
    }
    let summary = app.accounts.factor_summary(app.accounts.find_user_by_login("alice").await.unwrap().id).await.unwrap();
    assert!(summary.totp && summary.recovery_codes == 10, "nothing changed: {summary:?}");

    // The JSON ceremonies: a wrong token, or an Origin other than the issuer's, is refused.
    let r = post_json(&app, "/account/passkeys/options", serde_json::json!({"csrf_token": anon}), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let r = post_json(&app, "/account/passkeys/options", serde_json::json!({"csrf_token": mine}), Some("https://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let r = post_json(&app, "/account/passkeys/options", serde_json::json!({"csrf_token": mine}), Some(&app.issuer)).await;
    assert_eq!(r.status, StatusCode::OK, "the same-origin request works: {r:?}");
    let options: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(options["options"]["publicKey"]["rp"]["id"], "localhost");
    let login_csrf = app.get_login().await.2;
    let r = post_json(&app, "/login/passkey/options", serde_json::json!({"csrf_token": login_csrf}), Some("https://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let r = post_json(&app, "/login/passkey/options", serde_json::json!({"csrf_token": login_csrf}), None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = post_json(&app, "/login/passkey", serde_json::json!({"csrf_token": login_csrf, "ceremony": "nope", "credential": {}}), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an unknown ceremony is refused: {r:?}");
    assert!(r.body.contains("\"error\""), "{r:?}");
    let r = post_json(&app, "/login/passkey", serde_json::json!({"csrf_token": login_csrf, "ceremony": 7}), None).await;
    assert!(r.status.is_client_error(), "a malformed body is a 4xx: {r:?}");
    // The second-factor form needs the page's token too.
    sign_out(&app).await;
    password_then_mfa_page(&app).await;
    let r = answer(&app, &anon, "recovery", &codes[0]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(r.session_cookie().is_none());
}

// ---------------------------------------------------------------- throttling

/// A stolen password-only session cannot guess TOTP codes without end by starting one
/// step-up after another: the account's failure counter spans them and throttles (429).
async fn guessing_codes_through_step_ups_is_throttled(backend: Backend) {
    let app = signed_in_app(backend).await;
    let (secret, _) = enrol_totp(&app).await;
    let good = totp_at(&secret, now_unix() + 30);
    let wrong = if good == "111111" { "222222" } else { "111111" };
    let mut statuses = Vec::new();
    'outer: for _ in 0..4 {
        let page = app.get("/login/mfa?level=multi_factor&return_to=%2Faccount").await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let csrf = field_value(&page.body, "csrf_token").unwrap();
        for _ in 0..5 {
            let r = answer(&app, &csrf, "totp", wrong).await;
            statuses.push(r.status);
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                assert!(alert_text(&r.body).unwrap().contains("Too many"), "{r:?}");
                break 'outer;
            }
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        }
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "guessing is throttled: {statuses:?}");
    assert!(statuses.len() <= 11, "throttled after the account threshold (10): {statuses:?}");
    // Even the right code is refused while throttled.
    let page = app.get("/login/mfa?level=multi_factor&return_to=%2Faccount").await;
    let csrf = field_value(&page.body, "csrf_token").unwrap();
    let r = answer(&app, &csrf, "totp", &good).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let events = app.accounts.audit_events(&Default::default()).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "login_throttled" && e.detail["reason"] == "second_factor"));
}

async fn regenerated_recovery_codes_replace_the_old_ones(backend: Backend) {
    let app = signed_in_app(backend).await;
    let (_, old) = enrol_totp(&app).await;
    let csrf = account_csrf(&app).await;
    let page = post_form(&app, "/account/recovery-codes", &[("csrf_token", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert_eq!(page.headers.get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    assert!(page.body.contains("no longer work"), "the page says the old codes are void");
    let new: Vec<String> = page.body.split("<li><code>").skip(1).filter_map(|s| s.split("</code>").next()).map(str::to_owned).collect();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)), "all new");
    let events = app.accounts.audit_events(&Default::default()).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "recovery_codes_generated").count(), 2);
    sign_out(&app).await;
    let csrf = password_then_mfa_page(&app).await;
    let r = answer(&app, &csrf, "recovery", &old[3]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "an old code is void: {r:?}");
    let r = answer(&app, &csrf, "recovery", &new[3]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a new code works: {r:?}");
}
