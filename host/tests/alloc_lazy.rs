// SPDX-License-Identifier: GPL-2.0

//! Tests of the uniform (not materialised) nodes: `new`, `from_runs` and `restore` leave the
//! storage untouched except for what they need, large aligned operations write a handful of
//! summaries, and the results agree with the bool-per-unit oracle.

#[path = "alloc_support.rs"]
mod support;

use extmem_core::bitalloc::{storage_words, AllocError, BitAlloc, LEAF_UNITS};
use support::{Oracle, Rng};

const SENTINEL: u64 = 0xdead_beef_0bad_f00d;

fn touched(ws: &[u64]) -> usize {
    ws.iter().filter(|&&w| w != SENTINEL).count()
}

/// Levels of the tree for a pool of `units` (leaves and inner levels).
fn levels(units: u64) -> usize {
    let mut n = units.div_ceil(LEAF_UNITS);
    let mut l = 1;
    while n > 1 {
        n = n.div_ceil(16);
        l += 1;
    }
    l
}

#[test]
fn new_touches_only_the_right_edge() {
    for units in [
        1u64,
        64,
        1000,
        1024,
        65_536,
        1 << 20,
        (1 << 24) + 12_345,
        1 << 28,
    ] {
        let words = storage_words(units).unwrap();
        let a = BitAlloc::new(vec![SENTINEL; words], units).unwrap();
        assert_eq!(a.free_units(), units);
        assert_eq!(a.largest_free_run(), units);
        // At most 16 nodes of 4 words per level and one leaf of 16 bitmap words.
        let bound = 16 * 4 * levels(units) + 16;
        let t = touched(&a.into_storage());
        assert!(
            t <= bound,
            "units {units}: new() wrote {t} words (bound {bound})"
        );
        let mut a = BitAlloc::new(vec![SENTINEL; words], units).unwrap();
        a.check().unwrap();
        assert_eq!(a.allocated_runs().count(), 0);
        assert!(a.is_allocated(units));
        assert!(!a.is_allocated(units - 1));
    }
}

#[test]
fn one_gib_writes_summaries_not_bitmap() {
    let units = 1u64 << 24; // 64 GiB of 4 KiB units
    let words = storage_words(units).unwrap();
    let g = 1u64 << 18; // 1 GiB
    let mut a = BitAlloc::from_runs(vec![SENTINEL; words], units, [(0, 1)]).unwrap();
    for round in 0..4 {
        let before = a.into_storage();
        let snap = before.clone();
        a = BitAlloc::from_runs(before, units, [(0, 1)]).unwrap();
        let s = a.alloc(g, g).unwrap();
        assert_eq!(s, g);
        let mid = a.into_storage();
        // One node's and its ancestors' summaries: not the 4096 bitmap words of 1 GiB.
        let diff = mid.iter().zip(&snap).filter(|(x, y)| x != y).count();
        assert!(
            diff <= 4 * levels(units),
            "round {round}: 1 GiB alloc changed {diff} words"
        );
        let snap = mid.clone();
        a = BitAlloc::from_runs(mid, units, [(0, 1), (g, g)]).unwrap();
        a.free(s, g).unwrap();
        a.check().unwrap();
        let after = a.into_storage();
        let diff = after.iter().zip(&snap).filter(|(x, y)| x != y).count();
        assert!(
            diff <= 4 * levels(units),
            "round {round}: 1 GiB free changed {diff} words"
        );
        a = BitAlloc::from_runs(after, units, [(0, 1)]).unwrap();
    }
    assert!(touched(&a.into_storage()) < 1000);
}

/// Random disjoint runs in a pool of `units`, sorted.
fn random_runs(rng: &mut Rng, units: u64, n: usize) -> Vec<(u64, u64)> {
    let mut runs = Vec::new();
    let mut pos = 0u64;
    let gap = units / (n as u64 + 1);
    for _ in 0..n {
        let start = pos + rng.below(gap / 2) + 1;
        let count = 1 + match rng.below(4) {
            0 => rng.below(8),
            1 => rng.below(600),
            2 => rng.below(5000),
            _ => rng.below(gap / 2),
        };
        if start + count >= units {
            break;
        }
        runs.push((start, count));
        pos = start + count;
        if pos + gap >= units {
            break;
        }
    }
    runs
}

#[test]
fn from_runs_leaves_storage_untouched_and_matches_oracle() {
    let mut rng = Rng(7);
    for units in [70_001u64, 1 << 20, (1 << 24) + 999] {
        let runs = random_runs(&mut rng, units, 100);
        let words = storage_words(units).unwrap();
        let mut a =
            BitAlloc::from_runs(vec![SENTINEL; words], units, runs.iter().copied()).unwrap();
        let mut o = Oracle::new(units);
        for &(s, c) in &runs {
            o.set(s, c, true);
        }
        // Each run: its path's summaries (16 nodes of 4 words per level at most) and the
        // words of the two leaves it only partly covers.
        let bound = 16 * 4 * levels(units) + 16 + runs.len() * (2 * 16 * 4 * levels(units) + 32);
        let storage = a.into_storage();
        let t = touched(&storage);
        assert!(t <= bound.min(words), "units {units}: {t} words touched");
        if units > 1 << 20 {
            assert!(
                t < words / 10,
                "units {units}: {t} of {words} words touched"
            );
        }
        a = BitAlloc::from_runs(storage, units, runs.iter().copied()).unwrap();
        a.check().unwrap();
        assert_eq!(a.allocated_runs().collect::<Vec<_>>(), o.used_runs());
        assert_eq!(a.free_units(), o.free_units());
        assert_eq!(a.largest_free_run(), o.largest_free_run());
        // Then random operations against the oracle (fewer on the large pool: the oracle's
        // first fit is linear).
        let mut live = runs.clone();
        let n_ops = if units > 1 << 20 { 200 } else { 3000 };
        for i in 0..n_ops {
            if rng.below(2) == 0 && !live.is_empty() {
                let k = rng.below(live.len() as u64) as usize;
                let (s, c) = live.swap_remove(k);
                a.free(s, c).unwrap();
                o.set(s, c, false);
            } else {
                let (count, align) = match rng.below(4) {
                    0 => (1 + rng.below(8), 1),
                    1 => (512, 512),
                    2 => (1 << 18, 1 << 18),
                    _ => (1 + rng.below(3000), 1 << rng.below(11)),
                };
                let want = o.first_fit(count, align, 0);
                let got = a.alloc(count, align);
                match (got, want) {
                    (Ok(s), Some(w)) if s == w => {
                        o.set(s, count, true);
                        live.push((s, count));
                    }
                    (Err(AllocError::NoSpace), None) => {}
                    _ => panic!(
                        "units {units} op {i}: alloc({count}, {align}) = {got:?}, oracle {want:?}"
                    ),
                }
            }
            if i % 500 == 199 {
                a.check().unwrap();
                assert_eq!(a.allocated_runs().collect::<Vec<_>>(), o.used_runs());
            }
        }
        a.check().unwrap();
        assert_eq!(a.free_units(), o.free_units());
    }
}

#[test]
fn from_runs_rejects_overlap_and_range() {
    let units = 100_000;
    let w = storage_words(units).unwrap();
    assert_eq!(
        BitAlloc::from_runs(vec![SENTINEL; w], units, [(10, 5), (12, 1)]).err(),
        Some(AllocError::Busy)
    );
    assert_eq!(
        BitAlloc::from_runs(vec![SENTINEL; w], units, [(units - 1, 2)]).err(),
        Some(AllocError::OutOfRange)
    );
    assert_eq!(
        BitAlloc::from_runs(vec![SENTINEL; w], units, [(0, 0)]).err(),
        Some(AllocError::Zero)
    );
    // Unsorted but disjoint runs are fine.
    let mut a = BitAlloc::from_runs(vec![SENTINEL; w], units, [(5000, 3000), (10, 5)]).unwrap();
    assert_eq!(
        a.allocated_runs().collect::<Vec<_>>(),
        vec![(10, 5), (5000, 3000)]
    );
    a.check().unwrap();
}

/// Whole-node allocations and frees across levels, partial ends, and the pool's last
/// partial nodes, against the oracle.
#[test]
fn uniform_nodes_across_levels_match_oracle() {
    let mut rng = Rng(99);
    for units in [16_384u64, 16_385, 262_144, 262_143, 300_001] {
        let words = storage_words(units).unwrap();
        let mut a = BitAlloc::new(vec![SENTINEL; words], units).unwrap();
        let mut o = Oracle::new(units);
        for i in 0..1500 {
            let r = rng.below(10);
            let (s, c) = match r {
                0..=3 => {
                    // A node-aligned range of whole leaves or nodes.
                    let span = [1024u64, 16_384, 262_144][rng.below(3) as usize];
                    let n = 1 + rng.below(3);
                    let s = rng.below(units / span + 1) * span;
                    (s, (n * span).min(units.saturating_sub(s)))
                }
                4..=6 => {
                    let s = rng.below(units);
                    (s, 1 + rng.below(40_000).min(units - s - 1))
                }
                _ => {
                    let s = rng.below(units);
                    (s, 1 + rng.below(8).min(units - s - 1))
                }
            };
            if c == 0 || s >= units {
                continue;
            }
            if o.range_all(s, c, false) {
                assert_eq!(a.alloc_at(s, c), Ok(()), "units {units} op {i}");
                o.set(s, c, true);
            } else if o.range_all(s, c, true) {
                assert_eq!(a.free(s, c), Ok(()), "units {units} op {i}");
                o.set(s, c, false);
            } else {
                assert_eq!(a.alloc_at(s, c), Err(AllocError::Busy));
                assert_eq!(a.free(s, c), Err(AllocError::NotAllocated));
            }
            assert_eq!(a.free_units(), o.free_units(), "units {units} op {i}");
            if i % 100 == 0 {
                a.check().unwrap();
                assert_eq!(a.allocated_runs().collect::<Vec<_>>(), o.used_runs());
                assert_eq!(a.largest_free_run(), o.largest_free_run());
                for u in [0, s, units / 2, units - 1] {
                    assert_eq!(a.is_allocated(u), o.used[u as usize]);
                }
                for u in [0, s, s + c, s + c + 1, units / 2, units - 1, units] {
                    assert_eq!(
                        a.free_around(u, u),
                        o.free_around(u),
                        "units {units} at {u}"
                    );
                }
            }
        }
    }
}
