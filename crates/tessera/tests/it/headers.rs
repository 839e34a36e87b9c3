//! Health endpoints and the security headers of every HTML response.

use crate::helpers::{Answer, PASSWORD, spawn_app};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use tessera_testkit::Backend;

on_both_backends!(health_and_readiness, security_headers_on_every_html_response);

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let h = app.get("/healthz").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body, "ok");
    let r = app.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "ready");
    let css = app.get("/static/tessera.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers.get(CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/css"));
    // The root sends people to their account.
    let root = app.get("/").await;
    assert!(root.status.is_redirection());
    assert_eq!(root.location(), Some("/account"));
}

fn check(a: &Answer, what: &str) {
    let h = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("{what}: no {name} header"));
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(csp.contains("form-action 'self'"), "{what}: forms post only to the issuer: {csp}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert!(!h("referrer-policy").is_empty(), "{what}");
    assert!(a.headers.get("strict-transport-security").is_none(), "{what}: no HSTS over plain http");
}

async fn security_headers_on_every_html_response(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let mut seen = Vec::new();

    seen.push(("GET /login", app.get("/login").await));
    seen.push(("GET /nope", app.get("/nope").await));
    seen.push(("failed sign-in", app.post_login("alice", "wrong wrong wrong wrong").await));
    seen.push(("bad csrf", app.post_login_form(&[("csrf_token", "x"), ("return_to", "/"), ("username", "a"), ("password", "b")]).await));
    seen.push(("bad form", app.post_login_form(&[("x", "y")]).await));
    seen.push(("PUT /login", Answer::of(app.client.put(app.url("/login")).send().await.unwrap()).await));
    seen.push((
        "JSON",
        Answer::of(app.client.post(app.url("/login")).header(CONTENT_TYPE, "application/json").body("{}").send().await.unwrap()).await,
    ));
    seen.push((
        "too large",
        Answer::of(
            app.client
                .post(app.url("/login"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("username={}", "x".repeat(70 * 1024)))
                .send()
                .await
                .unwrap(),
        )
        .await,
    ));
    seen.push(("GET /setup", app.get("/setup?token=x").await));
    seen.push(("signed-out /account", app.get("/account").await));
    seen.push(("sign-in", app.post_login("alice", PASSWORD).await));
    seen.push(("GET /account", app.get("/account").await));

    let mut html = 0;
    for (what, a) in &seen {
        // Every response carries them; HTML ones must.
        check(a, what);
        if a.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/html")) {
            html += 1;
            // Pages are not cached.
            assert_eq!(a.headers.get("cache-control").unwrap(), "no-store", "{what}");
        }
    }
    assert!(html >= 9, "expected HTML pages among the responses, saw {html}");
    assert_eq!(seen.last().unwrap().1.status, StatusCode::OK);
    check(&app.get("/healthz").await, "GET /healthz");
}
