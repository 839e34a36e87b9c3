//! Passwords: hashing ([`hash`]: Argon2id, legacy imports), the rules a new password must meet
//! ([`policy`]), the shipped blocklist they share ([`blocklist`]), patterned passwords
//! ([`patterns`]), the strength estimate shown while typing ([`strength`]), and the port of the
//! optional breach check ([`breach`]; its HTTP implementation lives in the binary).
//!
//! The common names are re-exported here, so callers write `tessera_core::password::X`.

pub mod blocklist;
pub mod breach;
pub mod hash;
pub mod patterns;
pub mod policy;
pub mod strength;

pub use blocklist::{Blocklist, blocklist, normalise};
pub use breach::{BreachCheckError, BreachChecker};
pub use hash::{ArgonCost, PasswordHasher, Verification, is_supported_hash, secrets_equal};
pub use policy::{PasswordPolicy, PolicyViolation};
pub use strength::{STRENGTH_MAX_CHARS, Strength, strength};
