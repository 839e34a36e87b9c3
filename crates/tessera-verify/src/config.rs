//! What a [`Verifier`](crate::Verifier) accepts.

use std::time::Duration;

/// A JWS algorithm the verifier can accept. `none` and the HMAC algorithms cannot be
/// expressed: a token naming them is always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519 (`EdDSA`), what Tessera signs access tokens with.
    EdDSA,
    /// ECDSA P-256 with SHA-256 (`ES256`).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`); only accepted when opted in.
    RS256,
}

impl Algorithm {
    /// The JOSE name.
    ///
    /// ```
    /// assert_eq!(tessera_verify::Algorithm::EdDSA.as_str(), "EdDSA");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
        }
    }

    /// Parses a JOSE name (exact, case-sensitive); `None` for anything not supported.
    ///
    /// ```
    /// use tessera_verify::Algorithm;
    /// assert_eq!(Algorithm::parse("ES256"), Some(Algorithm::ES256));
    /// assert_eq!(Algorithm::parse("HS256"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Algorithm::EdDSA),
            "ES256" => Some(Algorithm::ES256),
            "RS256" => Some(Algorithm::RS256),
            _ => None,
        }
    }

    pub(crate) fn bit(self) -> u8 {
        match self {
            Algorithm::EdDSA => 1,
            Algorithm::ES256 => 2,
            Algorithm::RS256 => 4,
        }
    }
}

/// Where the issuer's signing keys come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum JwksSource {
    /// Fetched over HTTP and cached (the default: `<issuer>/oauth2/jwks`).
    #[cfg(feature = "remote-jwks")]
    Remote(RemoteJwks),
    /// A fixed JWKS document (JSON text), for tests or air-gapped deployments.
    Static(String),
}

/// How the remote JWKS is fetched and cached.
///
/// ```
/// use std::time::Duration;
/// let mut remote = tessera_verify::RemoteJwks::default();
/// remote.min_refetch_interval = Duration::from_secs(30);
/// ```
#[cfg(feature = "remote-jwks")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteJwks {
    /// The JWKS URL; `None` means `<issuer>/oauth2/jwks`.
    pub url: Option<String>,
    /// At most one refetch per this interval is triggered by an unknown `kid` (default 10 s).
    /// It is also the shortest cache lifetime honoured from `Cache-Control: max-age`.
    pub min_refetch_interval: Duration,
    /// Cache lifetime when the response has no `max-age` (default 5 min).
    pub default_max_age: Duration,
    /// Longest cache lifetime honoured from `max-age` (default 1 day).
    pub max_max_age: Duration,
    /// Timeout of one fetch, connection included (default 10 s).
    pub timeout: Duration,
}

#[cfg(feature = "remote-jwks")]
impl Default for RemoteJwks {
    fn default() -> Self {
        Self {
            url: None,
            min_refetch_interval: Duration::from_secs(10),
            default_max_age: Duration::from_secs(300),
            max_max_age: Duration::from_secs(86_400),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a [`Verifier`](crate::Verifier) accepts. Start from [`VerifierConfig::new`] and
/// adjust the public fields (or use the `with_*` helpers).
///
/// ```
/// use std::time::Duration;
/// use tessera_verify::{Algorithm, VerifierConfig};
///
/// let config = VerifierConfig::new("https://id.example.com", ["https://api.example.com"])
///     .with_required_scopes(["orders:read"])
///     .with_leeway(Duration::from_secs(30))
///     .with_algorithms([Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256]);
/// assert_eq!(config.audiences, ["https://api.example.com"]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// The issuer; `iss` must equal it exactly.
    pub issuer: String,
    /// Accepted audiences; a token is accepted if any of its `aud` values is one of these.
    pub audiences: Vec<String>,
    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default 60 s).
    pub leeway: Duration,
    /// Accepted algorithms (default EdDSA and ES256; add RS256 to opt in).
    pub algorithms: Vec<Algorithm>,
    /// Scopes every token must carry (default none).
    pub required_scopes: Vec<String>,
    /// Where the signing keys come from (default: the issuer's JWKS endpoint, when the
    /// `remote-jwks` feature is on).
    pub jwks: JwksSource,
    /// The `realm` of RFC 6750 challenges (default: the first audience).
    pub realm: Option<String>,
}

impl VerifierConfig {
    /// A configuration with the defaults: 60 s leeway, EdDSA + ES256, no required scope,
    /// keys from `<issuer>/oauth2/jwks`.
    ///
    /// Without the `remote-jwks` feature the key source defaults to an empty static set:
    /// set [`VerifierConfig::jwks`] to [`JwksSource::Static`].
    pub fn new<I, A>(issuer: impl Into<String>, audiences: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        Self {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            leeway: Duration::from_secs(60),
            algorithms: vec![Algorithm::EdDSA, Algorithm::ES256],
            required_scopes: Vec::new(),
            #[cfg(feature = "remote-jwks")]
            jwks: JwksSource::Remote(RemoteJwks::default()),
            #[cfg(not(feature = "remote-jwks"))]
            jwks: JwksSource::Static(String::from(r#"{"keys":[]}"#)),
            realm: None,
        }
    }

    /// Sets the clock-skew allowance.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Replaces the algorithm allow-list.
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Sets the scopes every token must carry.
    pub fn with_required_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the key source.
    pub fn with_jwks(mut self, jwks: JwksSource) -> Self {
        self.jwks = jwks;
        self
    }
}
