//! Server-side SSO sessions: opaque 256-bit ids kept only as SHA-256 hashes, idle and
//! absolute timeouts, and what each session records about its device.

use crate::ids::{SessionHandle, UserId};
use crate::secret::TokenHash;
use serde::Serialize;
use std::net::IpAddr;
use time::{Duration, OffsetDateTime};

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Duration,
    /// `last_seen` is written at most this often per session (saves a write per request).
    pub touch_interval: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::hours(8),
            absolute_timeout: Duration::days(14),
            touch_interval: Duration::seconds(60),
        }
    }
}

/// A session as stored (without its secret id).
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Public handle, used to list and end the session.
    pub handle: SessionHandle,
    /// Whose session it is.
    pub user_id: UserId,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last used (to within [`SessionPolicy::touch_interval`]).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// When it ends regardless of use.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the user last authenticated in it.
    #[serde(with = "time::serde::rfc3339")]
    pub auth_time: OffsetDateTime,
    /// Client IP at sign-in or last use.
    pub ip: Option<String>,
    /// User agent at sign-in or last use.
    pub user_agent: Option<String>,
    /// Authentication methods used (RFC 8176 values, e.g. `pwd`).
    pub amr: Vec<String>,
}

impl Session {
    /// Whether the session is still valid at `now` under `policy`.
    pub fn is_live(&self, now: OffsetDateTime, policy: &SessionPolicy) -> bool {
        now < self.expires_at && now < self.last_seen_at + policy.idle_timeout
    }

    /// A short description of the device, from the user agent.
    pub fn device(&self) -> String {
        describe_user_agent(self.user_agent.as_deref().unwrap_or(""))
    }
}

/// A session to be stored under the hash of its secret id.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the session id in the cookie.
    pub id_hash: TokenHash,
    /// The session itself.
    pub session: Session,
}

/// Who is making a request, as far as the server can tell.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The client's IP (after trusted-proxy resolution).
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// Longest user agent kept.
    pub const MAX_USER_AGENT: usize = 256;

    /// Builds a context, truncating the user agent.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut s: String = ua.chars().filter(|c| !c.is_control()).collect();
            if s.len() > Self::MAX_USER_AGENT {
                let mut cut = Self::MAX_USER_AGENT;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
            }
            s
        });
        Self { ip, user_agent }
    }
}

/// "Firefox on Linux"-style summary of a user agent string.
pub fn describe_user_agent(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("node", "Node.js"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => format!("Browser on {o}"),
        (None, None) if ua.is_empty() => "Unknown device".to_owned(),
        (None, None) => ua.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_summarised() {
        assert_eq!(
            describe_user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0 Safari/537.36"),
            "Headless Chrome on Linux"
        );
        assert_eq!(describe_user_agent(""), "Unknown device");
    }

    #[test]
    fn idle_and_absolute_timeouts_end_sessions() {
        let policy = SessionPolicy::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(10_000);
        let s = Session {
            handle: SessionHandle::new(),
            user_id: UserId::new(),
            created_at: t0,
            last_seen_at: t0,
            expires_at: t0 + policy.absolute_timeout,
            auth_time: t0,
            ip: None,
            user_agent: None,
            amr: vec!["pwd".into()],
        };
        assert!(s.is_live(t0 + Duration::hours(1), &policy));
        assert!(!s.is_live(t0 + policy.idle_timeout, &policy));
        let mut busy = s.clone();
        busy.last_seen_at = t0 + Duration::days(14);
        assert!(!busy.is_live(t0 + Duration::days(14) + Duration::minutes(1), &policy));
    }
}
