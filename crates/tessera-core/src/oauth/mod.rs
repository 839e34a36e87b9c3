//! The OAuth 2.1 / OpenID Connect provider: clients, authorization requests, the token
//! endpoint's grants, token minting, introspection, revocation, logout. No HTTP here: the
//! web crate turns requests into these types and [`OAuthError`]s into RFC responses.

pub mod admin_access;
pub mod client;
pub mod client_uri;
pub mod consent;
pub mod error;
pub mod grant_policy;
pub mod keys;
pub mod model;
pub mod provider;
pub mod scope;
pub mod session_events;
pub mod visibility;
pub mod target;

pub use error::OAuthError;
