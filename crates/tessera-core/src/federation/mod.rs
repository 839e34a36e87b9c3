//! Federation (identity broker): sign-in through upstream OpenID Connect providers and plain
//! OAuth 2.0 providers (GitHub style), identities keyed by (upstream issuer, subject) and
//! linked to local users, just-in-time users, and linking that asks the user to prove the
//! local account unless upstream verified the address and the provider is trusted for it.
//!
//! `model` (providers, presets, identities, sign-ins in flight, pending links), `store`
//! (`FederationStore`), `client` (`UpstreamClient`, the HTTP port the binary implements),
//! `SignInPort` (the account flows' port, defined and implemented in `accounts/federated.rs`), `metadata` (discovery and
//! JWKS caches), `idtoken` (ID token checks), `decide` (the linking decision, `amr`, usernames),
//! `service` (`Federation`: providers, starting a sign-in, identities), `callback` (the
//! provider's answer), `link` (proving the local account), `refresh` (`UpstreamRefresher`).

pub mod callback;
pub mod client;
pub mod decide;
pub mod idtoken;
pub mod link;
pub mod metadata;
pub mod model;
mod profile;
mod refresh;
pub mod service;
pub mod store;

pub use callback::{CallbackParams, Completed};
pub use client::{UpstreamClient, UpstreamHttpError};
pub use model::{FederatedIdentity, NewProvider, Preset, ProviderKind, ProviderName, ProviderRecord};
pub use crate::accounts::SignInPort;
pub use service::{Begun, Federation, FederationSettings, ProviderView};
pub use store::FederationStore;
