//! Sign-in failures look the same whatever the reason; CSRF; no open redirect.

use crate::helpers::{Answer, PASSWORD, alert_text, ctx, field_value, spawn_app};
use reqwest::StatusCode;
use tessera_testkit::Backend;

on_both_backends!(
    failed_sign_ins_are_indistinguishable,
    login_without_or_with_wrong_csrf_token_is_refused,
    return_to_only_accepts_local_paths,
);

async fn failed_sign_ins_are_indistinguishable(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let dora = app.create_user("dora", PASSWORD).await;
    app.accounts.set_disabled(dora.id, true, &ctx()).await.unwrap();

    let mut messages = Vec::new();
    for (user, pass) in [("alice", "not the right password"), ("nobody", PASSWORD), ("dora", PASSWORD)] {
        let a = app.post_login(user, pass).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{user}: {a:?}");
        assert!(a.session_cookie().is_none(), "{user}: no session cookie on failure");
        let msg = alert_text(&a.body).unwrap_or_else(|| panic!("{user}: no role=alert message in {}", a.body));
        messages.push(msg);
        // The form is shown again, ready for another attempt.
        assert!(field_value(&a.body, "csrf_token").is_some());
    }
    assert!(!messages[0].is_empty());
    assert!(messages.iter().all(|m| m.as_bytes() == messages[0].as_bytes()), "{messages:?}");
    // The right password still works for the enabled user.
    assert_eq!(app.post_login("alice", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

fn refused(a: &Answer, what: &str) {
    assert!(
        a.status == StatusCode::FORBIDDEN || a.status == StatusCode::BAD_REQUEST,
        "{what}: expected 403 or 400, got {a:?}"
    );
    assert!(a.session_cookie().is_none(), "{what}: no session cookie");
}

async fn login_without_or_with_wrong_csrf_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let (status, _, csrf) = app.get_login().await;
    assert_eq!(status, StatusCode::OK);

    let missing = app.post_login_form(&[("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)]).await;
    refused(&missing, "missing csrf_token");
    let empty = app
        .post_login_form(&[("csrf_token", ""), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)])
        .await;
    refused(&empty, "empty csrf_token");
    let wrong = app
        .post_login_form(&[("csrf_token", "forged-token"), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)])
        .await;
    refused(&wrong, "wrong csrf_token");
    // One character changed (the first: the last of a base64url MAC carries only 4 bits).
    let first = if csrf.starts_with('A') { 'B' } else { 'A' };
    let almost = format!("{first}{}", &csrf[1..]);
    assert_ne!(almost, csrf);
    let almost = app
        .post_login_form(&[("csrf_token", &almost), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)])
        .await;
    refused(&almost, "altered csrf_token");

    // A valid token without its anchor cookie (another browser) is refused too.
    let other = crate::helpers::bare_client()
        .post(app.url("/login"))
        .form(&[("csrf_token", csrf.as_str()), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    refused(&Answer::of(other).await, "token without its cookie");

    // Nothing above signed anyone in.
    let account = app.get("/account").await;
    assert_eq!(account.status, StatusCode::SEE_OTHER);
    // The genuine token works.
    let ok = app
        .post_login_form(&[("csrf_token", &csrf), ("return_to", "/account"), ("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    assert!(ok.session_cookie().is_some());
}

async fn return_to_only_accepts_local_paths(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    for evil in ["https://evil.example", "//evil.example", "/\\evil.example", "https:/evil.example", "javascript:alert(1)"] {
        // The form does not carry it...
        let page = app.get(&format!("/login?return_to={}", urlencode(evil))).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(field_value(&page.body, "return_to").as_deref(), Some("/account"), "{evil}");
        // ...and a forged form field is not followed.
        let (_, _, csrf) = app.get_login().await;
        let a = app
            .post_login_form(&[("csrf_token", &csrf), ("return_to", evil), ("username", "alice"), ("password", PASSWORD)])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER);
        let loc = a.location().unwrap();
        assert!(loc.starts_with('/') && !loc.starts_with("//") && !loc.starts_with("/\\"), "{evil} -> {loc}");
        assert_eq!(loc, "/account");
    }
    // A local path is followed.
    let (_, _, csrf) = app.get_login().await;
    let a = app
        .post_login_form(&[("csrf_token", &csrf), ("return_to", "/account?x=1"), ("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(a.location(), Some("/account?x=1"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
