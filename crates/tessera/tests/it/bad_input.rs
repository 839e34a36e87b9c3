//! Malformed requests get a 4xx answer, never a 5xx, and never a session.

use crate::helpers::{Answer, PASSWORD, spawn_app};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use tessera_testkit::Backend;

on_both_backends!(
    bad_forms_are_client_errors,
    oversized_body_is_413,
    invalid_utf8_is_not_a_server_error,
    wrong_method_and_content_type,
    unknown_path_is_a_404_page,
    very_long_query_strings,
);

const FORM: &str = "application/x-www-form-urlencoded";

fn client_error(a: &Answer, what: &str) {
    assert!(a.status.is_client_error(), "{what}: expected 4xx, got {} {}", a.status, a.body);
    assert!(a.session_cookie().is_none(), "{what}: no session cookie");
}

async fn post_raw(app: &crate::helpers::TestApp, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    Answer::of(app.client.post(app.url(path)).header(CONTENT_TYPE, content_type).body(body).send().await.unwrap()).await
}

async fn bad_forms_are_client_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let (_, _, csrf) = app.get_login().await;

    let extra = app
        .post_login_form(&[
            ("csrf_token", &csrf),
            ("return_to", "/account"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("is_admin", "true"),
        ])
        .await;
    client_error(&extra, "unknown extra field");
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);

    let missing = app.post_login_form(&[("csrf_token", &csrf), ("username", "alice")]).await;
    client_error(&missing, "missing fields");
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    let empty = post_raw(&app, "/login", FORM, Vec::new()).await;
    client_error(&empty, "empty body");

    let garbage = post_raw(&app, "/login", FORM, b"&&==&%%%zz=%=&csrf_token".to_vec()).await;
    client_error(&garbage, "garbage form");

    let dup = post_raw(
        &app,
        "/login",
        FORM,
        format!("csrf_token={csrf}&csrf_token={csrf}&return_to=%2F&username=alice&password=x").into_bytes(),
    )
    .await;
    client_error(&dup, "duplicate field");

    // Forms of signed-in pages without a session go to the login page.
    let a = Answer::of(app.client.post(app.url("/account/password")).form(&[("csrf_token", "x")]).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let a = Answer::of(app.client.post(app.url("/account/sessions/not-a-uuid/end")).form(&[("x", "y")]).send().await.unwrap()).await;
    assert!(a.status.is_redirection() || a.status.is_client_error(), "{a:?}");

    // Sign-up is closed by default.
    assert_eq!(app.get("/signup").await.status, StatusCode::NOT_FOUND);
    // The setup page without a valid token.
    assert_eq!(app.get("/setup").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/setup?token=nope").await.status, StatusCode::FORBIDDEN);

    // After all that, the server still works.
    assert_eq!(app.post_login("alice", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

async fn oversized_body_is_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, csrf) = app.get_login().await;
    let big = "a".repeat(70 * 1024);
    let body = format!("csrf_token={csrf}&return_to=%2Faccount&username={big}&password=x");
    let a = post_raw(&app, "/login", FORM, body.into_bytes()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert!(a.session_cookie().is_none());
    // Just over the limit, too.
    let body = format!("csrf_token={csrf}&username={}", "b".repeat(64 * 1024));
    let a = post_raw(&app, "/login", FORM, body.into_bytes()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A long-but-allowed password is a normal failed sign-in.
    let body = format!("csrf_token={csrf}&return_to=%2Faccount&username=alice&password={}", "p".repeat(60 * 1024));
    let a = post_raw(&app, "/login", FORM, body.into_bytes()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

async fn invalid_utf8_is_not_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("alice", PASSWORD).await;
    let (_, _, csrf) = app.get_login().await;

    // Percent-encoded bytes that are not UTF-8.
    let body = format!("csrf_token={csrf}&return_to=%2Faccount&username=%FF%FE&password=%FF%FEpass");
    let a = post_raw(&app, "/login", FORM, body.into_bytes()).await;
    client_error(&a, "percent-encoded 0xff 0xfe");

    // Raw bytes that are not UTF-8.
    let mut body = format!("csrf_token={csrf}&return_to=%2Faccount&username=").into_bytes();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(b"&password=");
    body.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3]);
    let a = post_raw(&app, "/login", FORM, body).await;
    client_error(&a, "raw 0xff 0xfe");

    // In the field names and in the CSRF token.
    let a = post_raw(&app, "/login", FORM, vec![0xff, 0xfe, b'=', 0xff]).await;
    client_error(&a, "raw bytes in a field name");
    let a = post_raw(&app, "/login", FORM, b"csrf_token=%FF&return_to=%FF&username=%FF&password=%FF".to_vec()).await;
    client_error(&a, "invalid UTF-8 everywhere");

    // In the query string and the cookie header.
    let a = app.get("/login?return_to=%FF%FE").await;
    assert!(a.status.is_success() || a.status.is_client_error(), "{a:?}");
    let res = crate::helpers::bare_client()
        .get(app.url("/account"))
        .header(reqwest::header::COOKIE, reqwest::header::HeaderValue::from_bytes(b"tessera_session=\xff\xfe").unwrap())
        .send()
        .await
        .unwrap();
    assert!(!res.status().is_server_error(), "{}", res.status());

    assert_eq!(app.post_login("alice", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

async fn wrong_method_and_content_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, csrf) = app.get_login().await;

    let put = Answer::of(app.client.put(app.url("/login")).form(&[("csrf_token", csrf.as_str())]).send().await.unwrap()).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED, "{}", put.body);
    let delete = Answer::of(app.client.delete(app.url("/account")).send().await.unwrap()).await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    let patch = Answer::of(app.client.patch(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    let get_logout = app.get("/logout").await;
    assert_eq!(get_logout.status, StatusCode::METHOD_NOT_ALLOWED);

    let json = serde_json::json!({"csrf_token": csrf, "return_to": "/account", "username": "alice", "password": PASSWORD});
    let a = post_raw(&app, "/login", "application/json", serde_json::to_vec(&json).unwrap()).await;
    assert!(
        a.status == StatusCode::UNSUPPORTED_MEDIA_TYPE || a.status == StatusCode::BAD_REQUEST,
        "JSON to /login: {} {}",
        a.status,
        a.body
    );
    assert!(a.session_cookie().is_none());
    let a = post_raw(&app, "/login", "text/plain", b"csrf_token=x".to_vec()).await;
    client_error(&a, "text/plain");
    let a = Answer::of(app.client.post(app.url("/login")).body("csrf_token=x").send().await.unwrap()).await;
    client_error(&a, "no content type");
    let a = post_raw(&app, "/login", "multipart/form-data; boundary=x", b"--x--".to_vec()).await;
    client_error(&a, "multipart");
}

async fn unknown_path_is_a_404_page(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/nope", "/login/extra", "/static/../Cargo.toml", "/account/sessions", "/%2e%2e/etc/passwd", "/.env"] {
        let a = app.get(path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        let ct = a.headers.get(CONTENT_TYPE).unwrap().to_str().unwrap();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        assert!(a.body.contains("Page not found"), "{path}: {}", a.body);
    }
    let a = Answer::of(app.client.post(app.url("/nope")).form(&[("a", "b")]).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

async fn very_long_query_strings(backend: Backend) {
    let app = spawn_app(backend).await;
    // The whole request target stays under 65 534 bytes, the most an `http::Uri` holds.
    for n in [5_000, 15_000, 32_000] {
        let long = format!("/{}", "a".repeat(n));
        let a = app.get(&format!("/login?return_to={long}&x={}", "b".repeat(n))).await;
        assert!(!a.status.is_server_error(), "{n}: {}", a.status);
        if a.status == StatusCode::OK {
            // Longer than the limit for return_to: replaced by the default.
            let rt = crate::helpers::field_value(&a.body, "return_to").unwrap();
            assert!(rt == "/account" || rt == long, "{n}: {}", &rt[..rt.len().min(50)]);
            if n > 4096 {
                assert_eq!(rt, "/account");
            }
        }
    }
    // Beyond what a client library sends: a raw 100 KB request target gets a 4xx answer.
    let status = raw_status(&app.base, &format!("GET /login?return_to=/{} HTTP/1.1\r\nHost: localhost\r\n\r\n", "a".repeat(100_000))).await;
    assert!(status.starts_with("HTTP/1.1 4"), "100 KB request target: {status:?}");
    let a = app.get(&format!("/nope?{}", "q=1&".repeat(5_000))).await;
    assert_eq!(a.status, StatusCode::URI_TOO_LONG, "request targets over 8 KiB are refused");
    let a = app.get(&format!("/nope?{}", "q=1&".repeat(1_000))).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

/// Sends `request` over a raw TCP connection; returns the status line of the answer.
async fn raw_status(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before reading everything; ignore write errors.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).lines().next().unwrap_or("").to_owned()
}
