//! The revocation feed: Security Event Tokens over Server-Sent Events from
//! `<issuer>/events/v1/stream`, applied to an in-memory revocation state that
//! [`Verifier::verify`] consults.
//!
//! The subscriber authenticates with HTTP Basic (a confidential client), verifies every SET
//! (`typ: secevent+jwt`, signature from the issuer's JWKS, `iss`, `aud` = the client id),
//! remembers the last event id and reconnects with `Last-Event-ID` after any disconnect
//! (exponential backoff with jitter, capped), so no event is lost across a reconnect.

mod revocation;
mod sse;

use crate::error::{ConfigError, VerifyError};
use crate::verifier::{Verifier, is_http_url, join_url, unix_now};
use revocation::{RevocationState, SecurityEvent};
use sse::{SseEvent, SseParser};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What to do with tokens while the feed is unreachable.
///
/// ```
/// use std::time::Duration;
/// use tessera_verify::FeedFailurePolicy;
/// let lenient = FeedFailurePolicy::FailOpen { max: Duration::from_secs(120) };
/// let strict = FeedFailurePolicy::FailClosed;
/// # let _ = (lenient, strict);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedFailurePolicy {
    /// Keep accepting tokens for at most `max` after the last successful contact with the
    /// feed (any byte received, keep-alives included; or the subscription start, before the
    /// first connection), then refuse them with [`VerifyError::FeedUnavailable`].
    FailOpen {
        /// How long to keep accepting tokens without contact.
        max: Duration,
    },
    /// Refuse every token while the feed is not connected (including before the first
    /// connection: see [`FeedHandle::wait_connected`]).
    FailClosed,
}

/// How to subscribe to the revocation feed. Start from [`FeedConfig::new`].
///
/// ```
/// use std::time::Duration;
/// use tessera_verify::{FeedConfig, FeedFailurePolicy};
/// let mut feed = FeedConfig::new("orders-api", "client-secret");
/// feed.policy = FeedFailurePolicy::FailClosed;
/// feed.max_token_lifetime = Duration::from_secs(600);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct FeedConfig {
    /// The confidential client the feed is authenticated as (and the SETs' `aud`).
    pub client_id: String,
    /// Its secret (HTTP Basic).
    pub client_secret: String,
    /// The stream URL; `None` means `<issuer>/events/v1/stream`.
    pub url: Option<String>,
    /// What to do while the feed is unreachable (default: fail open for 5 minutes).
    pub policy: FeedFailurePolicy,
    /// The longest access-token lifetime of the issuer (default 1 h): revocations are
    /// forgotten once every token they could refuse has expired.
    pub max_token_lifetime: Duration,
    /// First reconnect delay (default 250 ms); doubled after each failure.
    pub initial_backoff: Duration,
    /// Longest reconnect delay (default 30 s).
    pub max_backoff: Duration,
    /// A connection with no byte (keep-alives included) for this long is dropped and
    /// re-established (default 45 s; the server pings every 15 s).
    pub idle_timeout: Duration,
    /// Timeout for connecting and receiving the response headers (default 10 s).
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for FeedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("url", &self.url)
            .field("policy", &self.policy)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .finish_non_exhaustive()
    }
}

impl FeedConfig {
    /// A configuration with the defaults, authenticated as `client_id:client_secret`.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            url: None,
            policy: FeedFailurePolicy::FailOpen { max: Duration::from_secs(300) },
            max_token_lifetime: Duration::from_secs(3600),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the failure policy.
    pub fn with_policy(mut self, policy: FeedFailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the stream URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }
}

/// A snapshot of the feed's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedStatus {
    /// Whether the stream is connected now.
    pub connected: bool,
    /// The id of the last event received (sent as `Last-Event-ID` on reconnect).
    pub last_event_id: Option<String>,
    /// Events applied since the subscription started.
    pub events_applied: u64,
    /// Revocation entries held in memory.
    pub revocations: usize,
}

/// The running subscription. Keep it for as long as the verifier is used: dropping it (or
/// [`FeedHandle::stop`]) stops the feed, after which the [`FeedFailurePolicy`] applies as
/// for an unreachable feed.
#[must_use = "dropping the FeedHandle stops the revocation feed"]
pub struct FeedHandle {
    shared: Arc<FeedShared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FeedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedHandle").field("status", &self.status()).finish()
    }
}

impl FeedHandle {
    /// The feed's current state.
    ///
    /// ```no_run
    /// # fn f(feed: &tessera_verify::FeedHandle) {
    /// let status = feed.status();
    /// println!("connected={} last={:?}", status.connected, status.last_event_id);
    /// # }
    /// ```
    pub fn status(&self) -> FeedStatus {
        FeedStatus {
            connected: self.shared.connected.load(Ordering::Acquire),
            last_event_id: self.shared.last_event_id(),
            events_applied: self.shared.events_applied.load(Ordering::Relaxed),
            revocations: self.shared.entries.load(Ordering::Relaxed),
        }
    }

    /// Waits until the stream is connected, at most `timeout`; returns whether it is.
    ///
    /// ```no_run
    /// # async fn f(feed: &tessera_verify::FeedHandle) {
    /// if !feed.wait_connected(std::time::Duration::from_secs(5)).await {
    ///     eprintln!("revocation feed not connected yet");
    /// }
    /// # }
    /// ```
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.connected_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await.is_ok_and(|r| r.is_ok())
    }

    /// Stops the feed (the same as dropping the handle).
    pub fn stop(self) {}
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.task.abort();
        if self.shared.set_connected(false) {
            tracing::info!("revocation feed stopped");
        }
    }
}

pub(crate) struct FeedShared {
    policy: FeedFailurePolicy,
    keep_secs: i64,
    connected: AtomicBool,
    connected_tx: tokio::sync::watch::Sender<bool>,
    started: Instant,
    /// Milliseconds after `started` of the last byte received (0: none yet).
    last_contact_ms: AtomicU64,
    state: RwLock<RevocationState>,
    entries: AtomicUsize,
    last_event_id: Mutex<Option<String>>,
    events_applied: AtomicU64,
    next_prune: AtomicU64,
}

impl FeedShared {
    fn new(config: &FeedConfig, leeway: i64) -> Self {
        Self {
            policy: config.policy,
            keep_secs: i64::try_from(config.max_token_lifetime.as_secs()).unwrap_or(i64::MAX).saturating_add(leeway),
            connected: AtomicBool::new(false),
            connected_tx: tokio::sync::watch::Sender::new(false),
            started: Instant::now(),
            last_contact_ms: AtomicU64::new(0),
            state: RwLock::new(RevocationState::default()),
            entries: AtomicUsize::new(0),
            last_event_id: Mutex::new(None),
            events_applied: AtomicU64::new(0),
            next_prune: AtomicU64::new(0),
        }
    }

    /// Refuses revoked tokens, and every token while the feed is down per the policy.
    pub(crate) fn check(&self, claims: &crate::Claims) -> Result<(), VerifyError> {
        if self.entries.load(Ordering::Acquire) != 0 {
            let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.check(claims)?;
        }
        if !self.connected.load(Ordering::Acquire) {
            match self.policy {
                FeedFailurePolicy::FailClosed => return Err(VerifyError::FeedUnavailable),
                FeedFailurePolicy::FailOpen { max } => {
                    let since = self.started.elapsed().saturating_sub(Duration::from_millis(self.last_contact_ms.load(Ordering::Acquire)));
                    if since > max {
                        return Err(VerifyError::FeedUnavailable);
                    }
                }
            }
        }
        Ok(())
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
        self.last_contact_ms.store(ms, Ordering::Release);
    }

    /// Sets the connection state; returns the previous one.
    fn set_connected(&self, connected: bool) -> bool {
        let was = self.connected.swap(connected, Ordering::AcqRel);
        if was != connected {
            self.connected_tx.send_replace(connected);
            metrics::gauge!("tessera_verify_feed_connected").set(if connected { 1.0 } else { 0.0 });
        }
        was
    }

    fn last_event_id(&self) -> Option<String> {
        self.last_event_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_last_event_id(&self, id: String) {
        *self.last_event_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id);
    }

    fn apply(&self, event: &SecurityEvent) {
        let (now, _) = unix_now();
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.apply(event, now, self.keep_secs);
        self.entries.store(state.len(), Ordering::Release);
        self.events_applied.fetch_add(1, Ordering::Relaxed);
    }

    fn prune_if_due(&self) {
        let (now, _) = unix_now();
        let now_u = u64::try_from(now).unwrap_or(0);
        let due = self.next_prune.load(Ordering::Relaxed);
        if now_u < due || self.next_prune.compare_exchange(due, now_u + 30, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.prune(now);
        self.entries.store(state.len(), Ordering::Release);
    }
}

impl Verifier {
    /// Subscribes to the issuer's revocation feed (starts a background task on the current
    /// Tokio runtime). From then on [`Verifier::verify`] refuses revoked sessions, subjects
    /// and tokens, and applies the [`FeedFailurePolicy`] while the feed is unreachable.
    ///
    /// # Errors
    /// [`ConfigError::AlreadySubscribed`] on a second call, [`ConfigError::NoRuntime`]
    /// outside a Tokio runtime, [`ConfigError::InvalidUrl`], [`ConfigError::HttpClient`].
    ///
    /// ```no_run
    /// # async fn f(verifier: tessera_verify::Verifier) -> Result<(), tessera_verify::ConfigError> {
    /// use tessera_verify::FeedConfig;
    /// let feed = verifier.subscribe(FeedConfig::new("orders-api", std::env::var("FEED_SECRET").unwrap_or_default()))?;
    /// feed.wait_connected(std::time::Duration::from_secs(5)).await;
    /// // keep `feed` alive as long as `verifier` is used
    /// # drop(feed); Ok(()) }
    /// ```
    pub fn subscribe(&self, config: FeedConfig) -> Result<FeedHandle, ConfigError> {
        let url = config.url.clone().unwrap_or_else(|| join_url(self.issuer(), "/events/v1/stream"));
        if !is_http_url(&url) {
            return Err(ConfigError::InvalidUrl(url));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("tessera-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let shared = Arc::new(FeedShared::new(&config, self.inner.leeway));
        self.inner.feed.set(shared.clone()).map_err(|_| ConfigError::AlreadySubscribed)?;
        metrics::gauge!("tessera_verify_feed_connected").set(0.0);
        let task = runtime.spawn(run(self.clone(), shared.clone(), config, url, client));
        Ok(FeedHandle { shared, task })
    }
}

async fn run(verifier: Verifier, shared: Arc<FeedShared>, config: FeedConfig, url: String, client: reqwest::Client) {
    let mut backoff = config.initial_backoff;
    loop {
        let outcome = stream_once(&verifier, &shared, &config, &url, &client).await;
        let was_connected = shared.set_connected(false);
        match (&outcome, was_connected) {
            (Ok(()), _) => tracing::warn!(url = %url, "revocation feed closed by the server; reconnecting"),
            (Err(e), true) => tracing::warn!(url = %url, error = %e, "revocation feed lost; reconnecting"),
            (Err(e), false) => tracing::warn!(url = %url, error = %e, retry_ms = backoff.as_millis() as u64, "revocation feed unreachable"),
        }
        if was_connected {
            backoff = config.initial_backoff;
        }
        shared.prune_if_due();
        tokio::time::sleep(jitter(backoff)).await;
        if !was_connected {
            backoff = backoff.saturating_mul(2).min(config.max_backoff.max(config.initial_backoff));
        }
    }
}

/// ±20 % so that many resource servers do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 1];
    let r = match aws_lc_rs::rand::fill(&mut b) {
        Ok(()) => u32::from(b.first().copied().unwrap_or(128)),
        Err(_) => 128,
    };
    d.mul_f64(0.8 + 0.4 * f64::from(r) / 255.0)
}

/// `Basic` credentials as RFC 6749 §2.3.1 defines them: id and secret form-urlencoded first.
fn basic_authorization(client_id: &str, client_secret: &str) -> Result<reqwest::header::HeaderValue, String> {
    use base64::Engine;
    let credentials = format!("{}:{}", form_urlencode(client_id), form_urlencode(client_secret));
    let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
    let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|e| e.to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn valid_event_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && id.bytes().all(|b| b.is_ascii_graphic())
}

async fn stream_once(
    verifier: &Verifier,
    shared: &FeedShared,
    config: &FeedConfig,
    url: &str,
    client: &reqwest::Client,
) -> Result<(), String> {
    let mut request = client
        .get(url)
        .header(reqwest::header::AUTHORIZATION, basic_authorization(&config.client_id, &config.client_secret)?)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .header(reqwest::header::CACHE_CONTROL, "no-cache");
    let resume_from = shared.last_event_id();
    if let Some(id) = resume_from.as_deref().filter(|id| valid_event_id(id)) {
        request = request.header("Last-Event-ID", id);
    }
    let mut response = tokio::time::timeout(config.connect_timeout, request.send())
        .await
        .map_err(|_| "timed out connecting".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        tracing::error!(status = status.as_u16(), client_id = %config.client_id, "revocation feed refused the client credentials");
        return Err(format!("HTTP status {status}"));
    }
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim_start().to_ascii_lowercase().starts_with("text/event-stream") {
        return Err(format!("unexpected content type {content_type:?}"));
    }
    shared.touch();
    shared.set_connected(true);
    tracing::info!(url = %url, last_event_id = resume_from.as_deref().unwrap_or(""), "revocation feed connected");
    let mut parser = SseParser::new();
    loop {
        let chunk = tokio::time::timeout(config.idle_timeout, response.chunk())
            .await
            .map_err(|_| format!("nothing received for {} s", config.idle_timeout.as_secs()))?
            .map_err(|e| e.to_string())?;
        let Some(chunk) = chunk else {
            return Ok(());
        };
        shared.touch();
        for event in parser.push(&chunk) {
            handle_event(verifier, shared, config, event).await;
        }
        shared.prune_if_due();
    }
}

async fn handle_event(verifier: &Verifier, shared: &FeedShared, config: &FeedConfig, event: SseEvent) {
    if (event.event == "set" || event.event == "message") && !event.data.is_empty() {
        let data = event.data.trim();
        let mut verified = verifier.check_set(data);
        if matches!(verified, Err(VerifyError::UnknownKey | VerifyError::KeysUnavailable)) {
            verifier.refetch_for_unknown_kid(crate::jws::peek_kid(data).as_deref()).await;
            verified = verifier.check_set(data);
        }
        let parsed = verified
            .map_err(|e| e.reason())
            .and_then(|claims| revocation::parse_set(&claims, verifier.issuer(), &config.client_id));
        match parsed {
            Ok(security_event) => {
                shared.apply(&security_event);
                metrics::counter!("tessera_verify_events_total", "type" => security_event.label()).increment(1);
                tracing::info!(id = event.id.as_deref().unwrap_or(""), event_type = security_event.label(), "security event applied");
            }
            Err(why) => {
                metrics::counter!("tessera_verify_events_total", "type" => "invalid").increment(1);
                tracing::warn!(id = event.id.as_deref().unwrap_or(""), reason = why, "security event refused");
            }
        }
    }
    if let Some(id) = event.id {
        shared.set_last_event_id(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urlencoded_first() {
        assert_eq!(form_urlencode("abc-._*XYZ019"), "abc-._*XYZ019");
        assert_eq!(form_urlencode("a b+c:%é"), "a+b%2Bc%3A%25%C3%A9");
        let v = basic_authorization("orders-api", "s3cret").unwrap();
        assert_eq!(v.to_str().unwrap(), "Basic b3JkZXJzLWFwaTpzM2NyZXQ=");
        assert!(v.is_sensitive());
    }

    #[test]
    fn event_ids_must_be_header_safe() {
        assert!(valid_event_id("42"));
        assert!(!valid_event_id(""));
        assert!(!valid_event_id("4 2"));
        assert!(!valid_event_id("4\n2"));
    }
}
