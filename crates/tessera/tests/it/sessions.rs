//! The session cookie: its attributes, rotation at every sign-in, and sign-out.

use crate::helpers::{PASSWORD, cookie_value, field_value, spawn_app};
use reqwest::StatusCode;
use tessera_testkit::Backend;

on_both_backends!(session_cookie_attributes_and_rotation, logout_ends_the_session);

async fn session_cookie_attributes_and_rotation(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;

    let first = app.post_login("alice", PASSWORD).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{first:?}");
    assert_eq!(first.location(), Some("/account"));
    let set = first.session_cookie().expect("session cookie set at sign-in");
    let attrs: Vec<String> = set.split(';').map(|a| a.trim().to_ascii_lowercase()).collect();
    assert!(attrs.contains(&"httponly".to_owned()), "{set}");
    assert!(attrs.contains(&"samesite=lax".to_owned()), "{set}");
    assert!(attrs.contains(&"path=/".to_owned()), "{set}");
    assert!(!attrs.iter().any(|a| a.starts_with("domain")), "host-only cookie: {set}");
    assert!(!attrs.contains(&"secure".to_owned()), "no Secure over plain http: {set}");
    assert!(!attrs.iter().any(|a| a.starts_with("max-age") || a.starts_with("expires")), "session cookie: {set}");
    let old = cookie_value(&set);
    assert!(old.len() >= 43, "256-bit session id: {old}");

    // The cookie opens the account page.
    let page = app.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("alice"));
    assert!(!page.body.contains(&old), "the session id never appears in a page");

    // Signing in again from the same browser gives a new session id and ends the old one.
    let second = app.post_login("alice", PASSWORD).await;
    assert_eq!(second.status, StatusCode::SEE_OTHER);
    let new = cookie_value(&second.session_cookie().expect("new session cookie"));
    assert_ne!(new, old, "sign-in rotates the session id");

    let with_old = app.account_with_cookie(&old).await;
    assert_eq!(with_old.status, StatusCode::SEE_OTHER, "old session no longer works");
    assert!(with_old.location().unwrap().starts_with("/login"), "{with_old:?}");
    let with_new = app.account_with_cookie(&new).await;
    assert_eq!(with_new.status, StatusCode::OK);
    assert!(with_new.body.contains("alice"));

    // A made-up session id is no better than none.
    let forged = app.account_with_cookie("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    assert_eq!(forged.location(), Some("/login?return_to=%2Faccount"));
}

async fn logout_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("bob", PASSWORD).await;
    let login = app.post_login("bob", PASSWORD).await;
    let token = cookie_value(&login.session_cookie().unwrap());
    let page = app.get("/account").await;
    let csrf = field_value(&page.body, "csrf_token").expect("account page has a csrf token");

    // Sign-out needs the session's CSRF token.
    let refused = app.client.post(app.url("/logout")).form(&[("csrf_token", "nope")]).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.account_with_cookie(&token).await.status, StatusCode::OK);

    let res = app.client.post(app.url("/logout")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers().get("location").unwrap(), "/login?signed_out=1");
    let cleared = crate::helpers::set_cookie_header(res.headers(), "tessera_session").expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(app.account_with_cookie(&token).await.status, StatusCode::SEE_OTHER);
}
