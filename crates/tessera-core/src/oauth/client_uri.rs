//! Which URIs a client may register (redirect, post-logout redirect, back-channel logout).
//! The one rule set behind every registration path — `tessera client create` and
//! `POST /admin/v1/clients` both go through [`ClientRegistration::validate`]:
//! absolute, no fragment, no userinfo; `https`, plain `http` only on loopback hosts, or a
//! native app's private-use scheme in reverse-domain form (RFC 8252 §7.1, e.g.
//! `com.example.app:/cb`); never `file:`, `data:`, `javascript:` and the like.
//!
//! [`ClientRegistration::validate`]: crate::oauth::client::ClientRegistration::validate

use crate::CoreError;

/// What a URI is for (its rules and its name in error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriUse {
    /// `redirect_uris`.
    Redirect,
    /// `post_logout_redirect_uris`.
    PostLogoutRedirect,
    /// `backchannel_logout_uri` (the server POSTs to it: http(s) only).
    BackchannelLogout,
    /// `resource`: the RFC 8707 identifier a resource server is known by (http(s) only).
    Resource,
}

impl UriUse {
    fn name(self) -> &'static str {
        match self {
            UriUse::Redirect => "redirect URI",
            UriUse::PostLogoutRedirect => "post-logout redirect URI",
            UriUse::BackchannelLogout => "back-channel logout URI",
            UriUse::Resource => "resource identifier",
        }
    }
}

/// Schemes that are never an application's endpoint, even written in reverse-domain style.
const REFUSED_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "blob", "about", "filesystem", "view-source", "jar", "ftp", "ws", "wss"];

/// Whether `host` (as written in a URI authority, brackets kept) is a loopback host.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks `uri` for `what`.
pub fn check_client_uri(uri: &str, what: UriUse) -> Result<(), CoreError> {
    let name = what.name();
    let bad = |why: &str| CoreError::Invalid(format!("{name} {uri:?} {why}"));
    let (scheme, rest) = uri.split_once(':').ok_or_else(|| bad("must be an absolute URI"))?;
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() {
        return Err(bad("must be an absolute URI"));
    }
    if uri.contains('#') || uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err(bad("must be an absolute URI without a fragment"));
    }
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.strip_prefix("//").map(|r| r.split(['/', '?']).next().unwrap_or(""));
    if authority.is_some_and(|a| a.contains('@')) {
        return Err(bad("must not carry credentials (userinfo)"));
    }
    match scheme.as_str() {
        "https" | "http" => {
            let authority = authority.filter(|a| !a.is_empty()).ok_or_else(|| bad("must name a host"))?;
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split_once(']').map(|(h, _)| format!("[{h}]")).ok_or_else(|| bad("has a malformed host"))?,
                None => authority.split(':').next().unwrap_or("").to_owned(),
            };
            if host.is_empty() {
                return Err(bad("must name a host"));
            }
            if scheme == "http" && !is_loopback_host(&host) {
                return Err(bad("may use plain http only on a loopback host (127.0.0.1, [::1], localhost); use https"));
            }
            Ok(())
        }
        _ if matches!(what, UriUse::BackchannelLogout | UriUse::Resource) => Err(bad("must be an https URI")),
        s if REFUSED_SCHEMES.contains(&s) => Err(bad("uses a scheme that cannot be a client endpoint")),
        // RFC 8252 §7.1: private-use schemes are reverse domain names (com.example.app).
        s if s.contains('.') && !s.starts_with('.') && !s.ends_with('.') => Ok(()),
        _ => Err(bad("must be https, http on a loopback host, or a native app scheme in reverse-domain form (com.example.app:/cb)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_uris() {
        for u in [
            "https://rp.example/cb",
            "https://rp.example:8443/cb?x=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53211/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3000/",
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
        ] {
            assert!(check_client_uri(u, UriUse::Redirect).is_ok(), "{u}");
        }
        assert!(check_client_uri("http://127.0.0.1:9/bcl", UriUse::BackchannelLogout).is_ok());
    }

    #[test]
    fn refused_uris() {
        for u in [
            "file:///etc/passwd",
            "FILE:///etc/passwd",
            "javascript:alert(1)",
            "data:text/html,x",
            "myapp:/cb",
            "http://rp.example/cb",
            "http://10.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb",
            "https://user:pass@rp.example/cb",
            "https://attacker@rp.example/cb",
            "http://user@127.0.0.1/cb",
            "com.example.app://user@host/cb",
            "https:///cb",
            "https:rp.example/cb",
            "https://rp.example/cb#frag",
            "/relative",
            "https://rp.example/c b",
        ] {
            assert!(check_client_uri(u, UriUse::Redirect).is_err(), "{u}");
        }
        assert!(check_client_uri("com.example.app:/bcl", UriUse::BackchannelLogout).is_err());
        assert!(check_client_uri("http://rp.example/bcl", UriUse::BackchannelLogout).is_err());
    }
}
