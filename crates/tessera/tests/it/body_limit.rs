//! Declared request bodies over the limit are refused at once (413), before any of the body
//! is read, on every kind of endpoint; bodies within the limit are read as before.

use crate::helpers::spawn_app;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tessera_testkit::Backend;

/// Sends a request head (and `body`) on a raw socket; returns the status line and how long
/// the answer took.
fn raw_post(base: &str, path: &str, content_type: &str, content_length: u64, body: &[u8]) -> (String, Duration) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n\r\n").unwrap();
    s.write_all(body).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    (text.lines().next().unwrap_or("").to_owned(), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_content_length_is_refused_at_once() {
    let app = spawn_app(Backend::Sqlite).await;
    let base = app.base.clone();
    let form = "application/x-www-form-urlencoded";
    let cases = [
        ("/oauth2/token", form),
        ("/oauth2/revoke", form),
        ("/login", form),
        ("/oauth2/authorize", form),
        ("/admin/v1/users", "application/json"),
    ];
    for (path, content_type) in cases {
        let b = base.clone();
        let (status, took) = tokio::task::spawn_blocking(move || raw_post(&b, path, content_type, 10_000_000_000, b"")).await.unwrap();
        eprintln!("{path}: Content-Length 10000000000 answered {status:?} after {} ms", took.as_millis());
        assert!(status.starts_with("HTTP/1.1 413"), "{path}: {status:?}");
        // Just over the limit is refused the same way.
        let b = base.clone();
        let over = (tessera_web::MAX_BODY_BYTES + 1) as u64;
        let (status, _) = tokio::task::spawn_blocking(move || raw_post(&b, path, content_type, over, b"")).await.unwrap();
        assert!(status.starts_with("HTTP/1.1 413"), "{path} with {over} bytes declared: {status:?}");
    }
    // Within the limit, the body is read and the endpoint answers as usual.
    let b = base.clone();
    let body = b"grant_type=refresh_token&refresh_token=x".to_vec();
    let len = body.len() as u64;
    let (status, _) = tokio::task::spawn_blocking(move || raw_post(&b, "/oauth2/token", form, len, &body)).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 401") || status.starts_with("HTTP/1.1 400"), "{status:?}");
}
