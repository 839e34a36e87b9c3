//! The [`Verifier`]: access-token checks on cached keys.

use crate::claims::{Claims, NumericDate, RawClaims};
use crate::config::{JwksSource, VerifierConfig};
use crate::error::{ConfigError, VerifyError};
use crate::jws::{self, KeySet};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The RFC 9068 `typ` of access tokens.
pub(crate) const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Verifies Tessera access tokens. Cheap to clone (one `Arc`); share one per issuer.
///
/// Keys are parsed once and cached by `kid`; an unknown `kid` triggers one rate-limited
/// JWKS refetch. With [`Verifier::subscribe`] the verifier also refuses tokens revoked
/// through the issuer's event stream.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tessera_verify::{Verifier, VerifierConfig};
///
/// let verifier = Verifier::new(VerifierConfig::new("https://id.example.com", ["https://api.example.com"]))?;
/// verifier.refresh_keys().await?; // optional: fail fast if the issuer is unreachable
/// let claims = verifier.verify("eyJhbGciOiJFZERTQSIs...").await?;
/// println!("hello {}", claims.sub);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("keys", &self.inner.keys.load().len())
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: i64,
    pub(crate) allowed: u8,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) realm: String,
    pub(crate) keys: ArcSwap<KeySet>,
    #[cfg(feature = "remote-jwks")]
    pub(crate) remote: Option<crate::jwks::RemoteKeys>,
    #[cfg(feature = "revocation-feed")]
    pub(crate) feed: std::sync::OnceLock<Arc<crate::feed::FeedShared>>,
}

pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// `<base>` + `path`, without a doubled slash.
#[cfg(any(feature = "remote-jwks", feature = "revocation-feed"))]
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

pub(crate) fn unix_now() -> (i64, u64) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Verifier {
    /// Builds a verifier. Nothing is fetched yet: remote keys are fetched on first use (or
    /// by [`Verifier::refresh_keys`]).
    ///
    /// # Errors
    /// [`ConfigError`] for an issuer that is not an http(s) URL, no audience, an empty
    /// algorithm list, an unusable static JWKS, or an HTTP client that cannot be built.
    ///
    /// ```
    /// use tessera_verify::{JwksSource, Verifier, VerifierConfig};
    /// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;
    /// let config = VerifierConfig::new("https://id.example.com", ["api"]).with_jwks(JwksSource::Static(jwks.into()));
    /// let verifier = Verifier::new(config).unwrap();
    /// assert_eq!(verifier.issuer(), "https://id.example.com");
    /// ```
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        if !is_http_url(&config.issuer) {
            return Err(ConfigError::InvalidIssuer);
        }
        if config.audiences.is_empty() || config.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::NoAudience);
        }
        let allowed = config.algorithms.iter().fold(0u8, |m, a| m | a.bit());
        if allowed == 0 {
            return Err(ConfigError::NoAlgorithm);
        }
        let realm = config
            .realm
            .clone()
            .or_else(|| config.audiences.first().cloned())
            .unwrap_or_default()
            .replace(['"', '\\'], "");
        #[cfg(feature = "remote-jwks")]
        let mut remote = None;
        let keys = match config.jwks {
            JwksSource::Static(json) => {
                let set = KeySet::from_json(json.as_bytes()).map_err(ConfigError::InvalidJwks)?;
                if set.len() == 0 {
                    return Err(ConfigError::InvalidJwks("no usable key".into()));
                }
                set
            }
            #[cfg(feature = "remote-jwks")]
            JwksSource::Remote(cfg) => {
                let url = cfg.url.clone().unwrap_or_else(|| join_url(&config.issuer, "/oauth2/jwks"));
                if !is_http_url(&url) {
                    return Err(ConfigError::InvalidUrl(url));
                }
                remote = Some(crate::jwks::RemoteKeys::new(url, cfg)?);
                KeySet::default()
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: config.issuer,
                audiences: config.audiences,
                leeway: i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX),
                allowed,
                required_scopes: config.required_scopes,
                realm,
                keys: ArcSwap::from_pointee(keys),
                #[cfg(feature = "remote-jwks")]
                remote,
                #[cfg(feature = "revocation-feed")]
                feed: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The `realm` used in RFC 6750 challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// Installs aws-lc-rs as the process-wide rustls crypto provider, if none is installed
    /// yet. The HTTP client uses aws-lc-rs anyway; call this at start-up when the host
    /// application also links another rustls provider (for example `ring`), where rustls
    /// cannot pick one by itself and would panic.
    ///
    /// ```
    /// tessera_verify::Verifier::install_crypto_provider();
    /// ```
    #[cfg(any(feature = "remote-jwks", feature = "revocation-feed"))]
    pub fn install_crypto_provider() {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing the race to another installer is fine: a provider is installed.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
    }

    /// Verifies an access token (the compact JWS, without the `Bearer ` prefix). On an
    /// unknown `kid` the JWKS is refetched once (at most once per
    /// [`RemoteJwks::min_refetch_interval`](crate::RemoteJwks::min_refetch_interval)).
    ///
    /// # Errors
    /// A [`VerifyError`] naming the first check that failed.
    ///
    /// ```no_run
    /// # async fn f(verifier: tessera_verify::Verifier, token: &str) {
    /// match verifier.verify(token).await {
    ///     Ok(claims) => println!("{} {}", claims.sub, claims.scope),
    ///     Err(e) => println!("refused: {}", e.reason()),
    /// }
    /// # }
    /// ```
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_with_scopes::<&str>(token, &[]).await
    }

    /// Like [`Verifier::verify`], additionally requiring `scopes` (on top of the configured
    /// [`VerifierConfig::required_scopes`]).
    ///
    /// # Errors
    /// A [`VerifyError`]; [`VerifyError::InsufficientScope`] lists the missing scopes.
    ///
    /// ```no_run
    /// # async fn f(verifier: tessera_verify::Verifier, token: &str) {
    /// let claims = verifier.verify_with_scopes(token, &["orders:write"]).await;
    /// # }
    /// ```
    pub async fn verify_with_scopes<S: AsRef<str>>(&self, token: &str, scopes: &[S]) -> Result<Claims, VerifyError> {
        let result = match self.check(token, scopes) {
            Err(VerifyError::UnknownKey | VerifyError::KeysUnavailable) if self.can_refetch() => {
                self.refetch_for_unknown_kid(jws::peek_kid(token).as_deref()).await;
                self.check(token, scopes)
            }
            other => other,
        };
        record(result)
    }

    /// Verifies with the keys already cached, without waiting for any fetch (an unknown
    /// `kid` is refused at once). Usable outside async code.
    ///
    /// # Errors
    /// A [`VerifyError`] naming the first check that failed.
    ///
    /// ```no_run
    /// # fn f(verifier: &tessera_verify::Verifier, token: &str) {
    /// let ok = verifier.verify_cached(token).is_ok();
    /// # }
    /// ```
    pub fn verify_cached(&self, token: &str) -> Result<Claims, VerifyError> {
        record(self.check::<&str>(token, &[]))
    }

    fn check<S: AsRef<str>>(&self, token: &str, scopes: &[S]) -> Result<Claims, VerifyError> {
        let (now, now_ms) = unix_now();
        self.maybe_refresh_in_background(now_ms);
        let keys = self.inner.keys.load();
        let raw = jws::verify_compact(token, &keys, self.inner.allowed, ACCESS_TOKEN_TYP, |payload| {
            serde_json::from_slice::<RawClaims>(payload).map_err(|_| VerifyError::Malformed)
        });
        let raw = match raw {
            Err(VerifyError::UnknownKey) if keys.len() == 0 => return Err(VerifyError::KeysUnavailable),
            other => other?,
        };
        let claims = self.check_claims(raw, now, scopes)?;
        #[cfg(feature = "revocation-feed")]
        if let Some(feed) = self.inner.feed.get() {
            feed.check(&claims)?;
        }
        Ok(claims)
    }

    fn check_claims<S: AsRef<str>>(&self, raw: RawClaims, now: i64, scopes: &[S]) -> Result<Claims, VerifyError> {
        let inner = &*self.inner;
        let iss = raw.iss.ok_or(VerifyError::MissingClaim("iss"))?;
        if iss != inner.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        let exp = NumericDate::seconds(raw.exp, "exp")?.ok_or(VerifyError::MissingClaim("exp"))?;
        let nbf = NumericDate::seconds(raw.nbf, "nbf")?;
        let iat = NumericDate::seconds(raw.iat, "iat")?;
        let auth_time = NumericDate::seconds(raw.auth_time, "auth_time")?;
        if now > exp.saturating_add(inner.leeway) {
            return Err(VerifyError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(inner.leeway)) {
            return Err(VerifyError::NotYetValid);
        }
        if iat.is_some_and(|iat| iat > now.saturating_add(inner.leeway)) {
            return Err(VerifyError::IssuedInFuture);
        }
        if raw.aud.is_empty() {
            return Err(VerifyError::MissingClaim("aud"));
        }
        if !raw.aud.iter().any(|a| inner.audiences.iter().any(|ok| ok == a)) {
            return Err(VerifyError::WrongAudience);
        }
        let sub = raw.sub.ok_or(VerifyError::MissingClaim("sub"))?;
        let scope = raw.scope.unwrap_or_default();
        let claims = Claims {
            iss,
            sub,
            aud: raw.aud,
            client_id: raw.client_id,
            scope,
            exp,
            iat,
            nbf,
            jti: raw.jti,
            sid: raw.sid,
            auth_time,
            amr: raw.amr.unwrap_or_default(),
        };
        let required = inner.required_scopes.iter().map(String::as_str).chain(scopes.iter().map(AsRef::as_ref));
        let mut missing = Vec::new();
        for s in required {
            if !claims.has_scope(s) && !missing.iter().any(|m: &String| m == s) {
                missing.push(s.to_owned());
            }
        }
        if !missing.is_empty() {
            return Err(VerifyError::InsufficientScope { missing });
        }
        Ok(claims)
    }

    /// Verifies a Security Event Token from the issuer (feed), returning its payload.
    #[cfg(feature = "revocation-feed")]
    pub(crate) fn check_set(&self, set: &str) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        let keys = self.inner.keys.load();
        jws::verify_compact(set, &keys, self.inner.allowed, "secevent+jwt", |payload| {
            serde_json::from_slice(payload).map_err(|_| VerifyError::Malformed)
        })
    }

    /// Fetches the JWKS now (for a remote key source; a static one is left as is), so that
    /// start-up fails fast when the issuer is unreachable.
    ///
    /// # Errors
    /// [`VerifyError::KeysUnavailable`] if the fetch failed (the previous keys stay in use).
    ///
    /// ```no_run
    /// # async fn f(verifier: tessera_verify::Verifier) {
    /// verifier.refresh_keys().await.expect("issuer reachable");
    /// # }
    /// ```
    pub async fn refresh_keys(&self) -> Result<(), VerifyError> {
        #[cfg(feature = "remote-jwks")]
        if let Some(remote) = &self.inner.remote {
            return remote.refresh(&self.inner.keys).await;
        }
        Ok(())
    }

    fn can_refetch(&self) -> bool {
        #[cfg(feature = "remote-jwks")]
        return self.inner.remote.is_some();
        #[cfg(not(feature = "remote-jwks"))]
        false
    }

    /// One rate-limited refetch on a `kid` miss.
    pub(crate) async fn refetch_for_unknown_kid(&self, kid: Option<&str>) {
        #[cfg(feature = "remote-jwks")]
        if let Some(remote) = &self.inner.remote {
            remote.refetch_for_unknown_kid(&self.inner.keys, kid).await;
        }
        #[cfg(not(feature = "remote-jwks"))]
        let _ = kid;
    }

    fn maybe_refresh_in_background(&self, now_ms: u64) {
        #[cfg(feature = "remote-jwks")]
        if let Some(remote) = &self.inner.remote
            && remote.needs_background_refresh(now_ms)
        {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let me = self.clone();
                rt.spawn(async move {
                    if let Some(remote) = &me.inner.remote {
                        let _ = remote.refresh(&me.inner.keys).await;
                        remote.background_refresh_done();
                    }
                });
            } else {
                remote.background_refresh_done();
            }
        }
        #[cfg(not(feature = "remote-jwks"))]
        let _ = now_ms;
    }
}

fn record(result: Result<Claims, VerifyError>) -> Result<Claims, VerifyError> {
    if let Err(e) = &result {
        metrics::counter!("tessera_verify_refusals_total", "reason" => e.reason()).increment(1);
        tracing::debug!(reason = e.reason(), "access token refused");
    }
    result
}
