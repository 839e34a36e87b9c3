//! URL helpers shared by pages, OAuth endpoints and layers: origins, query-value encoding,
//! and the local-paths-only rule for `return_to`.

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    url.get(..scheme.len() + 3 + end)
}

/// Percent-encodes a query parameter value.
pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|q| q.trim_start_matches('=').to_owned()).unwrap_or_default()
}

/// Only local paths are accepted as `return_to`, so the login page is no open redirect.
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") && p.len() <= 4096
            && !p.chars().any(|c| c.is_control()) =>
        {
            p.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("https://app.example:8443/cb?x=1"), Some("https://app.example:8443"));
        assert_eq!(origin_of("http://localhost:3000"), Some("http://localhost:3000"));
        assert_eq!(origin_of("com.example.app:/cb"), None);
    }

    #[test]
    fn return_to_accepts_only_local_paths() {
        assert_eq!(safe_return_to(Some("/authorize?x=1")), "/authorize?x=1");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", ""] {
            assert_eq!(safe_return_to(Some(bad)), "/account");
        }
    }
}
