//! Identifier newtypes. Ids are UUIDv7 (time-ordered), except outbox positions; they are
//! never secrets.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The id as a UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// Wraps an existing UUID.
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user's id.
    UserId
);
uuid_id!(
    /// The public handle of a session: shown on the account page and used to end it.
    /// Not the session secret (that lives only in the cookie and as a hash in the store).
    SessionHandle
);
uuid_id!(
    /// A registered passkey's id (ours, not the authenticator's credential id).
    PasskeyId
);
uuid_id!(
    /// An audit event's id.
    AuditEventId
);

/// An outbox event's id: its position in the outbox (write order); see [`crate::outbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboxId(i64);

impl OutboxId {
    /// Wraps a stored id.
    pub fn new(id: i64) -> Self {
        Self(id)
    }
    /// The stored id.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for OutboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
