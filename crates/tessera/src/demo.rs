//! `tessera demo`: Tessera plus a small relying party and a protected API, to show the whole
//! journey. The app is a single page doing authorization code + PKCE with tokens in memory;
//! the API checks access tokens with `tessera-verify` and follows the revocation feed, so a
//! session ended in Tessera stops the API from accepting its tokens within about a second.

use crate::app::Application;
use crate::config::Config;
use anyhow::Context;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tessera_core::accounts::CreateUser;
use tessera_core::oauth::client::ClientRegistration;
use tessera_core::secret::{Password, SecretToken};
use tessera_core::session::RequestContext;
use tessera_verify::{Claims, FeedConfig, FeedFailurePolicy, VerifyLayer, Verifier, VerifierConfig};

const INDEX: &str = include_str!("../demo/index.html");
const SCRIPT: &str = include_str!("../demo/demo.js");
const STYLE: &str = include_str!("../demo/demo.css");

/// Demo clients, remembered in the data directory so repeated runs reuse them.
#[derive(serde::Serialize, serde::Deserialize)]
struct DemoClients {
    app_port: u16,
    app_client_id: String,
    api_client_id: String,
    api_client_secret: String,
}

async fn clients(app: &Application, data_dir: &Path, port: u16) -> anyhow::Result<DemoClients> {
    let path = data_dir.join("demo-clients.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(c) = serde_json::from_str::<DemoClients>(&text) {
            let api_sees_the_feed = app.provider().find_client(&c.api_client_id).await?.is_some_and(|api| api.introspection);
            if c.app_port == port && api_sees_the_feed && app.provider().find_client(&c.app_client_id).await?.is_some() {
                return Ok(c);
            }
        }
    }
    let origin = format!("http://localhost:{port}/");
    let (app_client, _) = app
        .provider()
        .register_client(ClientRegistration {
            name: "Tessera demo app".into(),
            redirect_uris: vec![origin.clone()],
            post_logout_redirect_uris: vec![origin],
            public: true,
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            ..Default::default()
        })
        .await?;
    let (api_client, secret) = app
        .provider()
        .register_client(ClientRegistration {
            name: "Tessera demo API".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["demo:events".into()],
            // It follows the revocation events of the demo app's tokens (another client's).
            introspection: true,
            ..Default::default()
        })
        .await?;
    let c = DemoClients {
        app_port: port,
        app_client_id: app_client.id.to_string(),
        api_client_id: api_client.id.to_string(),
        api_client_secret: secret.context("the API client has no secret")?,
    };
    std::fs::write(&path, serde_json::to_string_pretty(&c)?)?;
    Ok(c)
}

/// Runs Tessera, the demo app and its API until SIGTERM/SIGINT.
pub async fn run(config: Config, port: u16) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let app = Application::build(config).await?;
    let issuer = app.issuer().to_owned();

    // The demo app's listener first: its port goes into the client registration.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("cannot bind the demo app")?;
    let port = listener.local_addr()?.port();
    let demo = clients(&app, &data_dir, port).await?;

    // The demo user, with a fresh password each run.
    let ctx = RequestContext::new(None, Some("tessera-demo"));
    let password = SecretToken::generate()?.expose().chars().take(20).collect::<String>();
    let user = match app.accounts().find_user_by_login("demo").await {
        Ok(u) => u,
        Err(_) => {
            app.accounts()
                .create_user(
                    CreateUser {
                        username: "demo".into(),
                        email: Some("demo@example.com".into()),
                        display_name: Some("Demo User".into()),
                        password: None,
                        roles: vec![],
                    },
                    &ctx,
                )
                .await?
        }
    };
    app.accounts().set_password(user.id, &Password::new(password.clone()), &ctx).await?;

    println!("Tessera is listening on {} (bound to {})", issuer, app.local_addr());
    println!("Demo app: http://localhost:{port}/");
    println!("Sign in as demo / {password}");

    let app_url = format!("http://localhost:{port}/");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));

    let verifier = Verifier::new(VerifierConfig::new(issuer.clone(), [issuer.clone()]))?;
    let mut ready = false;
    for _ in 0..50 {
        if verifier.refresh_keys().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        anyhow::bail!("the demo API cannot fetch Tessera's keys from {issuer}");
    }
    let feed = verifier.subscribe(
        FeedConfig::new(demo.api_client_id.clone(), demo.api_client_secret.clone())
            .with_policy(FeedFailurePolicy::FailOpen { max: Duration::from_secs(30) }),
    )?;
    feed.wait_connected(Duration::from_secs(5)).await;

    let config_json = json!({
        "issuer": issuer,
        "client_id": demo.app_client_id,
        "redirect_uri": app_url,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
    });
    let api = Router::new().route("/api/me", get(me)).layer(VerifyLayer::new(verifier));
    let router = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/demo.js", get(|| async { ([(http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }))
        .route("/demo.css", get(|| async { ([(http::header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }))
        .route("/config.json", get(move || async move { Json(config_json) }))
        .merge(api);
    axum::serve(listener, router).with_graceful_shutdown(crate::app::shutdown_signal()).await?;
    drop(feed);
    let _ = tx.send(());
    server.await??;
    Ok(())
}

/// The protected API: who the token is for.
async fn me(Extension(claims): Extension<Claims>) -> impl IntoResponse {
    Json(json!({
        "sub": claims.sub,
        "client_id": claims.client_id,
        "scope": claims.scope,
        "sid": claims.sid,
        "message": "This response came from an API that verified your access token with tessera-verify.",
    }))
}
