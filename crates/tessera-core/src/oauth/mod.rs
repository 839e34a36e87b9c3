//! The OAuth 2.1 / OpenID Connect provider: clients, authorization requests, the token
//! endpoint's grants, token minting, introspection, revocation, logout. No HTTP here: the
//! web crate turns requests into these types and [`OAuthError`]s into RFC responses.
//! [`provider::Provider`] is the facade; each other module is one capability.

pub mod admin_access;
pub mod admin_token;
pub mod authorize;
pub mod claims;
pub mod client;
pub mod client_auth;
mod client_cache;
pub mod clients;
pub mod client_uri;
pub mod config;
pub mod consent;
mod context;
pub(crate) mod discovery;
pub mod error;
pub mod events;
pub mod grant_policy;
mod id_token_hint;
pub mod introspect;
pub mod keys;
pub mod logout;
pub(crate) mod mint;
pub mod model;
pub mod provider;
pub mod scope;
pub mod store;
pub mod target;
pub mod token;
pub mod upstream_access;
pub mod users;
pub mod visibility;

pub use error::OAuthError;
