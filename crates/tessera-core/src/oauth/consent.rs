//! Consent bound to the authorization decision. When the authorization decision finds that the
//! user must consent, it stores the request in a pending-consent record (random handle,
//! SHA-256 stored, ten minutes, bound to the session and the client) and the consent form
//! carries only the handle. Answering takes the record once (`DELETE … RETURNING`, only for
//! the session it was made for), validates the request again and decides again, so the
//! consent endpoint cannot issue a code the authorization endpoint would not.

use crate::accounts::Authenticated;
use crate::ids::{SessionHandle, UserId};
use crate::oauth::OAuthError;
use crate::oauth::client::ClientId;
use crate::oauth::authorize::decide::{Decision, assess, issue_code};
use crate::oauth::authorize::validate::validate;
use crate::oauth::authorize::{AuthorizationRequest, AuthorizationResponse, AuthorizeError, AuthorizeParams};
use crate::oauth::context::OAuthContext;
use crate::oauth::scope::Scopes;
use crate::secret::{SecretToken, TokenHash};
use crate::error::StoreError;
use time::{Duration, OffsetDateTime};

/// How long a consent screen may wait for its answer.
pub const CONSENT_TTL: Duration = Duration::minutes(10);

/// A consent screen waiting for the user's answer, stored under the hash of its handle.
#[derive(Debug, Clone)]
pub struct PendingConsent {
    /// SHA-256 of the handle.
    pub hash: TokenHash,
    /// The session it was shown in (only that session may answer).
    pub sid: SessionHandle,
    /// The signed-in user.
    pub user_id: UserId,
    /// The client asking.
    pub client_id: ClientId,
    /// The authorization request, as validated when the screen was shown.
    pub request: AuthorizeParams,
    /// Shown at.
    pub created_at: OffsetDateTime,
    /// Lapses at.
    pub expires_at: OffsetDateTime,
}

/// Storage of pending consents. Single use is the database's: a record is taken with
/// `DELETE … RETURNING`.
#[async_trait::async_trait]
pub trait ConsentStore: Send + Sync + 'static {
    /// Stores a pending consent.
    async fn create_pending_consent(&self, consent: &PendingConsent) -> Result<(), StoreError>;
    /// Uses up the pending consent with this hash if it was made for session `sid` and has
    /// not lapsed: exactly one caller gets it; another session's attempt leaves it in place.
    async fn take_pending_consent(&self, hash: &TokenHash, sid: SessionHandle, now: OffsetDateTime) -> Result<Option<PendingConsent>, StoreError>;
    /// Deletes lapsed pending consents.
    async fn purge_expired_consents(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The handle of a consent screen, for its form (shown once, never stored).
#[derive(Debug)]
pub struct ConsentTicket(SecretToken);

impl ConsentTicket {
    /// The value of the form's hidden `consent` field.
    pub fn handle(&self) -> &str {
        self.0.expose()
    }
}

/// What answering a consent screen leads to.
#[derive(Debug)]
pub enum ConsentOutcome {
    /// Deliver this to the client: a code, or an error (`access_denied`, or a request that
    /// is no longer valid).
    Respond(AuthorizationResponse),
    /// The session no longer satisfies the request (e.g. `max_age` has passed): send the
    /// browser back to the authorization endpoint with these parameters to decide again.
    Reauthorize(Vec<(String, String)>),
    /// No consent screen of this session has this handle (tampered, answered already,
    /// lapsed, another session's or another client's): show this, issue nothing.
    Refused(String),
}

const REFUSED: &str = "This consent form has expired or was already answered. Go back to the application and try again.";

/// Stores the pending consent for a request the decision sent to the consent screen.
pub(crate) async fn begin_consent(ctx: &OAuthContext, req: &AuthorizationRequest, who: &Authenticated) -> Result<ConsentTicket, OAuthError> {
    let now = ctx.now();
    let handle = SecretToken::generate()?;
    let record = PendingConsent {
        hash: handle.hash(),
        sid: who.session.handle,
        user_id: who.user.id,
        client_id: req.client.id.clone(),
        request: req.params.clone(),
        created_at: now,
        expires_at: now + CONSENT_TTL,
    };
    ctx.store.create_pending_consent(&record).await?;
    Ok(ConsentTicket(handle))
}

/// The user answered the consent screen with this handle. The record is used up first
/// (whatever the answer), then the request is validated and decided again as if the
/// user had just consented; only a request that still passes every check gets a code.
pub(crate) async fn give_consent(ctx: &OAuthContext, handle: &str, who: &Authenticated, approved: bool) -> Result<ConsentOutcome, OAuthError> {
    let refused = || Ok(ConsentOutcome::Refused(REFUSED.to_owned()));
    let Some(handle) = SecretToken::from_client(handle) else { return refused() };
    let now = ctx.now();
    let Some(record) = ctx.store.take_pending_consent(&handle.hash(), who.session.handle, now).await? else {
        return refused();
    };
    if record.user_id != who.user.id {
        return refused();
    }
    let req = match validate(ctx, &record.request).await {
        Ok(r) => r,
        Err(AuthorizeError::Untrusted(msg)) => return Ok(ConsentOutcome::Refused(msg)),
        Err(AuthorizeError::Redirect(resp)) => return Ok(ConsentOutcome::Respond(resp)),
        Err(AuthorizeError::Unavailable) => {
            return Err(OAuthError::TemporarilyUnavailable("the database is out of reach".into()));
        }
    };
    if req.client.id != record.client_id {
        return refused();
    }
    let reply = req.reply_to();
    if !approved {
        return Ok(ConsentOutcome::Respond(reply.error(&ctx.config, &OAuthError::AccessDenied("the user denied the request".into()))));
    }
    match assess(ctx, &req, who, true).await {
        Ok(Decision::Issue) => {}
        Ok(Decision::Login | Decision::StepUp(_)) => return Ok(ConsentOutcome::Reauthorize(request_pairs(&record.request))),
        Ok(Decision::Consent) => return refused(),
        Err(e @ OAuthError::ServerError(_)) => return Err(e),
        Err(e) => return Ok(ConsentOutcome::Respond(reply.error(&ctx.config, &e))),
    }
    let previous = ctx.store.find_consent(who.user.id, &req.client.id).await?;
    let merged = match previous.as_deref().map(Scopes::parse) {
        Some(Ok(p)) => p.union(&req.scope),
        _ => req.scope.clone(),
    };
    ctx.store.save_consent(who.user.id, &req.client.id, &merged.to_string(), now).await?;
    Ok(ConsentOutcome::Respond(issue_code(ctx, &req, who).await?))
}

/// The parameters of an authorization request, to send it to the authorization endpoint again.
pub fn request_pairs(p: &AuthorizeParams) -> Vec<(String, String)> {
    let singles = [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
        ("prompt", &p.prompt),
        ("max_age", &p.max_age),
        ("id_token_hint", &p.id_token_hint),
        ("login_hint", &p.login_hint),
        ("response_mode", &p.response_mode),
        ("acr_values", &p.acr_values),
        ("ui_locales", &p.ui_locales),
        ("display", &p.display),
        ("request", &p.request),
        ("request_uri", &p.request_uri),
        ("claims", &p.claims),
    ];
    let mut out: Vec<(String, String)> =
        singles.into_iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone()))).collect();
    out.extend(p.resource.iter().map(|r| ("resource".to_owned(), r.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_pairs_keep_every_parameter() {
        let p = AuthorizeParams {
            client_id: Some("c".into()),
            max_age: Some("0".into()),
            resource: vec!["https://a".into(), "https://b".into()],
            ..Default::default()
        };
        let pairs = request_pairs(&p);
        assert_eq!(pairs.len(), 4);
        assert!(pairs.contains(&("max_age".into(), "0".into())));
        assert_eq!(pairs.iter().filter(|(k, _)| k == "resource").count(), 2);
    }
}
