//! Brute-force defences for sign-in: every attempt at a password or a second-factor code is
//! *reserved* before it is checked, per account and per client IP, by one conditional upsert
//! per key in the database (so every node agrees, and concurrent attempts cannot all pass a
//! check made before any of them counts). A key admits `threshold` attempts in its window,
//! then one each time a growing delay has passed (`429 Retry-After` meanwhile). An admitted
//! attempt counts as a failure unless it succeeds. For an account under attack, attempts
//! without a solved proof-of-work puzzle are refused, and each refusal pushes their door
//! further out; a solved puzzle admits one attempt at the pace the limit allows, never more.
//! Nothing locks an account for good: a client that waits what `Retry-After` says, or solves
//! the puzzle, gets its attempt checked.

use crate::CoreError;
use crate::secret::constant_time_eq;
use crate::store::{AttemptReservation, AttemptRule, Store};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::net::IpAddr;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Throttling settings.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures for one account (in the window) after which a proof of work is required.
    pub account_threshold: i64,
    /// Failures from one IP (any accounts, in the window) after which it is delayed.
    pub ip_threshold: i64,
    /// Counting window.
    pub window: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Proof-of-work difficulty in leading zero bits at the threshold (grows with failures);
    /// 18 bits is about a second of the login page's script on a laptop.
    pub pow_bits: u8,
    /// How long a challenge stays valid.
    pub pow_ttl: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_threshold: 10,
            ip_threshold: 30,
            window: Duration::hours(1),
            max_delay: Duration::minutes(15),
            pow_bits: 18,
            pow_ttl: Duration::minutes(10),
        }
    }
}

/// A proof-of-work challenge for the login page's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The signed challenge.
    pub token: String,
    /// Leading zero bits required of SHA-256(token ":" nonce).
    pub bits: u8,
}

/// A submitted proof of work.
#[derive(Debug, Clone)]
pub struct PowAnswer {
    /// The challenge token.
    pub challenge: String,
    /// The nonce found.
    pub nonce: String,
}

/// Why a sign-in attempt may not proceed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttled {
    /// Too many failures from this IP: retry after this many seconds.
    Delayed {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The account is under attack: solve this challenge (or wait) to try again.
    ChallengeRequired {
        /// Seconds a client without a solution should wait.
        retry_after: i64,
        /// Seconds until an attempt with a solution may be admitted (0: at once); a solution
        /// admits one attempt at the limit's pace, never sooner.
        solved_after: i64,
        /// The challenge.
        challenge: Challenge,
    },
}

/// The throttle.
#[derive(Clone)]
pub struct Throttle {
    store: Arc<dyn Store>,
    policy: ThrottlePolicy,
    key: hmac::Key,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").field("policy", &self.policy).finish()
    }
}

/// Counter key of an account (by the canonical login typed, whether or not it exists).
fn account_key(canonical_login: &str) -> String {
    let d = digest::digest(&digest::SHA256, canonical_login.as_bytes());
    format!("acct:{}", URL_SAFE_NO_PAD.encode(d.as_ref()))
}

/// Counter key of a client IP; IPv6 addresses count per /64 (one subscriber's network).
pub(crate) fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The first delay once a threshold is reached; it doubles with every further failure.
const FIRST_DELAY_SECS: i64 = 5;

fn delay_after(failures: i64, threshold: i64, max: Duration) -> Duration {
    if failures < threshold {
        return Duration::ZERO;
    }
    let exp = u32::try_from((failures - threshold).min(20)).unwrap_or(20);
    Duration::seconds(FIRST_DELAY_SECS.saturating_mul(2_i64.saturating_pow(exp))).min(max)
}

/// Whole seconds, rounded up (a client that waits `Retry-After` seconds must succeed), at least 1.
fn seconds_up(d: Duration) -> i64 {
    (d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0)).max(1)
}

/// Leading zero bits of a digest.
fn leading_zero_bits(d: &[u8]) -> u32 {
    let mut n = 0;
    for b in d {
        if *b == 0 {
            n += 8;
        } else {
            n += b.leading_zeros();
            break;
        }
    }
    n
}

impl Throttle {
    /// A throttle over `store`, signing challenges with `key`.
    pub fn new(store: Arc<dyn Store>, policy: ThrottlePolicy, key: &[u8; 32]) -> Self {
        Self { store, policy, key: hmac::Key::new(hmac::HMAC_SHA256, key) }
    }

    /// The policy.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    fn mac(&self, canonical_login: &str, body: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"tessera-pow\0");
        ctx.update(canonical_login.as_bytes());
        ctx.update(b"\0");
        ctx.update(body.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }

    /// Makes a challenge bound to the account.
    pub fn challenge(&self, canonical_login: &str, bits: u8, now: OffsetDateTime) -> Result<Challenge, CoreError> {
        let mut r = [0u8; 16];
        crate::secret::fill_random(&mut r)?;
        let body = format!("{}.{}.{}", (now + self.policy.pow_ttl).unix_timestamp(), bits, URL_SAFE_NO_PAD.encode(r));
        let mac = self.mac(canonical_login, &body);
        Ok(Challenge { token: format!("{body}.{mac}"), bits })
    }

    /// Checks a proof of work (signature, expiry, difficulty, account) and uses it up.
    pub async fn verify_answer(&self, canonical_login: &str, answer: &PowAnswer, min_bits: u8, now: OffsetDateTime) -> Result<bool, CoreError> {
        if answer.challenge.len() > 256 || answer.nonce.is_empty() || answer.nonce.len() > 32 {
            return Ok(false);
        }
        let Some((body, mac)) = answer.challenge.rsplit_once('.') else { return Ok(false) };
        if !constant_time_eq(self.mac(canonical_login, body).as_bytes(), mac.as_bytes()) {
            return Ok(false);
        }
        let mut parts = body.split('.');
        let (Some(exp), Some(bits)) = (parts.next().and_then(|e| e.parse::<i64>().ok()), parts.next().and_then(|b| b.parse::<u8>().ok())) else {
            return Ok(false);
        };
        if exp < now.unix_timestamp() || bits < min_bits {
            return Ok(false);
        }
        let d = digest::digest(&digest::SHA256, format!("{}:{}", answer.challenge, answer.nonce).as_bytes());
        if leading_zero_bits(d.as_ref()) < u32::from(bits) {
            return Ok(false);
        }
        let until = OffsetDateTime::from_unix_timestamp(exp).unwrap_or(now);
        Ok(self.store.record_once(&format!("pow:{mac}"), until).await?)
    }

    fn rule(&self, free: i64, proof: bool, now: OffsetDateTime) -> AttemptRule {
        AttemptRule {
            window_start: now - self.policy.window,
            free,
            first_delay: Duration::seconds(FIRST_DELAY_SECS),
            max_delay: self.policy.max_delay,
            proof,
        }
    }

    /// Reserves one attempt at `canonical_login`'s password or second factor from `ip`,
    /// before anything is checked: the IP's counter first, then the account's. Returns the
    /// reservation (which counts as a failure unless [`Throttle::succeeded`] or
    /// [`Throttle::release`] is called with it), or why the attempt may not proceed now. A
    /// solution in `answer` is used up whether or not the attempt is admitted.
    pub async fn reserve(&self, canonical_login: &str, ip: Option<IpAddr>, answer: Option<&PowAnswer>, now: OffsetDateTime) -> Result<Result<Reservation, Throttled>, CoreError> {
        let proof = match answer {
            Some(a) => self.verify_answer(canonical_login, a, self.policy.pow_bits, now).await?,
            None => false,
        };
        let ip_key = ip.map(ip_key);
        if let Some(key) = &ip_key {
            let r = self.store.reserve_attempt(key, &self.rule(self.policy.ip_threshold, false, now), now).await?;
            if !r.admitted {
                return Ok(Err(Throttled::Delayed { retry_after: self.retry_after(&r, self.policy.ip_threshold, false, now) }));
            }
        }
        let account = account_key(canonical_login);
        let r = self.store.reserve_attempt(&account, &self.rule(self.policy.account_threshold, proof, now), now).await?;
        if !r.admitted {
            if let Some(key) = &ip_key {
                self.store.release_attempt(key).await?;
            }
            let extra = u8::try_from(((r.attempts - self.policy.account_threshold) / 200).clamp(0, 2)).unwrap_or(2);
            return Ok(Err(Throttled::ChallengeRequired {
                retry_after: self.retry_after(&r, self.policy.account_threshold, proof, now),
                solved_after: {
                    let at = r.last_attempt_at + delay_after(r.attempts, self.policy.account_threshold, self.policy.max_delay);
                    if at > now { seconds_up(at - now) } else { 0 }
                },
                challenge: self.challenge(canonical_login, self.policy.pow_bits.saturating_add(extra), now)?,
            }));
        }
        Ok(Ok(Reservation { account, ip: ip_key }))
    }

    /// Seconds until a refused attempt on a key could be admitted.
    fn retry_after(&self, r: &AttemptReservation, free: i64, proof: bool, now: OffsetDateTime) -> i64 {
        let mut at = r.last_attempt_at + delay_after(r.attempts, free, self.policy.max_delay);
        if !proof {
            at = at.max(r.blocked_until);
        }
        seconds_up(at - now)
    }

    /// The attempt succeeded: clears the account's counter and gives back the IP's
    /// reservation (the IP's earlier failures stay: a password spray that guesses one account
    /// right is still a spray).
    pub async fn succeeded(&self, reservation: Reservation) -> Result<(), CoreError> {
        self.store.clear_failure_counter(&reservation.account).await?;
        if let Some(ip) = &reservation.ip {
            self.store.release_attempt(ip).await?;
        }
        Ok(())
    }

    /// Clears the account's counter (a second factor that is not guessed, a passkey, proved
    /// the user).
    pub async fn clear_account(&self, canonical_login: &str) -> Result<(), CoreError> {
        self.store.clear_failure_counter(&account_key(canonical_login)).await?;
        Ok(())
    }

    /// Gives the attempt back without clearing anything (a right password whose second
    /// factor is still to come: the code attempts are reserved on their own).
    pub async fn release(&self, reservation: Reservation) -> Result<(), CoreError> {
        self.store.release_attempt(&reservation.account).await?;
        if let Some(ip) = &reservation.ip {
            self.store.release_attempt(ip).await?;
        }
        Ok(())
    }
}

/// An admitted attempt: the counters it reserved. Dropping it leaves the attempt counted as
/// a failure.
#[derive(Debug)]
#[must_use = "an admitted attempt is released or counted as a failure"]
pub struct Reservation {
    account: String,
    ip: Option<String>,
}

/// Solves a challenge (what the login page's script does); for tests and tools.
pub fn solve(challenge: &Challenge) -> String {
    let mut n: u64 = 0;
    loop {
        let d = digest::digest(&digest::SHA256, format!("{}:{}", challenge.token, n).as_bytes());
        if leading_zero_bits(d.as_ref()) >= u32::from(challenge.bits) {
            return n.to_string();
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let max = Duration::minutes(15);
        assert_eq!(delay_after(29, 30, max), Duration::ZERO);
        assert_eq!(delay_after(30, 30, max), Duration::seconds(5));
        assert_eq!(delay_after(33, 30, max), Duration::seconds(40));
        assert_eq!(delay_after(100, 30, max), max);
    }

    #[test]
    fn leading_zero_bits_are_counted() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
    }
}
