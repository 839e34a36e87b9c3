//! Sign-in by e-mail (when enabled: `[email] magic_link`): the mail carries a six-digit
//! one-time code (on a line of its own) and a link, both for the same challenge, which works
//! once, for ten minutes, only in the browser that asked. The code is typed into that
//! browser's page; the link's page (`GET`) shows a button whose `POST` signs in. Five wrong
//! codes use the challenge up. Asking answers the same page for known and unknown addresses,
//! throttled per address and per IP like password reset. The sign-in itself goes through
//! [`crate::accounts::Accounts::sign_in_with_email_proof`] (`amr: ["otp"]`, second factor
//! when the user has one).

use super::reset::LinkState;
use super::{EmailFlows, SIGN_IN_LIFETIME};
use crate::CoreError;
use crate::accounts::{Authenticated, LoginOutcome};
use crate::audit::AuditKind;
use crate::mail::Letter;
use crate::mail::challenge::{ChallengePurpose, NewChallenge};
use crate::secret::{SecretToken, TokenHash, constant_time_eq, fill_random};
use crate::session::RequestContext;
use serde_json::json;

/// The path of the sign-in link (under the issuer).
pub const SIGN_IN_LINK_PATH: &str = "/login/email/link";
/// Wrong codes after which a sign-in challenge is used up.
pub const MAX_CODE_FAILURES: u32 = 5;
/// The message for a code or link that does not work.
pub const SIGN_IN_REFUSED: &str = "That code or link does not work here (wrong, used, expired, or asked for in another browser). Please ask for a new one.";

/// A uniformly random six-digit code.
fn new_code() -> Result<String, CoreError> {
    loop {
        let mut b = [0u8; 4];
        fill_random(&mut b)?;
        let n = u32::from_le_bytes(b);
        // Reject the top sliver so every code is equally likely.
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// The hash a code is stored and looked up under (digits only; spaces and dashes typed
/// between them are ignored).
fn code_hash(typed: &str) -> Option<TokenHash> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| TokenHash::of(format!("sign-in-code:{digits}").as_bytes()))
}

impl EmailFlows {
    /// Whether sign-in by e-mail is offered.
    pub fn sign_in_enabled(&self) -> bool {
        self.sign_in
    }

    fn require_sign_in(&self) -> Result<(), CoreError> {
        if self.sign_in { Ok(()) } else { Err(CoreError::NotFound) }
    }

    /// Mails a sign-in code and link for `address` (e-mail or username), bound to `browser`.
    /// `Ok` whether or not a mail is sent; [`CoreError::Throttled`] only for one IP asking too often.
    pub async fn request_sign_in(&self, address: &str, browser: &TokenHash, ctx: &RequestContext) -> Result<(), CoreError> {
        self.require_sign_in()?;
        let Some((user, email)) = self.recipient(ChallengePurpose::SignIn, address, ctx).await? else { return Ok(()) };
        let now = self.deps.clock.now();
        let token = SecretToken::generate()?;
        let code = new_code()?;
        let letter = Letter::SignIn { link: self.link(SIGN_IN_LINK_PATH, &token), code: code.clone(), minutes: SIGN_IN_LIFETIME.whole_minutes() };
        let challenge = NewChallenge {
            hash: token.hash(),
            purpose: ChallengePurpose::SignIn,
            user_id: user.id,
            email: email.as_str().to_owned(),
            browser: *browser,
            code: code_hash(&code),
            created_at: now,
            expires_at: now + SIGN_IN_LIFETIME,
        };
        self.queue_challenge(&email, &letter, &challenge).await
    }

    /// What a `GET` of a sign-in link shows; uses nothing up.
    pub async fn open_sign_in_link(&self, token: &str, browser: Option<&TokenHash>) -> Result<LinkState, CoreError> {
        self.require_sign_in()?;
        let Some(token) = SecretToken::from_client(token) else { return Ok(LinkState::Unusable) };
        let Some(c) = self.deps.challenges.find_challenge(&token.hash(), self.deps.clock.now()).await? else {
            return Ok(LinkState::Unusable);
        };
        if c.purpose != ChallengePurpose::SignIn {
            return Ok(LinkState::Unusable);
        }
        Ok(match browser {
            Some(b) if constant_time_eq(b.as_bytes(), c.browser.as_bytes()) => LinkState::Ready,
            _ => LinkState::OtherBrowser,
        })
    }

    /// Signs in with a mailed link (the `POST` of its page), from the browser that asked.
    pub async fn sign_in_with_link(&self, token: &str, browser: Option<&TokenHash>, ctx: &RequestContext, current: Option<&Authenticated>) -> Result<LoginOutcome, CoreError> {
        self.require_sign_in()?;
        let refused = || CoreError::Invalid(SIGN_IN_REFUSED.into());
        let (Some(token), Some(browser)) = (SecretToken::from_client(token), browser) else { return Err(refused()) };
        let now = self.deps.clock.now();
        let Some(user) = self.deps.challenges.take_sign_in_by_link(&token.hash(), browser, MAX_CODE_FAILURES, now).await? else {
            self.audit.record(AuditKind::LoginFailed, None, ctx, json!({"via": "email_link", "reason": "unusable_link"})).await;
            return Err(refused());
        };
        self.deps.accounts.sign_in_with_email_proof(user, ctx, current).await
    }

    /// Signs in with a mailed code typed into the browser that asked for it.
    pub async fn sign_in_with_code(&self, code: &str, browser: Option<&TokenHash>, ctx: &RequestContext, current: Option<&Authenticated>) -> Result<LoginOutcome, CoreError> {
        self.require_sign_in()?;
        let refused = || CoreError::Invalid(SIGN_IN_REFUSED.into());
        let Some(browser) = browser else { return Err(refused()) };
        let now = self.deps.clock.now();
        let taken = match code_hash(code) {
            Some(h) => self.deps.challenges.take_sign_in_by_code(browser, &h, MAX_CODE_FAILURES, now).await?,
            None => None,
        };
        let Some(user) = taken else {
            self.deps.challenges.record_sign_in_code_failure(browser).await?;
            self.audit.record(AuditKind::LoginFailed, None, ctx, json!({"via": "email_code", "reason": "wrong_code"})).await;
            return Err(refused());
        };
        self.deps.accounts.sign_in_with_email_proof(user, ctx, current).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| new_code().unwrap()).collect();
        assert!(codes.len() > 40, "random: {codes:?}");
        assert!(codes.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
    }

    #[test]
    fn typed_codes_are_normalised_and_checked() {
        assert_eq!(code_hash("123 456"), code_hash("123456"));
        assert_eq!(code_hash("123-456"), code_hash("123456"));
        assert!(code_hash("12345").is_none());
        assert!(code_hash("12345a").is_none());
        assert!(code_hash("1234567").is_none());
        assert_ne!(code_hash("123456"), code_hash("123457"));
    }
}
