//! The breach-check port: whether a password is known from breach corpora. Core only defines
//! it; the HTTP implementation (a k-anonymity range API) lives in the binary, and
//! [`super::policy::PasswordPolicy::check_with_breach_checker`] fails open when a checker
//! cannot answer.

use async_trait::async_trait;

/// Why a breach check could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BreachCheckError {
    /// The service could not be reached or did not answer in time.
    #[error("breach check unavailable: {0}")]
    Unavailable(String),
    /// The service answered with something unexpected.
    #[error("breach check answered badly: {0}")]
    BadResponse(String),
}

/// Asks whether a password is known from breaches.
#[async_trait]
pub trait BreachChecker: Send + Sync {
    /// Whether `password` appears in breach corpora. Implementations that cannot answer may
    /// return an error; [`super::policy::PasswordPolicy::check_with_breach_checker`] then
    /// fails open.
    async fn is_breached(&self, password: &str) -> Result<bool, BreachCheckError>;
}
