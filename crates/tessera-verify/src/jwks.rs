//! The remote JWKS cache: fetch with reqwest (no redirects, timeouts), honour
//! `Cache-Control: max-age`, refetch once on an unknown `kid` (rate-limited), keep the old
//! set when a fetch fails.

use crate::config::RemoteJwks;
use crate::error::{ConfigError, VerifyError};
use crate::jws::KeySet;
use crate::verifier::unix_now;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 512 * 1024;

pub(crate) struct RemoteKeys {
    url: String,
    client: reqwest::Client,
    cfg: RemoteJwks,
    /// Serialises fetches; holds when the last `kid`-miss refetch happened.
    state: tokio::sync::Mutex<Option<Instant>>,
    /// When the cached set goes stale (Unix ms); 0 = nothing loaded yet.
    expires_at_ms: AtomicU64,
    refreshing: AtomicBool,
}

impl RemoteKeys {
    pub(crate) fn new(url: String, cfg: RemoteJwks) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .user_agent(concat!("tessera-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self {
            url,
            client,
            cfg,
            state: tokio::sync::Mutex::new(None),
            expires_at_ms: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
        })
    }

    /// True (once, until [`Self::background_refresh_done`]) when a loaded set went stale.
    pub(crate) fn needs_background_refresh(&self, now_ms: u64) -> bool {
        let exp = self.expires_at_ms.load(Ordering::Relaxed);
        exp != 0
            && now_ms >= exp
            && self.refreshing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    pub(crate) fn background_refresh_done(&self) {
        self.refreshing.store(false, Ordering::Release);
    }

    /// Fetches now, serialised with other fetches.
    pub(crate) async fn refresh(&self, keys: &ArcSwap<KeySet>) -> Result<(), VerifyError> {
        let _guard = self.state.lock().await;
        self.fetch_and_store(keys).await
    }

    /// One refetch for a `kid` miss, unless another fetch already brought the `kid` or one
    /// happened within `min_refetch_interval`.
    pub(crate) async fn refetch_for_unknown_kid(&self, keys: &ArcSwap<KeySet>, kid: Option<&str>) {
        let mut last = self.state.lock().await;
        let current = keys.load();
        if current.len() > 0 && kid.is_some_and(|k| current.contains_kid(k)) {
            return; // fetched meanwhile by another request
        }
        if last.is_some_and(|t| t.elapsed() < self.cfg.min_refetch_interval) {
            tracing::debug!(kid = kid.unwrap_or(""), "unknown kid; JWKS refetch rate-limited");
            return;
        }
        *last = Some(Instant::now());
        tracing::info!(kid = kid.unwrap_or(""), "unknown kid; refetching the JWKS");
        let _ = self.fetch_and_store(keys).await;
    }

    async fn fetch_and_store(&self, keys: &ArcSwap<KeySet>) -> Result<(), VerifyError> {
        match self.fetch().await {
            Ok((set, max_age)) => {
                let (_, now_ms) = unix_now();
                let ttl = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
                self.expires_at_ms.store(now_ms.saturating_add(ttl).max(1), Ordering::Relaxed);
                tracing::debug!(keys = set.len(), max_age_s = max_age.as_secs(), "JWKS loaded");
                keys.store(Arc::new(set));
                Ok(())
            }
            Err(why) => {
                // Keep serving the old set; try again after the shortest interval.
                if self.expires_at_ms.load(Ordering::Relaxed) != 0 {
                    let (_, now_ms) = unix_now();
                    let retry = u64::try_from(self.cfg.min_refetch_interval.as_millis()).unwrap_or(u64::MAX);
                    self.expires_at_ms.store(now_ms.saturating_add(retry), Ordering::Relaxed);
                }
                tracing::warn!(url = %self.url, error = %why, "JWKS fetch failed; keeping the cached keys");
                Err(VerifyError::KeysUnavailable)
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Duration), String> {
        let mut resp = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP status {}", resp.status()));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age)
            .map_or(self.cfg.default_max_age, |secs| {
                Duration::from_secs(secs).clamp(self.cfg.min_refetch_interval, self.cfg.max_max_age.max(self.cfg.min_refetch_interval))
            });
        if resp.content_length().is_some_and(|l| l > MAX_JWKS_BYTES as u64) {
            return Err("JWKS too large".into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("JWKS too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        let set = KeySet::from_json(&body)?;
        Ok((set, max_age))
    }
}

/// The `max-age` of a `Cache-Control` value (`no-cache`/`no-store` count as 0).
pub(crate) fn parse_max_age(value: &str) -> Option<u64> {
    let mut found = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = directive.split_once('=').map_or((directive, None), |(n, a)| (n.trim(), Some(a.trim())));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = arg.map(|a| a.trim_matches('"')).and_then(|a| a.parse::<u64>().ok());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::parse_max_age;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(parse_max_age("public, max-age=60"), Some(60));
        assert_eq!(parse_max_age("Max-Age = 120 ,public"), Some(120));
        assert_eq!(parse_max_age("max-age=\"30\""), Some(30));
        assert_eq!(parse_max_age("no-store"), Some(0));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}
