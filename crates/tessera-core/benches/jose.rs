//! JWS minting and verification (the client_credentials hot path and what a resource server
//! does), next to raw Ed25519 on aws-lc-rs for the SPEC §3 ratio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, ParsedPublicKey, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use tessera_core::jose::{self, JwsAlg, SigningKey};

/// The claims `Provider::client_credentials` signs.
fn claims() -> Value {
    json!({
        "iss": "http://localhost:8080",
        "sub": "0f5e1c9e-2a7b-4f4e-9d2c-6b3c1f0e9a11",
        "aud": "http://localhost:8080",
        "client_id": "0f5e1c9e-2a7b-4f4e-9d2c-6b3c1f0e9a11",
        "scope": "api:read",
        "iat": 1_767_225_600,
        "exp": 1_767_225_900,
        "jti": "b3JkZXItMTIzNDU2Nzg5MGFiY2RlZg",
    })
}

fn bench(c: &mut Criterion) {
    let (key, pkcs8) = SigningKey::generate(JwsAlg::EdDSA).unwrap();
    let raw = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    let vk = key.verifying_key().unwrap();
    let pub_x = URL_SAFE_NO_PAD.decode(key.public_jwk()["x"].as_str().unwrap()).unwrap();
    let claims = claims();
    let token = key.sign_jwt("at+jwt", &claims).unwrap();
    let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();

    let mut g = c.benchmark_group("jose");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_jwt_eddsa_access_token", |b| b.iter(|| key.sign_jwt("at+jwt", black_box(&claims)).unwrap()));
    g.bench_function("raw_ed25519_sign", |b| b.iter(|| raw.sign(black_box(signing_input.as_bytes()))));
    g.bench_function("claims_to_json", |b| b.iter(|| serde_json::to_vec(black_box(&claims)).unwrap()));
    g.bench_function("parse_verify_eddsa_access_token", |b| {
        b.iter(|| {
            jose::parse(black_box(&token)).unwrap().verify(std::slice::from_ref(&vk), &[JwsAlg::EdDSA], Some("at+jwt")).unwrap()
        })
    });
    g.bench_function("parse_only", |b| b.iter(|| jose::parse(black_box(&token)).unwrap()));
    g.bench_function("raw_ed25519_verify", |b| {
        b.iter(|| UnparsedPublicKey::new(&ED25519, &pub_x).verify(black_box(signing_input.as_bytes()), &sig).unwrap())
    });
    // The key parsed once (what a verifier could keep per kid) instead of at every call.
    let parsed = ParsedPublicKey::new(&ED25519, &pub_x).unwrap();
    g.bench_function("raw_ed25519_verify_parsed_key", |b| {
        b.iter(|| parsed.verify_sig(black_box(signing_input.as_bytes()), &sig).unwrap())
    });
    g.finish();

    let (es, _) = SigningKey::generate(JwsAlg::ES256).unwrap();
    let mut g = c.benchmark_group("jose_other_algs");
    g.bench_function("sign_jwt_es256", |b| b.iter(|| es.sign_jwt("JWT", black_box(&claims)).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
