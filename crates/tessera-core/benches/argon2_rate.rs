//! Fixed-duration Argon2id rate loop for `bench/run.sh`, which runs it pinned to the core the
//! server uses: `raw` is the `argon2` crate at the configured parameters; `verify` is
//! `PasswordHasher::verify` (what `POST /login` does per request) on a one-thread runtime.
//!
//! `cargo bench -p tessera-core --bench argon2_rate -- [SECONDS]` (default 3).
//! Prints `argon2_raw_per_s=<f64>` and `argon2_verify_per_s=<f64>` (wall-clock rates), and
//! `argon2_raw_cpu_ms=<f64>` / `argon2_verify_cpu_ms=<f64>`: process CPU time (user + system,
//! all threads, from /proc/self/stat) per hash, which a machine shared with other work
//! disturbs much less than the rates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use argon2::{Algorithm, Argon2, Params, Version};
use std::time::{Duration, Instant};
use tessera_core::password::{ArgonCost, PasswordHasher, Verification};
use tessera_core::secret::Password;

/// CPU time of this process (all threads), in clock ticks of 1/100 s (Linux's USER_HZ).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (operations per wall-clock second, CPU milliseconds per operation).
fn rate(secs: f64, mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm-up (allocates the memory blocks once)
    let t0 = cpu_ticks();
    let start = Instant::now();
    let budget = Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu_ms = match (t0, cpu_ticks()) {
        (Some(a), Some(b)) => (b - a) as f64 * 10.0 / n as f64,
        _ => f64::NAN,
    };
    (n as f64 / wall, cpu_ms)
}

fn main() {
    // `cargo bench` passes `--bench`; the first number is the duration per measurement.
    let secs: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3.0);
    let cost = ArgonCost::default();
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32)).unwrap();
    let raw = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = [7u8; 16];
    let (raw_rate, raw_cpu) = rate(secs, || {
        let mut out = [0u8; 32];
        raw.hash_password_into(b"correct horse battery staple", &salt, &mut out).unwrap();
    });
    println!("argon2_raw_per_s={raw_rate:.3}");
    println!("argon2_raw_cpu_ms={raw_cpu:.3}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let hasher = PasswordHasher::new(cost, 1).unwrap();
    let pw = Password::new("correct horse battery staple");
    let stored = rt.block_on(hasher.hash(&pw)).unwrap();
    let (verify_rate, verify_cpu) = rate(secs, || {
        let v = rt.block_on(hasher.verify(&pw, Some(&stored))).unwrap();
        assert!(matches!(v, Verification::Match { upgraded: None }));
    });
    println!("argon2_verify_per_s={verify_rate:.3}");
    println!("argon2_verify_cpu_ms={verify_cpu:.3}");
    println!("params m={} t={} p={}", cost.memory_kib, cost.iterations, cost.parallelism);
}
