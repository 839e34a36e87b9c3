//! Strong authentication: passkeys (WebAuthn), TOTP authenticators, recovery codes, the
//! `amr`/`acr` model, and sign-ins that wait for a second factor.

pub mod level;
pub mod model;
