//! Store conformance: every test runs against a fresh SQLite database and a fresh PostgreSQL
//! database (`sqlite::<name>` and `postgres::<name>`), through the `Store` trait only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod audit;
mod authorization;
mod federation;
mod flows;
mod mail;
mod mfa;
mod mfa_flows;
mod migrations;
mod oauth;
mod outbox;
mod sessions;
mod setup;
mod support;
mod users;
mod vault;
