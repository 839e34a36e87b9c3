//! What the provider does when sessions end (told by the account flows): revoke their
//! grants, record the security event, queue back-channel logout tokens.

use super::Provider;
use crate::ids::{SessionHandle, UserId};
use crate::oauth::OAuthError;
use crate::oauth::logout;
use crate::oauth::model::{Grant, NewSecurityEvent, SecurityEventKind};

/// Which sessions ended, for revoking their grants, telling clients (back-channel logout)
/// and publishing security events (revocation feed).
#[derive(Debug, Clone, Copy)]
pub enum SessionsEnded {
    /// One session.
    One(UserId, SessionHandle),
    /// Every session of a user (ended by an administrator, or the user was disabled).
    All(UserId),
    /// The user's credentials changed: every grant is revoked and earlier tokens are void.
    CredentialsChanged(UserId),
}

/// Receives notice of ended sessions from the account flows.
#[async_trait::async_trait]
pub trait SessionObserver: Send + Sync + 'static {
    /// Sessions ended.
    async fn sessions_ended(&self, ended: SessionsEnded);
    /// These grants were revoked (with their security events) by the store already.
    async fn grants_revoked(&self, grants: &[Grant]);
}

impl Provider {
    /// Queues signed logout tokens for the clients of `grants` that registered a
    /// back-channel logout URI.
    async fn notify_backchannel(&self, grants: &[Grant]) -> Result<(), OAuthError> {
        logout::notify_backchannel(&self.inner, grants).await
    }
}

#[async_trait::async_trait]
impl SessionObserver for Provider {
    async fn grants_revoked(&self, grants: &[Grant]) {
        if let Err(e) = self.notify_backchannel(grants).await {
            tracing::error!(error = %e, "back-channel logout could not be queued");
        }
    }
    async fn sessions_ended(&self, ended: SessionsEnded) {
        let now = self.now();
        let (revoked, event) = match ended {
            SessionsEnded::One(user, sid) => (
                self.inner.store.revoke_session_grants(sid, now).await,
                NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: user.to_string(), session: Some(sid.to_string()) },
            ),
            SessionsEnded::All(user) => (
                self.inner.store.revoke_user_grants(user, now).await,
                NewSecurityEvent { kind: SecurityEventKind::SessionRevoked, subject: user.to_string(), session: None },
            ),
            SessionsEnded::CredentialsChanged(user) => (
                self.inner.store.revoke_user_grants(user, now).await,
                NewSecurityEvent { kind: SecurityEventKind::CredentialChange, subject: user.to_string(), session: None },
            ),
        };
        if let Err(e) = self.inner.store.append_security_events(std::slice::from_ref(&event), now).await {
            tracing::error!(error = %e, "security event could not be recorded");
        }
        match revoked {
            Ok(grants) => {
                if let Err(e) = self.notify_backchannel(&grants).await {
                    tracing::error!(error = %e, "back-channel logout could not be queued");
                }
            }
            Err(e) => tracing::error!(error = %e, "grants of ended sessions could not be revoked"),
        }
    }
}
