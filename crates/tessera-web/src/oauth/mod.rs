//! OAuth 2.1 / OpenID Connect endpoints: thin handlers over `tessera_core::oauth::provider`.

pub mod authorize;
pub mod cors;
pub mod events;
pub mod logout;
pub mod resource;
pub mod token;
