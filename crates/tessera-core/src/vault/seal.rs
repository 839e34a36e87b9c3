//! Sealing of kept tokens: AES-256-GCM under the vault's purpose key (derived from the master
//! secret), each ciphertext bound by its associated data to the user, the provider and which
//! token it is, so a sealed token copied to another row — or from the refresh to the access
//! column — does not open.

use crate::CoreError;
use crate::ids::UserId;
use crate::jose::KeySealer;
use crate::upstream::UpstreamSecret;

/// Which of a set's tokens a ciphertext holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The access token.
    Access,
    /// The refresh token.
    Refresh,
}

/// Seals and opens kept tokens.
#[derive(Debug)]
pub struct TokenSealer {
    sealer: KeySealer,
}

impl TokenSealer {
    /// A sealer with the vault's 32-byte purpose key.
    pub fn new(key: &[u8; 32]) -> Result<Self, CoreError> {
        Ok(Self { sealer: KeySealer::new(key)? })
    }

    /// The associated data binding a ciphertext to its place. Provider names hold no
    /// newline (see [`super::valid_provider_name`]), so the fields cannot run together.
    fn aad(user: &UserId, provider: &str, kind: TokenKind) -> String {
        let which = match kind {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        };
        format!("tessera/upstream-token/v1\n{user}\n{provider}\n{which}")
    }

    /// Seals `token` for `user`'s set of `provider`.
    pub fn seal(&self, user: &UserId, provider: &str, kind: TokenKind, token: &UpstreamSecret) -> Result<Vec<u8>, CoreError> {
        self.sealer.seal(&Self::aad(user, provider, kind), token.expose().as_bytes())
    }

    /// Opens what [`TokenSealer::seal`] sealed for exactly this place.
    pub fn open(&self, user: &UserId, provider: &str, kind: TokenKind, sealed: &[u8]) -> Result<UpstreamSecret, CoreError> {
        let plain = self
            .sealer
            .open(&Self::aad(user, provider, kind), sealed)
            .map_err(|_| CoreError::Internal("a kept upstream token cannot be opened (wrong secret_key, or moved to another row)".into()))?;
        String::from_utf8(plain).map(UpstreamSecret::new).map_err(|_| CoreError::Internal("a kept upstream token is not text".into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_open_only_in_their_place() {
        let s = TokenSealer::new(&[7u8; 32]).unwrap();
        let (alice, bob) = (UserId::new(), UserId::new());
        let t = UpstreamSecret::new("gho_secret");
        let sealed = s.seal(&alice, "github", TokenKind::Access, &t).unwrap();
        assert_eq!(s.open(&alice, "github", TokenKind::Access, &sealed).unwrap(), t);
        assert!(s.open(&bob, "github", TokenKind::Access, &sealed).is_err(), "another user");
        assert!(s.open(&alice, "gitlab", TokenKind::Access, &sealed).is_err(), "another provider");
        assert!(s.open(&alice, "github", TokenKind::Refresh, &sealed).is_err(), "the other column");
        assert!(TokenSealer::new(&[8u8; 32]).unwrap().open(&alice, "github", TokenKind::Access, &sealed).is_err(), "another key");
        assert!(!String::from_utf8_lossy(&sealed).contains("gho_secret"));
    }
}
