//! The federation model: upstream providers (OpenID Connect by issuer, or plain OAuth 2.0
//! with a userinfo endpoint), the presets, the identities they vouch for, sign-ins in flight
//! and links waiting for the user to prove the local account.

use crate::CoreError;
use crate::ids::UserId;
use crate::secret::TokenHash;
use serde::Serialize;
use std::fmt;
use time::OffsetDateTime;
pub use url::Url;
use uuid::Uuid;

/// An upstream provider's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ProviderId(Uuid);

impl ProviderId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
    /// Wraps a stored id.
    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }
}

impl Default for ProviderId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A linked identity's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdentityId(Uuid);

impl IdentityId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
    /// Wraps a stored id.
    pub fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }
}

impl Default for IdentityId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for IdentityId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A provider's name: 1–40 of `[a-z0-9-]`, not starting or ending with `-` (it is a path
/// segment of the callback URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ProviderName(String);

impl ProviderName {
    /// Validates a name.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let ok = !raw.is_empty()
            && raw.len() <= 40
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok { Ok(Self(raw.to_owned())) } else {
            Err(CoreError::Invalid("A provider name is 1 to 40 lower-case letters, digits and inner hyphens.".into()))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `{tenantid}` in a Microsoft Entra ID multi-tenant issuer: the `tid` claim fills it in.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// How Tessera talks to the provider (a handful per deployment, so variant sizes do not
/// matter).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum ProviderKind {
    /// OpenID Connect: endpoints and keys from `<issuer>/.well-known/openid-configuration`.
    /// The issuer may contain [`TENANT_PLACEHOLDER`] (multi-tenant Entra ID): discovery
    /// then uses `common`, and an ID token's `iss` must be the template with its `tid`.
    Oidc {
        /// The issuer.
        issuer: String,
    },
    /// Plain OAuth 2.0 with a userinfo endpoint (GitHub style: no ID token).
    OAuth2 {
        /// Authorization endpoint.
        authorization_endpoint: Url,
        /// Token endpoint.
        token_endpoint: Url,
        /// Userinfo endpoint (`/user`): `id` (or `sub`) is the subject.
        userinfo_endpoint: Url,
        /// The address list (`/user/emails`): the `primary && verified` one is used.
        emails_endpoint: Option<Url>,
    },
}

impl ProviderKind {
    /// `oidc` or `oauth2`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Oidc { .. } => "oidc",
            ProviderKind::OAuth2 { .. } => "oauth2",
        }
    }

    /// The issuer recorded with identities of a plain OAuth 2.0 provider (the authorization
    /// endpoint's origin); for OpenID Connect it is the ID token's validated `iss` (so each
    /// Entra ID tenant is its own issuer).
    pub fn identity_issuer(&self) -> String {
        match self {
            ProviderKind::Oidc { issuer } => issuer.clone(),
            ProviderKind::OAuth2 { authorization_endpoint, .. } => authorization_endpoint.origin().ascii_serialization(),
        }
    }
}

/// A configured upstream provider as stored (the client secret sealed).
#[derive(Debug, Clone)]
pub struct ProviderRecord {
    /// Its id.
    pub id: ProviderId,
    /// Its name (the path segment of its sign-in and callback URLs).
    pub name: ProviderName,
    /// How to talk to it.
    pub kind: ProviderKind,
    /// Our client id there.
    pub client_id: String,
    /// Our client secret there, sealed with the federation purpose key (the provider id as
    /// associated data).
    pub client_secret_sealed: Vec<u8>,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// E-mail domains whose users go straight to this provider.
    pub domains: Vec<String>,
    /// Create a local user just in time at the first sign-in.
    pub jit: bool,
    /// Link to a local account with the same address when upstream says it is verified.
    pub trust_email: bool,
    /// Keep the upstream tokens in the credential vault.
    pub vault_tokens: bool,
    /// Offered on the login page and accepted at the callback.
    pub enabled: bool,
    /// When it was added.
    pub created_at: OffsetDateTime,
}

/// The presets: well-known providers whose endpoints need not be typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// GitHub (plain OAuth 2.0, `/user` and `/user/emails`).
    GitHub,
    /// Google (OpenID Connect).
    Google,
    /// Microsoft Entra ID, multi-tenant (OpenID Connect, issuer checked against `tid`).
    Microsoft,
    /// GitLab.com (OpenID Connect).
    GitLab,
    /// Facebook (plain OAuth 2.0, Graph API `/me`; addresses are not marked verified).
    Facebook,
}

impl Preset {
    /// Parses a preset name. `apple` is refused: its client secret is a JWT signed with a
    /// key of the developer's, which this server does not make.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "github" => Ok(Preset::GitHub),
            "google" => Ok(Preset::Google),
            "microsoft" => Ok(Preset::Microsoft),
            "gitlab" => Ok(Preset::GitLab),
            "facebook" => Ok(Preset::Facebook),
            "apple" => Err(CoreError::Invalid(
                "The apple preset is not supported: Apple's client secret is a JWT signed with your own key.".into(),
            )),
            _ => Err(CoreError::Invalid("Unknown preset (github, google, microsoft, gitlab, facebook).".into())),
        }
    }

    /// The kind and default scopes.
    pub fn resolve(self) -> Result<(ProviderKind, Vec<String>), CoreError> {
        let url = |s: &str| Url::parse(s).map_err(|e| CoreError::Internal(format!("preset URL: {e}")));
        let oidc = |issuer: &str| ProviderKind::Oidc { issuer: issuer.to_owned() };
        let scopes = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        Ok(match self {
            Preset::GitHub => (
                ProviderKind::OAuth2 {
                    authorization_endpoint: url("https://github.com/login/oauth/authorize")?,
                    token_endpoint: url("https://github.com/login/oauth/access_token")?,
                    userinfo_endpoint: url("https://api.github.com/user")?,
                    emails_endpoint: Some(url("https://api.github.com/user/emails")?),
                },
                scopes(&["read:user", "user:email"]),
            ),
            Preset::Google => (oidc("https://accounts.google.com"), scopes(&["openid", "email", "profile"])),
            Preset::Microsoft => (
                oidc("https://login.microsoftonline.com/{tenantid}/v2.0"),
                scopes(&["openid", "email", "profile"]),
            ),
            Preset::GitLab => (oidc("https://gitlab.com"), scopes(&["openid", "email", "profile"])),
            Preset::Facebook => (
                ProviderKind::OAuth2 {
                    authorization_endpoint: url("https://www.facebook.com/v19.0/dialog/oauth")?,
                    token_endpoint: url("https://graph.facebook.com/v19.0/oauth/access_token")?,
                    userinfo_endpoint: url("https://graph.facebook.com/me?fields=id,name,email")?,
                    emails_endpoint: None,
                },
                scopes(&["email", "public_profile"]),
            ),
        })
    }
}

/// Checks an upstream URL: `https`, or `http` only to a loopback address (development and
/// tests); no credentials, no fragment.
pub fn check_upstream_url(raw: &str) -> Result<Url, CoreError> {
    let bad = |m: &str| CoreError::Invalid(format!("{m}: {}", raw.chars().take(200).collect::<String>()));
    let url = Url::parse(raw).map_err(|_| bad("Not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad("A provider URL has no credentials or fragment"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(bad("Plain-http provider URLs are accepted only on loopback addresses")),
        _ => Err(bad("A provider URL must be https")),
    }
}

/// Whether the URL's host is a loopback address (`localhost`, 127.0.0.0/8, ::1).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Where a provider's endpoints come from, as the CLI and the admin API take it: an
/// OpenID Connect issuer, a preset, or the three endpoints of a plain OAuth 2.0 provider.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSource {
    /// OpenID Connect issuer.
    pub issuer: Option<String>,
    /// A preset name.
    pub preset: Option<String>,
    /// OAuth 2.0 authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// OAuth 2.0 token endpoint.
    pub token_endpoint: Option<String>,
    /// OAuth 2.0 userinfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// GitHub-style e-mail list.
    pub emails_endpoint: Option<String>,
}

impl ProviderSource {
    /// The provider kind and the preset's scopes (empty otherwise); exactly one source.
    pub fn resolve(&self) -> Result<(ProviderKind, Vec<String>), CoreError> {
        let oauth2 = self.authorization_endpoint.is_some() || self.token_endpoint.is_some() || self.userinfo_endpoint.is_some();
        match (&self.issuer, &self.preset, oauth2) {
            (Some(issuer), None, false) => {
                check_upstream_url(issuer)?;
                Ok((ProviderKind::Oidc { issuer: issuer.trim_end_matches('/').to_owned() }, vec![]))
            }
            (None, Some(p), false) => Preset::parse(p)?.resolve(),
            (None, None, true) => match (&self.authorization_endpoint, &self.token_endpoint, &self.userinfo_endpoint) {
                (Some(a), Some(t), Some(u)) => Ok((
                    ProviderKind::OAuth2 {
                        authorization_endpoint: check_upstream_url(a)?,
                        token_endpoint: check_upstream_url(t)?,
                        userinfo_endpoint: check_upstream_url(u)?,
                        emails_endpoint: self.emails_endpoint.as_deref().map(check_upstream_url).transpose()?,
                    },
                    vec![],
                )),
                _ => Err(CoreError::Invalid("A plain OAuth 2.0 provider needs authorization, token and userinfo endpoints.".into())),
            },
            _ => Err(CoreError::Invalid("Give exactly one of an issuer, a preset, or the OAuth 2.0 endpoints.".into())),
        }
    }
}

/// A provider to add.
#[derive(Debug, Clone)]
pub struct NewProvider {
    /// Its name.
    pub name: ProviderName,
    /// How to talk to it.
    pub kind: ProviderKind,
    /// Our client id there.
    pub client_id: String,
    /// Our client secret there (sealed before it is stored).
    pub client_secret: crate::upstream::UpstreamSecret,
    /// Scopes (empty: the preset's, or `openid email profile` for OIDC).
    pub scopes: Vec<String>,
    /// Claimed e-mail domains.
    pub domains: Vec<String>,
    /// Just-in-time users.
    pub jit: bool,
    /// Trust verified addresses for linking.
    pub trust_email: bool,
    /// Keep upstream tokens.
    pub vault_tokens: bool,
}

/// An identity at an upstream provider linked to a local user.
#[derive(Debug, Clone, Serialize)]
pub struct FederatedIdentity {
    /// Its id.
    pub id: IdentityId,
    /// The provider that vouches for it.
    pub provider_id: ProviderId,
    /// The provider's name (joined in when listed).
    pub provider_name: String,
    /// The upstream issuer.
    pub issuer: String,
    /// The upstream subject.
    pub subject: String,
    /// The local user.
    pub user_id: UserId,
    /// The upstream address at the last sign-in, for display.
    pub email: Option<String>,
    /// When it was linked.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last used to sign in.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
}

/// A sign-in sent to a provider, waiting for its callback (stored under the hash of `state`).
#[derive(Debug, Clone)]
pub struct UpstreamLogin {
    /// SHA-256 of `state`.
    pub state_hash: TokenHash,
    /// SHA-256 of the browser-binding cookie.
    pub browser_hash: TokenHash,
    /// The provider.
    pub provider_id: ProviderId,
    /// SHA-256 of the `nonce` sent (OIDC).
    pub nonce_hash: TokenHash,
    /// Where the user goes afterwards (a local path).
    pub return_to: String,
    /// The issuer the provider's discovery named (RFC 9207 `iss` is compared to it).
    pub issuer: Option<String>,
    /// When it lapses.
    pub expires_at: OffsetDateTime,
}

/// An upstream sign-in whose identity matches a local account that must be proved first.
#[derive(Debug, Clone)]
pub struct PendingLink {
    /// SHA-256 of its handle (the handle is a cookie).
    pub hash: TokenHash,
    /// The provider.
    pub provider_id: ProviderId,
    /// The upstream issuer.
    pub issuer: String,
    /// The upstream subject.
    pub subject: String,
    /// The local account to prove.
    pub user_id: UserId,
    /// The upstream address.
    pub email: Option<String>,
    /// The `amr` the upstream sign-in gives.
    pub amr: Vec<String>,
    /// Where the user goes afterwards.
    pub return_to: String,
    /// When it lapses.
    pub expires_at: OffsetDateTime,
}

/// What a user can sign in with besides upstream identities (for the unlink rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInMethods {
    /// A password is set.
    pub password: bool,
    /// Passkeys registered.
    pub passkeys: u32,
    /// Linked identities.
    pub identities: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_path_safe() {
        assert!(ProviderName::parse("github").is_ok());
        assert!(ProviderName::parse("corp-sso-2").is_ok());
        for bad in ["", "-x", "x-", "GitHub", "a/b", "a b", "ä", &"a".repeat(41)] {
            assert!(ProviderName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_upstream_url("https://idp.example.com").is_ok());
        assert!(check_upstream_url("http://127.0.0.1:4000").is_ok());
        assert!(check_upstream_url("http://[::1]:4000/x").is_ok());
        assert!(check_upstream_url("http://localhost:4000").is_ok());
        assert!(check_upstream_url("http://idp.example.com").is_err());
        assert!(check_upstream_url("http://10.0.0.1").is_err());
        assert!(check_upstream_url("ftp://idp.example.com").is_err());
        assert!(check_upstream_url("https://u:p@idp.example.com").is_err());
    }

    #[test]
    fn presets_resolve_and_apple_is_refused() {
        for p in ["github", "google", "microsoft", "gitlab", "facebook"] {
            let (kind, scopes) = Preset::parse(p).unwrap().resolve().unwrap();
            assert!(!scopes.is_empty());
            if p == "microsoft" {
                assert_eq!(kind, ProviderKind::Oidc { issuer: "https://login.microsoftonline.com/{tenantid}/v2.0".into() });
            }
        }
        assert!(Preset::parse("apple").is_err());
        assert!(Preset::parse("myspace").is_err());
    }
}
