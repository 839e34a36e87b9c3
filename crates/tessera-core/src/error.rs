//! The core error type. The web crate maps it to HTTP in one place.

use crate::store::StoreError;

/// What can go wrong in a core flow.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The input was not acceptable; the message is safe to show to the user.
    #[error("{0}")]
    Invalid(String),
    /// Login failed. Deliberately one variant for unknown user, wrong password and disabled
    /// account, so no caller can tell them apart.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A unique value (username, e-mail) is already taken.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The thing asked for does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// The session is missing, expired or ended.
    #[error("not signed in")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("forbidden")]
    Forbidden,
    /// Sign-in attempts are throttled (too many failures).
    #[error("too many attempts")]
    Throttled(crate::throttle::Throttled),
    /// The action needs a recent sign-in (re-authentication).
    #[error("re-authentication required")]
    ReauthenticationRequired,
    /// A second-factor answer was wrong (or a code already used).
    #[error("second factor rejected")]
    SecondFactorRejected {
        /// Answers left before the pending sign-in is abandoned.
        attempts_left: u32,
    },
    /// A storage fault.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Any other internal fault; the message is for logs, not users.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// Whether the storage is out of reach for now (answer "try again later").
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CoreError::Store(e) if e.is_unavailable())
    }

    /// Whether this is a fault of the server rather than of the request.
    pub fn is_internal(&self) -> bool {
        match self {
            CoreError::Store(e) => !matches!(e, StoreError::Conflict(_) | StoreError::NotFound),
            CoreError::Internal(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ConflictKind, Contention};

    #[test]
    fn lock_timeout_is_unavailable_rollback_and_database_errors_are_internal() {
        let lock = CoreError::Store(StoreError::Contention(Contention::LockTimeout, "database is locked".into()));
        assert!(lock.is_unavailable());
        let down = CoreError::Store(StoreError::Unavailable("connection refused".into()));
        assert!(down.is_unavailable());
        // Retried by the store; once retries run out it is a fault of ours, as before.
        let rolled = CoreError::Store(StoreError::Contention(Contention::RolledBack, "deadlock detected".into()));
        assert!(!rolled.is_unavailable() && rolled.is_internal());
        let broken = CoreError::Store(StoreError::Database("syntax error".into()));
        assert!(!broken.is_unavailable() && broken.is_internal());
        let taken = CoreError::Store(StoreError::Conflict(ConflictKind::Username));
        assert!(!taken.is_unavailable() && !taken.is_internal());
        assert_eq!(StoreError::Conflict(ConflictKind::PasskeyCredential).to_string(), "credential is already taken");
    }
}
