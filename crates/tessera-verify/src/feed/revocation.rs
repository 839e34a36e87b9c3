//! Security events (CAEP-style, RFC 8417 SETs) and the in-memory revocation state they build.

use crate::claims::Claims;
use crate::error::{RevocationReason, VerifyError};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// CAEP session revoked.
pub(crate) const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// CAEP credential change.
pub(crate) const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// Tessera token revocation.
pub(crate) const TOKEN_REVOKED: &str = "urn:tessera:event-type:token-revoked";

/// One event from a verified SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecurityEvent {
    /// Refuse tokens with this `sid`.
    SessionRevoked { sid: String, at: i64 },
    /// Refuse tokens of `sub` issued at or before `at`.
    SubjectRevoked { sub: String, at: i64, kind: &'static str },
    /// Refuse the token with this `jti`.
    TokenRevoked { jti: String, at: i64 },
    /// An event type this crate does not act on.
    Unknown,
}

impl SecurityEvent {
    /// Label for the `type` of `tessera_verify_events_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            SecurityEvent::SessionRevoked { .. } => "session-revoked",
            SecurityEvent::SubjectRevoked { kind, .. } => kind,
            SecurityEvent::TokenRevoked { .. } => "token-revoked",
            SecurityEvent::Unknown => "unknown",
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

fn seconds(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX))).or_else(|| v.as_f64().map(|f| f as i64))
}

/// Checks a SET's claims (the signature and `typ` were checked already) and extracts its one
/// event.
pub(crate) fn parse_set(claims: &Map<String, Value>, issuer: &str, client_id: &str) -> Result<SecurityEvent, &'static str> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err("wrong issuer");
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err("wrong audience");
    }
    let iat = seconds(claims.get("iat")).ok_or("missing or non-numeric iat")?;
    if !claims.get("jti").is_some_and(Value::is_string) {
        return Err("missing jti");
    }
    let events = claims.get("events").and_then(Value::as_object).ok_or("missing events")?;
    let mut members = events.iter();
    let (Some((event_type, body)), None) = (members.next(), members.next()) else {
        return Err("events must have exactly one member");
    };
    let at = match body.get("event_timestamp") {
        None => iat,
        Some(v) => seconds(Some(v)).ok_or("non-numeric event_timestamp")?,
    };
    let subject = body.get("subject");
    match event_type.as_str() {
        SESSION_REVOKED => {
            let subject = subject.ok_or("missing subject")?;
            if let Some(sid) = str_at(subject, &["session", "id"]) {
                Ok(SecurityEvent::SessionRevoked { sid: sid.to_owned(), at })
            } else if let Some(sub) = str_at(subject, &["user", "id"]) {
                Ok(SecurityEvent::SubjectRevoked { sub: sub.to_owned(), at, kind: "session-revoked" })
            } else {
                Err("session-revoked subject has neither session nor user")
            }
        }
        CREDENTIAL_CHANGE => {
            let sub = subject.and_then(|s| str_at(s, &["user", "id"])).ok_or("credential-change subject has no user")?;
            Ok(SecurityEvent::SubjectRevoked { sub: sub.to_owned(), at, kind: "credential-change" })
        }
        TOKEN_REVOKED => {
            let jti = subject.and_then(|s| str_at(s, &["id"])).ok_or("token-revoked subject has no id")?;
            Ok(SecurityEvent::TokenRevoked { jti: jti.to_owned(), at })
        }
        _ => Ok(SecurityEvent::Unknown),
    }
}

/// What is revoked, each entry with the Unix time after which it can be forgotten (every
/// token it could refuse has expired by then).
#[derive(Debug, Default)]
pub(crate) struct RevocationState {
    sessions: HashMap<String, i64>,
    /// sub → (refuse tokens with `iat` ≤ this, forget after).
    subjects: HashMap<String, (i64, i64)>,
    tokens: HashMap<String, i64>,
}

impl RevocationState {
    pub(crate) fn len(&self) -> usize {
        self.sessions.len() + self.subjects.len() + self.tokens.len()
    }

    /// Applies an event received at `now`; `keep` is the longest token lifetime plus leeway.
    pub(crate) fn apply(&mut self, event: &SecurityEvent, now: i64, keep: i64) {
        match event {
            SecurityEvent::SessionRevoked { sid, at } => {
                let forget = (*at).max(now).saturating_add(keep);
                let e = self.sessions.entry(sid.clone()).or_insert(forget);
                *e = (*e).max(forget);
            }
            SecurityEvent::SubjectRevoked { sub, at, .. } => {
                let forget = (*at).max(now).saturating_add(keep);
                let e = self.subjects.entry(sub.clone()).or_insert((*at, forget));
                *e = (e.0.max(*at), e.1.max(forget));
            }
            SecurityEvent::TokenRevoked { jti, at } => {
                let forget = (*at).max(now).saturating_add(keep);
                let e = self.tokens.entry(jti.clone()).or_insert(forget);
                *e = (*e).max(forget);
            }
            SecurityEvent::Unknown => {}
        }
    }

    /// Forgets entries whose tokens have all expired.
    pub(crate) fn prune(&mut self, now: i64) {
        self.sessions.retain(|_, forget| *forget >= now);
        self.subjects.retain(|_, (_, forget)| *forget >= now);
        self.tokens.retain(|_, forget| *forget >= now);
    }

    /// Refuses a revoked token.
    pub(crate) fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        if let Some(sid) = &claims.sid
            && self.sessions.contains_key(sid)
        {
            return Err(VerifyError::Revoked(RevocationReason::Session));
        }
        if let Some(jti) = &claims.jti
            && self.tokens.contains_key(jti)
        {
            return Err(VerifyError::Revoked(RevocationReason::Token));
        }
        if let Some((until, _)) = self.subjects.get(&claims.sub) {
            // A token without `iat` cannot show it was issued after the revocation.
            if claims.iat.is_none_or(|iat| iat <= *until) {
                return Err(VerifyError::Revoked(RevocationReason::Subject));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(events: Value) -> Map<String, Value> {
        let v = json!({"iss": "https://id", "aud": "rs", "iat": 100, "jti": "e1", "events": events});
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn parses_the_three_event_types() {
        let s = set(json!({SESSION_REVOKED: {"subject": {"format":"complex","user":{"format":"opaque","id":"u1"},"session":{"format":"opaque","id":"s1"}}, "event_timestamp": 90}}));
        assert_eq!(parse_set(&s, "https://id", "rs"), Ok(SecurityEvent::SessionRevoked { sid: "s1".into(), at: 90 }));
        let s = set(json!({SESSION_REVOKED: {"subject": {"format":"complex","user":{"format":"opaque","id":"u1"}}, "event_timestamp": 90}}));
        assert_eq!(parse_set(&s, "https://id", "rs"), Ok(SecurityEvent::SubjectRevoked { sub: "u1".into(), at: 90, kind: "session-revoked" }));
        let s = set(json!({CREDENTIAL_CHANGE: {"subject": {"format":"complex","user":{"format":"opaque","id":"u2"}}, "credential_type":"password","change_type":"update"}}));
        assert_eq!(parse_set(&s, "https://id", "rs"), Ok(SecurityEvent::SubjectRevoked { sub: "u2".into(), at: 100, kind: "credential-change" }));
        let s = set(json!({TOKEN_REVOKED: {"subject": {"format":"opaque","id":"t9"}, "event_timestamp": 95}}));
        assert_eq!(parse_set(&s, "https://id", "rs"), Ok(SecurityEvent::TokenRevoked { jti: "t9".into(), at: 95 }));
        let s = set(json!({"urn:other": {}}));
        assert_eq!(parse_set(&s, "https://id", "rs"), Ok(SecurityEvent::Unknown));
    }

    #[test]
    fn refuses_wrong_issuer_audience_and_event_count() {
        let s = set(json!({TOKEN_REVOKED: {"subject": {"format":"opaque","id":"t9"}}}));
        assert!(parse_set(&s, "https://other", "rs").is_err());
        assert!(parse_set(&s, "https://id", "other").is_err());
        let two = set(json!({TOKEN_REVOKED: {"subject": {"id":"t"}}, CREDENTIAL_CHANGE: {"subject": {"user":{"id":"u"}}}}));
        assert!(parse_set(&two, "https://id", "rs").is_err());
        assert!(parse_set(&set(json!({})), "https://id", "rs").is_err());
    }

    #[test]
    fn subject_revocation_spares_later_tokens_and_entries_expire() {
        let mut st = RevocationState::default();
        st.apply(&SecurityEvent::SubjectRevoked { sub: "u".into(), at: 1000, kind: "credential-change" }, 1000, 3600);
        let mut c = Claims::example();
        c.sub = "u".into();
        c.iat = Some(1000);
        assert_eq!(st.check(&c), Err(VerifyError::Revoked(RevocationReason::Subject)));
        c.iat = Some(1001);
        assert_eq!(st.check(&c), Ok(()));
        st.prune(4600);
        assert_eq!(st.len(), 1);
        st.prune(4601);
        assert_eq!(st.len(), 0);
    }
}
