//! Sessions: establishing one after a completed authentication (a new session, or the same
//! user's session upgraded in place with a new id), resolving a session cookie, listing and
//! ending sessions.

use super::Accounts;
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::{SessionHandle, UserId};
use crate::secret::{SecretToken, TokenHash};
use crate::session::{NewSession, RequestContext, Session};
use crate::user::User;
use serde_json::json;

/// A freshly started session: the secret for the cookie and the stored record.
#[derive(Debug)]
pub struct StartedSession {
    /// The session id, to be put into the cookie only.
    pub token: SecretToken,
    /// The session record.
    pub session: Session,
    /// The signed-in user.
    pub user: User,
}

/// A request's signed-in user and session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user.
    pub user: User,
    /// The session.
    pub session: Session,
    /// Hash of the session id (to keep this session when ending others).
    pub id_hash: TokenHash,
}

impl Accounts {
    /// Starts a new session (always a new id: sign-in rotates the session id).
    pub(super) async fn start_session(&self, user: User, amr: Vec<String>, ctx: &RequestContext) -> Result<StartedSession, CoreError> {
        let now = self.clock.now();
        let token = SecretToken::generate()?;
        let session = Session {
            handle: SessionHandle::new(),
            user_id: user.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.absolute_timeout,
            auth_time: now,
            ip: ctx.ip.map(|i| i.to_string()),
            user_agent: ctx.user_agent.clone(),
            amr,
        };
        self.store.create_session(&NewSession { id_hash: token.hash(), session: session.clone() }).await?;
        Ok(StartedSession { token, session, user })
    }

    /// Records a completed authentication: upgrades `upgrade` (the same user's session) in
    /// place with a new id, or starts a new session.
    pub(super) async fn finish_sign_in(&self, user: User, amr: Vec<String>, upgrade: Option<&TokenHash>, ctx: &RequestContext) -> Result<StartedSession, CoreError> {
        if let Some(old) = upgrade {
            let token = SecretToken::generate()?;
            if let Some(session) = self.store.upgrade_session(user.id, old, &token.hash(), &amr, self.clock.now()).await? {
                return Ok(StartedSession { token, session, user });
            }
        }
        self.start_session(user, amr, ctx).await
    }

    /// Resolves a session cookie to its user and session; ends it if it has timed out.
    pub async fn authenticate(&self, token: &SecretToken, ctx: &RequestContext) -> Result<Authenticated, CoreError> {
        let id_hash = token.hash();
        let Some(mut session) = self.store.find_session(&id_hash).await? else {
            return Err(CoreError::Unauthenticated);
        };
        let now = self.clock.now();
        if !session.is_live(now, &self.policy) {
            if let Some((_, event)) = self.store.delete_session(&id_hash, now).await? {
                self.apply_events(&[event]).await;
            }
            return Err(CoreError::Unauthenticated);
        }
        let Some(user) = self.store.find_user_by_id(session.user_id).await? else {
            return Err(CoreError::Unauthenticated);
        };
        if user.disabled {
            return Err(CoreError::Unauthenticated);
        }
        if now - session.last_seen_at >= self.policy.touch_interval {
            let ip = ctx.ip.map(|i| i.to_string());
            self.store.touch_session(&id_hash, now, ip.as_deref(), ctx.user_agent.as_deref()).await?;
            session.last_seen_at = now;
            if ip.is_some() {
                session.ip = ip;
            }
            if ctx.user_agent.is_some() {
                session.user_agent = ctx.user_agent.clone();
            }
        }
        Ok(Authenticated { user, session, id_hash })
    }

    /// Signs out: ends the session the cookie names.
    pub async fn logout(&self, token: &SecretToken, ctx: &RequestContext) -> Result<(), CoreError> {
        if let Some((s, event)) = self.store.delete_session(&token.hash(), self.clock.now()).await? {
            self.audit.record(AuditKind::Logout, Some(s.user_id), ctx, json!({"session": s.handle})).await;
            self.apply_events(&[event]).await;
        }
        Ok(())
    }

    /// A user's sessions, newest first, without the timed-out ones.
    pub async fn list_sessions(&self, user_id: UserId) -> Result<Vec<Session>, CoreError> {
        let now = self.clock.now();
        let mut sessions = self.store.list_user_sessions(user_id).await?;
        sessions.retain(|s| s.is_live(now, &self.policy));
        Ok(sessions)
    }

    /// Ends one of the signed-in user's sessions.
    pub async fn end_session(&self, who: &Authenticated, handle: SessionHandle, ctx: &RequestContext) -> Result<(), CoreError> {
        self.require_recent(who)?;
        let Some(event) = self.store.delete_user_session(who.user.id, handle, self.clock.now()).await? else {
            return Err(CoreError::NotFound);
        };
        self.audit
            .record(AuditKind::SessionEnded, Some(who.user.id), ctx, json!({"session": handle, "by": "user"}))
            .await;
        self.apply_events(&[event]).await;
        Ok(())
    }

    /// Ends every session of a user (administrator action).
    pub async fn end_all_sessions(&self, user_id: UserId, ctx: &RequestContext) -> Result<u64, CoreError> {
        let (n, event) = self.store.delete_user_sessions(user_id, self.clock.now()).await?;
        self.audit
            .record(AuditKind::SessionEnded, Some(user_id), ctx, json!({"sessions": n, "by": "admin"}))
            .await;
        self.apply_events(&[event]).await;
        Ok(n)
    }

    /// Deletes timed-out sessions (their grants are revoked through the outbox), and lapsed
    /// pending sign-ins and WebAuthn ceremonies; run periodically. Returns how many records
    /// went.
    pub async fn purge_expired_sessions(&self) -> Result<u64, CoreError> {
        let now = self.clock.now();
        let mfa = self.store.purge_expired_mfa(now).await?;
        let ended = self.store.delete_expired_sessions(now, now - self.policy.idle_timeout).await?;
        self.apply_events(&ended).await;
        Ok(u64::try_from(ended.len()).unwrap_or(u64::MAX) + mfa)
    }
}
