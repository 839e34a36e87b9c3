//! Back-channel logout targets: by default a client cannot register, and the server will not
//! deliver to, a private, loopback or link-local address (also when a name resolves to one at
//! delivery); `[oauth] allow_private_backchannel` allows them for development. Deliveries run
//! concurrently, at most `backchannel::CONCURRENCY` at a time.

use crate::helpers::{TestApp, spawn_app_with_env};
use axum::Router;
use axum::routing::post;
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tessera_core::oauth::client::ClientId;
use tessera_core::oauth::model::LogoutDelivery;
use tessera_testkit::Backend;

on_both_backends!(private_back_channel_targets_are_refused_at_registration_unless_allowed);

const ADMIN_KEY: &str = "backchannel-admin-key-0123456789-abcdefghijkl";
const ALLOW: (&str, &str) = ("TESSERA_OAUTH__ALLOW_PRIVATE_BACKCHANNEL", "true");

async fn register(app: &TestApp, uri: &str) -> reqwest::Response {
    app.client
        .post(app.url("/admin/v1/clients"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"name": "rp", "redirect_uris": ["https://rp.example/cb"], "backchannel_logout_uri": uri}))
        .send()
        .await
        .unwrap()
}

async fn private_back_channel_targets_are_refused_at_registration_unless_allowed(backend: Backend) {
    let strict = spawn_app_with_env(backend, &[("TESSERA_ADMIN__API_KEY", ADMIN_KEY)]).await;
    let private = [
        "http://127.0.0.1:9000/bcl",
        "http://localhost:9000/bcl",
        "http://[::1]:9000/bcl",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/bcl",
        "https://192.168.1.20/bcl",
        "https://2130706433/bcl",
    ];
    for uri in private {
        let r = register(&strict, uri).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uri} is refused");
        let body = r.text().await.unwrap();
        assert!(body.contains("allow_private_backchannel"), "{uri}: {body}");
    }
    assert_eq!(register(&strict, "https://rp.example/backchannel").await.status(), StatusCode::CREATED, "a public target is fine");

    let dev = spawn_app_with_env(backend, &[("TESSERA_ADMIN__API_KEY", ADMIN_KEY), ALLOW]).await;
    for uri in private {
        assert_eq!(register(&dev, uri).await.status(), StatusCode::CREATED, "{uri} is allowed for development");
    }
}

/// A receiver counting POSTs and the most it had in flight at once; each takes `hold`.
struct Receiver {
    url: String,
    received: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

async fn receiver(hold: Duration) -> Receiver {
    let received = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let (r, f, m) = (received.clone(), in_flight.clone(), max_in_flight.clone());
    let app = Router::new().route(
        "/bcl",
        post(move || {
            let (r, f, m) = (r.clone(), f.clone(), m.clone());
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(hold).await;
                f.fetch_sub(1, Ordering::SeqCst);
                r.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url: format!("http://localhost:{port}/bcl"), received, max_in_flight }
}

fn deliveries(uri: &str, n: usize, now: time::OffsetDateTime) -> Vec<LogoutDelivery> {
    (0..n)
        .map(|i| LogoutDelivery {
            id: uuid::Uuid::now_v7(),
            client_id: ClientId::new("rp"),
            uri: uri.to_owned(),
            logout_token: format!("token-{i}"),
            attempts: 0,
            next_attempt_at: now,
        })
        .collect()
}

/// Waits (bounded) until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_names_that_resolve_to_private_addresses_are_not_sent() {
    let app = spawn_app_with_env(Backend::Sqlite, &[]).await;
    let rx = receiver(Duration::ZERO).await;
    let now = app.provider.clock().now();
    // As if queued for a client registered under a public name that now resolves to
    // loopback (DNS rebinding), and for a literal loopback address.
    let literal = rx.url.replace("localhost", "127.0.0.1");
    let mut queued = deliveries(&rx.url, 1, now);
    queued.extend(deliveries(&literal, 1, now));
    app.provider.store().enqueue_logout_deliveries(&queued).await.unwrap();
    // Each is tried once and put back for later, without reaching the receiver.
    let store = app.provider.store().clone();
    let mut retried = false;
    for _ in 0..300 {
        let later = store.due_logout_deliveries(now + time::Duration::days(2), 50).await.unwrap();
        if later.len() == 2 && later.iter().all(|d| d.attempts >= 1) {
            retried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(retried, "both deliveries were attempted and kept for a retry");
    assert_eq!(rx.received.load(Ordering::SeqCst), 0, "nothing reached the private address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_run_concurrently_in_a_bounded_pool() {
    let app = spawn_app_with_env(Backend::Sqlite, &[ALLOW]).await;
    let rx = receiver(Duration::from_millis(400)).await;
    let now = app.provider.clock().now();
    let n = 3 * tessera::backchannel::CONCURRENCY;
    let url = rx.url.replace("localhost", "127.0.0.1");
    app.provider.store().enqueue_logout_deliveries(&deliveries(&url, n, now)).await.unwrap();
    let received = rx.received.clone();
    assert!(eventually(|| received.load(Ordering::SeqCst) == n).await, "all {n} delivered (allowed for development)");
    let max = rx.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= tessera::backchannel::CONCURRENCY, "at most {} at once, saw {max}", tessera::backchannel::CONCURRENCY);
    assert!(max > 1, "deliveries overlap (saw {max} at once)");
}
