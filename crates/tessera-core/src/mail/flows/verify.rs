//! Address verification: a link mailed at sign-up, after the address changes (the new
//! address is unverified until its link is used; the old address is told), and on demand
//! from the account page. The link works once, for 30 minutes. It is bound to the browser
//! that asked — or, opened anywhere else, it works only for the account's owner once signed
//! in there (so a forwarded or scanned link proves nothing to anyone else). Using it sets
//! `email_verified`, which ID tokens, userinfo and the admin API then show.

use super::{EmailFlows, VERIFY_LIFETIME};
use crate::CoreError;
use crate::audit::AuditKind;
use crate::ids::UserId;
use crate::mail::Letter;
use crate::mail::challenge::{ChallengePurpose, NewChallenge};
use crate::secret::{SecretToken, TokenHash, constant_time_eq};
use crate::session::RequestContext;
use crate::user::{User, canonical};
use serde_json::json;

/// The path of the verification link (under the issuer).
pub const VERIFY_PATH: &str = "/email/verify";

/// What a browser opening a verification link may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyState {
    /// Confirm (this is the browser that asked, or the owner is signed in here).
    Ready,
    /// The link is live, but here it needs the owner to sign in first.
    SignInFirst,
    /// Unknown, used or expired.
    Unusable,
}

/// The message for a verification link that is unknown, used or expired.
pub const VERIFY_UNUSABLE: &str = "This link has expired or has already been used. Ask for a new one on your account page.";

impl EmailFlows {
    /// Mails a verification link to `user`'s address, bound to `browser` (when the request
    /// came from one). `Ok(false)` when nothing was sent: no address, already verified, or
    /// the address's limit reached.
    pub async fn send_verification(&self, user: &User, browser: Option<&TokenHash>, ctx: &RequestContext) -> Result<bool, CoreError> {
        let Some(email) = user.email.clone().filter(|_| !user.email_verified() && !user.disabled) else { return Ok(false) };
        if !self.reserve_address(ChallengePurpose::VerifyEmail, &email.canonical(), ctx).await? {
            return Ok(false);
        }
        // Without a browser (an administrator changed the address) a random binding: only
        // the signed-in owner can use the link then.
        let browser = match browser {
            Some(b) => *b,
            None => SecretToken::generate()?.hash(),
        };
        let now = self.deps.clock.now();
        let token = SecretToken::generate()?;
        let letter = Letter::VerifyEmail { link: self.link(super::VERIFY_PATH, &token), minutes: VERIFY_LIFETIME.whole_minutes() };
        let challenge = NewChallenge {
            hash: token.hash(),
            purpose: ChallengePurpose::VerifyEmail,
            user_id: user.id,
            email: email.as_str().to_owned(),
            browser,
            code: None,
            created_at: now,
            expires_at: now + VERIFY_LIFETIME,
        };
        self.queue_challenge(&email, &letter, &challenge).await?;
        Ok(true)
    }

    /// After sign-up: mails a verification link to the account with `address`, if it exists
    /// and is unverified. Answers the same either way (sign-up tells nothing).
    pub async fn send_verification_to(&self, address: &str, browser: Option<&TokenHash>, ctx: &RequestContext) -> Result<(), CoreError> {
        let canonical_address = canonical(address.trim());
        if canonical_address.is_empty() || canonical_address.len() > 320 {
            return Ok(());
        }
        let Some(found) = self.deps.store.find_user_credentials_by_login(&canonical_address).await? else { return Ok(()) };
        let owns_address = found.user.email.as_ref().is_some_and(|e| e.canonical() == canonical_address);
        if owns_address {
            self.send_verification(&found.user, browser, ctx).await?;
        }
        Ok(())
    }

    /// After an address change: a verification link to the new address and a notice to the
    /// old one (so a hijacked account's owner hears of it).
    pub async fn address_changed(&self, before: &User, after: &User, ctx: &RequestContext) -> Result<(), CoreError> {
        let (old, new) = (before.email.as_ref(), after.email.as_ref());
        if old.map(|e| e.canonical()) == new.map(|e| e.canonical()) {
            return Ok(());
        }
        if let Some(old) = old {
            let letter = Letter::AddressChanged { new_address: new.map_or_else(|| "(none)".to_owned(), |e| e.as_str().to_owned()) };
            let sealed = self.seal(old, &letter)?;
            self.deps.outbox.enqueue_mail(&sealed, self.deps.clock.now()).await?;
        }
        self.send_verification(after, None, ctx).await?;
        Ok(())
    }

    /// What a `GET` of a verification link shows; uses nothing up.
    pub async fn open_verification(&self, token: &str, browser: Option<&TokenHash>, signed_in: Option<UserId>) -> Result<VerifyState, CoreError> {
        let Some(token) = SecretToken::from_client(token) else { return Ok(VerifyState::Unusable) };
        let Some(c) = self.deps.challenges.find_challenge(&token.hash(), self.deps.clock.now()).await? else {
            return Ok(VerifyState::Unusable);
        };
        if c.purpose != ChallengePurpose::VerifyEmail {
            return Ok(VerifyState::Unusable);
        }
        let same_browser = browser.is_some_and(|b| constant_time_eq(b.as_bytes(), c.browser.as_bytes()));
        Ok(if same_browser || signed_in == Some(c.user_id) { VerifyState::Ready } else { VerifyState::SignInFirst })
    }

    /// Uses a verification link (the `POST` of its page): marks the address verified, once.
    pub async fn confirm_verification(&self, token: &str, browser: Option<&TokenHash>, signed_in: Option<UserId>, ctx: &RequestContext) -> Result<(), CoreError> {
        let unusable = || CoreError::Invalid(VERIFY_UNUSABLE.into());
        let token = SecretToken::from_client(token).ok_or_else(unusable)?;
        let user = self
            .deps
            .challenges
            .verify_email_with_challenge(&token.hash(), browser, signed_in, self.deps.clock.now())
            .await?
            .ok_or_else(unusable)?;
        self.audit.record(AuditKind::EmailVerified, Some(user), ctx, json!({})).await;
        Ok(())
    }
}
