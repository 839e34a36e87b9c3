//! Token minting: access tokens (always EdDSA, `typ: at+jwt`) and ID tokens (the client's
//! algorithm, with `at_hash`), signed with the key ring's current keys. Nothing here reads
//! the store or the clock: callers pass what the tokens say and when.

use crate::jose::JwsAlg;
use crate::oauth::OAuthError;
use crate::oauth::claims::{AccessClaims, IdTokenClaims, ProfileClaims};
use crate::oauth::client::Client;
use crate::oauth::config::ProviderConfig;
use crate::oauth::keys::KeySet;
use crate::oauth::model::{Grant, IssuedAccessToken};
use crate::oauth::scope::Scopes;
use crate::user::User;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

/// A fresh random identifier (128 bits, base64url): token `jti`s.
pub(crate) fn random_id() -> Result<String, OAuthError> {
    let mut b = [0u8; 16];
    crate::secret::fill_random(&mut b)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// What a user's tokens are minted from.
pub(crate) struct UserTokens<'a> {
    /// The client they are issued to.
    pub client: &'a Client,
    /// The user.
    pub user: &'a User,
    /// The grant (token family) they belong to.
    pub grant: &'a Grant,
    /// The scope they carry (the grant's, or narrower on refresh).
    pub scope: &'a Scopes,
    /// The authorization request's `nonce` (code redemption only).
    pub nonce: Option<&'a str>,
    /// The access token's `jti`.
    pub jti: String,
    /// Issued at.
    pub now: OffsetDateTime,
}

/// A user's minted tokens, and the access token's record (for revocation by grant).
pub(crate) struct Minted {
    pub access_token: String,
    pub id_token: Option<String>,
    pub record: IssuedAccessToken,
}

/// Signs tokens with the current keys for the configured issuer.
pub(crate) struct Minter<'a> {
    config: &'a ProviderConfig,
    keys: &'a KeySet,
}

impl<'a> Minter<'a> {
    /// A minter for `config`'s issuer with `keys`.
    pub(crate) fn new(config: &'a ProviderConfig, keys: &'a KeySet) -> Self {
        Self { config, keys }
    }

    /// An access token, and an ID token when the scope holds `openid`.
    pub(crate) fn user_tokens(&self, t: UserTokens<'_>) -> Result<Minted, OAuthError> {
        let c = self.config;
        let exp = t.now + c.access_token_ttl;
        let sid = t.grant.sid.map(|s| s.to_string());
        let at = AccessClaims {
            iss: c.issuer.clone(),
            sub: t.user.id.to_string(),
            aud: t.grant.audience.clone(),
            client_id: t.client.id.to_string(),
            scope: t.scope.to_string(),
            iat: t.now.unix_timestamp(),
            exp: exp.unix_timestamp(),
            jti: t.jti.clone(),
            auth_time: Some(t.grant.auth_time.unix_timestamp()),
            amr: Some(t.grant.amr.clone()),
            sid: sid.clone(),
        };
        let access_token = self.keys.signer(JwsAlg::EdDSA)?.sign_jwt("at+jwt", &at)?;
        let id_token = if t.scope.contains("openid") {
            let alg = t.client.id_token_alg;
            let id = IdTokenClaims {
                iss: c.issuer.clone(),
                sub: t.user.id.to_string(),
                aud: t.client.id.to_string(),
                azp: t.client.id.to_string(),
                iat: t.now.unix_timestamp(),
                exp: (t.now + c.id_token_ttl).unix_timestamp(),
                auth_time: t.grant.auth_time.unix_timestamp(),
                amr: t.grant.amr.clone(),
                at_hash: at_hash(alg, &access_token),
                nonce: t.nonce.map(str::to_owned),
                sid,
                acr: t.grant.acr.clone(),
                profile: ProfileClaims::of(t.user, t.scope),
            };
            Some(self.keys.signer(alg)?.sign_jwt("JWT", &id)?)
        } else {
            None
        };
        Ok(Minted { access_token, id_token, record: IssuedAccessToken { jti: t.jti, grant_id: t.grant.id, expires_at: exp } })
    }

    /// A client's own access token (`client_credentials`): the client is the subject.
    pub(crate) fn client_token(&self, client: &Client, scope: &Scopes, audience: Vec<String>, now: OffsetDateTime) -> Result<String, OAuthError> {
        let c = self.config;
        let claims = AccessClaims {
            iss: c.issuer.clone(),
            sub: client.id.to_string(),
            aud: audience,
            client_id: client.id.to_string(),
            scope: scope.to_string(),
            iat: now.unix_timestamp(),
            exp: (now + c.access_token_ttl).unix_timestamp(),
            jti: random_id()?,
            auth_time: None,
            amr: None,
            sid: None,
        };
        Ok(self.keys.signer(JwsAlg::EdDSA)?.sign_jwt("at+jwt", &claims)?)
    }
}

/// `at_hash`: left half of the hash of the access token, with the ID token's hash.
fn at_hash(alg: JwsAlg, access_token: &str) -> String {
    let d = match alg {
        JwsAlg::EdDSA => digest::digest(&digest::SHA512, access_token.as_bytes()),
        JwsAlg::ES256 | JwsAlg::RS256 => digest::digest(&digest::SHA256, access_token.as_bytes()),
    };
    let half = d.as_ref().get(..d.as_ref().len() / 2).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_uses_the_id_token_hash() {
        // OIDC Core example: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" with SHA-256.
        assert_eq!(at_hash(JwsAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(JwsAlg::EdDSA, "x").len(), 43);
    }
}
