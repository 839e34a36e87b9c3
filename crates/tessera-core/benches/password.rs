//! Argon2id at the default (OWASP) cost through `PasswordHasher` (blocking pool, semaphore)
//! next to the raw `argon2` crate at the same parameters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use argon2::{Algorithm, Argon2, Params, Version};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tessera_core::password::{ArgonCost, PasswordHasher, Verification};
use tessera_core::secret::Password;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cost = ArgonCost::default();
    let hasher = PasswordHasher::new(cost, 1).unwrap();
    let pw = Password::new("correct horse battery staple");
    let stored = rt.block_on(hasher.hash(&pw)).unwrap();
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32)).unwrap();
    let raw = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = [7u8; 16];

    let mut g = c.benchmark_group("argon2id_m19456_t2_p1");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(1));
    g.bench_function("raw_hash_password_into", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            raw.hash_password_into(black_box(b"correct horse battery staple"), &salt, &mut out).unwrap();
            out
        })
    });
    g.bench_function("PasswordHasher_hash", |b| b.iter(|| rt.block_on(hasher.hash(black_box(&pw))).unwrap()));
    g.bench_function("PasswordHasher_verify", |b| {
        b.iter(|| {
            let v = rt.block_on(hasher.verify(black_box(&pw), Some(&stored))).unwrap();
            assert!(matches!(v, Verification::Match { upgraded: None }));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
