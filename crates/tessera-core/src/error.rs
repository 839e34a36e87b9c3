//! The core error type. The web crate maps it to HTTP in one place.


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

/// The cause of a storage failure as the database driver reported it (for logs).
pub type StoreCause = Box<dyn std::error::Error + Send + Sync>;

/// Which unique value a refused write would have duplicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// Another user's username (compared in canonical form).
    Username,
    /// Another user's e-mail address (compared in canonical form).
    Email,
    /// Another session's handle.
    SessionHandle,
    /// A passkey credential id already registered.
    PasskeyCredential,
    /// Any other unique key: a generated id, or the hash of a one-time value, already stored.
    Key,
}

impl ConflictKind {
    /// The word for what was taken, as shown in messages ("username is already taken").
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::Username => "username",
            ConflictKind::Email => "email",
            ConflictKind::SessionHandle => "session",
            ConflictKind::PasskeyCredential => "credential",
            ConflictKind::Key => "value",
        }
    }
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a write lost to a concurrent transaction. Nothing was written either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    /// The database rolled the transaction back to break a deadlock or to keep
    /// transactions serialisable (PostgreSQL 40P01, 40001): running the intent again at
    /// once is safe and usually succeeds.
    RolledBack,
    /// A lock was not granted in time (SQLite BUSY or LOCKED once the busy timeout passed,
    /// PostgreSQL 55P03): the database is too busy for now, which callers treat like
    /// [`StoreError::Unavailable`].
    LockTimeout,
}

impl std::fmt::Display for Contention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Contention::RolledBack => "transaction aborted by contention",
            Contention::LockTimeout => "lock not granted in time",
        })
    }
}

/// A storage failure. The store classifies database errors by their codes (SQLSTATE,
/// SQLite result codes), so callers match on variants, never on message text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; names what was taken.
    #[error("{0} is already taken")]
    Conflict(ConflictKind),
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// The write lost to a concurrent transaction; nothing was written.
    #[error("{0}: {1}")]
    Contention(Contention, StoreCause),
    /// The database is out of reach for now: connection refused or lost, no connection
    /// within the acquire timeout, server shutting down, disk full, out of memory or an I/O
    /// error. Callers answer "try again later" (503 with `Retry-After`); nothing was written.
    #[error("database unavailable: {0}")]
    Unavailable(StoreCause),
    /// The database answered with any other error (a fault of the query or the schema).
    #[error("database error: {0}")]
    Database(StoreCause),
    /// Stored data could not be understood.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database is out of reach for now, so the answer is "try again later":
    /// [`StoreError::Unavailable`], or a lock not granted in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Contention(Contention::LockTimeout, _))
    }

    /// Whether the database rolled the transaction back for contention, so running the
    /// same intent again at once is safe.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Contention(Contention::RolledBack, _))
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
