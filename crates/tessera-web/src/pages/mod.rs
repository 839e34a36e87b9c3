//! Page handlers: extract, convert, one core call, render.

pub mod account;
pub mod email;
pub mod email_sign_in;
pub mod assets;
pub mod factors;
pub mod health;
pub mod identities;
pub mod login;
pub mod mfa;
mod reauth;
pub mod setup;
pub mod signup;
pub mod verify;
pub mod upstream_tokens;
pub mod upstream;

use crate::error::PageError;

/// 404 for every unknown address.
pub async fn not_found() -> PageError {
    PageError::NotFound
}

/// 405 for a known address with the wrong method.
pub async fn method_not_allowed() -> PageError {
    PageError::MethodNotAllowed
}

/// A form that carries only its CSRF token (sign-out, ending a session, removing a factor).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfOnly {
    csrf_token: String,
}

impl crate::extract::CsrfForm for CsrfOnly {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}
