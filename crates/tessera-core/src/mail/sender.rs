//! Sending what the mail outbox holds: claim due messages with a lease, open their seal, hand
//! them to the transport, then mark them sent or reschedule them with exponential backoff
//! (30 s, doubling, at most an hour; never given up, so nothing is lost).

use super::{ClaimedMail, MailMessage, MailOutbox, MailTransport, SEAL_PURPOSE};
use crate::CoreError;
use crate::clock::SharedClock;
use crate::jose::KeySealer;
use std::sync::Arc;
use time::Duration;

/// How long a claim holds a message (longer than a transport's timeout).
pub const LEASE: Duration = Duration::seconds(120);
/// Messages claimed per round.
pub const BATCH: u32 = 16;
/// The first retry delay; it doubles with every failed attempt.
pub const FIRST_RETRY: Duration = Duration::seconds(30);
/// The longest retry delay.
pub const MAX_RETRY: Duration = Duration::hours(1);

/// The delay before the next attempt after `attempts` failed ones (1 → 30 s, 2 → 60 s, …).
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    let secs = FIRST_RETRY.whole_seconds().saturating_mul(1_i64 << doublings);
    Duration::seconds(secs.min(MAX_RETRY.whole_seconds()))
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    /// Messages the transport accepted.
    pub sent: u32,
    /// Messages rescheduled after a failure.
    pub failed: u32,
}

/// Sends due messages (the binary's mail job calls [`MailSender::send_due`]).
#[derive(Clone)]
pub struct MailSender {
    outbox: Arc<dyn MailOutbox>,
    transport: Arc<dyn MailTransport>,
    sealer: Arc<KeySealer>,
    clock: SharedClock,
}

impl std::fmt::Debug for MailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailSender")
    }
}

impl MailSender {
    /// A sender over the outbox and a transport; `sealer` opens what the flows sealed.
    pub fn new(outbox: Arc<dyn MailOutbox>, transport: Arc<dyn MailTransport>, sealer: Arc<KeySealer>, clock: SharedClock) -> Self {
        Self { outbox, transport, sealer, clock }
    }

    /// Claims the due messages and sends them one by one.
    pub async fn send_due(&self) -> Result<SendReport, CoreError> {
        let now = self.clock.now();
        let claimed = self.outbox.claim_due_mail(now, now + LEASE, BATCH).await?;
        let mut report = SendReport::default();
        for mail in claimed {
            match self.send_one(&mail).await {
                Ok(()) => {
                    if !self.outbox.mark_mail_sent(mail.id, mail.lease_until, self.clock.now()).await? {
                        tracing::warn!(mail = mail.id.get(), "a message was sent after its lease lapsed; it may be sent twice");
                    }
                    report.sent += 1;
                }
                Err(error) => {
                    let attempts = mail.attempts.saturating_add(1);
                    let next = self.clock.now() + backoff(attempts);
                    tracing::warn!(mail = mail.id.get(), attempts, %error, "a message could not be sent; it will be retried");
                    self.outbox.reschedule_mail(mail.id, mail.lease_until, next, &error).await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn send_one(&self, mail: &ClaimedMail) -> Result<(), String> {
        let plain = self.sealer.open(SEAL_PURPOSE, &mail.sealed).map_err(|_| "the message cannot be unsealed (was secret_key changed?)".to_owned())?;
        let message: MailMessage = serde_json::from_slice(&plain).map_err(|e| format!("the stored message is not readable: {e}"))?;
        self.transport.send(&message).await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
