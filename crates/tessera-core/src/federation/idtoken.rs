//! ID token validation for upstream OpenID Connect providers (OpenID Connect Core §3.1.3.7),
//! on core's JOSE code: signature against the provider's JWKS with an algorithm allow-list,
//! `iss` (a multi-tenant template filled in with `tid`), `aud`, `azp`, `exp`, `iat`, `nonce`.

use super::model::TENANT_PLACEHOLDER;
use crate::jose::{self, JwsAlg, JwsError, VerifyingKey};
use crate::secret::{TokenHash, constant_time_eq};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Clock skew tolerated on `exp` and `iat`.
pub const SKEW_SECONDS: i64 = 60;

/// What an ID token must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The configured issuer (may contain `{tenantid}`).
    pub issuer: &'a str,
    /// Our client id.
    pub client_id: &'a str,
    /// SHA-256 of the nonce sent.
    pub nonce_hash: &'a TokenHash,
    /// Now.
    pub now: OffsetDateTime,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Signature, algorithm, format or key.
    #[error("ID token signature: {0}")]
    Jws(#[from] JwsError),
    /// `iss` is not the provider's.
    #[error("ID token issuer is not the provider's")]
    Issuer,
    /// `aud` does not contain our client id, or `azp` names another party.
    #[error("ID token audience is not this client")]
    Audience,
    /// Expired, or issued in the future.
    #[error("ID token expired or not yet valid")]
    Time,
    /// `nonce` missing or not the one sent.
    #[error("ID token nonce does not match")]
    Nonce,
    /// No `sub`.
    #[error("ID token has no subject")]
    Subject,
}

/// The algorithms accepted from upstream providers (asymmetric only; never `none` or HMAC).
pub const ALLOWED_ALGS: [JwsAlg; 3] = [JwsAlg::RS256, JwsAlg::ES256, JwsAlg::EdDSA];

/// Verifies `token` against `keys` and checks its claims; returns them.
pub fn validate(token: &str, keys: &[VerifyingKey], expected: Expected<'_>) -> Result<Map<String, Value>, IdTokenError> {
    let claims = jose::parse(token)?.verify(keys, &ALLOWED_ALGS, None)?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// The claim checks (after the signature).
pub fn check_claims(claims: &Map<String, Value>, e: Expected<'_>) -> Result<(), IdTokenError> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    let iss = s("iss").ok_or(IdTokenError::Issuer)?;
    if iss != expected_issuer(e.issuer, s("tid")).ok_or(IdTokenError::Issuer)? {
        return Err(IdTokenError::Issuer);
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::Audience),
    };
    if !aud.contains(&e.client_id) {
        return Err(IdTokenError::Audience);
    }
    match s("azp") {
        Some(azp) if azp != e.client_id => return Err(IdTokenError::Audience),
        None if aud.len() > 1 => return Err(IdTokenError::Audience),
        _ => {}
    }
    let now = e.now.unix_timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(IdTokenError::Time)?;
    if exp + SKEW_SECONDS <= now {
        return Err(IdTokenError::Time);
    }
    if claims.get("iat").and_then(Value::as_i64).is_some_and(|iat| iat > now + SKEW_SECONDS) {
        return Err(IdTokenError::Time);
    }
    let nonce = s("nonce").ok_or(IdTokenError::Nonce)?;
    if !constant_time_eq(TokenHash::of(nonce.as_bytes()).as_bytes(), e.nonce_hash.as_bytes()) {
        return Err(IdTokenError::Nonce);
    }
    if s("sub").is_none_or(|v| v.is_empty() || v.len() > 255) {
        return Err(IdTokenError::Subject);
    }
    Ok(())
}

/// The `iss` an ID token must carry: the configured issuer, or for a multi-tenant template
/// the template with the token's `tid` (a GUID-like value of `[0-9a-f-]`) filled in.
pub fn expected_issuer(configured: &str, tid: Option<&str>) -> Option<String> {
    if !configured.contains(TENANT_PLACEHOLDER) {
        return Some(configured.to_owned());
    }
    let tid = tid.filter(|t| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))?;
    Some(configured.replace(TENANT_PLACEHOLDER, tid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningKey;
    use serde_json::json;

    const ISS: &str = "https://op.example.com";

    fn setup() -> (SigningKey, VerifyingKey, TokenHash, OffsetDateTime) {
        let (key, _) = SigningKey::generate(JwsAlg::RS256).unwrap();
        let vk = key.verifying_key().unwrap();
        (key, vk, TokenHash::of(b"the-nonce"), OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap())
    }

    fn claims(now: OffsetDateTime) -> Value {
        let t = now.unix_timestamp();
        json!({"iss": ISS, "aud": "rp", "sub": "alice", "nonce": "the-nonce", "iat": t, "exp": t + 300})
    }

    fn check(key: &SigningKey, vk: &VerifyingKey, nonce: &TokenHash, now: OffsetDateTime, c: &Value) -> Result<Map<String, Value>, IdTokenError> {
        let jwt = key.sign_jwt("JWT", c).unwrap();
        validate(&jwt, std::slice::from_ref(vk), Expected { issuer: ISS, client_id: "rp", nonce_hash: nonce, now })
    }

    #[test]
    fn a_good_id_token_passes() {
        let (key, vk, nonce, now) = setup();
        assert_eq!(check(&key, &vk, &nonce, now, &claims(now)).unwrap()["sub"], "alice");
    }

    #[test]
    fn wrong_nonce_is_refused() {
        let (key, vk, nonce, now) = setup();
        let mut c = claims(now);
        c["nonce"] = json!("another");
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Nonce);
        c.as_object_mut().unwrap().remove("nonce");
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Nonce);
    }

    #[test]
    fn foreign_issuer_is_refused() {
        let (key, vk, nonce, now) = setup();
        let mut c = claims(now);
        c["iss"] = json!("https://evil.example.com");
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Issuer);
    }

    #[test]
    fn wrong_audience_or_azp_is_refused() {
        let (key, vk, nonce, now) = setup();
        let mut c = claims(now);
        c["aud"] = json!("other-rp");
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Audience);
        c["aud"] = json!(["rp", "other-rp"]);
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Audience);
        c["azp"] = json!("other-rp");
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Audience);
        c["azp"] = json!("rp");
        assert!(check(&key, &vk, &nonce, now, &c).is_ok());
    }

    #[test]
    fn expired_or_future_tokens_are_refused() {
        let (key, vk, nonce, now) = setup();
        let mut c = claims(now);
        c["exp"] = json!(now.unix_timestamp() - SKEW_SECONDS - 1);
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Time);
        let mut c = claims(now);
        c["iat"] = json!(now.unix_timestamp() + 3600);
        assert_eq!(check(&key, &vk, &nonce, now, &c).unwrap_err(), IdTokenError::Time);
    }

    #[test]
    fn tampered_signature_and_other_keys_are_refused() {
        let (key, vk, nonce, now) = setup();
        let jwt = key.sign_jwt("JWT", &claims(now)).unwrap();
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let mut forged = claims(now);
        forged["sub"] = json!("admin");
        parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, forged.to_string());
        let e = Expected { issuer: ISS, client_id: "rp", nonce_hash: &nonce, now };
        assert_eq!(validate(&parts.join("."), std::slice::from_ref(&vk), e).unwrap_err(), IdTokenError::Jws(JwsError::BadSignature));
        let (other, _) = SigningKey::generate(JwsAlg::RS256).unwrap();
        let jwt = other.sign_jwt("JWT", &claims(now)).unwrap();
        assert!(matches!(validate(&jwt, &[vk], e).unwrap_err(), IdTokenError::Jws(_)));
    }

    #[test]
    fn multi_tenant_issuer_is_filled_from_tid() {
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert_eq!(expected_issuer(t, Some("9188040d-6c67-4c5b-b112-36a304b66dad")).unwrap(),
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0");
        assert!(expected_issuer(t, None).is_none());
        assert!(expected_issuer(t, Some("evil/../x")).is_none());
        assert_eq!(expected_issuer(ISS, Some("x")).unwrap(), ISS);
    }
}
