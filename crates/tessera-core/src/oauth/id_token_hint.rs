//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2): an ID token this server
//! issued, read once for both the authorization endpoint and logout. Its signature and
//! issuer are checked; expiry is not required of a hint (each caller decides).

use crate::jose::{self, JwsAlg};
use crate::oauth::claims::audience;
use crate::oauth::config::ProviderConfig;
use crate::oauth::keys::KeySet;
use serde_json::{Map, Value};

/// A verified `id_token_hint`.
pub(crate) struct IdTokenHint {
    claims: Map<String, Value>,
    /// Its audiences.
    pub aud: Vec<String>,
}

impl IdTokenHint {
    /// Verifies `token` as an ID token of this issuer: our signature (any of our
    /// algorithms) and `iss`. Access, logout and security event tokens are refused by their
    /// `typ` (ours say `at+jwt`, `logout+jwt`, `secevent+jwt`; ID tokens `JWT`).
    pub(crate) fn verify(token: &str, keys: &KeySet, config: &ProviderConfig) -> Option<Self> {
        let jws = jose::parse(token).ok()?;
        let typ = jws.header.get("typ").and_then(Value::as_str).unwrap_or("JWT");
        if !typ.eq_ignore_ascii_case("JWT") {
            return None;
        }
        let claims = jws.verify(keys.verifying_keys(), &JwsAlg::ALL, None).ok()?;
        if claims.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
            return None;
        }
        let aud = audience(&claims);
        Some(Self { claims, aud })
    }

    /// Its subject.
    pub(crate) fn sub(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// Its expiry (seconds), if it has one.
    pub(crate) fn exp(&self) -> Option<i64> {
        self.claims.get("exp").and_then(Value::as_i64)
    }

    /// Whether it was issued to `client` (one of its audiences).
    pub(crate) fn names_client(&self, client: &str) -> bool {
        self.aud.iter().any(|a| a == client)
    }

    /// Its only audience, if it has exactly one.
    pub(crate) fn single_audience(&self) -> Option<&str> {
        match self.aud.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether its claims are an access token's (a `typ` claim, or `client_id` without any
    /// ID-token claim), as tokens signed with `typ: JWT` by earlier versions could be.
    pub(crate) fn looks_like_access_token(&self) -> bool {
        let has = |k: &str| self.claims.contains_key(k);
        has("typ") || has("client_id") && !has("nonce") && !has("at_hash") && !has("azp")
    }
}
