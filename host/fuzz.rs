// SPDX-License-Identifier: GPL-2.0

//! Bounded-time random-replay fuzzer for extmem's allocator core.
//!
//! `cargo fuzz` needs a nightly toolchain, so this harness plays the same role with the stable
//! one: each iteration derives a byte string from a seed, decodes it into a pool size and a
//! sequence of actions (aligned and offset allocations, fixed claims, frees of live, partial,
//! double and wild ranges, serialisation round trips, consistency checks), replays them against
//! `BitAlloc` and a bool-per-unit oracle, and ends by freeing everything and allocating the
//! whole pool in one request. Any disagreement or panic stops the run and prints the seed;
//! `extmem-fuzz --seed N` replays exactly that iteration.
//!
//! Usage: `extmem-fuzz [--seconds S] [--seed N] [--start N]`.

#[path = "tests/alloc_support.rs"]
mod support;

use std::time::{Duration, Instant};
use support::{decode, Pair, Rng};

/// Pool sizes around word, leaf and node boundaries, and one with four tree levels.
const SIZES: &[u64] = &[
    1, 2, 63, 64, 65, 127, 1000, 1023, 1024, 1025, 2048, 5000, 16_383, 16_384, 16_385, 33_000,
    262_145,
];

/// Replays iteration `seed`; returns the number of actions or a description of the failure.
fn one(seed: u64) -> Result<u64, String> {
    let mut rng = Rng(seed);
    let units = SIZES[(rng.next() % SIZES.len() as u64) as usize];
    let units = if rng.next().is_multiple_of(4) {
        // Sometimes an arbitrary size.
        1 + rng.next() % 70_000
    } else {
        units
    };
    let n_ops = if units > 100_000 {
        200
    } else {
        50 + rng.next() % 1500
    };
    let mut p = Pair::new(units);
    for i in 0..n_ops {
        let op = decode(units, [rng.next(), rng.next(), rng.next(), rng.next()]);
        p.apply(op)
            .map_err(|e| format!("units {units}, action #{i} {op:?}: {e}"))?;
    }
    p.compare_all().map_err(|e| format!("units {units}: {e}"))?;
    p.finish()
        .map_err(|e| format!("units {units}, final: {e}"))?;
    Ok(n_ops)
}

fn arg(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(seed) = arg(&args, "--seed") {
        match std::panic::catch_unwind(|| one(seed)) {
            Ok(Ok(n)) => println!("fuzz: seed {seed} passed ({n} actions)"),
            Ok(Err(e)) => {
                println!("fuzz: seed {seed} FAILED: {e}");
                std::process::exit(1);
            }
            Err(_) => {
                println!("fuzz: seed {seed} PANICKED");
                std::process::exit(1);
            }
        }
        return;
    }
    let secs = arg(&args, "--seconds").unwrap_or(30);
    let start = arg(&args, "--start").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            << 20
    });
    println!("fuzz: {secs} s from seed {start}");
    let t = Instant::now();
    let mut seed = start;
    let mut runs = 0u64;
    let mut actions = 0u64;
    while t.elapsed() < Duration::from_secs(secs) {
        match std::panic::catch_unwind(|| one(seed)) {
            Ok(Ok(n)) => actions += n,
            Ok(Err(e)) => {
                println!("fuzz: FAILED at seed {seed}: {e}");
                println!(
                    "fuzz: replay with: cargo run --release --bin extmem-fuzz -- --seed {seed}"
                );
                println!("fuzz: {runs} passed, 1 failed");
                std::process::exit(1);
            }
            Err(_) => {
                println!("fuzz: PANIC at seed {seed}");
                println!(
                    "fuzz: replay with: cargo run --release --bin extmem-fuzz -- --seed {seed}"
                );
                println!("fuzz: {runs} passed, 1 failed");
                std::process::exit(1);
            }
        }
        runs += 1;
        seed = seed.wrapping_add(1);
    }
    println!("fuzz: {runs} sequences, {actions} actions, seeds {start}..{seed}");
    println!("fuzz: {runs} passed, 0 failed");
}
