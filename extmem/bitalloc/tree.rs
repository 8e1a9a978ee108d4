// SPDX-License-Identifier: GPL-2.0

//! The stored summary tree: one packed word per leaf, four words per inner node, level by
//! level after the bitmap; reading and writing nodes and recomputing them after a change.

use core::ops::DerefMut;

use super::summary::{Combine, Sum};
use super::word::{group_blk, longest_run_above, word_blk};
use super::{ix, BitAlloc, FANOUT, FANOUT_SHIFT, LEAF_UNITS, LEAF_WORDS, NODE_WORDS};

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    #[inline]
    pub(super) fn sum(&self, level: usize, i: usize) -> Sum {
        let Some((&base, &n)) = self.base.get(level).zip(self.nodes.get(level)) else {
            return Sum::ZERO;
        };
        if i >= n {
            return Sum::ZERO;
        }
        if level == 0 {
            return self
                .storage
                .get(base + i)
                .map_or(Sum::ZERO, |&w| Sum::unpack(w));
        }
        match self
            .storage
            .get(base + NODE_WORDS * i..base + NODE_WORDS * (i + 1))
        {
            Some(&[head, tail, max, blk]) => Sum {
                head,
                tail,
                max,
                blk,
            },
            _ => Sum::ZERO,
        }
    }

    pub(super) fn set_sum(&mut self, level: usize, i: usize, s: Sum) {
        let base = self.base.get(level).copied().unwrap_or(usize::MAX);
        if level == 0 {
            if let Some(w) = self.storage.get_mut(base.saturating_add(i)) {
                *w = s.pack();
            }
        } else if let Some(w) = self
            .storage
            .get_mut(base.saturating_add(NODE_WORDS * i)..base.saturating_add(NODE_WORDS * (i + 1)))
        {
            w.copy_from_slice(&[s.head, s.tail, s.max, s.blk]);
        }
    }

    /// Units covered by one node of `level`.
    #[inline]
    pub(super) fn span(level: usize) -> u64 {
        LEAF_UNITS << (FANOUT_SHIFT * (level as u32))
    }

    /// Computes a leaf's summary from its bitmap words.
    pub(super) fn leaf_summary(&self, leaf: usize) -> Sum {
        let w0 = leaf * LEAF_WORDS;
        let mut head = 0u64;
        let mut head_done = false;
        let mut run = 0u64;
        let mut best = 0u64;
        let mut blk = 0u64;
        let mut full = 0u32;
        for (k, i) in (w0..w0 + LEAF_WORDS).enumerate() {
            let z = !self.word(i);
            if blk < 6 {
                let b = word_blk(z);
                if b > blk {
                    blk = b;
                }
            }
            if z == u64::MAX {
                full |= 1 << k;
                run += 64;
                if !head_done {
                    head += 64;
                }
                continue;
            }
            let t = u64::from(z.trailing_ones());
            if !head_done {
                head += t;
                head_done = true;
            }
            if run + t > best {
                best = run + t;
            }
            best = longest_run_above(z, best);
            run = u64::from(z.leading_ones());
        }
        if run > best {
            best = run;
        }
        let g = group_blk(full, 6);
        Sum {
            head,
            tail: run,
            max: best,
            blk: if g > blk { g } else { blk },
        }
    }

    /// Computes an inner node's summary from its children's stored summaries.
    pub(super) fn node_summary(&self, level: usize, i: usize) -> Sum {
        let child = level - 1;
        let cspan = Self::span(child);
        let mut c = Combine::new();
        let (Some(&base), Some(&n)) = (self.base.get(child), self.nodes.get(child)) else {
            return Sum::ZERO;
        };
        let first = i * FANOUT;
        let last = (first + FANOUT).min(n);
        if first < last {
            if child == 0 {
                if let Some(ws) = self.storage.get(base + first..base + last) {
                    for &w in ws {
                        c.push(Sum::unpack(w), cspan);
                    }
                }
            } else if let Some(ws) = self
                .storage
                .get(base + NODE_WORDS * first..base + NODE_WORDS * last)
            {
                for n in ws.chunks_exact(NODE_WORDS) {
                    if let [head, tail, max, blk] = *n {
                        c.push(
                            Sum {
                                head,
                                tail,
                                max,
                                blk,
                            },
                            cspan,
                        );
                    }
                }
            }
        }
        // Missing children (past the end of the pool) count as allocated.
        if last < first + FANOUT {
            c.push(Sum::ZERO, cspan);
        }
        c.finish(cspan)
    }

    /// Recomputes the ancestors of leaves `lo..=hi` from level 1 up, stopping early once a
    /// level is unchanged.
    pub(super) fn propagate(&mut self, mut lo: usize, mut hi: usize) {
        for level in 1..=self.top {
            lo /= FANOUT;
            hi /= FANOUT;
            let mut changed = false;
            for i in lo..=hi {
                let s = self.node_summary(level, i);
                if s != self.sum(level, i) {
                    self.set_sum(level, i, s);
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Brings every summary up to date after units `s..e` (a non-empty range in the pool)
    /// were set (`alloc`) or cleared.
    ///
    /// At each level the nodes that `s..e` covers entirely get a constant summary (a memset
    /// for a large range) and only the at most two nodes at its ends are recomputed, so a
    /// 1 GiB range costs a few hundred summary words, not a rescan of its 4096 bitmap words.
    pub(super) fn refresh(&mut self, s: u64, e: u64, alloc: bool) {
        for level in 0..=self.top {
            let span = Self::span(level);
            let lo = s / span;
            let hi = (e - 1) / span;
            // Nodes `cf..cl` lie entirely inside `s..e`.
            let cf = s.div_ceil(span);
            let cl = e / span;
            if cf < cl {
                let c = if alloc { Sum::ZERO } else { Sum::full(span) };
                self.fill_sums(level, ix(cf), ix(cl), c);
            }
            for i in [lo, hi] {
                if i < cf || i >= cl {
                    let i = ix(i);
                    let new = if level == 0 {
                        self.leaf_summary(i)
                    } else {
                        self.node_summary(level, i)
                    };
                    self.set_sum(level, i, new);
                }
            }
        }
    }

    /// Sets the summaries of nodes `from..to` of `level` to `c`.
    fn fill_sums(&mut self, level: usize, from: usize, to: usize, c: Sum) {
        let base = self.base.get(level).copied().unwrap_or(usize::MAX);
        if level == 0 {
            let range = base.saturating_add(from)..base.saturating_add(to);
            if let Some(w) = self.storage.get_mut(range) {
                w.fill(c.pack());
            }
        } else {
            let range =
                base.saturating_add(NODE_WORDS * from)..base.saturating_add(NODE_WORDS * to);
            if let Some(w) = self.storage.get_mut(range) {
                for n in w.chunks_exact_mut(NODE_WORDS) {
                    n.copy_from_slice(&[c.head, c.tail, c.max, c.blk]);
                }
            }
        }
    }

    /// Returns whether every unit of `s..e` is allocated (`alloc`) or free, reading the
    /// summaries of the leaves that `s..e` covers entirely instead of their bitmap words;
    /// every summary must be exact (no leaf pending).
    ///
    /// A leaf is entirely allocated exactly when its summary is all zero and entirely free
    /// exactly when it is that of a free leaf, so a 1 GiB range reads 256 summary words
    /// instead of 4096 bitmap words.
    pub(super) fn range_is_settled(&self, s: u64, e: u64, alloc: bool) -> bool {
        let cf = s.div_ceil(LEAF_UNITS);
        let cl = e / LEAF_UNITS;
        if cf >= cl {
            return self.range_is(s, e, alloc);
        }
        let want = if alloc {
            Sum::ZERO.pack()
        } else {
            Sum::full(LEAF_UNITS).pack()
        };
        let base = self.base.first().copied().unwrap_or(usize::MAX);
        let sums_ok = self
            .storage
            .get(base.saturating_add(ix(cf))..base.saturating_add(ix(cl)))
            .is_some_and(|ws| ws.iter().fold(0, |acc, &w| acc | (w ^ want)) == 0);
        let a = cf * LEAF_UNITS;
        let b = cl * LEAF_UNITS;
        sums_ok && (s == a || self.range_is(s, a, alloc)) && (b == e || self.range_is(b, e, alloc))
    }
}
