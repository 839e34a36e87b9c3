//! The only crate with SQL. [`SqlStore`] implements `tessera_core::store::Store` for SQLite
//! (the default: WAL, `synchronous=FULL`, one writer connection, `BEGIN IMMEDIATE`) and
//! PostgreSQL from the same SQL text. Backend differences live in [`backend`] and in the two
//! migration directories; every query is written once, with `$n` placeholders, which both
//! SQLite and PostgreSQL accept.

mod attempts;
mod backend;
mod consent;
mod federation;
mod in_tx;
mod mfa;
mod migrate;
mod lifecycle;
mod mail;
mod oauth;
mod outbox;
mod query;
mod rows;
mod store;
mod vault;
mod visibility;

pub use backend::{ConnectOptions, DEFAULT_ACQUIRE_TIMEOUT, DatabaseKind};
pub use store::SqlStore;
