//! What federation (upstream sign-in) and the credential vault share: an upstream provider's
//! token set and the two ports between them. Federation obtains tokens at sign-in and knows
//! how to refresh them; the vault keeps them sealed and hands them out through token
//! exchange. Neither slice imports the other; the binary wires one to the other.

use crate::CoreError;
use crate::ids::UserId;
use async_trait::async_trait;
use std::fmt;
use time::OffsetDateTime;

/// A token an upstream provider issued (access or refresh token). Redacted `Debug`, no
/// `Display`; kept only sealed at rest.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamSecret(String);

impl UpstreamSecret {
    /// Wraps a token received from an upstream provider.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token's text, for sealing or for handing to an allowed client. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UpstreamSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamSecret(<redacted>)")
    }
}

/// The tokens an upstream token endpoint returned (at sign-in or on refresh).
#[derive(Debug, Clone)]
pub struct UpstreamTokenSet {
    /// The upstream access token.
    pub access_token: UpstreamSecret,
    /// The upstream refresh token, when it issued one.
    pub refresh_token: Option<UpstreamSecret>,
    /// When the access token expires (from `expires_in`), when the upstream said.
    pub expires_at: Option<OffsetDateTime>,
    /// The scopes granted (space separated), when the upstream said.
    pub scope: Option<String>,
}

/// Implemented by the credential vault: federation calls it after a sign-in through a provider
/// configured to keep tokens (`--vault-tokens`).
#[async_trait]
pub trait TokenKeeper: Send + Sync {
    /// Keeps (replacing any earlier) the tokens of `user`'s identity `subject` at `provider`.
    async fn keep(
        &self,
        user: &UserId,
        provider: &str,
        subject: &str,
        tokens: UpstreamTokenSet,
        now: OffsetDateTime,
    ) -> Result<(), CoreError>;
}

/// Implemented by federation (its HTTP client and the provider's client credentials): the
/// vault calls it when a kept access token has expired and a refresh token is kept.
#[async_trait]
pub trait UpstreamRefresher: Send + Sync {
    /// Redeems `refresh_token` at `provider`'s token endpoint.
    async fn refresh(&self, provider: &str, refresh_token: &UpstreamSecret) -> Result<UpstreamTokenSet, CoreError>;
}
