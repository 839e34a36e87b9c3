//! Password reset ("Forgot password?"). Asking answers the same whether or not the address
//! is known (only a known, enabled account with an address gets a mail); requests are
//! throttled per address (silently: no mail beyond the limit) and per IP (`Throttled`). The
//! link works once, for 15 minutes by default, and only in the browser that asked; using it
//! sets the password, ends every session of the user and revokes their grants (through the
//! credentials-changed outbox event, like a password change).

use super::{EmailFlows, RESET_PATH};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::mail::Letter;
use crate::mail::challenge::{ChallengePurpose, NewChallenge};
use crate::secret::{Password, SecretToken, TokenHash, constant_time_eq};
use crate::session::RequestContext;
use serde_json::json;

/// What the browser opening a reset link may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Choose a new password (the link is live and this is the browser that asked).
    Ready,
    /// The link is live but was asked for in another browser: it works only there.
    OtherBrowser,
    /// Unknown, used or expired.
    Unusable,
}

/// The message for a link that is unknown, used or expired.
pub const LINK_UNUSABLE: &str = "This link has expired or has already been used. Please ask for a new one.";
/// The message for a link opened in another browser than the one that asked for it.
pub const LINK_OTHER_BROWSER: &str = "Open this link in the browser where you asked for it (it works only there), or ask for a new one here.";

impl EmailFlows {
    /// Asks for a password reset for `address` (an e-mail address or username) from the
    /// browser whose binding cookie hashes to `browser`. `Ok` whether or not a mail is sent;
    /// [`CoreError::Throttled`] only for too many requests from one IP.
    pub async fn request_password_reset(&self, address: &str, browser: &TokenHash, ctx: &RequestContext) -> Result<(), CoreError> {
        let Some((user, email)) = self.recipient(ChallengePurpose::PasswordReset, address, ctx).await? else { return Ok(()) };
        let now = self.deps.clock.now();
        let token = SecretToken::generate()?;
        let letter = Letter::PasswordReset { link: self.link(RESET_PATH, &token), minutes: self.reset_lifetime.whole_minutes() };
        let challenge = NewChallenge {
            hash: token.hash(),
            purpose: ChallengePurpose::PasswordReset,
            user_id: user.id,
            email: email.as_str().to_owned(),
            browser: *browser,
            code: None,
            created_at: now,
            expires_at: now + self.reset_lifetime,
        };
        self.queue_challenge(&email, &letter, &challenge).await
    }

    /// What a `GET` of a reset link shows; uses nothing up.
    pub async fn open_password_reset(&self, token: &str, browser: Option<&TokenHash>) -> Result<LinkState, CoreError> {
        let Some(token) = SecretToken::from_client(token) else { return Ok(LinkState::Unusable) };
        let Some(c) = self.deps.challenges.find_challenge(&token.hash(), self.deps.clock.now()).await? else {
            return Ok(LinkState::Unusable);
        };
        if c.purpose != ChallengePurpose::PasswordReset {
            return Ok(LinkState::Unusable);
        }
        Ok(match browser {
            Some(b) if constant_time_eq(b.as_bytes(), c.browser.as_bytes()) => LinkState::Ready,
            _ => LinkState::OtherBrowser,
        })
    }

    /// Sets a new password through a reset link, from the browser that asked for it: the
    /// link is used up, every session of the user ends and their grants (refresh tokens
    /// included, `offline_access` or not) are revoked through the outbox.
    pub async fn complete_password_reset(&self, token: &str, browser: Option<&TokenHash>, new: &Password, ctx: &RequestContext) -> Result<(), CoreError> {
        let unusable = || CoreError::Invalid(LINK_UNUSABLE.into());
        let token = SecretToken::from_client(token).ok_or_else(unusable)?;
        let hash = token.hash();
        let c = self.deps.challenges.find_challenge(&hash, self.deps.clock.now()).await?.ok_or_else(unusable)?;
        if c.purpose != ChallengePurpose::PasswordReset {
            return Err(unusable());
        }
        let Some(browser) = browser.filter(|b| constant_time_eq(b.as_bytes(), c.browser.as_bytes())) else {
            return Err(CoreError::Invalid(LINK_OTHER_BROWSER.into()));
        };
        let user = self.deps.store.find_user_by_id(c.user_id).await?.ok_or_else(unusable)?;
        let email = user.email.as_ref().map_or("", |e| e.as_str());
        self.deps.rules.check(new.expose(), false, &[user.username.as_str(), email])?;
        let new_hash = self.deps.hasher.hash(new).await?;
        let done = self
            .deps
            .challenges
            .reset_password_with_challenge(&hash, browser, &new_hash, self.deps.clock.now())
            .await?
            .ok_or_else(unusable)?;
        self.audit
            .record(AuditKind::PasswordChanged, Some(done.user_id), ctx, json!({"via": "email_reset", "sessions_ended": done.sessions_ended}))
            .await;
        if let Some(events) = &self.deps.events {
            events.apply_now(&[done.event]).await;
        }
        Ok(())
    }

}
