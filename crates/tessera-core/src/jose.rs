//! JOSE on aws-lc-rs: JWS signing with parsed, long-lived key objects (EdDSA, ES256, RS256),
//! strict JWS verification with an algorithm allow-list, JWK publication with RFC 7638
//! thumbprints as `kid`, and AES-256-GCM sealing of private keys at rest.
//!
//! Written here rather than taken from `jsonwebtoken` because that crate re-parses the
//! private key on every signature (3× slower minting), ignores `typ` and `crit`, and cannot
//! export real Ed25519 PKCS#8 v2 keys as JWKs; verification needs those checks anyway.

use crate::CoreError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A JWS algorithm Tessera signs or accepts. `none` and HMAC algorithms do not exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum JwsAlg {
    /// Ed25519.
    EdDSA,
    /// ECDSA P-256 SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    RS256,
}

impl JwsAlg {
    /// Every algorithm, in preference order.
    pub const ALL: [JwsAlg; 3] = [JwsAlg::EdDSA, JwsAlg::ES256, JwsAlg::RS256];

    /// The JOSE name.
    pub fn as_str(&self) -> &'static str {
        match self {
            JwsAlg::EdDSA => "EdDSA",
            JwsAlg::ES256 => "ES256",
            JwsAlg::RS256 => "RS256",
        }
    }

    /// Parses a JOSE name (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(JwsAlg::EdDSA),
            "ES256" => Some(JwsAlg::ES256),
            "RS256" => Some(JwsAlg::RS256),
            _ => None,
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn crypto_err<E>(what: &'static str) -> impl FnOnce(E) -> CoreError {
    move |_| CoreError::Internal(format!("crypto failure: {what}"))
}

enum KeyPairKind {
    Ed(Ed25519KeyPair),
    Es(EcdsaKeyPair),
    Rs(RsaKeyPair),
}

/// A private signing key, parsed once and kept.
pub struct SigningKey {
    kid: String,
    alg: JwsAlg,
    pair: KeyPairKind,
    public_jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

impl SigningKey {
    /// Generates a new key; returns it and its PKCS#8 document (to be sealed and stored).
    pub fn generate(alg: JwsAlg) -> Result<(Self, Vec<u8>), CoreError> {
        let rng = SystemRandom::new();
        let der = match alg {
            JwsAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng).map_err(crypto_err("ed25519 keygen"))?.as_ref().to_vec(),
            JwsAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(crypto_err("p256 keygen"))?
                .as_ref()
                .to_vec(),
            JwsAlg::RS256 => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048).map_err(crypto_err("rsa keygen"))?;
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).map_err(crypto_err("rsa export"))?;
                der.as_ref().to_vec()
            }
        };
        let key = Self::from_pkcs8(alg, &der)?;
        Ok((key, der))
    }

    /// Parses a PKCS#8 document.
    pub fn from_pkcs8(alg: JwsAlg, der: &[u8]) -> Result<Self, CoreError> {
        let (pair, jwk) = match alg {
            JwsAlg::EdDSA => {
                let kp = Ed25519KeyPair::from_pkcs8(der).map_err(crypto_err("ed25519 parse"))?;
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())});
                (KeyPairKind::Ed(kp), jwk)
            }
            JwsAlg::ES256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(crypto_err("p256 parse"))?;
                let point = kp.public_key().as_ref();
                let (x, y) = match (point.get(1..33), point.get(33..65)) {
                    (Some(x), Some(y)) if point.len() == 65 => (x, y),
                    _ => return Err(CoreError::Internal("unexpected P-256 public key encoding".into())),
                };
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
                (KeyPairKind::Es(kp), jwk)
            }
            JwsAlg::RS256 => {
                let kp = RsaKeyPair::from_pkcs8(der).map_err(crypto_err("rsa parse"))?;
                let c = PublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                let jwk = json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)});
                (KeyPairKind::Rs(kp), jwk)
            }
        };
        let kid = thumbprint(&jwk)?;
        let mut public_jwk = jwk;
        if let Value::Object(m) = &mut public_jwk {
            m.insert("kid".into(), Value::String(kid.clone()));
            m.insert("alg".into(), Value::String(alg.as_str().into()));
            m.insert("use".into(), Value::String("sig".into()));
        }
        Ok(Self { kid, alg, pair, public_jwk })
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }

    /// The public JWK (with `kid`, `alg`, `use`).
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Signs `claims` as a compact JWS with header `{alg, typ, kid}`.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, CoreError> {
        let header = json!({"alg": self.alg.as_str(), "typ": typ, "kid": self.kid});
        let header = serde_json::to_vec(&header).map_err(|e| CoreError::Internal(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let sig = self.sign(out.as_bytes())?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut out);
        Ok(out)
    }

    /// A raw signature over `msg` in JWS form.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CoreError> {
        match &self.pair {
            KeyPairKind::Ed(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
            KeyPairKind::Es(kp) => Ok(kp.sign(&SystemRandom::new(), msg).map_err(crypto_err("ecdsa sign"))?.as_ref().to_vec()),
            KeyPairKind::Rs(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig).map_err(crypto_err("rsa sign"))?;
                Ok(sig)
            }
        }
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CoreError> {
        VerifyingKey::from_jwk(&self.public_jwk).map_err(|e| CoreError::Internal(e.to_string()))
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members.
pub fn thumbprint(jwk: &Value) -> Result<String, CoreError> {
    let get = |k: &str| jwk.get(k).and_then(Value::as_str).ok_or_else(|| CoreError::Invalid(format!("JWK lacks {k}")));
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = match get("kty")? {
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, get("crv")?, get("x")?),
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, get("crv")?, get("x")?, get("y")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, get("e")?, get("n")?),
        other => return Err(CoreError::Invalid(format!("unsupported JWK kty {other}"))),
    };
    Ok(b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref()))
}

/// Why a JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts of JSON objects, or too large.
    #[error("malformed JWS")]
    Malformed,
    /// The `alg` is not allowed here (including `none` and HMAC).
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The header has `crit` (no extensions are understood).
    #[error("unsupported critical header")]
    CriticalHeader,
    /// The `typ` is not the expected one.
    #[error("wrong token type")]
    WrongType,
    /// No key matches.
    #[error("unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A JWK could not be used.
    #[error("unusable key")]
    BadKey,
}

/// A public key that verifies JWS signatures.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    /// Key id, if the JWK had one.
    pub kid: Option<String>,
    /// The algorithm this key verifies.
    pub alg: JwsAlg,
    material: KeyMaterial,
}

#[derive(Debug, Clone)]
enum KeyMaterial {
    Raw(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl VerifyingKey {
    /// Builds a key from a public JWK (OKP Ed25519, EC P-256, RSA ≥ 2048 bits).
    pub fn from_jwk(jwk: &Value) -> Result<Self, JwsError> {
        let s = |k: &str| jwk.get(k).and_then(Value::as_str);
        let d = |k: &str| s(k).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok()).ok_or(JwsError::BadKey);
        let kid = s("kid").map(str::to_owned);
        if jwk.get("d").is_some() {
            return Err(JwsError::BadKey); // a private key was published by mistake
        }
        let declared = s("alg").map(|a| JwsAlg::parse(a).ok_or(JwsError::BadKey)).transpose()?;
        let (alg, material) = match (s("kty"), s("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let x = d("x")?;
                if x.len() != 32 {
                    return Err(JwsError::BadKey);
                }
                (JwsAlg::EdDSA, KeyMaterial::Raw(x))
            }
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (d("x")?, d("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwsError::BadKey);
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (JwsAlg::ES256, KeyMaterial::Raw(point))
            }
            (Some("RSA"), _) => {
                let (n, e) = (d("n")?, d("e")?);
                if n.len() < 256 {
                    return Err(JwsError::BadKey);
                }
                (JwsAlg::RS256, KeyMaterial::Rsa { n, e })
            }
            _ => return Err(JwsError::BadKey),
        };
        if declared.is_some_and(|a| a != alg) {
            return Err(JwsError::BadKey);
        }
        Ok(Self { kid, alg, material })
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match (&self.material, self.alg) {
            (KeyMaterial::Raw(k), JwsAlg::EdDSA) => UnparsedPublicKey::new(&ED25519, k).verify(msg, sig).is_ok(),
            (KeyMaterial::Raw(k), JwsAlg::ES256) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k).verify(msg, sig).is_ok(),
            (KeyMaterial::Rsa { n, e }, JwsAlg::RS256) => signature::RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                .verify(&RSA_PKCS1_2048_8192_SHA256, msg, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// The parts of a compact JWS before its signature is checked.
#[derive(Debug, Clone)]
pub struct UnverifiedJws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload.
    pub claims: Map<String, Value>,
    signing_input_len: usize,
    signature: Vec<u8>,
    raw: String,
}

/// Largest JWS accepted anywhere.
pub const MAX_JWS_BYTES: usize = 16 * 1024;

/// Parses a compact JWS whose header and payload are JSON objects. Nothing is trusted yet.
pub fn parse(token: &str) -> Result<UnverifiedJws, JwsError> {
    if token.len() > MAX_JWS_BYTES {
        return Err(JwsError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwsError::Malformed);
    };
    let dec = |x: &str| URL_SAFE_NO_PAD.decode(x).map_err(|_| JwsError::Malformed);
    let header: Map<String, Value> = serde_json::from_slice(&dec(h)?).map_err(|_| JwsError::Malformed)?;
    let claims: Map<String, Value> = serde_json::from_slice(&dec(p)?).map_err(|_| JwsError::Malformed)?;
    let signature = dec(s)?;
    Ok(UnverifiedJws { header, claims, signing_input_len: h.len() + 1 + p.len(), signature, raw: token.to_owned() })
}

impl UnverifiedJws {
    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Verifies against `keys`, allowing only `allowed` algorithms and, if given, `typ`
    /// (compared case-insensitively, with or without the `application/` prefix).
    pub fn verify(self, keys: &[VerifyingKey], allowed: &[JwsAlg], typ: Option<&str>) -> Result<Map<String, Value>, JwsError> {
        let alg = self
            .header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwsAlg::parse)
            .filter(|a| allowed.contains(a))
            .ok_or(JwsError::AlgorithmNotAllowed)?;
        if self.header.contains_key("crit") {
            return Err(JwsError::CriticalHeader);
        }
        if self.header.get("kid").is_some_and(|k| !k.is_string()) {
            return Err(JwsError::Malformed); // RFC 7515 §4.1.4: kid is a string
        }
        if let Some(expected) = typ {
            let got = self.header.get("typ").and_then(Value::as_str).unwrap_or("");
            let got = got.strip_prefix("application/").unwrap_or(got);
            if !got.eq_ignore_ascii_case(expected) {
                return Err(JwsError::WrongType);
            }
        }
        let kid = self.kid();
        let candidates: Vec<&VerifyingKey> =
            keys.iter().filter(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid)).collect();
        if candidates.is_empty() {
            return Err(JwsError::UnknownKey);
        }
        let msg = self.raw.as_bytes().get(..self.signing_input_len).ok_or(JwsError::Malformed)?;
        if candidates.iter().any(|k| k.verify(msg, &self.signature)) {
            Ok(self.claims)
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// Seals private keys at rest with AES-256-GCM (random nonce; the key id as associated data).
pub struct KeySealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(<redacted>)")
    }
}

impl KeySealer {
    /// A sealer with a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Result<Self, CoreError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(crypto_err("aes key"))?;
        Ok(Self { key: LessSafeKey::new(unbound) })
    }

    /// Encrypts `plain`, binding it to `kid`.
    pub fn seal(&self, kid: &str, plain: &[u8]) -> Result<Vec<u8>, CoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::secret::fill_random(&mut nonce)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut buf)
            .map_err(crypto_err("seal"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts what [`KeySealer::seal`] produced for `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, CoreError> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN).ok_or_else(|| CoreError::Internal("sealed key too short".into()))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(crypto_err("nonce"))?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| CoreError::Internal("a signing key cannot be decrypted: is secret_key the one it was sealed with?".into()))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_refuses_tampering() {
        for alg in JwsAlg::ALL {
            let (key, der) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(key.kid(), again.kid());
            let jwt = key.sign_jwt("at+jwt", &json!({"sub": "u1"})).unwrap();
            let vk = key.verifying_key().unwrap();
            let claims = parse(&jwt).unwrap().verify(&[vk.clone()], &JwsAlg::ALL, Some("at+jwt")).unwrap();
            assert_eq!(claims["sub"], "u1");
            // Wrong typ, disallowed alg, tampered payload.
            assert_eq!(parse(&jwt).unwrap().verify(&[vk.clone()], &JwsAlg::ALL, Some("logout+jwt")).unwrap_err(), JwsError::WrongType);
            let others: Vec<JwsAlg> = JwsAlg::ALL.into_iter().filter(|a| *a != alg).collect();
            assert_eq!(parse(&jwt).unwrap().verify(&[vk.clone()], &others, None).unwrap_err(), JwsError::AlgorithmNotAllowed);
            let mut parts: Vec<&str> = jwt.split('.').collect();
            let forged = b64(br#"{"sub":"admin"}"#);
            parts[1] = &forged;
            assert_eq!(parse(&parts.join(".")).unwrap().verify(&[vk], &JwsAlg::ALL, None).unwrap_err(), JwsError::BadSignature);
        }
    }

    #[test]
    fn none_and_hmac_and_crit_are_refused() {
        let (key, _) = SigningKey::generate(JwsAlg::EdDSA).unwrap();
        let vk = key.verifying_key().unwrap();
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(br#"{"sub":"x"}"#));
        assert_eq!(parse(&none).unwrap().verify(&[vk.clone()], &JwsAlg::ALL, None).unwrap_err(), JwsError::AlgorithmNotAllowed);
        let hs = format!("{}.{}.{}", b64(br#"{"alg":"HS256"}"#), b64(br#"{"sub":"x"}"#), b64(b"sig"));
        assert_eq!(parse(&hs).unwrap().verify(&[vk.clone()], &JwsAlg::ALL, None).unwrap_err(), JwsError::AlgorithmNotAllowed);
        let h = format!(r#"{{"alg":"EdDSA","kid":"{}","crit":["exp"]}}"#, key.kid());
        let input = format!("{}.{}", b64(h.as_bytes()), b64(br#"{"sub":"x"}"#));
        let sig = key.sign(input.as_bytes()).unwrap();
        let crit = format!("{input}.{}", b64(&sig));
        assert_eq!(parse(&crit).unwrap().verify(&[vk], &JwsAlg::ALL, None).unwrap_err(), JwsError::CriticalHeader);
        assert!(parse("a.b").is_err());
        assert!(parse(&"a".repeat(MAX_JWS_BYTES + 1)).is_err());
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let jwk = json!({"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn sealed_keys_open_only_with_their_key_and_kid() {
        let s = KeySealer::new(&[1u8; 32]).unwrap();
        let sealed = s.seal("kid-1", b"private").unwrap();
        assert_eq!(s.open("kid-1", &sealed).unwrap(), b"private");
        assert!(s.open("kid-2", &sealed).is_err());
        assert!(KeySealer::new(&[2u8; 32]).unwrap().open("kid-1", &sealed).is_err());
    }
}
