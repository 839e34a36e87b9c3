//! Secrets: random tokens, their stored hashes, and passwords. Redacted `Debug`, no
//! `Display`, constant-time comparison.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;
use subtle::ConstantTimeEq;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), crate::CoreError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| crate::CoreError::Internal("system random generator failed".into()))
}

/// A 256-bit random bearer secret (session id, setup link, CSRF token), base64url encoded.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    /// Generates a fresh token from 32 CSPRNG bytes.
    pub fn generate() -> Result<Self, crate::CoreError> {
        let mut b = [0u8; 32];
        fill_random(&mut b)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(b)))
    }

    /// Wraps a token received from a client. Anything longer than 512 bytes cannot be one of ours.
    pub fn from_client(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 512 {
            return None;
        }
        Some(Self(s.to_owned()))
    }

    /// The token's text, for putting into a cookie or a link. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the token: what the store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.as_bytes())
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl PartialEq for SecretToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
impl Eq for SecretToken {}

/// SHA-256 of a bearer secret: the only form in which the store keeps tokens.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes `bytes` with SHA-256.
    pub fn of(bytes: &[u8]) -> Self {
        let d = digest::digest(&digest::SHA256, bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    /// Rebuilds a hash read from the store.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Self)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for TokenHash {}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

/// A password as typed by a person. Redacted `Debug`; wiped on drop is left to the allocator,
/// but it is never logged, serialised or displayed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Longest password accepted, in bytes (OWASP: cap input before hashing).
    pub const MAX_BYTES: usize = 1024;

    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The password text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Compares two byte strings in constant time (for the lengths given).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = SecretToken::generate().unwrap();
        let b = SecretToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(a.hash(), TokenHash::of(a.expose().as_bytes()));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let a = SecretToken::generate().unwrap();
        assert!(!format!("{a:?}").contains(a.expose()));
        let p = Password::new("hunter2hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
