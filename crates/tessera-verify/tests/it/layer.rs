//! The tower layer and the axum extractor.

use crate::support::*;
use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use http::{Request, StatusCode};
use tessera_verify::{Claims, VerifiedClaims, VerifyLayer, Verifier};
use tower::ServiceExt;

async fn call(app: Router, auth: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut req = Request::get("/orders");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

async fn setup() -> (FakeIssuer, TestKey, Verifier) {
    let key = TestKey::ed25519("ed-1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    (issuer, key, verifier)
}

fn layered(verifier: Verifier, scopes: &[&str]) -> Router {
    Router::new()
        .route("/orders", get(|Extension(claims): Extension<Claims>| async move { claims.sub }))
        .layer(VerifyLayer::new(verifier).require_scopes(scopes.iter().copied()))
}

#[tokio::test]
async fn the_layer_passes_verified_claims_to_the_handler() {
    let (issuer, key, verifier) = setup().await;
    let token = key.token(&claims(&issuer.issuer));
    let (status, _, body) = call(layered(verifier, &["orders:read"]), Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "0190f0c2-7c1e-7a55-9d4e-3f1c2b8e9a10");
}

#[tokio::test]
async fn the_layer_answers_refusals_per_rfc_6750() {
    let (issuer, key, verifier) = setup().await;
    let (status, challenge, _) = call(layered(verifier.clone(), &[]), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="https://api.example.com""#));

    let expired = key.token(&with(claims(&issuer.issuer), "exp", serde_json::json!(now() - 3600)));
    let (status, challenge, _) = call(layered(verifier.clone(), &[]), Some(&format!("Bearer {expired}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer realm="https://api.example.com", error="invalid_token", error_description="the access token expired""#)
    );

    let token = key.token(&claims(&issuer.issuer));
    let (status, challenge, _) = call(layered(verifier, &["orders:write"]), Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge.as_deref(),
        Some(
            r#"Bearer realm="https://api.example.com", error="insufficient_scope", error_description="the access token lacks a required scope", scope="orders:write""#
        )
    );
}

#[tokio::test]
async fn the_extractor_works_without_the_layer() {
    let (issuer, key, verifier) = setup().await;
    let app: Router = Router::new()
        .route("/orders", get(|VerifiedClaims(claims): VerifiedClaims| async move { claims.scope }))
        .with_state(verifier);
    let token = key.token(&claims(&issuer.issuer));
    let (status, _, body) = call(app.clone(), Some(&format!("Bearer {token}"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "openid orders:read"));
    let (status, challenge, _) = call(app, Some("Bearer not.a.token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
}
