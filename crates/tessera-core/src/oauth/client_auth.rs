//! Client authentication at the token, introspection and revocation endpoints (RFC 6749
//! §2.3, RFC 7523 `private_key_jwt`): exactly one method per request, the method the client
//! registered, secrets compared by hash, assertions parsed once and used once (`jti`).

use crate::jose::{self, JwsAlg, JwsError, UnverifiedJws};
use crate::oauth::OAuthError;
use crate::oauth::claims::audience;
use crate::oauth::client::{AuthMethod, Client};
use crate::oauth::config::paths;
use crate::oauth::context::OAuthContext;
use crate::secret::TokenHash;
use serde_json::Value;
use time::OffsetDateTime;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLOCK_LEEWAY: i64 = 60;

/// Client credentials as presented.
#[derive(Debug, Clone, Default)]
pub struct PresentedClient {
    /// From HTTP Basic: (client_id, secret), already form-decoded.
    pub basic: Option<(String, String)>,
    /// `client_id` form parameter.
    pub client_id: Option<String>,
    /// `client_secret` form parameter.
    pub client_secret: Option<String>,
    /// `client_assertion_type`.
    pub assertion_type: Option<String>,
    /// `client_assertion`.
    pub assertion: Option<String>,
}

/// The one credential a request presents, with the client id it names.
enum Credential<'a> {
    /// A secret, by HTTP Basic or in the form.
    Secret { id: String, method: AuthMethod, secret: &'a str },
    /// A signed assertion (parsed, not yet verified).
    Assertion { id: String, jws: UnverifiedJws },
    /// None: a public client names itself.
    Public { id: String },
}

impl<'a> Credential<'a> {
    /// Reads the credential of `p`: exactly one method.
    fn of(p: &'a PresentedClient) -> Result<Self, OAuthError> {
        let methods = [p.basic.is_some(), p.client_secret.is_some(), p.assertion.is_some()].iter().filter(|x| **x).count();
        if methods > 1 {
            return Err(OAuthError::request("use exactly one client authentication method"));
        }
        Ok(if let Some((id, secret)) = &p.basic {
            Credential::Secret { id: id.clone(), method: AuthMethod::ClientSecretBasic, secret }
        } else if let Some(secret) = &p.client_secret {
            let id = p.client_id.clone().ok_or_else(|| OAuthError::client("client_id is required"))?;
            Credential::Secret { id, method: AuthMethod::ClientSecretPost, secret }
        } else if let Some(assertion) = &p.assertion {
            if p.assertion_type.as_deref() != Some(ASSERTION_TYPE) {
                return Err(OAuthError::client("unsupported client_assertion_type"));
            }
            let jws = jose::parse(assertion).map_err(|_| OAuthError::client("client_assertion is not a JWT"))?;
            let iss = jws.claims.get("iss").and_then(Value::as_str).map(str::to_owned);
            let id = iss.or_else(|| p.client_id.clone()).ok_or_else(|| OAuthError::client("client_assertion lacks iss"))?;
            Credential::Assertion { id, jws }
        } else {
            Credential::Public { id: p.client_id.clone().ok_or_else(|| OAuthError::client("client authentication is required"))? }
        })
    }

    fn id(&self) -> &str {
        match self {
            Credential::Secret { id, .. } | Credential::Assertion { id, .. } | Credential::Public { id } => id,
        }
    }

    fn method(&self) -> AuthMethod {
        match self {
            Credential::Secret { method, .. } => *method,
            Credential::Assertion { .. } => AuthMethod::PrivateKeyJwt,
            Credential::Public { .. } => AuthMethod::None,
        }
    }
}

/// Authenticates the client of a request.
pub(crate) async fn authenticate(ctx: &OAuthContext, p: &PresentedClient) -> Result<Client, OAuthError> {
    let credential = Credential::of(p)?;
    if p.client_id.as_deref().is_some_and(|c| c != credential.id()) {
        return Err(OAuthError::client("client_id does not match the authenticated client"));
    }
    let unknown = || OAuthError::client("client authentication failed");
    let client = ctx.client(credential.id()).await?.ok_or_else(unknown)?;
    if client.auth_method != credential.method() {
        return Err(unknown());
    }
    match credential {
        Credential::Secret { secret, .. } => {
            if !client.secret_hash.is_some_and(|h| h == TokenHash::of(secret.as_bytes())) {
                return Err(unknown());
            }
        }
        Credential::Assertion { jws, .. } => verify_assertion(ctx, &client, jws).await?,
        Credential::Public { .. } => {}
    }
    Ok(client)
}

/// Verifies a `private_key_jwt` assertion: the client's key, `iss` = `sub` = the client,
/// an audience of this server, a bounded lifetime, and a `jti` not seen before.
async fn verify_assertion(ctx: &OAuthContext, client: &Client, jws: UnverifiedJws) -> Result<(), OAuthError> {
    let fail = |m: &str| OAuthError::client(m.to_owned());
    let claims = jws
        .verify(&client.verifying_keys(), &JwsAlg::ALL, None)
        .map_err(|e: JwsError| OAuthError::client(format!("client_assertion refused: {e}")))?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(client.id.as_str()) || s("sub") != Some(client.id.as_str()) {
        return Err(fail("client_assertion iss and sub must be the client_id"));
    }
    let c = &ctx.config;
    let accepted = [c.url(paths::TOKEN), c.issuer.clone(), c.url(paths::INTROSPECT), c.url(paths::REVOKE)];
    if !audience(&claims).iter().any(|a| accepted.contains(a)) {
        return Err(fail("client_assertion audience must be this server"));
    }
    let now = ctx.now().unix_timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| fail("client_assertion needs a numeric exp"))?;
    if exp > now.saturating_add(3600) || exp.saturating_add(CLOCK_LEEWAY) < now {
        return Err(fail("client_assertion is expired or lives too long"));
    }
    if let Some(nbf) = claims.get("nbf")
        && nbf.as_i64().is_none_or(|n| n > now + CLOCK_LEEWAY)
    {
        return Err(fail("client_assertion is not yet valid"));
    }
    if let Some(iat) = claims.get("iat") {
        let iat = iat.as_i64().ok_or_else(|| fail("client_assertion iat must be numeric"))?;
        if iat > now.saturating_add(CLOCK_LEEWAY) {
            return Err(fail("client_assertion was issued in the future"));
        }
    }
    let jti = s("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or_else(|| fail("client_assertion needs a jti"))?;
    let key = format!("{}\u{1f}{}", client.id, jti);
    let until = OffsetDateTime::from_unix_timestamp(exp + CLOCK_LEEWAY).unwrap_or_else(|_| ctx.now());
    if !ctx.store.record_assertion_jti(&key, until).await? {
        return Err(fail("client_assertion jti was already used"));
    }
    Ok(())
}
