// SPDX-License-Identifier: GPL-2.0

//! Property tests of the allocator core against a bool-per-unit oracle.
//!
//! Random operation sequences run on pool sizes that are and are not multiples of 64 and of the
//! leaf size, with one to four tree levels. After every operation the allocator must agree with
//! the oracle: an allocation returns exactly the oracle's first fit (so it fails only when the
//! oracle has no aligned free run either, and never overlaps a live range), frees restore
//! exactly, and `free_units`/`largest_free_run` match; every few operations the allocated runs,
//! the summaries and a serialisation round trip are checked too.

#[path = "alloc_support.rs"]
mod support;

use proptest::prelude::*;
use support::{decode, Pair, Rng};

const SIZES: &[u64] = &[
    1, 7, 64, 100, 1024, 1500, 4097, 16_384, 16_385, 40_000, 70_001,
];

fn run(units: u64, words: &[[u64; 4]]) -> Result<(), TestCaseError> {
    let mut p = Pair::new(units);
    for (i, w) in words.iter().enumerate() {
        let op = decode(units, *w);
        if let Err(e) = p.apply(op) {
            return Err(TestCaseError::fail(format!(
                "units {units}, op #{i} {op:?}: {e}"
            )));
        }
    }
    p.compare_all().map_err(TestCaseError::fail)?;
    p.finish().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matches_oracle(
        size in prop::sample::select(SIZES),
        words in prop::collection::vec(any::<[u64; 4]>(), 1..300),
    ) {
        run(size, &words)?;
    }
}

/// Long sequences that fill the pool and fragment it, deterministic seeds.
#[test]
fn long_churn_matches_oracle() {
    for (seed, units) in [(1u64, 3000u64), (2, 16_385), (3, 70_001), (4, 262_145)] {
        let mut rng = Rng(seed);
        let mut p = Pair::new(units);
        let n_ops = if units > 100_000 { 1500 } else { 4000 };
        for i in 0..n_ops {
            let op = decode(units, [rng.next(), rng.next(), rng.next(), rng.next()]);
            p.apply(op)
                .unwrap_or_else(|e| panic!("seed {seed} units {units} op #{i} {op:?}: {e}"));
        }
        p.compare_all().unwrap();
        p.finish().unwrap();
    }
}

/// Many small allocations and frees keep pools fragmented: the regime of the fast paths.
#[test]
fn small_churn_matches_oracle() {
    for (seed, units) in [(10u64, 700u64), (13, 1024), (11, 5000), (12, 33_333)] {
        let mut rng = Rng(seed);
        let mut p = Pair::new(units);
        for i in 0..20_000 {
            let r = rng.next();
            let op = if r.is_multiple_of(3) {
                support::Op::FreeLive {
                    pick: rng.next(),
                    part: 0,
                }
            } else {
                support::Op::Alloc {
                    count: 1 + rng.next() % 16,
                    align_log: (rng.next() % 4) as u32,
                    offset: 0,
                }
            };
            p.apply(op)
                .unwrap_or_else(|e| panic!("seed {seed} op #{i} {op:?}: {e}"));
            if i % 1000 == 0 {
                p.compare_all().unwrap();
            }
        }
        p.finish().unwrap();
    }
}
