//! Records of second factors and sign-ins in progress, as stored.

use crate::ids::{PasskeyId, UserId};
use crate::mfa::level::AuthLevel;
use crate::secret::TokenHash;
use time::OffsetDateTime;

/// A sign-in (or step-up) that proved some factors and waits for another. Its secret lives
/// in a short-lived cookie; the store keeps its hash.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// Who is signing in.
    pub user_id: UserId,
    /// Methods proved so far (RFC 8176 values).
    pub amr: Vec<String>,
    /// The level the sign-in must reach.
    pub required: AuthLevel,
    /// Hash of the session id to upgrade in place (re-authentication or step-up of the same
    /// user's session), if any; otherwise a new session starts.
    pub upgrade: Option<TokenHash>,
    /// Wrong second-factor answers so far.
    pub failures: u32,
    /// When it lapses.
    pub expires_at: OffsetDateTime,
}

/// A user's TOTP authenticator.
#[derive(Debug, Clone)]
pub struct TotpRecord {
    /// Whose.
    pub user_id: UserId,
    /// The shared secret, sealed (AES-256-GCM) with a key derived from the server's secret.
    pub sealed_secret: Vec<u8>,
    /// When its first code was accepted; `None` while enrolment is unconfirmed.
    pub confirmed_at: Option<OffsetDateTime>,
    /// The last time step accepted; codes of this step or earlier are refused (RFC 6238 §5.2).
    pub last_step: i64,
    /// When enrolment started.
    pub created_at: OffsetDateTime,
}

/// A registered passkey.
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    /// Our id.
    pub id: PasskeyId,
    /// Whose.
    pub user_id: UserId,
    /// The authenticator's credential id (unique across users).
    pub credential_id: Vec<u8>,
    /// The user's name for it.
    pub name: String,
    /// The `webauthn-rs` credential (public key, counter, flags) as JSON.
    pub data: String,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it was last used to sign in.
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a WebAuthn ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// Registering a passkey for a signed-in user.
    Register,
    /// Signing in with a discoverable passkey, without a username.
    Passwordless,
    /// A passkey as the second factor (or step-up) of a pending sign-in.
    SecondFactor,
}

impl CeremonyPurpose {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            CeremonyPurpose::Register => "register",
            CeremonyPurpose::Passwordless => "passwordless",
            CeremonyPurpose::SecondFactor => "second_factor",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "register" => Some(CeremonyPurpose::Register),
            "passwordless" => Some(CeremonyPurpose::Passwordless),
            "second_factor" => Some(CeremonyPurpose::SecondFactor),
            _ => None,
        }
    }
}

/// A WebAuthn ceremony's server-side state: kept in the store (never in the browser),
/// single use, and short-lived (webauthn-rs advice; kanidm/webauthn-rs#184).
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// For whom (none for passwordless sign-in, where the authenticator names the user).
    pub user_id: Option<UserId>,
    /// What for.
    pub purpose: CeremonyPurpose,
    /// The `webauthn-rs` state as JSON.
    pub state: String,
    /// When it lapses.
    pub expires_at: OffsetDateTime,
}

/// Which second factors a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorSummary {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: u32,
    /// Unused recovery codes.
    pub recovery_codes: u32,
}

impl FactorSummary {
    /// Whether the user enrolled a second factor, which makes one required at every sign-in.
    pub fn has_second_factor(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}
