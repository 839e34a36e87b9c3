//! `Verifier::verify` on a typical EdDSA access token (keys cached, revocation feed state
//! present) against raw aws-lc-rs Ed25519 verification of the same signing input.
//!
//! Run: `cargo bench -p tessera-verify`. Besides criterion's report it prints both rates and
//! their ratio from a fixed-duration loop (target: ratio ≥ 0.90).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::future::Future;
use std::hint::black_box;
use std::io::{Read, Write};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_verify::{FeedConfig, FeedFailurePolicy, JwksSource, Verifier, VerifierConfig};

const ISSUER: &str = "https://id.example.com";
const AUD: &str = "https://api.example.com";

struct Fixture {
    verifier: Verifier,
    token: String,
    public_key: Vec<u8>,
    signing_input_len: usize,
    signature: Vec<u8>,
    _feed: tessera_verify::FeedHandle,
    _runtime: tokio::runtime::Runtime,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A fake issuer that streams `events` as SSE and then keeps the connection open (plain
/// std threads, so the benchmark loop runs with no async machinery around it).
fn fake_feed(events: Vec<String>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events/v1/stream", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut socket in listener.incoming().flatten() {
            let events = events.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf);
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
                for (i, e) in events.iter().enumerate() {
                    let _ = socket.write_all(format!("id: {}\nevent: set\ndata: {e}\n\n", i + 1).as_bytes());
                }
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    if socket.write_all(b": ping\n\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn sign(kp: &Ed25519KeyPair, kid: &str, typ: &str, claims: &serde_json::Value) -> String {
    let header = json!({"alg": "EdDSA", "typ": typ, "kid": kid});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig = kp.sign(input.as_bytes());
    format!("{input}.{}", b64(sig.as_ref()))
}

fn fixture() -> Fixture {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let public_key = kp.public_key().as_ref().to_vec();
    let kid = "Vn9bqWq8YDXhX7ylE6Z5Yk1mB0nqf1QpD2bq9bqWq8Y";
    // A realistic key set: the active Ed25519 key plus a P-256 one.
    let ec = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let ec = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING, ec.as_ref()).unwrap();
    let p = ec.public_key().as_ref();
    let jwks = json!({"keys": [
        {"kty":"EC","crv":"P-256","x": b64(&p[1..33]),"y": b64(&p[33..65]),"kid":"ec-key","alg":"ES256","use":"sig"},
        {"kty":"OKP","crv":"Ed25519","x": b64(&public_key),"kid":kid,"alg":"EdDSA","use":"sig"},
    ]});
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({
        "iss": ISSUER,
        "sub": "0190f0c2-7c1e-7a55-9d4e-3f1c2b8e9a10",
        "aud": AUD,
        "client_id": "web-app",
        "scope": "openid profile email orders:read",
        "iat": now,
        "exp": now + 3600,
        "jti": "Jx2cV0Yk3mGd9qQ1sTn8AwJx2cV0Yk3mGd9qQ1sTn8A",
        "auth_time": now - 30,
        "amr": ["pwd"],
        "sid": "0190f0c2-8a1b-7c3d-8e4f-5a6b7c8d9e0f",
    });
    let token = sign(&kp, kid, "at+jwt", &claims);
    let (input, sig) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let signing_input_len = input.len();

    // Feed state present: 1,000 revoked sessions, 100 revoked subjects and 100 revoked tokens.
    let mut events = Vec::new();
    for i in 0..1000 {
        events.push(json!({"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
            "subject": {"format":"complex","user":{"format":"opaque","id":format!("u{i}")},"session":{"format":"opaque","id":format!("s{i}")}},
            "event_timestamp": now}}));
    }
    for i in 0..100 {
        events.push(json!({"https://schemas.openid.net/secevent/caep/event-type/credential-change": {
            "subject": {"format":"complex","user":{"format":"opaque","id":format!("cu{i}")}},
            "credential_type":"password","change_type":"update","event_timestamp": now}}));
        events.push(json!({"urn:tessera:event-type:token-revoked": {"subject": {"format":"opaque","id":format!("j{i}")}, "event_timestamp": now}}));
    }
    let sets: Vec<String> = events
        .into_iter()
        .enumerate()
        .map(|(i, ev)| sign(&kp, kid, "secevent+jwt", &json!({"iss": ISSUER, "aud": "bench", "iat": now, "jti": format!("e{i}"), "events": ev})))
        .collect();
    let n_events = sets.len() as u64;
    let url = fake_feed(sets);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let config = VerifierConfig::new(ISSUER, [AUD]).with_jwks(JwksSource::Static(jwks.to_string()));
    let verifier = Verifier::new(config).unwrap();
    let feed = runtime.block_on(async {
        let feed = verifier.subscribe(FeedConfig::new("bench", "secret").with_url(url).with_policy(FeedFailurePolicy::FailClosed)).unwrap();
        assert!(feed.wait_connected(Duration::from_secs(10)).await);
        let start = Instant::now();
        while feed.status().events_applied < n_events {
            assert!(start.elapsed() < Duration::from_secs(30), "feed events not applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        feed
    });
    assert_eq!(feed.status().revocations, 1200);
    Fixture { verifier, token, public_key, signing_input_len, signature, _feed: feed, _runtime: runtime }
}

/// Polls a future that is expected to be ready at once (keys cached: no I/O).
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("verification waited on I/O"),
    }
}

fn verify_via_verifier(fx: &Fixture) {
    let claims = now_or_never(fx.verifier.verify(black_box(&fx.token))).unwrap();
    black_box(claims);
}

fn verify_raw(fx: &Fixture) {
    let msg = &fx.token.as_bytes()[..fx.signing_input_len];
    UnparsedPublicKey::new(&ED25519, &fx.public_key).verify(black_box(msg), black_box(&fx.signature)).unwrap();
}

/// Verifications per second over `window`, best of `rounds`.
fn rate(rounds: usize, window: Duration, f: impl Fn()) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..rounds {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < window {
            for _ in 0..64 {
                f();
            }
            n += 64;
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn benches(c: &mut Criterion) {
    let fx = fixture();
    let mut group = c.benchmark_group("access_token");
    group.bench_function("raw_ed25519_verify", |b| b.iter(|| verify_raw(&fx)));
    group.bench_function("verifier_verify", |b| b.iter(|| verify_via_verifier(&fx)));
    group.finish();

    // Interleaved fixed-duration loops for the headline figures.
    let (mut raw, mut ours) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        raw = raw.max(rate(2, Duration::from_millis(700), || verify_raw(&fx)));
        ours = ours.max(rate(2, Duration::from_millis(700), || verify_via_verifier(&fx)));
    }
    println!();
    println!("raw aws-lc-rs Ed25519 verify : {raw:>10.0} verifications/s ({:.2} µs)", 1e6 / raw);
    println!("Verifier::verify (EdDSA AT)  : {ours:>10.0} verifications/s ({:.2} µs)", 1e6 / ours);
    println!("ratio Verifier/raw           : {:.3} (target ≥ 0.90)", ours / raw);
}

criterion_group!(name = group; config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(4)); targets = benches);
criterion_main!(group);
