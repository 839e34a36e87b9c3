//! Strong authentication: passkeys (WebAuthn), TOTP authenticators, recovery codes, the
//! `amr`/`acr` model, and the stored records of sign-ins that wait for a second factor. The
//! flows that use them are methods of [`crate::accounts::Accounts`], next to password sign-in.

pub mod level;
pub mod model;
pub mod passkey;
pub mod recovery;
pub mod totp;
