//! Password hashing: Argon2id PHC strings with configurable cost, re-hash on login when the
//! cost changes, and verify-and-upgrade of imported bcrypt and PBKDF2-SHA256 hashes.
//!
//! Hashing is CPU- and memory-bound (m = 19 MiB per hash by default), so it runs on tokio's
//! blocking pool behind a semaphore sized to the number of cores: a burst of logins queues
//! instead of starving the async executor or exhausting memory.

use crate::CoreError;
use crate::secret::{Password, constant_time_eq};
use crate::user::nfkc;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::pbkdf2;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgonCost {
    /// Memory in KiB (OWASP default 19456).
    pub memory_kib: u32,
    /// Passes (OWASP default 2).
    pub iterations: u32,
    /// Lanes (OWASP default 1).
    pub parallelism: u32,
}

impl Default for ArgonCost {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// The outcome of checking a password.
#[derive(Debug)]
pub enum Verification {
    /// The password does not match (or there was no hash to match).
    Mismatch,
    /// The password matches. `upgraded` holds a new Argon2id PHC string when the stored
    /// hash used other parameters or another algorithm and should be replaced.
    Match {
        /// Replacement hash to store, if any.
        upgraded: Option<String>,
    },
}

/// Hashes and verifies passwords off the async executor with bounded concurrency.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    cost: ArgonCost,
    permits: Semaphore,
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("cost", &self.inner.cost).finish()
    }
}

impl PasswordHasher {
    /// A hasher with the given cost, running at most `concurrency` hashes at once.
    pub fn new(cost: ArgonCost, concurrency: usize) -> Result<Self, CoreError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| CoreError::Invalid(format!("invalid Argon2 parameters: {e}")))?;
        // A hash of a random password at the configured cost: verified against when the user
        // does not exist, so unknown users take as long as known ones.
        let mut random = [0u8; 32];
        crate::secret::fill_random(&mut random)?;
        let dummy_hash = hash_blocking(&params, &random)?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                cost,
                permits: Semaphore::new(concurrency.max(1)),
                dummy_hash,
            }),
        })
    }

    /// The configured cost.
    pub fn cost(&self) -> ArgonCost {
        self.inner.cost
    }

    /// Hashes a password (NFKC-normalised) to an Argon2id PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, CoreError> {
        let inner = self.inner.clone();
        let pw = nfkc(password.expose());
        self.run(move || hash_blocking(&inner.params, pw.as_bytes())).await
    }

    /// Verifies `password` against `stored`. With `None` (unknown user, no password) the
    /// dummy hash is verified instead so the time taken is the same, and the answer is
    /// always [`Verification::Mismatch`].
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<Verification, CoreError> {
        let inner = self.inner.clone();
        let pw = password.expose().to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move || {
            let Some(stored) = stored else {
                let _ = verify_any(&inner.dummy_hash, &pw);
                return Ok(Verification::Mismatch);
            };
            if !verify_any(&stored, &pw) {
                return Ok(Verification::Mismatch);
            }
            let upgraded = if needs_rehash(&stored, &inner.params) {
                Some(hash_blocking(&inner.params, nfkc(&pw).as_bytes())?)
            } else {
                None
            };
            Ok(Verification::Match { upgraded })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| CoreError::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| CoreError::Internal(format!("password hashing task failed: {e}")))?
    }
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String, CoreError> {
    let mut salt = [0u8; 16];
    crate::secret::fill_random(&mut salt)?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_with_salt(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Internal(format!("argon2 hashing failed: {e}")))
}

/// Whether a stored hash should be replaced by one at the current parameters.
fn needs_rehash(stored: &str, params: &Params) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true; // bcrypt, PBKDF2 or another legacy format
    };
    if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => {
            p.m_cost() != params.m_cost() || p.t_cost() != params.t_cost() || p.p_cost() != params.p_cost()
        }
        Err(_) => true,
    }
}

/// Verifies against any supported format. Passwords are tried in NFKC form first and, for
/// imported hashes made by systems that did not normalise, as typed.
fn verify_any(stored: &str, password: &str) -> bool {
    let normalised = nfkc(password);
    if verify_one(stored, &normalised) {
        return true;
    }
    normalised != password && !stored.starts_with("$argon2") && verify_one(stored, password)
}

fn verify_one(stored: &str, password: &str) -> bool {
    if stored.starts_with("$argon2") {
        return Argon2::default().verify_password(password.as_bytes(), stored).is_ok();
    }
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    if let Some(rest) = stored.strip_prefix("$pbkdf2-sha256$") {
        return verify_pbkdf2_phc(rest, password);
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        return verify_pbkdf2_django(rest, password);
    }
    false
}

/// Highest PBKDF2 iteration count accepted from an imported hash.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

fn pbkdf2_check(iterations: u32, salt: &[u8], password: &str, expected: &[u8]) -> bool {
    let Some(iter) = NonZeroU32::new(iterations) else { return false };
    if iterations > MAX_PBKDF2_ITERATIONS || expected.is_empty() || expected.len() > 64 {
        return false;
    }
    pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA256, iter, salt, password.as_bytes(), expected).is_ok()
}

/// `$pbkdf2-sha256$i=ITER[,l=LEN]$SALT$HASH` (PHC; B64 without padding) and passlib's
/// `$pbkdf2-sha256$ITER$SALT$HASH` (its "ab64" alphabet uses `.` for `+`).
fn verify_pbkdf2_phc(rest: &str, password: &str) -> bool {
    let mut parts = rest.split('$');
    let (Some(params), Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let iterations = params
        .split(',')
        .find_map(|kv| kv.strip_prefix("i="))
        .unwrap_or(params)
        .parse::<u32>();
    let Ok(iterations) = iterations else { return false };
    let decode = |s: &str| STANDARD_NO_PAD.decode(s.replace('.', "+").trim_end_matches('='));
    match (decode(salt), decode(hash)) {
        (Ok(salt), Ok(hash)) => pbkdf2_check(iterations, &salt, password, &hash),
        _ => false,
    }
}

/// Django's `pbkdf2_sha256$ITER$SALT$BASE64HASH` (the salt is used as text).
fn verify_pbkdf2_django(rest: &str, password: &str) -> bool {
    let mut parts = rest.split('$');
    let (Some(iter), Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(iterations), Ok(expected)) = (iter.parse::<u32>(), STANDARD.decode(hash)) else {
        return false;
    };
    pbkdf2_check(iterations, salt.as_bytes(), password, &expected)
}

/// Whether a stored hash is in a format this module can verify (for imports).
pub fn is_supported_hash(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
        || ["$2a$", "$2b$", "$2y$", "$pbkdf2-sha256$", "pbkdf2_sha256$"].iter().any(|p| stored.starts_with(p))
}

/// Constant-time equality for two strings; re-exported here for callers comparing secrets.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    constant_time_eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(ArgonCost { memory_kib: 1024, iterations: 1, parallelism: 1 }, 2).unwrap()
    }

    #[tokio::test]
    async fn argon2id_round_trip_and_mismatch() {
        let h = cheap();
        let phc = h.hash(&Password::new("correct horse battery")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(matches!(
            h.verify(&Password::new("correct horse battery"), Some(&phc)).await.unwrap(),
            Verification::Match { upgraded: None }
        ));
        assert!(matches!(
            h.verify(&Password::new("wrong horse battery"), Some(&phc)).await.unwrap(),
            Verification::Mismatch
        ));
        assert!(matches!(h.verify(&Password::new("x"), None).await.unwrap(), Verification::Mismatch));
    }

    #[tokio::test]
    async fn changed_parameters_trigger_rehash() {
        let old = cheap();
        let phc = old.hash(&Password::new("pw-pw-pw-pw")).await.unwrap();
        let new = PasswordHasher::new(ArgonCost { memory_kib: 2048, iterations: 1, parallelism: 1 }, 1).unwrap();
        match new.verify(&Password::new("pw-pw-pw-pw"), Some(&phc)).await.unwrap() {
            Verification::Match { upgraded: Some(u) } => assert!(u.contains("m=2048")),
            other => panic!("expected an upgrade, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn nfkc_equivalent_passwords_match() {
        let h = cheap();
        // "ﬁ" (U+FB01) normalises to "fi" under NFKC.
        let phc = h.hash(&Password::new("\u{FB01}ne-password")).await.unwrap();
        assert!(matches!(
            h.verify(&Password::new("fine-password"), Some(&phc)).await.unwrap(),
            Verification::Match { .. }
        ));
    }

    #[tokio::test]
    async fn bcrypt_imports_verify_and_upgrade() {
        let h = cheap();
        let legacy = bcrypt::hash("legacy-secret", 4).unwrap();
        assert!(is_supported_hash(&legacy));
        match h.verify(&Password::new("legacy-secret"), Some(&legacy)).await.unwrap() {
            Verification::Match { upgraded: Some(u) } => assert!(u.starts_with("$argon2id$")),
            other => panic!("expected an upgrade, got {other:?}"),
        }
        assert!(matches!(h.verify(&Password::new("nope"), Some(&legacy)).await.unwrap(), Verification::Mismatch));
    }

    #[tokio::test]
    async fn pbkdf2_imports_verify_and_upgrade() {
        let h = cheap();
        let salt = b"saltsaltsalt1234";
        let mut out = [0u8; 32];
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, NonZeroU32::new(1000).unwrap(), salt, b"legacy-secret", &mut out);
        let phc = format!("$pbkdf2-sha256$i=1000,l=32${}${}", STANDARD_NO_PAD.encode(salt), STANDARD_NO_PAD.encode(out));
        let django = format!("pbkdf2_sha256$1000${}${}", "saltsaltsalt1234", STANDARD.encode(out));
        for stored in [phc, django] {
            assert!(is_supported_hash(&stored));
            match h.verify(&Password::new("legacy-secret"), Some(&stored)).await.unwrap() {
                Verification::Match { upgraded: Some(u) } => assert!(u.starts_with("$argon2id$")),
                other => panic!("expected an upgrade for {stored}, got {other:?}"),
            }
            assert!(matches!(h.verify(&Password::new("legacy-secreT"), Some(&stored)).await.unwrap(), Verification::Mismatch));
        }
    }

    #[test]
    fn garbage_hashes_never_verify() {
        for s in ["", "$", "$pbkdf2-sha256$", "pbkdf2_sha256$0$a$b", "$2b$xx", "plain"] {
            assert!(!verify_any(s, "anything"));
        }
    }
}
