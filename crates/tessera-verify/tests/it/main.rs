//! Integration tests of tessera-verify against a fake issuer on 127.0.0.1:0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod feed;
mod jwks;
mod layer;
mod support;
mod verify;
