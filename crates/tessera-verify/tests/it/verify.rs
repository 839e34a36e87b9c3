//! One test per refusal reason, with tokens built here and keys served by the fake issuer.

use crate::support::*;
use serde_json::json;
use tessera_verify::{Algorithm, Verifier, VerifyError};

async fn setup() -> (FakeIssuer, TestKey, Verifier) {
    let key = TestKey::ed25519("ed-1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    (issuer, key, verifier)
}

#[tokio::test]
async fn accepts_a_typical_eddsa_access_token() {
    let (issuer, key, verifier) = setup().await;
    let got = verifier.verify(&key.token(&claims(&issuer.issuer))).await.unwrap();
    assert_eq!(got.sub, "0190f0c2-7c1e-7a55-9d4e-3f1c2b8e9a10");
    assert_eq!(got.aud, [AUD]);
    assert_eq!(got.client_id.as_deref(), Some("web-app"));
    assert!(got.has_scope("orders:read"));
    assert_eq!(got.sid.as_deref(), Some("0190f0c2-8a1b-7c3d-8e4f-5a6b7c8d9e0f"));
    assert_eq!(got.amr, ["pwd"]);
    assert_eq!(issuer.fetches(), 1, "the first verification fetched the JWKS once");
    verifier.verify(&key.token(&claims(&issuer.issuer))).await.unwrap();
    assert_eq!(issuer.fetches(), 1, "keys are cached");
}

#[tokio::test]
async fn accepts_es256_and_an_audience_array_and_typ_variants() {
    let key = TestKey::p256("ec-1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let verifier = issuer.verifier();
    let c = with(claims(&issuer.issuer), "aud", json!(["https://other", AUD]));
    verifier.verify(&key.token(&c)).await.unwrap();
    let header = json!({"alg": "ES256", "typ": "application/AT+JWT", "kid": "ec-1"});
    verifier.verify(&key.sign(&header, &c)).await.unwrap();
}

#[tokio::test]
async fn refuses_a_bad_signature() {
    let (issuer, key, verifier) = setup().await;
    let token = key.token(&claims(&issuer.issuer));
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{input}.{}", b64(&[7u8; 64]));
    assert_eq!(verifier.verify(&forged).await, Err(VerifyError::BadSignature));
    // A valid signature over different claims.
    let other = key.token(&with(claims(&issuer.issuer), "sub", json!("admin")));
    let (_, sig) = other.rsplit_once('.').unwrap();
    assert_eq!(verifier.verify(&format!("{input}.{sig}")).await, Err(VerifyError::BadSignature));
}

#[tokio::test]
async fn refuses_alg_none() {
    let (issuer, _key, verifier) = setup().await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": "ed-1"});
    let token = format!("{}.{}.", b64(header.to_string().as_bytes()), b64(claims(&issuer.issuer).to_string().as_bytes()));
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::AlgorithmNotAllowed));
}

#[tokio::test]
async fn refuses_hs256_keyed_with_the_public_key() {
    let (issuer, key, verifier) = setup().await;
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "ed-1"});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims(&issuer.issuer).to_string().as_bytes()));
    // The classic confusion attack: HMAC keyed with the public key bytes (raw and as JWK x).
    for secret in [
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key.jwk["x"].as_str().unwrap()).unwrap(),
        key.jwk["x"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let mac = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret), input.as_bytes());
        let token = format!("{input}.{}", b64(mac.as_ref()));
        assert_eq!(verifier.verify(&token).await, Err(VerifyError::AlgorithmNotAllowed));
    }
}

#[tokio::test]
async fn refuses_the_wrong_typ() {
    let (issuer, key, verifier) = setup().await;
    let c = claims(&issuer.issuer);
    for typ in [json!("JWT"), json!("secevent+jwt"), json!("dpop+jwt"), json!(null)] {
        let header = json!({"alg": "EdDSA", "typ": typ, "kid": "ed-1"});
        assert_eq!(verifier.verify(&key.sign(&header, &c)).await, Err(VerifyError::WrongType), "typ {typ}");
    }
    let header = json!({"alg": "EdDSA", "kid": "ed-1"});
    assert_eq!(verifier.verify(&key.sign(&header, &c)).await, Err(VerifyError::WrongType), "no typ");
}

#[tokio::test]
async fn refuses_a_crit_header() {
    let (issuer, key, verifier) = setup().await;
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1", "crit": ["exp"]});
    assert_eq!(verifier.verify(&key.sign(&header, &claims(&issuer.issuer))).await, Err(VerifyError::CriticalHeader));
}

#[tokio::test]
async fn refuses_the_wrong_issuer() {
    let (issuer, key, verifier) = setup().await;
    for iss in [json!("https://evil.example.com"), json!(format!("{}/", issuer.issuer))] {
        let c = with(claims(&issuer.issuer), "iss", iss);
        assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::WrongIssuer));
    }
    let c = without(claims(&issuer.issuer), "iss");
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::MissingClaim("iss")));
}

#[tokio::test]
async fn refuses_the_wrong_audience() {
    let (issuer, key, verifier) = setup().await;
    for aud in [json!("https://other.example.com"), json!(["a", "b"]), json!([])] {
        let c = with(claims(&issuer.issuer), "aud", aud.clone());
        let expected = if aud == json!([]) { VerifyError::MissingClaim("aud") } else { VerifyError::WrongAudience };
        assert_eq!(verifier.verify(&key.token(&c)).await, Err(expected), "aud {aud}");
    }
}

#[tokio::test]
async fn refuses_an_expired_token_beyond_the_leeway() {
    let (issuer, key, verifier) = setup().await;
    let c = with(claims(&issuer.issuer), "exp", json!(now() - 61));
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::Expired));
    let c = with(claims(&issuer.issuer), "exp", json!(now() - 30));
    assert!(verifier.verify(&key.token(&c)).await.is_ok(), "within the 60 s leeway");
    let c = without(claims(&issuer.issuer), "exp");
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::MissingClaim("exp")));
}

#[tokio::test]
async fn refuses_a_string_exp() {
    let (issuer, key, verifier) = setup().await;
    let c = with(claims(&issuer.issuer), "exp", json!((now() + 600).to_string()));
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::InvalidClaim("exp")));
    let c = with(claims(&issuer.issuer), "nbf", json!("0"));
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::InvalidClaim("nbf")));
}

#[tokio::test]
async fn refuses_a_token_not_yet_valid() {
    let (issuer, key, verifier) = setup().await;
    let c = with(claims(&issuer.issuer), "nbf", json!(now() + 120));
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::NotYetValid));
    let c = with(claims(&issuer.issuer), "iat", json!(now() + 120));
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::IssuedInFuture));
    let c = with(claims(&issuer.issuer), "nbf", json!(now() + 30));
    assert!(verifier.verify(&key.token(&c)).await.is_ok(), "within the leeway");
}

#[tokio::test]
async fn refuses_a_missing_scope() {
    let key = TestKey::ed25519("ed-1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let verifier = Verifier::new(issuer.config().with_required_scopes(["orders:read", "orders:write"])).unwrap();
    assert_eq!(
        verifier.verify(&key.token(&claims(&issuer.issuer))).await,
        Err(VerifyError::InsufficientScope { missing: vec!["orders:write".into()] })
    );
    let c = with(claims(&issuer.issuer), "scope", json!("orders:write orders:read"));
    assert!(verifier.verify(&key.token(&c)).await.is_ok());
    assert_eq!(
        verifier.verify_with_scopes(&key.token(&c), &["admin"]).await,
        Err(VerifyError::InsufficientScope { missing: vec!["admin".into()] })
    );
}

#[tokio::test]
async fn rs256_is_refused_unless_opted_in() {
    let ed = TestKey::ed25519("ed-1");
    let rsa = TestKey::rsa("rsa-1");
    let issuer = FakeIssuer::start(&[&ed, &rsa]).await;
    let token = rsa.token(&claims(&issuer.issuer));
    assert_eq!(issuer.verifier().verify(&token).await, Err(VerifyError::AlgorithmNotAllowed));
    let opted_in = Verifier::new(issuer.config().with_algorithms([Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256])).unwrap();
    assert!(opted_in.verify(&token).await.is_ok());
}

#[tokio::test]
async fn refuses_an_alg_that_does_not_fit_the_key() {
    let ed = TestKey::ed25519("ed-1");
    let ec = TestKey::p256("ec-1");
    let issuer = FakeIssuer::start(&[&ed, &ec]).await;
    // Signed by the P-256 key but naming the Ed25519 kid.
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "ed-1"});
    assert_eq!(issuer.verifier().verify(&ec.sign(&header, &claims(&issuer.issuer))).await, Err(VerifyError::KeyMismatch));
}

#[tokio::test]
async fn never_uses_an_embedded_jwk_or_jku() {
    let (issuer, _key, verifier) = setup().await;
    let attacker = TestKey::ed25519("attacker");
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1", "jwk": attacker.jwk, "jku": format!("{}/oauth2/jwks", issuer.issuer)});
    assert_eq!(verifier.verify(&attacker.sign(&header, &claims(&issuer.issuer))).await, Err(VerifyError::BadSignature));
}

#[tokio::test]
async fn refuses_oversized_and_malformed_tokens() {
    let (issuer, key, verifier) = setup().await;
    let c = with(claims(&issuer.issuer), "pad", json!("x".repeat(16 * 1024)));
    assert_eq!(verifier.verify(&key.token(&c)).await, Err(VerifyError::TooLarge));
    for bad in ["", "a", "a.b", "a.b.c.d", "!!.??.**"] {
        assert_eq!(verifier.verify(bad).await, Err(VerifyError::Malformed), "{bad:?}");
    }
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1"});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(b"[1,2]"));
    let token = format!("{input}.{}", b64(&key.sign_bytes(input.as_bytes())));
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Malformed), "payload not an object");
    // A header given as an array (serde would read a struct from it by position).
    let input = format!("{}.{}", b64(br#"["EdDSA","at+jwt","ed-1",false]"#), b64(claims(&issuer.issuer).to_string().as_bytes()));
    let token = format!("{input}.{}", b64(&key.sign_bytes(input.as_bytes())));
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Malformed), "header not an object");
}

#[tokio::test]
async fn verify_cached_never_fetches() {
    let (issuer, key, verifier) = setup().await;
    let token = key.token(&claims(&issuer.issuer));
    assert_eq!(verifier.verify_cached(&token), Err(VerifyError::KeysUnavailable));
    assert_eq!(issuer.fetches(), 0);
    verifier.refresh_keys().await.unwrap();
    assert!(verifier.verify_cached(&token).is_ok());
}
