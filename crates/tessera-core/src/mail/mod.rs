//! E-mail: the message model, the durable mail outbox and the transport behind ports, and
//! the flows that send links and codes (password reset, address verification, sign-in by
//! e-mail).
//!
//! A message is rendered (through [`MailRenderer`], whose templates live in the binary),
//! sealed with a purpose key (the link in it is a secret until it is used) and written to the
//! mail outbox in the same transaction as the challenge it carries (`challenge.rs`). The
//! binary's mail job asks [`sender::MailSender`] to send what is due: each message is claimed
//! with a lease (one node sends it), handed to the [`MailTransport`], then marked sent or
//! rescheduled with exponential backoff. Nothing is lost with a crash: an unsent message
//! stays in the table, and a lapsed lease makes it due again (at least once).

use crate::CoreError;
use crate::store::StoreError;
use crate::user::Email;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub mod challenge;
pub mod flows;
pub mod sender;

/// One e-mail: a recipient, a subject and the two bodies.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailMessage {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl std::fmt::Debug for MailMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bodies carry single-use links: never in logs.
        f.debug_struct("MailMessage").field("to", &self.to).field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// What a message says, before it is rendered.
#[derive(Clone, PartialEq, Eq)]
pub enum Letter {
    /// A link to choose a new password.
    PasswordReset {
        /// The single-use link (built from the issuer).
        link: String,
        /// How long the link works, in minutes.
        minutes: i64,
    },
    /// A link proving the address.
    VerifyEmail {
        /// The single-use link (built from the issuer).
        link: String,
        /// How long the link works, in minutes.
        minutes: i64,
    },
    /// A one-time sign-in code and link.
    SignIn {
        /// The single-use link (built from the issuer).
        link: String,
        /// The six-digit code (the same challenge as the link).
        code: String,
        /// How long both work, in minutes.
        minutes: i64,
    },
    /// A notice to the old address that the account's address changed.
    AddressChanged {
        /// The new address.
        new_address: String,
    },
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Letter::PasswordReset { minutes, .. } => f.debug_struct("PasswordReset").field("minutes", minutes).finish_non_exhaustive(),
            Letter::VerifyEmail { minutes, .. } => f.debug_struct("VerifyEmail").field("minutes", minutes).finish_non_exhaustive(),
            Letter::SignIn { minutes, .. } => f.debug_struct("SignIn").field("minutes", minutes).finish_non_exhaustive(),
            Letter::AddressChanged { .. } => f.debug_struct("AddressChanged").finish_non_exhaustive(),
        }
    }
}

/// Turns a [`Letter`] into a message (text and HTML) for one recipient.
pub trait MailRenderer: Send + Sync + 'static {
    /// Renders the letter for `to`.
    fn render(&self, to: &Email, letter: &Letter) -> Result<MailMessage, CoreError>;
}

/// A row of the mail outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailId(i64);

impl MailId {
    /// Wraps a stored id.
    pub fn new(id: i64) -> Self {
        Self(id)
    }
    /// The stored id.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A message claimed for sending: its sealed content, how often it was tried before, and the
/// lease the claim holds (marking it sent or rescheduling it needs the same lease).
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    /// The row.
    pub id: MailId,
    /// The sealed [`MailMessage`] (JSON).
    pub sealed: Vec<u8>,
    /// Attempts before this one.
    pub attempts: u32,
    /// The claim's lease end.
    pub lease_until: OffsetDateTime,
}

/// The durable mail outbox.
#[async_trait]
pub trait MailOutbox: Send + Sync + 'static {
    /// Queues a sealed message, due now.
    async fn enqueue_mail(&self, sealed: &[u8], now: OffsetDateTime) -> Result<MailId, StoreError>;
    /// Claims up to `limit` unsent messages that are due and that no unexpired lease holds,
    /// until `lease_until`; a message is claimed by one caller only.
    async fn claim_due_mail(&self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32) -> Result<Vec<ClaimedMail>, StoreError>;
    /// Marks a claimed message sent (and drops its content); false if the claim was lost.
    async fn mark_mail_sent(&self, id: MailId, lease_until: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Gives a claimed message back, due again at `next_attempt_at`, with one more attempt
    /// counted and the error kept; false if the claim was lost.
    async fn reschedule_mail(
        &self,
        id: MailId,
        lease_until: OffsetDateTime,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<bool, StoreError>;
    /// How many messages are not sent yet.
    async fn count_unsent_mail(&self) -> Result<u64, StoreError>;
    /// Deletes sent messages (their content is already gone) sent before `cutoff`.
    async fn purge_sent_mail(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Why a message could not be handed over (for the log and the outbox row; never the body).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Hands a message to the mail system (SMTP, or the outbox directory in development).
#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    /// Sends one message; `Ok` once the server accepted it.
    async fn send(&self, message: &MailMessage) -> Result<(), TransportError>;
}

/// The sealing purpose of outbox messages (associated data of the AES-GCM seal).
pub const SEAL_PURPOSE: &str = "mail-outbox";
