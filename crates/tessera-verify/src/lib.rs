//! Access-token verification for resource servers of a Tessera OAuth 2.1 / OpenID Connect
//! provider.
//!
//! * [`Verifier`] checks RFC 9068 access tokens (`typ: at+jwt`) against the issuer's keys:
//!   compact JWS of at most 16 KiB, no `crit` header, `alg` from an explicit allow-list
//!   (EdDSA and ES256 by default; RS256 only when opted in; never `none` or HMAC) that must
//!   fit the key, `iss` exact, `aud`, numeric `exp` (required), `nbf` and `iat` with a
//!   leeway, and required scopes. The `jwk`, `jku`, `x5u` and `x5c` header members are
//!   never used to find a key. Each refusal has its own [`VerifyError`] variant.
//! * Keys (feature `remote-jwks`, on by default) come from `<issuer>/oauth2/jwks`, are
//!   parsed once and cached by `kid`, honour `Cache-Control: max-age`, are refetched once
//!   when a token names an unknown `kid` (at most once per 10 s), and the old set is kept
//!   when a fetch fails.
//! * The revocation feed (feature `revocation-feed`, on by default; [`Verifier::subscribe`])
//!   follows the issuer's Security Event Token stream (`<issuer>/events/v1/stream`, Server-Sent
//!   Events) and refuses tokens of revoked sessions (`sid`), subjects (`sub` + `iat`) and token
//!   ids (`jti`) within about a second, with no introspection call per request. While the
//!   feed is unreachable a [`FeedFailurePolicy`] decides.
//! * Framework integration (feature `axum`, on by default): [`VerifyLayer`], a tower layer
//!   answering refusals with RFC 6750 challenges, and [`VerifiedClaims`], an axum extractor.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Extension, Router, routing::get};
//! use std::time::Duration;
//! use tessera_verify::{Claims, FeedConfig, FeedFailurePolicy, VerifyLayer, Verifier, VerifierConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Tokens for this API, from this issuer, with this scope.
//!     let config = VerifierConfig::new("https://id.example.com", ["https://orders.example.com"])
//!         .with_required_scopes(["orders:read"]);
//!     let verifier = Verifier::new(config)?;
//!     verifier.refresh_keys().await?; // fail fast if the issuer is unreachable
//!
//!     // Revocations: authenticated as a confidential client of the issuer.
//!     let feed_config = FeedConfig::new("orders-api", std::env::var("ORDERS_API_SECRET")?)
//!         .with_policy(FeedFailurePolicy::FailOpen { max: Duration::from_secs(60) });
//!     let feed = verifier.subscribe(feed_config)?;
//!     feed.wait_connected(Duration::from_secs(5)).await;
//!
//!     let app = Router::new()
//!         .route("/orders", get(|Extension(claims): Extension<Claims>| async move {
//!             format!("orders of {}", claims.sub)
//!         }))
//!         .layer(VerifyLayer::new(verifier));
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     axum::serve(listener, app).await?;
//!     drop(feed); // the feed runs as long as its handle lives
//!     Ok(())
//! }
//! ```
//!
//! # Crypto provider
//!
//! Signatures are checked with `aws-lc-rs` directly. The HTTP client (reqwest with rustls)
//! uses aws-lc-rs too; if the host application links another rustls provider as well
//! (for example `ring`), install one explicitly at start-up, for instance with
//! [`Verifier::install_crypto_provider`].
//!
//! # Metrics
//!
//! Through the [`metrics`] facade: `tessera_verify_refusals_total{reason}` (see
//! [`VerifyError::reason`]), `tessera_verify_feed_connected` (0 or 1) and
//! `tessera_verify_events_total{type}`.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod claims;
mod config;
mod error;
mod jws;
mod verifier;

#[cfg(feature = "revocation-feed")]
mod feed;
#[cfg(feature = "axum")]
mod http;
#[cfg(feature = "remote-jwks")]
mod jwks;

pub use claims::Claims;
#[cfg(feature = "remote-jwks")]
pub use config::RemoteJwks;
pub use config::{Algorithm, JwksSource, VerifierConfig};
pub use error::{ConfigError, RevocationReason, VerifyError};
#[cfg(feature = "revocation-feed")]
pub use feed::{FeedConfig, FeedFailurePolicy, FeedHandle, FeedStatus};
#[cfg(feature = "axum")]
pub use http::{BearerRejection, VerifiedClaims, VerifyLayer, VerifyService, bearer_token, refusal_response};
pub use verifier::Verifier;
