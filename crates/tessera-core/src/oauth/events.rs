//! The revocation feed's Security Event Tokens (RFC 8417, CAEP): the event types, the
//! `events` claim of each stored event, and the feed a client reads — the events that
//! concern it ([`super::visibility`]), each signed for it.

use crate::jose::JwsAlg;
use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::context::OAuthContext;
use crate::oauth::mint::random_id;
use crate::oauth::model::{SecurityEvent, SecurityEventKind};
use crate::oauth::visibility::may_see_token;
use serde_json::{Value, json};
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

/// CAEP event URIs.
pub mod event_types {
    /// CAEP session revoked.
    pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    /// CAEP credential change.
    pub const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
    /// Tessera: one access token revoked.
    pub const TOKEN_REVOKED: &str = "urn:tessera:event-type:token-revoked";
}

/// The `events` claim of a Security Event Token.
fn event_body(e: &SecurityEvent) -> Value {
    let ts = e.at.unix_timestamp();
    let user = json!({"format": "opaque", "id": e.subject});
    match e.kind {
        SecurityEventKind::SessionRevoked => {
            let subject = match &e.session {
                Some(sid) => json!({"format": "complex", "user": user, "session": {"format": "opaque", "id": sid}}),
                None => json!({"format": "complex", "user": user}),
            };
            json!({event_types::SESSION_REVOKED: {"subject": subject, "event_timestamp": ts}})
        }
        SecurityEventKind::CredentialChange => json!({event_types::CREDENTIAL_CHANGE: {
            "subject": {"format": "complex", "user": user},
            "credential_type": "password",
            "change_type": "update",
            "event_timestamp": ts,
        }}),
        SecurityEventKind::TokenRevoked => json!({event_types::TOKEN_REVOKED: {
            "subject": {"format": "opaque", "id": e.subject},
            "event_timestamp": ts,
        }}),
    }
}

/// A batch of the revocation feed for one subscriber.
#[derive(Debug, Default)]
pub struct FeedBatch {
    /// Visible events: (sequence number, signed Security Event Token).
    pub events: Vec<(i64, String)>,
    /// The last sequence number read (visible or not): where the next read starts.
    pub cursor: Option<i64>,
}

/// Security events after `after` that concern `client`, each as (sequence number, signed
/// Security Event Token). Without `after`, replays the window in which tokens issued
/// before the subscription may still be valid.
pub(crate) async fn feed(ctx: &OAuthContext, client: &Client, after: Option<i64>, limit: u32) -> Result<FeedBatch, OAuthError> {
    let now = ctx.now();
    let config = &ctx.config;
    let since = match after {
        Some(_) => OffsetDateTime::UNIX_EPOCH,
        None => now - config.access_token_ttl.max(config.id_token_ttl) - Duration::minutes(5),
    };
    let events = ctx.store.security_events_after(after.unwrap_or(0), since, limit).await?;
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(FeedBatch { events: Vec::new(), cursor: after });
    };
    let mut visible: HashMap<i64, bool> = HashMap::new();
    if !client.introspection {
        for p in ctx.store.security_event_parties(first.seq.saturating_sub(1), last.seq).await? {
            let seen = visible.entry(p.seq).or_default();
            *seen = *seen || may_see_token(client, p.client_id.as_str(), &p.audience);
        }
    }
    let keys = ctx.keys.current();
    let signer = keys.signer(JwsAlg::EdDSA)?;
    let mut out = Vec::with_capacity(events.len());
    for e in events.iter().filter(|e| client.introspection || visible.get(&e.seq).copied().unwrap_or(false)) {
        let set = json!({
            "iss": config.issuer,
            "aud": client.id,
            "iat": now.unix_timestamp(),
            "jti": random_id()?,
            "events": event_body(e),
        });
        out.push((e.seq, signer.sign_jwt("secevent+jwt", &set)?));
    }
    Ok(FeedBatch { events: out, cursor: Some(last.seq) })
}
