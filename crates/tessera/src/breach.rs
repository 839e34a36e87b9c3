//! The HTTP implementation of core's breach-check port ([`BreachChecker`]): the Have I Been
//! Pwned "range" API or a compatible mirror, asked with k-anonymity (only the first 5 hex
//! digits of the password's SHA-1 leave the server). Off by default; it fails open.

use async_trait::async_trait;
use std::time::Duration;
use tessera_core::password::{BreachCheckError, BreachChecker};
use tessera_core::user::nfkc;

/// Largest range response read (a padded HIBP answer is about 30–40 KiB).
const RANGE_MAX_BYTES: usize = 1 << 20;

/// The Have I Been Pwned "range" API (or a compatible mirror): the SHA-1 of the NFKC-normalised
/// password is computed locally and only its first 5 hex digits are sent
/// (`GET {base_url}/range/{prefix}`, with `Add-Padding: true` so the response size does not
/// reveal the prefix); the suffix is matched locally. Fails open: on timeout or error it logs and
/// answers "not breached".
#[derive(Debug, Clone)]
pub struct RangeApiChecker {
    base_url: String,
    timeout: Duration,
    client: reqwest::Client,
}

impl RangeApiChecker {
    /// The public service's base URL.
    pub const HIBP_BASE_URL: &'static str = "https://api.pwnedpasswords.com";

    /// A checker against `base_url` (e.g. [`Self::HIBP_BASE_URL`]) that gives up after `timeout`.
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Result<Self, BreachCheckError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BreachCheckError::Unavailable(e.to_string()))?;
        Ok(Self::with_client(base_url, timeout, client))
    }

    /// A checker with a caller-built HTTP client (proxies, TLS roots, tests).
    pub fn with_client(base_url: impl Into<String>, timeout: Duration, client: reqwest::Client) -> Self {
        Self { base_url: base_url.into().trim_end_matches('/').to_owned(), timeout, client }
    }

    /// SHA-1 of the NFKC form, upper-case hex, split into the 5-digit prefix and the rest.
    fn hash_parts(password: &str) -> (String, String) {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, nfkc(password).as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        let (prefix, suffix) = hex.split_at(5);
        (prefix.to_owned(), suffix.to_owned())
    }

    async fn query(&self, prefix: &str, suffix: &str) -> Result<bool, BreachCheckError> {
        let url = format!("{}/range/{prefix}", self.base_url);
        let mut response = self
            .client
            .get(url)
            .header("Add-Padding", "true")
            .send()
            .await
            .map_err(|e| BreachCheckError::Unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(BreachCheckError::BadResponse(format!("status {}", response.status())));
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| BreachCheckError::Unavailable(e.without_url().to_string()))? {
            if body.len() + chunk.len() > RANGE_MAX_BYTES {
                return Err(BreachCheckError::BadResponse("response too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&body).map_err(|_| BreachCheckError::BadResponse("not UTF-8".into()))?;
        Ok(range_contains(text, suffix))
    }
}

/// Whether a range response (`SUFFIX:COUNT` lines) lists `suffix` with a count above zero
/// (padding entries have count 0).
fn range_contains(body: &str, suffix: &str) -> bool {
    body.lines().any(|line| {
        let Some((s, count)) = line.trim().split_once(':') else { return false };
        s.trim().eq_ignore_ascii_case(suffix) && count.trim().parse::<u64>().is_ok_and(|c| c > 0)
    })
}

#[async_trait]
impl BreachChecker for RangeApiChecker {
    async fn is_breached(&self, password: &str) -> Result<bool, BreachCheckError> {
        let (prefix, suffix) = Self::hash_parts(password);
        let answer = tokio::time::timeout(self.timeout, self.query(&prefix, &suffix))
            .await
            .unwrap_or_else(|_| Err(BreachCheckError::Unavailable("timed out".into())));
        match answer {
            Ok(found) => Ok(found),
            Err(e) => {
                tracing::warn!(error = %e, "password breach range check failed; treating the password as not breached");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    use tessera_core::password::{PasswordPolicy, PolicyViolation};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const PASSPHRASE: &str = "violet kettle drifts past seven quiet harbours";

    #[test]
    fn range_responses_are_matched_ignoring_padding() {
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n011053FD0102E94D6AE2F8B83D76FAF94F6:3\r\n";
        assert!(range_contains(body, "0018a45c4d1def81644b54ab7f969b88d65"));
        assert!(range_contains(body, "011053FD0102E94D6AE2F8B83D76FAF94F6"));
        assert!(!range_contains(body, "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"), "padding (count 0) is not a hit");
        assert!(!range_contains(body, "FFFF"));
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8.
        let (prefix, suffix) = RangeApiChecker::hash_parts("password");
        assert_eq!(prefix, "5BAA6");
        assert_eq!(suffix, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
        assert_eq!(RangeApiChecker::hash_parts("ｐａｓｓｗｏｒｄ"), RangeApiChecker::hash_parts("password"));
    }

    /// A stub range API on 127.0.0.1: answers every request with `body`, recording request heads.
    async fn stub_server(body: String) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (body, log) = (body.clone(), log.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    log.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn checker(base: &str, timeout: Duration) -> RangeApiChecker {
        let client = reqwest::Client::builder().no_proxy().timeout(timeout).build().unwrap();
        RangeApiChecker::with_client(base, timeout, client)
    }

    #[tokio::test]
    async fn range_checker_finds_a_breached_password() {
        let (_, suffix) = RangeApiChecker::hash_parts("password");
        let body = format!("0000000000000000000000000000000000A:0\r\n{suffix}:10434004\r\nFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:2\r\n");
        let (base, seen) = stub_server(body).await;
        let c = checker(&format!("{base}/"), Duration::from_secs(5));
        assert!(c.is_breached("password").await.unwrap());
        let head = seen.lock().unwrap().first().cloned().unwrap();
        assert!(head.starts_with("GET /range/5BAA6 HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("\r\nadd-padding: true\r\n"), "{head}");
        assert!(!head.contains("1E4C9B93F3F0682250B6CF8331B7EE68FD8"), "the suffix never leaves");

        // Through the policy (with a second factor so the short password reaches the check).
        let policy = PasswordPolicy { blocklist: false, ..PasswordPolicy::default() };
        let got = policy.check_with_breach_checker("password", true, &[], Some(&c)).await;
        assert_eq!(got, Err(PolicyViolation::Breached));
    }

    #[tokio::test]
    async fn range_checker_passes_an_unbreached_password() {
        let (_, suffix) = RangeApiChecker::hash_parts(PASSPHRASE);
        // The suffix appears only as padding (count 0): not a hit.
        let body = format!("0000000000000000000000000000000000A:5\r\n{suffix}:0\r\n");
        let (base, _) = stub_server(body).await;
        let c = checker(&base, Duration::from_secs(5));
        assert!(!c.is_breached(PASSPHRASE).await.unwrap());
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check_with_breach_checker(PASSPHRASE, false, &[], Some(&c)).await, Ok(()));
    }

    #[tokio::test]
    async fn range_checker_fails_open_when_the_server_is_down_or_slow() {
        // Down: a port that was just freed refuses connections.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let timeout = Duration::from_millis(500);
        let c = checker(&format!("http://127.0.0.1:{port}"), timeout);
        let started = Instant::now();
        assert!(!c.is_breached("password").await.unwrap());
        assert!(started.elapsed() < timeout + Duration::from_millis(500), "{:?}", started.elapsed());

        // Slow: accepts, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let c = checker(&format!("http://{addr}"), timeout);
        let started = Instant::now();
        assert!(!c.is_breached("password").await.unwrap());
        let elapsed = started.elapsed();
        assert!(elapsed >= timeout - Duration::from_millis(50) && elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
        hold.abort();
    }
}
