//! Logout. RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a request ends the
//! signed-in session without asking only when its `id_token_hint` is ours, unexpired, names
//! the signed-in user, and the request names a registered `post_logout_redirect_uri`;
//! anything else (no hint, an expired or foreign one, another user's) is confirmed by the
//! user on a CSRF-protected form, so a cross-site GET alone never signs anyone out.
//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when grants end, a signed
//! logout token is queued for each client (and session) that registered a URI; the
//! binary's delivery worker sends them.

use crate::ids::UserId;
use crate::oauth::OAuthError;
use crate::oauth::client::ClientId;
use crate::oauth::context::OAuthContext;
use crate::oauth::id_token_hint::IdTokenHint;
use crate::oauth::mint::random_id;
use crate::oauth::model::{Grant, LogoutDelivery};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use time::Duration;

/// What RP-initiated logout should do.
#[derive(Debug)]
pub enum EndSession {
    /// Sign out, then redirect here (with `state`).
    SignOutAndRedirect {
        /// Where to go.
        uri: String,
        /// `state`.
        state: Option<String>,
    },
    /// Ask the user first (no fresh `id_token_hint` about the signed-in user); redirect target if the request named one validly.
    Confirm {
        /// Validated redirect, if any.
        redirect: Option<(String, Option<String>)>,
    },
}

/// What a verified `id_token_hint` says about logout.
struct Hint {
    /// The client it was issued to.
    aud: String,
    /// Its subject.
    sub: Option<String>,
    /// Whether it has not expired.
    fresh: bool,
}

/// Reads an `id_token_hint`: our signature and issuer, a single audience.
fn logout_hint(ctx: &OAuthContext, token: &str) -> Option<Hint> {
    let hint = IdTokenHint::verify(token, &ctx.keys.current(), &ctx.config)?;
    let aud = hint.single_audience()?.to_owned();
    let fresh = hint.exp().is_some_and(|exp| exp > ctx.now().unix_timestamp());
    Some(Hint { aud, sub: hint.sub().map(str::to_owned), fresh })
}

/// Decides RP-initiated logout for `signed_in` (the user of the request's session, if
/// any): sign out and redirect only for a fresh hint about that user and a registered
/// redirect; otherwise ask the user (with the validated redirect, if any).
pub(crate) async fn end_session(
    ctx: &OAuthContext,
    id_token_hint: Option<&str>,
    client_id: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
    signed_in: Option<UserId>,
) -> Result<EndSession, OAuthError> {
    let hint = match id_token_hint {
        Some(h) => match logout_hint(ctx, h) {
            Some(hint) => Some(hint),
            None => return Ok(EndSession::Confirm { redirect: None }),
        },
        None => None,
    };
    let client_id = match (hint.as_ref().map(|h| h.aud.as_str()), client_id) {
        (Some(a), Some(c)) if a != c => return Err(OAuthError::request("client_id does not match the id_token_hint")),
        (Some(a), _) => Some(a.to_owned()),
        (None, c) => c.map(str::to_owned),
    };
    let redirect = match (post_logout_redirect_uri, client_id) {
        (Some(uri), Some(cid)) => match ctx.store.find_client(&ClientId::new(cid)).await? {
            Some(c) if c.post_logout_redirect_uris.iter().any(|u| u == uri) => Some((uri.to_owned(), state.map(str::to_owned))),
            _ => None,
        },
        _ => None,
    };
    let about_signed_in = |h: &Hint| match signed_in {
        Some(user) => h.sub.as_deref() == Some(user.to_string().as_str()),
        None => true,
    };
    match (hint, redirect) {
        (Some(h), Some((uri, state))) if h.fresh && about_signed_in(&h) => Ok(EndSession::SignOutAndRedirect { uri, state }),
        (_, redirect) => Ok(EndSession::Confirm { redirect }),
    }
}

/// The claims of a logout token (Back-Channel Logout §2.4).
#[derive(Serialize)]
struct LogoutTokenClaims<'a> {
    iss: &'a str,
    aud: &'a ClientId,
    iat: i64,
    exp: i64,
    jti: String,
    sub: String,
    events: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// Queues signed logout tokens for the clients of `grants` that registered a back-channel
/// logout URI (one per client and session).
pub(crate) async fn notify_backchannel(ctx: &OAuthContext, grants: &[Grant]) -> Result<(), OAuthError> {
    let now = ctx.now();
    let mut deliveries = Vec::new();
    let mut seen = HashSet::new();
    for g in grants {
        if !seen.insert((g.client_id.clone(), g.sid)) {
            continue;
        }
        let Some(client) = ctx.store.find_client(&g.client_id).await? else { continue };
        let Some(uri) = client.backchannel_logout_uri.clone() else { continue };
        let claims = LogoutTokenClaims {
            iss: &ctx.config.issuer,
            aud: &client.id,
            iat: now.unix_timestamp(),
            exp: (now + Duration::minutes(2)).unix_timestamp(),
            jti: random_id()?,
            sub: g.user_id.to_string(),
            events: json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
            sid: g.sid.map(|s| s.to_string()),
        };
        let token = ctx.keys.current().signer(client.id_token_alg)?.sign_jwt("logout+jwt", &claims)?;
        deliveries.push(LogoutDelivery {
            id: uuid::Uuid::now_v7(),
            client_id: client.id.clone(),
            uri,
            logout_token: token,
            attempts: 0,
            next_attempt_at: now,
        });
    }
    if !deliveries.is_empty() {
        ctx.store.enqueue_logout_deliveries(&deliveries).await?;
    }
    Ok(())
}
