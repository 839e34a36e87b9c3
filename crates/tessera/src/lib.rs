//! The Tessera binary's library half: configuration, wiring of store, core and web into an
//! [`app::Application`], and the CLI commands. `main.rs` only parses arguments and calls in.

pub mod app;
pub mod backchannel;
pub mod breach;
pub mod cli;
pub mod cli_idp;
pub mod config;
pub mod demo;
pub mod files;
pub mod jobs;
pub mod keys;
pub mod mailer;
pub mod upstream;
