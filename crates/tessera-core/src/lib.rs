//! Tessera's domain and flows: users, credentials, sessions, audit, and the store trait they
//! are persisted through. No HTTP, no SQL, no clock reads (time comes from [`clock::Clock`]).

pub mod accounts;
pub mod audit;
pub mod auditor;
pub mod clock;
pub mod error;
pub mod federation;
pub mod ids;
pub mod jose;
pub mod mail;
pub mod mfa;
pub mod oauth;
pub mod outbox;
pub mod password;
pub mod secret;
pub mod session;
pub mod store;
pub mod throttle;
pub mod upstream;
pub mod user;
pub mod vault;

pub use error::CoreError;
