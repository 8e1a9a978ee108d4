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

/// One operation of a block-heavy sequence: mostly naturally aligned blocks of 512 units
/// (2 MiB of 4 KiB units) and 2^18 units (1 GiB), the sizes with their own index, mixed with
/// small, unaligned and offset requests, fixed claims and bad frees of whole blocks.
fn block_op(units: u64, rng: &mut Rng) -> support::Op {
    use support::Op;
    let r = rng.next() % 100;
    let blocks = (units / 512).max(1);
    let gblocks = (units >> 18).max(1);
    match r {
        0..=34 => Op::Alloc {
            count: 512,
            align_log: 9,
            offset: 0,
        },
        35..=42 => Op::Alloc {
            count: 1 << 18,
            align_log: 18,
            offset: 0,
        },
        43..=46 => Op::Alloc {
            count: 512,
            align_log: 9,
            // An offset that keeps natural alignment (the index) or breaks it (the tree).
            offset: if r.is_multiple_of(2) {
                512 * rng.next()
            } else {
                rng.next()
            },
        },
        47..=74 => Op::FreeLive {
            pick: rng.next(),
            part: if r.is_multiple_of(5) {
                (rng.next() % 4) as u8
            } else {
                0
            },
        },
        75..=83 => Op::Alloc {
            count: 1 + rng.next() % 70,
            align_log: (rng.next() % 4) as u32,
            offset: 0,
        },
        84..=86 => Op::AllocAt {
            start: rng.below(blocks) * 512,
            count: 512,
        },
        87..=89 => Op::FreeRaw {
            start: rng.below(blocks) * 512,
            count: 512,
        },
        90..=91 => Op::FreeRaw {
            start: rng.below(gblocks) << 18,
            count: 1 << 18,
        },
        92..=93 => Op::Alloc {
            count: 1 + rng.next() % 3000,
            align_log: (rng.next() % 12) as u32,
            offset: 0,
        },
        94..=97 => Op::Check,
        _ => Op::RoundTrip,
    }
}

/// The block index (`index.rs`) against the oracle: block allocations must be the oracle's
/// first fit, frees exact, and the stale summaries repaired whenever another operation needs
/// them, on pools with one to four levels, whole and partial 1 GiB nodes.
#[test]
fn block_index_matches_oracle() {
    for (seed, units) in [
        (20u64, 1u64 << 20),
        (21, (3 << 18) + 5000),
        (22, (1 << 19) + 1),
        (23, 70_001),
        (24, 1024),
        (25, 1536),
        (26, 16_384),
    ] {
        let mut rng = Rng(seed);
        let mut p = Pair::new(units);
        let n_ops = if units > 100_000 { 2500 } else { 6000 };
        for i in 0..n_ops {
            let op = block_op(units, &mut rng);
            p.apply(op)
                .unwrap_or_else(|e| panic!("seed {seed} units {units} op #{i} {op:?}: {e}"));
        }
        p.compare_all().unwrap();
        p.finish().unwrap();
    }
}

/// Long runs of block operations only (the steady and burst workloads in small), then one
/// operation of every other kind, each of which must see exact summaries.
#[test]
fn block_runs_then_general_ops() {
    for (seed, units) in [(30u64, 1u64 << 19), (31, (3 << 18) + 777)] {
        let mut rng = Rng(seed);
        let mut p = Pair::new(units);
        for round in 0..3 {
            let b_log = if round % 3 == 2 { 18 } else { 9 };
            // Fill with blocks, free a random half, churn (free one, allocate one).
            for _ in 0..(units >> b_log) + 2 {
                p.apply(support::Op::Alloc {
                    count: 1 << b_log,
                    align_log: b_log,
                    offset: 0,
                })
                .unwrap();
            }
            for _ in 0..(units >> b_log) / 2 {
                p.apply(support::Op::FreeLive {
                    pick: rng.next(),
                    part: 0,
                })
                .unwrap();
            }
            for _ in 0..150 {
                p.apply(support::Op::FreeLive {
                    pick: rng.next(),
                    part: 0,
                })
                .unwrap();
                p.apply(support::Op::Alloc {
                    count: 1 << b_log,
                    align_log: b_log,
                    offset: 0,
                })
                .unwrap();
            }
            // Now a general operation: a small allocation, an unaligned one, a claim.
            let op = match round % 3 {
                0 => support::Op::Alloc {
                    count: 3,
                    align_log: 0,
                    offset: 0,
                },
                1 => support::Op::Alloc {
                    count: 700,
                    align_log: 2,
                    offset: 1,
                },
                _ => support::Op::AllocAt {
                    start: rng.below(units / 512) * 512,
                    count: 600,
                },
            };
            p.apply(op).unwrap();
            p.compare_all().unwrap();
        }
        p.finish().unwrap();
    }
}
