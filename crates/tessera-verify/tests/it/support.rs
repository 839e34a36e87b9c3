//! Test keys, token minting, and a fake issuer (JWKS + SET stream) on 127.0.0.1:0.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_verify::{FeedConfig, RemoteJwks, Verifier, VerifierConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

pub const AUD: &str = "https://api.example.com";
pub const CLIENT_ID: &str = "orders-api";
pub const CLIENT_SECRET: &str = "s3cret";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

enum Signer {
    Ed(Ed25519KeyPair),
    Es(EcdsaKeyPair),
    Rs(RsaKeyPair),
}

/// A signing key of the fake issuer.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    signer: Signer,
    pub jwk: Value,
}

impl TestKey {
    pub fn ed25519(kid: &str) -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let jwk = json!({"kty":"OKP","crv":"Ed25519","x": b64(kp.public_key().as_ref()),"kid":kid,"alg":"EdDSA","use":"sig"});
        Self { kid: kid.into(), alg: "EdDSA", signer: Signer::Ed(kp), jwk }
    }

    pub fn p256(kid: &str) -> Self {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
        let point = kp.public_key().as_ref();
        let jwk = json!({"kty":"EC","crv":"P-256","x": b64(&point[1..33]),"y": b64(&point[33..65]),"kid":kid,"alg":"ES256","use":"sig"});
        Self { kid: kid.into(), alg: "ES256", signer: Signer::Es(kp), jwk }
    }

    pub fn rsa(kid: &str) -> Self {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).unwrap();
        let kp = RsaKeyPair::from_pkcs8(der.as_ref()).unwrap();
        let c = PublicKeyComponents::<Vec<u8>>::from(kp.public_key());
        let jwk = json!({"kty":"RSA","n": b64(&c.n),"e": b64(&c.e),"kid":kid,"alg":"RS256","use":"sig"});
        Self { kid: kid.into(), alg: "RS256", signer: Signer::Rs(kp), jwk }
    }

    /// The raw signature of `msg`.
    pub fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Ed(kp) => kp.sign(msg).as_ref().to_vec(),
            Signer::Es(kp) => kp.sign(&SystemRandom::new(), msg).unwrap().as_ref().to_vec(),
            Signer::Rs(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A compact JWS with exactly this header and payload.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// The header Tessera puts on access tokens.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg, "typ": "at+jwt", "kid": self.kid})
    }

    /// An access token with these claims.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    /// A Security Event Token.
    pub fn set(&self, issuer: &str, jti: &str, events: Value) -> String {
        let header = json!({"alg": self.alg, "typ": "secevent+jwt", "kid": self.kid});
        self.sign(&header, &json!({"iss": issuer, "aud": CLIENT_ID, "iat": now(), "jti": jti, "events": events}))
    }
}

/// Typical user access-token claims, as Tessera mints them.
pub fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "sub": "0190f0c2-7c1e-7a55-9d4e-3f1c2b8e9a10",
        "aud": AUD,
        "client_id": "web-app",
        "scope": "openid orders:read",
        "iat": now,
        "exp": now + 600,
        "jti": "Jx2cV0Yk3mGd9qQ1sTn8Aw",
        "sid": "0190f0c2-8a1b-7c3d-8e4f-5a6b7c8d9e0f",
        "auth_time": now - 30,
        "amr": ["pwd"],
    })
}

pub fn with(mut v: Value, key: &str, value: Value) -> Value {
    v.as_object_mut().unwrap().insert(key.into(), value);
    v
}

pub fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

pub fn session_revoked(sid: &str) -> Value {
    json!({"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
        "subject": {"format":"complex","user":{"format":"opaque","id":"someone"},"session":{"format":"opaque","id":sid}},
        "event_timestamp": now()
    }})
}

pub fn credential_change(sub: &str, at: i64) -> Value {
    json!({"https://schemas.openid.net/secevent/caep/event-type/credential-change": {
        "subject": {"format":"complex","user":{"format":"opaque","id":sub}},
        "credential_type":"password","change_type":"update","event_timestamp": at
    }})
}

pub fn token_revoked(jti: &str) -> Value {
    json!({"urn:tessera:event-type:token-revoked": {"subject": {"format":"opaque","id":jti}, "event_timestamp": now()}})
}

#[derive(Default)]
struct IssuerState {
    jwks: String,
    /// (id, compact SET)
    events: Vec<(u64, String)>,
    /// `Last-Event-ID` of each stream connection (None = absent).
    stream_requests: Vec<Option<String>>,
    /// Authorization headers seen on the stream.
    stream_auth: Vec<Option<String>>,
}

/// A fake Tessera: `/oauth2/jwks` (counted, `Cache-Control: public, max-age=60`) and
/// `/events/v1/stream` (SSE, replaying after `Last-Event-ID`), over raw HTTP/1.1 so tests can
/// drop connections at will.
#[derive(Clone)]
pub struct FakeIssuer {
    pub issuer: String,
    state: Arc<Mutex<IssuerState>>,
    pub jwks_fetches: Arc<AtomicUsize>,
    /// The `max-age` the JWKS is served with (60 s, as Tessera does).
    pub jwks_max_age: Arc<AtomicUsize>,
    new_event: Arc<Notify>,
    drop_gen: Arc<watch::Sender<u64>>,
    live_streams: Arc<AtomicUsize>,
    stream_open: Arc<watch::Sender<bool>>,
}

impl FakeIssuer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let me = FakeIssuer {
            issuer,
            state: Arc::new(Mutex::new(IssuerState::default())),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            jwks_max_age: Arc::new(AtomicUsize::new(60)),
            new_event: Arc::new(Notify::new()),
            drop_gen: Arc::new(watch::Sender::new(0)),
            live_streams: Arc::new(AtomicUsize::new(0)),
            stream_open: Arc::new(watch::Sender::new(true)),
        };
        me.set_keys(keys);
        let server = me.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve(socket).await });
            }
        });
        me
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        self.state.lock().unwrap().jwks = jwks.to_string();
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Appends an event (id = previous + 1) and wakes the live streams.
    pub fn emit(&self, set: String) -> u64 {
        let id = {
            let mut st = self.state.lock().unwrap();
            let id = st.events.last().map_or(1, |(i, _)| i + 1);
            st.events.push((id, set));
            id
        };
        self.new_event.notify_waiters();
        id
    }

    pub fn stream_requests(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().stream_requests.clone()
    }

    pub fn stream_auth(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().stream_auth.clone()
    }

    /// Closes every live stream and waits until they are gone.
    pub async fn drop_streams(&self) {
        self.drop_gen.send_modify(|g| *g += 1);
        for _ in 0..200 {
            if self.live_streams.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("streams did not close");
    }

    /// While closed, stream requests get 503.
    pub fn set_stream_open(&self, open: bool) {
        self.stream_open.send_replace(open);
    }

    /// A verifier for this issuer (remote JWKS, defaults).
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.config()).unwrap()
    }

    pub fn config(&self) -> VerifierConfig {
        VerifierConfig::new(self.issuer.clone(), [AUD])
    }

    pub fn feed_config(&self) -> FeedConfig {
        let mut c = FeedConfig::new(CLIENT_ID, CLIENT_SECRET);
        c.initial_backoff = Duration::from_millis(50);
        c.max_backoff = Duration::from_millis(400);
        c
    }

    async fn serve(&self, mut socket: TcpStream) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        match path.as_str() {
            "/oauth2/jwks" => {
                self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                let body = self.state.lock().unwrap().jwks.clone();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: public, max-age={}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    self.jwks_max_age.load(Ordering::SeqCst),
                    body.len()
                );
                let _ = socket.write_all(resp.as_bytes()).await;
            }
            "/events/v1/stream" => {
                let last = header("last-event-id");
                {
                    let mut st = self.state.lock().unwrap();
                    st.stream_requests.push(last.clone());
                    st.stream_auth.push(header("authorization"));
                }
                if !*self.stream_open.borrow() {
                    let _ = socket
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                }
                self.live_streams.fetch_add(1, Ordering::SeqCst);
                self.stream(&mut socket, last.and_then(|l| l.parse().ok()).unwrap_or(0)).await;
                let _ = socket.shutdown().await;
                drop(socket);
                self.live_streams.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {
                let _ = socket.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            }
        }
    }

    async fn stream(&self, socket: &mut TcpStream, mut sent: u64) {
        let mut drop_rx = self.drop_gen.subscribe();
        drop_rx.mark_unchanged();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n: ping\n\n";
        if socket.write_all(ok).await.is_err() {
            return;
        }
        loop {
            let notified = self.new_event.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pending: Vec<(u64, String)> =
                self.state.lock().unwrap().events.iter().filter(|(i, _)| *i > sent).cloned().collect();
            for (id, set) in pending {
                let frame = format!("id: {id}\nevent: set\ndata: {set}\n\n");
                if socket.write_all(frame.as_bytes()).await.is_err() {
                    return;
                }
                sent = id;
            }
            tokio::select! {
                biased;
                _ = drop_rx.changed() => return,
                _ = &mut notified => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if socket.write_all(b": ping\n\n").await.is_err() { return; }
                }
            }
        }
    }
}

/// Polls `f` every 10 ms until it returns true, for at most `max`; returns the time taken.
pub async fn eventually(max: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < max {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// A verifier whose JWKS refetch limiter is short, for tests that need a second refetch.
pub fn remote_with_interval(interval: Duration) -> RemoteJwks {
    let mut r = RemoteJwks::default();
    r.min_refetch_interval = interval;
    r
}
