//! OAuth clients: registration, authentication methods, redirect-URI matching.

use crate::CoreError;
use crate::jose::{JwsAlg, VerifyingKey};
use crate::oauth::client_uri::{UriUse, check_client_uri};
use crate::oauth::scope::{ADMIN_SCOPE, STANDARD_SCOPES, Scopes};
use crate::oauth::upstream_access::{TOKEN_EXCHANGE_GRANT, UpstreamAllowance, check_allowances};
use crate::secret::TokenHash;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A client identifier (random, public).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// A new random client id.
    pub fn generate() -> Result<Self, CoreError> {
        let mut b = [0u8; 16];
        crate::secret::fill_random(&mut b)?;
        use base64::Engine;
        Ok(Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)))
    }
    /// Wraps a client id received or stored.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Grant types a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials`.
    ClientCredentials,
    /// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): upstream tokens kept in
    /// the credential vault, for the providers the client's `token_exchange` allows.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::TokenExchange => TOKEN_EXCHANGE_GRANT,
        }
    }
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "client_credentials" => Some(GrantType::ClientCredentials),
            TOKEN_EXCHANGE_GRANT => Some(GrantType::TokenExchange),
            _ => None,
        }
    }
}

/// Token endpoint authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the client secret.
    ClientSecretBasic,
    /// The client secret in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's registered key (RFC 7523).
    PrivateKeyJwt,
    /// A public client: no authentication.
    None,
}

impl AuthMethod {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "private_key_jwt" => Some(AuthMethod::PrivateKeyJwt),
            "none" => Some(AuthMethod::None),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// Its id.
    pub id: ClientId,
    /// Display name (shown on the consent page).
    pub name: String,
    /// SHA-256 of the client secret (confidential clients with a secret method).
    #[serde(skip)]
    pub secret_hash: Option<TokenHash>,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types allowed.
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// First-party client: no consent screen.
    pub skip_consent: bool,
    /// Every sign-in for this client must be multi-factor (step-up if the session is not).
    #[serde(default)]
    pub require_mfa: bool,
    /// May introspect every token and follow every event of the revocation feed (a
    /// resource server trusted by the operator); otherwise only its own tokens and those
    /// naming it (or its `resource`) in their audience.
    #[serde(default)]
    pub introspection: bool,
    /// The API resource (RFC 8707) this client serves as a resource server: tokens with it in
    /// their audience are visible to it at introspection and on the feed.
    #[serde(default)]
    pub resource: Option<String>,
    /// How it authenticates at the token endpoint.
    pub auth_method: AuthMethod,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// Algorithm of its ID tokens.
    pub id_token_alg: JwsAlg,
    /// Its public keys (for `private_key_jwt`).
    pub jwks: Option<serde_json::Value>,
    /// May ask for admin API tokens (scope [`ADMIN_SCOPE`](crate::oauth::admin_access::ADMIN_SCOPE), the admin API audience).
    #[serde(default)]
    pub admin_api: bool,
    /// Absolute lifetime of its grants in seconds (`None`: the server's default).
    #[serde(default)]
    pub grant_lifetime: Option<u64>,
    /// The upstream providers (and scopes) whose kept tokens it may obtain through token
    /// exchange (see [`UpstreamAllowance`]).
    #[serde(default)]
    pub token_exchange: Vec<UpstreamAllowance>,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Client {
    /// Whether the client is public (no authentication).
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }
    /// Whether the client may use `g`.
    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
    /// The scopes it may request.
    pub fn allowed_scopes(&self) -> Scopes {
        Scopes::from_list(self.scopes.iter().cloned())
    }
    /// Its registered verifying keys.
    pub fn verifying_keys(&self) -> Vec<VerifyingKey> {
        self.jwks
            .as_ref()
            .and_then(|j| j.get("keys"))
            .and_then(|k| k.as_array())
            .map(|keys| keys.iter().filter_map(|k| VerifyingKey::from_jwk(k).ok()).collect())
            .unwrap_or_default()
    }

    /// Finds the registered redirect URI `given` matches: exactly, or, for public (native)
    /// clients registered with a loopback IP literal, with any port (RFC 8252 §7.3).
    pub fn match_redirect_uri(&self, given: &str) -> Option<String> {
        if self.redirect_uris.iter().any(|r| r == given) {
            return Some(given.to_owned());
        }
        if !self.is_public() {
            return None;
        }
        let g = split_loopback(given)?;
        self.redirect_uris
            .iter()
            .find(|r| split_loopback(r).is_some_and(|(h, p)| h == g.0 && p == g.1))
            .map(|_| given.to_owned())
    }
}

/// For `http://127.0.0.1:PORT/rest` or `http://[::1]:PORT/rest`, the host and the rest.
fn split_loopback(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let (host, after) = if let Some(r) = rest.strip_prefix("[::1]") {
        ("[::1]", r)
    } else if let Some(r) = rest.strip_prefix("127.0.0.1") {
        ("127.0.0.1", r)
    } else {
        return None;
    };
    let after = match after.strip_prefix(':') {
        Some(p) => {
            let digits = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            if digits == 0 {
                return None;
            }
            p.get(digits..)?
        }
        None => after,
    };
    Some((host, after))
}

/// The longest grant lifetime a client may be given (ten years).
pub const MAX_GRANT_LIFETIME_SECS: u64 = 10 * 366 * 86_400;

/// What a new client looks like (validated by [`ClientRegistration::validate`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRegistration {
    /// Display name.
    pub name: String,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Public client (no secret).
    #[serde(default)]
    pub public: bool,
    /// Grant types (default authorization_code + refresh_token).
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Allowed scopes (default openid profile email offline_access).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Skip the consent screen.
    #[serde(default)]
    pub skip_consent: bool,
    /// Require multi-factor authentication for every sign-in to this client.
    #[serde(default)]
    pub require_mfa: bool,
    /// Allow it to introspect every token and follow every event of the revocation feed.
    #[serde(default)]
    pub introspection: bool,
    /// The API resource it serves (one of the configured `resources`).
    #[serde(default)]
    pub resource: Option<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// Token endpoint auth method (default client_secret_basic, or none for public clients).
    pub token_endpoint_auth_method: Option<String>,
    /// ID token algorithm (default EdDSA).
    pub id_token_signed_response_alg: Option<String>,
    /// Public keys for private_key_jwt.
    pub jwks: Option<serde_json::Value>,
    /// May ask for admin API tokens (authorization code only; adds [`ADMIN_SCOPE`](crate::oauth::admin_access::ADMIN_SCOPE)).
    #[serde(default)]
    pub admin_api: bool,
    /// Absolute lifetime of its grants in seconds (default: the server's setting).
    pub grant_lifetime: Option<u64>,
    /// Upstream providers (and scopes) whose kept tokens it may obtain through token
    /// exchange; adds the token-exchange grant. Confidential clients only.
    #[serde(default)]
    pub token_exchange: Vec<UpstreamAllowance>,
}

/// A validated registration.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The client (with the secret hash set).
    pub client: Client,
    /// The client secret, shown once.
    pub secret: Option<String>,
}

impl ClientRegistration {
    /// Validates the registration and makes the client and its secret.
    pub fn validate(self, now: OffsetDateTime) -> Result<NewClient, CoreError> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(CoreError::Invalid("a client needs a name of at most 128 characters".into()));
        }
        let mut grant_types = Vec::new();
        let raw_grants = if self.grant_types.is_empty() {
            vec!["authorization_code".to_owned(), "refresh_token".to_owned()]
        } else {
            self.grant_types
        };
        for g in &raw_grants {
            match g.as_str() {
                "password" | "implicit" | "token" => {
                    return Err(CoreError::Invalid(format!("grant type {g} is not supported (OAuth 2.1)")));
                }
                other => grant_types.push(
                    GrantType::parse(other).ok_or_else(|| CoreError::Invalid(format!("unknown grant type {other}")))?,
                ),
            }
        }
        grant_types.sort_unstable();
        grant_types.dedup();
        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            Some(m) => AuthMethod::parse(m).ok_or_else(|| CoreError::Invalid(format!("unknown token endpoint auth method {m}")))?,
            None if self.public => AuthMethod::None,
            None => AuthMethod::ClientSecretBasic,
        };
        if self.public != (auth_method == AuthMethod::None) {
            return Err(CoreError::Invalid("public clients use auth method none, and only they do".into()));
        }
        if self.public && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(CoreError::Invalid("public clients cannot use client_credentials".into()));
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(CoreError::Invalid("the authorization_code grant needs at least one redirect URI".into()));
        }
        for u in &self.redirect_uris {
            check_client_uri(u, UriUse::Redirect)?;
        }
        for u in &self.post_logout_redirect_uris {
            check_client_uri(u, UriUse::PostLogoutRedirect)?;
        }
        if let Some(u) = &self.backchannel_logout_uri {
            check_client_uri(u, UriUse::BackchannelLogout)?;
        }
        if let Some(r) = &self.resource {
            check_client_uri(r, UriUse::Resource)?;
        }
        let mut scopes: Vec<String> = if self.scopes.is_empty() {
            STANDARD_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            Scopes::parse(&self.scopes.join(" ")).map_err(CoreError::Invalid)?.iter().map(str::to_owned).collect()
        };
        check_admin_registration(self.admin_api, &grant_types, &mut scopes)?;
        let mut token_exchange = self.token_exchange;
        check_allowances(&mut token_exchange, self.public, &mut grant_types)?;
        if self.grant_lifetime.is_some_and(|s| s == 0 || s > MAX_GRANT_LIFETIME_SECS) {
            return Err(CoreError::Invalid("grant_lifetime must be between 1 second and 10 years".into()));
        }
        let id_token_alg = match self.id_token_signed_response_alg.as_deref() {
            Some(a) => JwsAlg::parse(a).ok_or_else(|| CoreError::Invalid(format!("unsupported ID token algorithm {a}")))?,
            None => JwsAlg::EdDSA,
        };
        if auth_method == AuthMethod::PrivateKeyJwt {
            let keys = self.jwks.as_ref().and_then(|j| j.get("keys")).and_then(|k| k.as_array());
            let usable = keys.map(|k| k.iter().filter(|j| VerifyingKey::from_jwk(j).is_ok()).count()).unwrap_or(0);
            if usable == 0 {
                return Err(CoreError::Invalid("private_key_jwt needs a jwks with at least one usable public key".into()));
            }
        }
        let (secret, secret_hash) = match auth_method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                let s = crate::secret::SecretToken::generate()?;
                let h = s.hash();
                (Some(s.expose().to_owned()), Some(h))
            }
            _ => (None, None),
        };
        Ok(NewClient {
            client: Client {
                id: ClientId::generate()?,
                name,
                secret_hash,
                redirect_uris: self.redirect_uris,
                post_logout_redirect_uris: self.post_logout_redirect_uris,
                grant_types,
                scopes,
                skip_consent: self.skip_consent,
                require_mfa: self.require_mfa,
                introspection: self.introspection,
                resource: self.resource,
                auth_method,
                backchannel_logout_uri: self.backchannel_logout_uri,
                id_token_alg,
                jwks: self.jwks,
                admin_api: self.admin_api,
                grant_lifetime: self.grant_lifetime,
                token_exchange,
                created_at: now,
            },
            secret,
        })
    }
}

/// Registration rules: an `admin_api` client uses the authorization code grant (a user's
/// token, never `client_credentials`) and gets [`ADMIN_SCOPE`] among its scopes; no other
/// client may list that scope.
fn check_admin_registration(admin_api: bool, grant_types: &[GrantType], scopes: &mut Vec<String>) -> Result<(), CoreError> {
    if !admin_api {
        if scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(CoreError::Invalid(format!("only admin_api clients may have the {ADMIN_SCOPE} scope")));
        }
        return Ok(());
    }
    if !grant_types.contains(&GrantType::AuthorizationCode) || grant_types.contains(&GrantType::ClientCredentials) {
        return Err(CoreError::Invalid("an admin_api client uses the authorization_code grant and not client_credentials".into()));
    }
    if !scopes.iter().any(|s| s == ADMIN_SCOPE) {
        scopes.push(ADMIN_SCOPE.to_owned());
        scopes.sort_unstable();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(public: bool, uris: &[&str]) -> Client {
        ClientRegistration {
            name: "app".into(),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            public,
            ..Default::default()
        }
        .validate(OffsetDateTime::UNIX_EPOCH)
        .unwrap()
        .client
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let c = client(false, &["https://app.example/cb"]);
        assert!(c.match_redirect_uri("https://app.example/cb").is_some());
        for near in ["https://app.example/cb/", "https://app.example/CB", "https://app.example/cb?x=1", "https://app.example:444/cb", "https://APP.example/cb"] {
            assert!(c.match_redirect_uri(near).is_none(), "{near}");
        }
    }

    #[test]
    fn loopback_ports_flex_only_for_native_clients() {
        let native = client(true, &["http://127.0.0.1/cb"]);
        assert!(native.match_redirect_uri("http://127.0.0.1:53211/cb").is_some());
        assert!(native.match_redirect_uri("http://127.0.0.1:53211/other").is_none());
        let web = client(false, &["http://127.0.0.1:8000/cb"]);
        assert!(web.match_redirect_uri("http://127.0.0.1:8001/cb").is_none());
    }

    #[test]
    fn registration_refuses_oauth21_removed_grants_and_bad_uris() {
        let bad = |r: ClientRegistration| r.validate(OffsetDateTime::UNIX_EPOCH).is_err();
        assert!(bad(ClientRegistration { name: "a".into(), grant_types: vec!["password".into()], redirect_uris: vec!["https://a/cb".into()], ..Default::default() }));
        assert!(bad(ClientRegistration { name: "a".into(), redirect_uris: vec!["javascript:alert(1)".into()], ..Default::default() }));
        assert!(bad(ClientRegistration { name: "a".into(), redirect_uris: vec!["https://a/cb#frag".into()], ..Default::default() }));
        assert!(bad(ClientRegistration { name: "a".into(), ..Default::default() }));
        let ok = ClientRegistration { name: "a".into(), redirect_uris: vec!["https://a/cb".into()], ..Default::default() }
            .validate(OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert!(ok.secret.is_some());
        assert_eq!(ok.client.id_token_alg, JwsAlg::EdDSA);
        assert_eq!(ok.client.grant_types, vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
    }

    #[test]
    fn only_admin_api_clients_hold_the_admin_scope() {
        let mut scopes = vec!["openid".to_owned(), ADMIN_SCOPE.to_owned()];
        assert!(check_admin_registration(false, &[GrantType::AuthorizationCode], &mut scopes).is_err());
        let mut scopes = vec!["openid".to_owned()];
        check_admin_registration(true, &[GrantType::AuthorizationCode, GrantType::RefreshToken], &mut scopes).unwrap();
        assert!(scopes.iter().any(|s| s == ADMIN_SCOPE));
        assert!(check_admin_registration(true, &[GrantType::ClientCredentials], &mut vec![]).is_err());
    }
}
