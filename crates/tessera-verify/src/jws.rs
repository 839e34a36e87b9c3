//! Parsed signing keys (from a JWKS) and compact JWS verification on aws-lc-rs.
//!
//! Keys are parsed once into [`ParsedPublicKey`]s when the key set is loaded; verifying a
//! token then decodes the header and signature into stack buffers, looks the key up by
//! `kid` and checks the signature without further allocation.

use crate::config::Algorithm;
use crate::error::VerifyError;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;
use std::borrow::Cow;

/// Largest compact JWS accepted.
pub(crate) const MAX_JWS_BYTES: usize = 16 * 1024;

/// One usable verification key.
pub(crate) struct Key {
    pub(crate) kid: Option<Box<str>>,
    pub(crate) alg: Algorithm,
    parsed: ParsedPublicKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

/// The keys of one JWKS document, parsed.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<Key>,
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    d: Option<IgnoredAny>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
}

fn b64(s: Option<&str>) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(s.ok_or("missing key member")?).map_err(|_| "bad base64url".to_owned())
}

impl Key {
    fn from_jwk(jwk: RawJwk) -> Result<Option<Self>, String> {
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Ok(None); // an encryption key: not ours to use
        }
        if jwk.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|o| o == "verify")) {
            return Ok(None);
        }
        if jwk.d.is_some() {
            return Err("a private key was published".into());
        }
        let (alg, parsed) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => {
                let x = b64(jwk.x.as_deref())?;
                if x.len() != 32 {
                    return Err("Ed25519 key is not 32 bytes".into());
                }
                (Algorithm::EdDSA, ParsedPublicKey::new(&ED25519, x))
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (b64(jwk.x.as_deref())?, b64(jwk.y.as_deref())?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("P-256 coordinates are not 32 bytes".into());
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (Algorithm::ES256, ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point))
            }
            ("RSA", _) => {
                let (n, e) = (b64(jwk.n.as_deref())?, b64(jwk.e.as_deref())?);
                let n_bits = n.iter().position(|b| *b != 0).map_or(0, |i| (n.len() - i) * 8);
                if n_bits < 2048 {
                    return Err("RSA key shorter than 2048 bits".into());
                }
                let c = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
                (Algorithm::RS256, c.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256))
            }
            (kty, crv) => return Err(format!("unsupported key type {kty}/{}", crv.unwrap_or("-"))),
        };
        if let Some(declared) = jwk.alg.as_deref()
            && Algorithm::parse(declared) != Some(alg)
        {
            return Err(format!("key alg {declared} does not fit its key type"));
        }
        let parsed = parsed.map_err(|_| "key rejected by the crypto library".to_owned())?;
        Ok(Some(Key { kid: jwk.kid.map(String::into_boxed_str), alg, parsed }))
    }
}

impl KeySet {
    /// Parses a JWKS document. Unusable keys are skipped (and logged); a document that is
    /// not a JWKS is an error.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let doc: JwksDoc = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::with_capacity(doc.keys.len());
        for value in doc.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).unwrap_or("").to_owned();
            let parsed = serde_json::from_value::<RawJwk>(value).map_err(|e| e.to_string()).and_then(Key::from_jwk);
            match parsed {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(why) => tracing::warn!(kid = %kid, reason = %why, "skipping an unusable JWKS key"),
            }
        }
        Ok(Self { keys })
    }

    /// Number of usable keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if a key with this `kid` is present.
    #[cfg(any(test, feature = "remote-jwks"))]
    pub(crate) fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The protected header members we read. Unknown members are ignored; `jwk`, `jku`, `x5u`
/// and `x5c` are never used to find a key.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// True if the header `typ` names `expected` (case-insensitive, optional `application/`).
pub(crate) fn typ_matches(typ: &str, expected: &str) -> bool {
    let t = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or(""),
        _ => typ,
    };
    t.eq_ignore_ascii_case(expected)
}

/// A small buffer that lives on the stack when the decoded data fits.
struct Buf<const N: usize> {
    stack: [u8; N],
    heap: Vec<u8>,
    len: usize,
    on_heap: bool,
}

impl<const N: usize> Buf<N> {
    fn decode(b64url: &str) -> Result<Self, VerifyError> {
        let mut buf = Buf { stack: [0u8; N], heap: Vec::new(), len: 0, on_heap: false };
        let estimate = base64::decoded_len_estimate(b64url.len());
        if estimate <= N {
            buf.len = URL_SAFE_NO_PAD.decode_slice(b64url, &mut buf.stack).map_err(|_| VerifyError::Malformed)?;
        } else {
            buf.heap = URL_SAFE_NO_PAD.decode(b64url).map_err(|_| VerifyError::Malformed)?;
            buf.on_heap = true;
        }
        Ok(buf)
    }

    fn as_slice(&self) -> &[u8] {
        if self.on_heap { &self.heap } else { self.stack.get(..self.len).unwrap_or(&[]) }
    }
}

/// Verifies a compact JWS: size, structure, header (`typ`, no `crit`, `alg` from the
/// allow-list), key by `kid`, signature. On success `on_payload` gets the decoded payload.
pub(crate) fn verify_compact<T>(
    token: &str,
    keys: &KeySet,
    allowed: u8,
    expected_typ: &str,
    on_payload: impl FnOnce(&[u8]) -> Result<T, VerifyError>,
) -> Result<T, VerifyError> {
    if token.len() > MAX_JWS_BYTES {
        return Err(VerifyError::TooLarge);
    }
    let (signing_input, sig_b64) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(VerifyError::Malformed)?;
    if payload_b64.contains('.') {
        return Err(VerifyError::Malformed);
    }
    let header_bytes = Buf::<512>::decode(header_b64)?;
    if !is_json_object(header_bytes.as_slice()) {
        return Err(VerifyError::Malformed);
    }
    let header: Header<'_> = serde_json::from_slice(header_bytes.as_slice()).map_err(|_| VerifyError::Malformed)?;
    match header.typ.as_deref() {
        Some(t) if typ_matches(t, expected_typ) => {}
        _ => return Err(VerifyError::WrongType),
    }
    if header.crit {
        return Err(VerifyError::CriticalHeader);
    }
    let alg = Algorithm::parse(&header.alg).filter(|a| allowed & a.bit() != 0).ok_or(VerifyError::AlgorithmNotAllowed)?;
    let signature = Buf::<1024>::decode(sig_b64)?;
    let msg = signing_input.as_bytes();
    let sig = signature.as_slice();
    let verified = match header.kid.as_deref() {
        Some(kid) => {
            let mut named = keys.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).peekable();
            if named.peek().is_none() {
                return Err(VerifyError::UnknownKey);
            }
            let mut any_alg = false;
            let mut ok = false;
            for key in named.filter(|k| k.alg == alg) {
                any_alg = true;
                if key.parsed.verify_sig(msg, sig).is_ok() {
                    ok = true;
                    break;
                }
            }
            if !any_alg {
                return Err(VerifyError::KeyMismatch);
            }
            ok
        }
        None => {
            let mut candidates = keys.keys.iter().filter(|k| k.alg == alg).peekable();
            if candidates.peek().is_none() {
                return Err(VerifyError::UnknownKey);
            }
            candidates.any(|k| k.parsed.verify_sig(msg, sig).is_ok())
        }
    };
    if !verified {
        return Err(VerifyError::BadSignature);
    }
    let payload = Buf::<2048>::decode(payload_b64)?;
    if !is_json_object(payload.as_slice()) {
        return Err(VerifyError::Malformed);
    }
    on_payload(payload.as_slice())
}

/// Serde would also read a struct from a JSON array (by position); JOSE wants objects only.
fn is_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The `kid` of a compact JWS header, if it has one (no verification).
pub(crate) fn peek_kid(token: &str) -> Option<String> {
    let header_b64 = token.split('.').next()?;
    if header_b64.len() > MAX_JWS_BYTES {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(header_b64).ok()?;
    if !is_json_object(&bytes) {
        return None;
    }
    let header: Header<'_> = serde_json::from_slice(&bytes).ok()?;
    header.kid.map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison_is_case_insensitive_with_optional_prefix() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("AT+JWT", "at+jwt"));
        assert!(typ_matches("application/at+jwt", "at+jwt"));
        assert!(typ_matches("Application/At+Jwt", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(!typ_matches("application/", "at+jwt"));
        assert!(!typ_matches("text/at+jwt", "at+jwt"));
    }

    #[test]
    fn private_and_mismatched_keys_are_skipped() {
        let jwks = br#"{"keys":[
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","kid":"priv"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"ES256","kid":"mismatch"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc","kid":"enc"},
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"EdDSA","use":"sig","kid":"good"}
        ]}"#;
        let set = KeySet::from_json(jwks).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains_kid("good"));
        assert!(KeySet::from_json(b"[]").is_err());
    }

    #[test]
    fn structure_is_checked_before_anything_else() {
        let set = KeySet::default();
        let ok = |_: &[u8]| Ok(());
        assert_eq!(verify_compact("a.b", &set, 1, "at+jwt", ok), Err(VerifyError::Malformed));
        assert_eq!(verify_compact("a.b.c.d", &set, 1, "at+jwt", ok), Err(VerifyError::Malformed));
        let big = "a".repeat(MAX_JWS_BYTES + 1);
        assert_eq!(verify_compact(&big, &set, 1, "at+jwt", ok), Err(VerifyError::TooLarge));
    }

    #[test]
    fn stack_buffer_falls_back_to_the_heap() {
        let long = URL_SAFE_NO_PAD.encode(vec![7u8; 3000]);
        let buf = Buf::<16>::decode(&long).unwrap();
        assert_eq!(buf.as_slice().len(), 3000);
        let short = URL_SAFE_NO_PAD.encode(b"hi");
        assert_eq!(Buf::<16>::decode(&short).unwrap().as_slice(), b"hi");
    }
}
