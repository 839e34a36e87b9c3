//! The OAuth 2.1 / OpenID Connect provider: clients, authorization requests, the token
//! endpoint's grants, token minting, introspection, revocation, logout. No HTTP here: the
//! web crate turns requests into these types and [`OAuthError`]s into RFC responses.

pub mod client;
pub mod error;
pub mod keys;
pub mod model;
pub mod provider;
pub mod scope;
pub mod target;

pub use error::OAuthError;
