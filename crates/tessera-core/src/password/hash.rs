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
use argon2::password_hash::PasswordVerifier as _;
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
    /// Argon2 working memory (m KiB each), reused across hashes: at most one per permit
    /// exists, so memory stays bounded and the allocator does not churn.
    buffers: std::sync::Mutex<Vec<Vec<Block>>>,
}

impl Inner {
    fn take_buffer(&self) -> Vec<Block> {
        let reused = self.buffers.lock().ok().and_then(|mut b| b.pop());
        reused.unwrap_or_else(|| vec![Block::default(); self.params.block_count()])
    }
    fn give_back(&self, buf: Vec<Block>) {
        if let Ok(mut b) = self.buffers.lock() {
            b.push(buf);
        }
    }
    fn hash(&self, password: &[u8]) -> Result<String, CoreError> {
        let mut buf = self.take_buffer();
        let r = hash_with(&self.params, password, &mut buf);
        self.give_back(buf);
        r
    }
    fn verify(&self, stored: &str, password: &str) -> bool {
        let mut buf = self.take_buffer();
        let ok = verify_any(stored, password, &self.params, &mut buf);
        self.give_back(buf);
        ok
    }
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
        let mut buf = vec![Block::default(); params.block_count()];
        let dummy_hash = hash_with(&params, &random, &mut buf)?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                cost,
                permits: Semaphore::new(concurrency.max(1)),
                dummy_hash,
                // Not kept from the dummy hash: an idle server holds no 19 MiB buffer.
                buffers: std::sync::Mutex::new(Vec::new()),
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
        self.run(move || inner.hash(pw.as_bytes())).await
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
                let _ = inner.verify(&inner.dummy_hash, &pw);
                return Ok(Verification::Mismatch);
            };
            if !inner.verify(&stored, &pw) {
                return Ok(Verification::Mismatch);
            }
            let upgraded = if needs_rehash(&stored, &inner.params) {
                Some(inner.hash(nfkc(&pw).as_bytes())?)
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

/// Argon2id output length (bytes).
const OUTPUT_LEN: usize = 32;

/// Hashes into a PHC string using `buf` as the working memory.
fn hash_with(params: &Params, password: &[u8], buf: &mut [Block]) -> Result<String, CoreError> {
    let mut salt = [0u8; 16];
    crate::secret::fill_random(&mut salt)?;
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, buf)
        .map_err(|e| CoreError::Internal(format!("argon2 hashing failed: {e}")))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Verifies an Argon2 PHC string; reuses `buf` when the stored cost matches it.
fn verify_argon2(stored: &str, password: &str, current: &Params, buf: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt.as_ref(), parsed.hash.as_ref()) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let same_shape = params.block_count() == current.block_count() && expected.len() == OUTPUT_LEN;
    if !same_shape {
        return Argon2::default().verify_password(password.as_bytes(), stored).is_ok();
    }
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let version = match parsed.version.map(Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => Version::V0x10,
    };
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, buf)
        .is_ok()
        && constant_time_eq(&out, expected.as_bytes())
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
fn verify_any(stored: &str, password: &str, current: &Params, buf: &mut [Block]) -> bool {
    let normalised = nfkc(password);
    if verify_one(stored, &normalised, current, buf) {
        return true;
    }
    normalised != password && !stored.starts_with("$argon2") && verify_one(stored, password, current, buf)
}

fn verify_one(stored: &str, password: &str, current: &Params, buf: &mut [Block]) -> bool {
    if stored.starts_with("$argon2") {
        return verify_argon2(stored, password, current, buf);
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
        let p = Params::new(1024, 1, 1, None).unwrap();
        let mut buf = vec![Block::default(); p.block_count()];
        for s in ["", "$", "$argon2id$", "$argon2id$v=19$m=1024,t=1,p=1$AAAA$AAAA", "$pbkdf2-sha256$", "pbkdf2_sha256$0$a$b", "$2b$xx", "plain"] {
            assert!(!verify_any(s, "anything", &p, &mut buf));
        }
    }

    #[tokio::test]
    async fn hashes_made_with_reused_memory_verify_with_the_reference_implementation() {
        let h = cheap();
        let phc = h.hash(&Password::new("reference check password")).await.unwrap();
        assert!(Argon2::default().verify_password(b"reference check password", phc.as_str()).is_ok());
        assert!(Argon2::default().verify_password(b"reference check passworD", phc.as_str()).is_err());
        // And a hash made by the reference implementation verifies here.
        use argon2::password_hash::PasswordHasher as _;
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(1024, 1, 1, None).unwrap())
            .hash_password_with_salt(b"made elsewhere password", b"0123456789abcdef")
            .unwrap()
            .to_string();
        assert!(matches!(h.verify(&Password::new("made elsewhere password"), Some(&reference)).await.unwrap(), Verification::Match { upgraded: None }));
    }
}
