//! Strong authentication: passkeys (WebAuthn), TOTP authenticators, recovery codes, the
//! `amr`/`acr` model, and sign-ins that wait for a second factor. The flows themselves are
//! methods of [`crate::accounts::Accounts`] (in [`crate::accounts::pending`]), next to password sign-in.

pub mod level;
pub mod model;
pub mod passkey;
pub mod recovery;
pub mod totp;
