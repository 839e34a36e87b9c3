//! Request context: the client's IP (trusting `X-Forwarded-For` only from configured
//! proxies, taking the rightmost untrusted hop), user agent, cookies and bearer tokens.

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use http::{HeaderMap, header};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use tessera_core::session::RequestContext;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tessera_session";

/// Resolves the client IP: the peer, or, when the peer is a trusted proxy, the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy. Entries that do not parse as
/// an address (garbage a client sent ahead of what the proxy appended, `unknown`, an
/// obfuscated identifier) are skipped, so they can neither hide the client's address nor
/// turn it into the proxy's; `ip:port` and `[v6]:port` forms are understood.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer?;
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|part| std::str::from_utf8(part).ok().and_then(parse_hop))
        .collect();
    Some(hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer))
}

/// One `X-Forwarded-For` entry: an address, optionally with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The bearer token of a request (RFC 6750 §2.1).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// A `Set-Cookie` value: host-only (no `Domain`), `Path=/`, `HttpOnly`, `SameSite=Lax`,
/// `Secure` when served over https. `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The request's client context.
#[derive(Debug, Clone)]
pub struct Client(pub RequestContext);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let ip = client_ip(peer, &parts.headers, &state.config().trusted_proxies);
        let ua = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        Ok(Client(RequestContext::new(ip, ua)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(Some(peer), &headers(&["1.2.3.4"]), &[]), Some(peer));
    }

    #[test]
    fn rightmost_untrusted_hop_wins_behind_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(client_ip(Some(peer), &h, &trusted), Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn unparsable_forwarded_for_entries_are_skipped() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        for xff in [
            vec!["garbage, 198.51.100.7"],
            vec!["198.51.100.7, unknown"],
            vec!["198.51.100.7, not-an-ip, 10.0.0.5"],
            vec!["_hidden", "198.51.100.7", "999.1.1.1"],
            vec!["1.2.3.4, 198.51.100.7:4711"],
        ] {
            assert_eq!(client_ip(Some(peer), &headers(&xff), &trusted), Some(client), "{xff:?}");
        }
        let v6 = headers(&["[2001:db8::1]:443, ,"]);
        assert_eq!(client_ip(Some(peer), &v6, &trusted), Some("2001:db8::1".parse().unwrap()));
        // Nothing usable: the peer itself.
        assert_eq!(client_ip(Some(peer), &headers(&["nonsense", "10.0.0.9"]), &trusted), Some(peer));
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").unwrap());
        assert_eq!(client_ip(Some(peer), &h, &trusted), Some(client), "non-UTF-8 entries are skipped too");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; tessera_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn session_cookie_attributes() {
        let c = set_cookie(SESSION_COOKIE, "v", true, None);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure") && !c.contains("Domain"));
        assert!(!set_cookie(SESSION_COOKIE, "v", false, None).contains("Secure"));
    }
}
