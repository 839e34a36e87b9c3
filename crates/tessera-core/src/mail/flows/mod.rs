//! The flows that send mail: password reset (`reset.rs`), address verification
//! (`verify.rs`) and sign-in by a mailed code or link (`signin.rs`). This file holds the service, its dependencies and what the flows share:
//! building links from the issuer, queuing a challenge with its sealed mail in one
//! transaction, and the per-address and per-IP limits on requests for mail.
//!
//! Every link's secret is stored hashed together with the hash of the asking browser's
//! binding cookie; reading a link (`GET`) uses nothing up, and only a `POST` acts — once,
//! enforced by the database.

mod reset;
mod signin;
mod verify;

pub use signin::{MAX_CODE_FAILURES, SIGN_IN_LINK_PATH, SIGN_IN_REFUSED};
pub use verify::{VERIFY_PATH, VERIFY_UNUSABLE, VerifyState};

use super::challenge::{ChallengePurpose, ChallengeStore, NewChallenge};
use super::{Letter, MailOutbox, MailRenderer, SEAL_PURPOSE};
use crate::CoreError;
use crate::accounts::Accounts;
use crate::audit::AuditKind;
use crate::auditor::Auditor;
use crate::clock::SharedClock;
use crate::jose::KeySealer;
use crate::outbox::ApplyEvents;
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::secret::SecretToken;
use crate::session::RequestContext;
use crate::store::{AttemptRule, Store};
use crate::throttle::Throttled;
use crate::user::Email;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use std::sync::Arc;
use time::Duration;

/// The path of the reset link (under the issuer).
pub const RESET_PATH: &str = "/login/reset";
/// How long a verification link works.
pub const VERIFY_LIFETIME: Duration = Duration::minutes(30);
/// How long a sign-in code and link work.
pub const SIGN_IN_LIFETIME: Duration = Duration::minutes(10);

/// How many mails one address may be sent per window, and from one IP.
#[derive(Debug, Clone, Copy)]
pub struct MailLimits {
    /// Requests per address before delays (default 3 an hour).
    pub per_address: i64,
    /// Requests per IP before delays (default 20 an hour).
    pub per_ip: i64,
    /// The counting window (default 1 h).
    pub window: Duration,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self { per_address: 3, per_ip: 20, window: Duration::hours(1) }
    }
}

/// What the e-mail flows are built from.
#[derive(Clone)]
pub struct EmailDeps {
    /// The account store (users, passwords, attempt counters, audit).
    pub store: Arc<dyn Store>,
    /// The challenge store (which queues a challenge's mail with it).
    pub challenges: Arc<dyn ChallengeStore>,
    /// The mail outbox (for mails without a challenge, such as notices).
    pub outbox: Arc<dyn MailOutbox>,
    /// Renders letters.
    pub renderer: Arc<dyn MailRenderer>,
    /// Seals queued messages.
    pub sealer: Arc<KeySealer>,
    /// Hashes new passwords.
    pub hasher: PasswordHasher,
    /// The rules a new password must meet.
    pub rules: PasswordPolicy,
    /// The clock.
    pub clock: SharedClock,
    /// Applies the outbox events a reset writes (revocations) right away.
    pub events: Option<Arc<dyn ApplyEvents>>,
    /// The account flows (sign-in by e-mail establishes sessions through them).
    pub accounts: Accounts,
}

/// The e-mail flows.
#[derive(Clone)]
pub struct EmailFlows {
    deps: EmailDeps,
    audit: Auditor,
    issuer: String,
    reset_lifetime: Duration,
    limits: MailLimits,
    sign_in: bool,
}

impl std::fmt::Debug for EmailFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailFlows").field("issuer", &self.issuer).field("reset_lifetime", &self.reset_lifetime).finish_non_exhaustive()
    }
}

pub use reset::{LINK_OTHER_BROWSER, LINK_UNUSABLE, LinkState};

impl EmailFlows {
    /// The flows; links point at `issuer` (never at a request's Host header).
    pub fn new(deps: EmailDeps, issuer: &str) -> Self {
        let audit = Auditor::new(deps.store.clone(), deps.clock.clone());
        Self { deps, audit, issuer: issuer.trim_end_matches('/').to_owned(), reset_lifetime: Duration::minutes(15), limits: MailLimits::default(), sign_in: false }
    }

    /// Sets how long a reset link works.
    pub fn with_reset_lifetime(mut self, lifetime: Duration) -> Self {
        self.reset_lifetime = lifetime;
        self
    }

    /// Offers sign-in by a mailed code or link (`[email] magic_link`).
    pub fn with_sign_in(mut self, enabled: bool) -> Self {
        self.sign_in = enabled;
        self
    }

    /// Sets the mail request limits.
    pub fn with_limits(mut self, limits: MailLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How long a reset link works.
    pub fn reset_lifetime(&self) -> Duration {
        self.reset_lifetime
    }

    /// Renders `letter` for `email`, seals it, and stores it with `challenge` in one
    /// transaction.
    async fn queue_challenge(&self, email: &Email, letter: &Letter, challenge: &NewChallenge) -> Result<(), CoreError> {
        let sealed = self.seal(email, letter)?;
        let mail = self.deps.challenges.create_challenge_with_mail(challenge, &sealed).await?;
        tracing::info!(mail = mail.get(), user = %challenge.user_id, purpose = challenge.purpose.as_str(), "mail queued");
        Ok(())
    }

    /// Renders and seals a letter for the mail outbox.
    fn seal(&self, email: &Email, letter: &Letter) -> Result<Vec<u8>, CoreError> {
        let message = self.deps.renderer.render(email, letter)?;
        let plain = serde_json::to_vec(&message).map_err(|e| CoreError::Internal(format!("mail: {e}")))?;
        self.deps.sealer.seal(SEAL_PURPOSE, &plain)
    }

    /// `<issuer><path>?token=<token>`: links never come from a request's Host header.
    fn link(&self, path: &str, token: &SecretToken) -> String {
        format!("{}{path}?token={}", self.issuer, token.expose())
    }

    /// Reserves one mail to `canonical_address` for `purpose`; false beyond the limit (the
    /// caller then sends nothing and says nothing different).
    /// Throttles a request for mail (per IP, then per address) and finds the enabled user
    /// `address` (an e-mail address or username) names, with the address to write to. `None`
    /// — and so no mail, behind the same answer — for an unknown, disabled or address-less
    /// account, or an address asked for too often.
    pub(super) async fn recipient(
        &self,
        purpose: ChallengePurpose,
        address: &str,
        ctx: &RequestContext,
    ) -> Result<Option<(crate::user::User, Email)>, CoreError> {
        let address: String = address.trim().chars().take(320).collect();
        let canonical_address = crate::user::canonical(&address);
        self.reserve_ip(ctx).await?;
        if !self.reserve_address(purpose, &canonical_address, ctx).await? {
            return Ok(None);
        }
        let found = if address.is_empty() { None } else { self.deps.store.find_user_credentials_by_login(&canonical_address).await? };
        let Some(user) = found.map(|c| c.user).filter(|u| !u.disabled) else { return Ok(None) };
        let Some(email) = user.email.clone() else { return Ok(None) };
        Ok(Some((user, email)))
    }

    async fn reserve_address(&self, purpose: ChallengePurpose, canonical_address: &str, ctx: &RequestContext) -> Result<bool, CoreError> {
        let key = format!("mail-addr:{}:{}", purpose.as_str(), hashed(canonical_address));
        if self.reserve(&key, self.limits.per_address, Duration::minutes(5)).await?.admitted {
            return Ok(true);
        }
        self.audit.record(AuditKind::LoginThrottled, None, ctx, json!({"step": purpose.as_str(), "reason": "address_limit"})).await;
        Ok(false)
    }

    /// Deletes expired challenges.
    pub async fn purge(&self) -> Result<u64, CoreError> {
        Ok(self.deps.challenges.purge_expired_challenges(self.deps.clock.now()).await?)
    }

    async fn reserve_ip(&self, ctx: &RequestContext) -> Result<(), CoreError> {
        let Some(ip) = ctx.ip else { return Ok(()) };
        let r = self.reserve(&format!("mail-{}", crate::throttle::ip_key(ip)), self.limits.per_ip, Duration::minutes(1)).await?;
        if r.admitted {
            return Ok(());
        }
        self.audit.record(AuditKind::LoginThrottled, None, ctx, json!({"step": "mail_request", "reason": "ip_limit"})).await;
        let retry_after = (r.blocked_until - self.deps.clock.now()).whole_seconds().max(1);
        Err(CoreError::Throttled(Throttled::Delayed { retry_after }))
    }

    async fn reserve(&self, key: &str, free: i64, first_delay: Duration) -> Result<crate::store::AttemptReservation, CoreError> {
        let now = self.deps.clock.now();
        let rule = AttemptRule { window_start: now - self.limits.window, free, first_delay, max_delay: Duration::hours(1), proof: false };
        Ok(self.deps.store.reserve_attempt(key, &rule, now).await?)
    }
}

/// An address as it appears in counter keys (hashed, so the table holds no addresses).
fn hashed(canonical_address: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical_address.as_bytes()).as_ref())
}
