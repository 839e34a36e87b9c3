//! Framework integration: a tower [`VerifyLayer`] and an axum extractor [`VerifiedClaims`].
//!
//! Refusals are answered per RFC 6750 §3: `401` with
//! `WWW-Authenticate: Bearer realm="…", error="invalid_token", error_description="…"`,
//! `401` with only `Bearer realm="…"` when the request carries no bearer token, `403` with
//! `error="insufficient_scope"` (and the missing `scope`) for missing scopes, and `503` when
//! the verifier cannot decide (keys or revocation feed unavailable).

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::verifier::Verifier;
use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::IntoResponse;
use http::header::{AUTHORIZATION, CACHE_CONTROL, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Request, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The bearer token of a request's `Authorization` header.
///
/// # Errors
/// [`VerifyError::MissingToken`] when there is no `Authorization: Bearer` header,
/// [`VerifyError::Malformed`] for several `Authorization` headers or an empty token.
///
/// ```
/// use http::HeaderMap;
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "Bearer abc.def.ghi".parse().unwrap());
/// assert_eq!(tessera_verify::bearer_token(&headers), Ok("abc.def.ghi"));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, VerifyError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(VerifyError::MissingToken)?;
    if values.next().is_some() {
        return Err(VerifyError::Malformed);
    }
    let value = value.to_str().map_err(|_| VerifyError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(VerifyError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(VerifyError::MissingToken); // another scheme: not ours to judge
    }
    let token = token.trim_matches(' ');
    if token.is_empty() || token.contains(' ') {
        return Err(VerifyError::Malformed);
    }
    Ok(token)
}

fn sanitize(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect()
}

/// The RFC 6750 response for a refusal, with any body type that has an empty default.
///
/// ```
/// use tessera_verify::{refusal_response, VerifyError};
/// let resp: http::Response<String> = refusal_response(&VerifyError::Expired, "api");
/// assert_eq!(resp.status(), 401);
/// assert_eq!(
///     resp.headers()["www-authenticate"],
///     r#"Bearer realm="api", error="invalid_token", error_description="the access token expired""#
/// );
/// ```
pub fn refusal_response<B: Default>(error: &VerifyError, realm: &str) -> Response<B> {
    let realm = sanitize(realm);
    let (status, challenge) = match error {
        VerifyError::MissingToken => (StatusCode::UNAUTHORIZED, Some(format!(r#"Bearer realm="{realm}""#))),
        VerifyError::InsufficientScope { missing } => {
            let scope = sanitize(&missing.join(" "));
            let challenge = format!(
                r#"Bearer realm="{realm}", error="insufficient_scope", error_description="{}", scope="{scope}""#,
                error.description()
            );
            (StatusCode::FORBIDDEN, Some(challenge))
        }
        e if e.is_unavailable() => (StatusCode::SERVICE_UNAVAILABLE, None),
        e => {
            let challenge = format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{}""#, e.description());
            (StatusCode::UNAUTHORIZED, Some(challenge))
        }
    };
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    if let Some(challenge) = challenge {
        let value = HeaderValue::from_str(&challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A tower layer that verifies `Authorization: Bearer` tokens, puts the verified [`Claims`]
/// into the request extensions, and answers refusals itself (see the module docs).
///
/// ```no_run
/// use axum::{Extension, Router, routing::get};
/// use tessera_verify::{Claims, VerifyLayer, Verifier, VerifierConfig};
///
/// # fn app() -> Result<Router, tessera_verify::ConfigError> {
/// let verifier = Verifier::new(VerifierConfig::new("https://id.example.com", ["https://api.example.com"]))?;
/// let app = Router::new()
///     .route("/orders", get(|Extension(claims): Extension<Claims>| async move { claims.sub }))
///     .layer(VerifyLayer::new(verifier).require_scopes(["orders:read"]));
/// # Ok(app) }
/// ```
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    verifier: Verifier,
    scopes: Arc<[String]>,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier, scopes: Arc::from(Vec::new()) }
    }

    /// Also requires these scopes (on top of the verifier's own required scopes); a token
    /// without them gets `403 insufficient_scope`.
    pub fn require_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect::<Vec<_>>().into();
        self
    }
}

impl<S> tower_layer::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService { inner, layer: self.clone() }
    }
}

/// The service built by [`VerifyLayer`].
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    layer: VerifyLayer,
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for VerifyService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone is not ready; the one that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let verified = match bearer_token(request.headers()) {
                Ok(token) => layer.verifier.verify_with_scopes(token, &layer.scopes).await,
                Err(e) => Err(e),
            };
            match verified {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(e) => Ok(refusal_response(&e, layer.verifier.realm())),
            }
        })
    }
}

/// An axum extractor of verified claims, usable with or without [`VerifyLayer`]: it takes
/// the claims the layer put into the extensions, or else verifies the bearer token itself
/// with the [`Verifier`] from the router state (`Verifier: FromRef<S>`).
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use tessera_verify::{VerifiedClaims, Verifier, VerifierConfig};
///
/// async fn me(VerifiedClaims(claims): VerifiedClaims) -> String {
///     claims.sub
/// }
///
/// # fn app() -> Result<Router, tessera_verify::ConfigError> {
/// let verifier = Verifier::new(VerifierConfig::new("https://id.example.com", ["https://api.example.com"]))?;
/// let app: Router = Router::new().route("/me", get(me)).with_state(verifier);
/// # Ok(app) }
/// ```
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub Claims);

impl<S> FromRequestParts<S> for VerifiedClaims
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims>() {
            return Ok(VerifiedClaims(claims.clone()));
        }
        let verifier = Verifier::from_ref(state);
        let rejection = |error| BearerRejection { error, realm: verifier.realm().to_owned() };
        let token = bearer_token(&parts.headers).map_err(rejection)?;
        let claims = verifier.verify(token).await.map_err(rejection)?;
        parts.extensions.insert(claims.clone());
        Ok(VerifiedClaims(claims))
    }
}

/// The rejection of [`VerifiedClaims`]: answered as RFC 6750 requires.
#[derive(Debug, Clone)]
pub struct BearerRejection {
    error: VerifyError,
    realm: String,
}

impl BearerRejection {
    /// Why the request was refused.
    pub fn error(&self) -> &VerifyError {
        &self.error
    }
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> axum_core::response::Response {
        refusal_response(&self.error, &self.realm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens_are_extracted_strictly() {
        assert_eq!(bearer_token(&headers(&["Bearer a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers(&["bearer  a.b.c"])), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers(&[])), Err(VerifyError::MissingToken));
        assert_eq!(bearer_token(&headers(&["Basic eA=="])), Err(VerifyError::MissingToken));
        assert_eq!(bearer_token(&headers(&["Bearer "])), Err(VerifyError::Malformed));
        assert_eq!(bearer_token(&headers(&["Bearer a b"])), Err(VerifyError::Malformed));
        assert_eq!(bearer_token(&headers(&["Bearer a", "Bearer b"])), Err(VerifyError::Malformed));
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let r: Response<()> = refusal_response(&VerifyError::MissingToken, "a\"pi");
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], r#"Bearer realm="api""#);
        let r: Response<()> = refusal_response(&VerifyError::InsufficientScope { missing: vec!["a".into(), "b".into()] }, "api");
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="insufficient_scope", error_description="the access token lacks a required scope", scope="a b""#
        );
        let r: Response<()> = refusal_response(&VerifyError::FeedUnavailable, "api");
        assert_eq!(r.status(), 503);
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
    }
}
