// SPDX-License-Identifier: GPL-2.0

//! The stored summary tree: one packed word per leaf, four words per inner node, level by
//! level after the bitmap; reading and writing nodes and recomputing them after a change.

use core::ops::DerefMut;

use super::summary::{Combine, Sum, BLK_FIELD, MASKS, MAT, STALE};
use super::word::{group_blk, longest_run_above, word_blk};
use super::{BitAlloc, FANOUT, FANOUT_SHIFT, LEAF_UNITS, LEAF_WORDS, NODE_WORDS};

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
                blk: blk & BLK_FIELD,
            },
            _ => Sum::ZERO,
        }
    }

    /// Stores the summary of a materialised node (its words or children are stored); an inner
    /// node's masks are recomputed from its children's summaries, which must be exact.
    pub(super) fn set_sum(&mut self, level: usize, i: usize, s: Sum) {
        let masks = if level == 0 {
            0
        } else {
            self.node_sum_masks(level, i).1
        };
        self.put_sum(level, i, s, MAT | masks);
    }

    /// Recomputes node `i` of `level` from its bitmap words or its children's summaries
    /// (which must be exact) and stores it as materialised, with its masks.
    pub(super) fn refresh(&mut self, level: usize, i: usize) {
        if level == 0 {
            let s = self.leaf_summary(i);
            self.put_sum(0, i, s, MAT);
        } else {
            let (s, m) = self.node_sum_masks(level, i);
            self.put_sum(level, i, s, MAT | m);
        }
    }

    /// Stores a node's summary with its flags `mat`: `MAT` or 0, and for an inner node the
    /// masks of its children. The node is not stale afterwards.
    pub(super) fn put_sum(&mut self, level: usize, i: usize, s: Sum, mat: u64) {
        let base = self.base.get(level).copied().unwrap_or(usize::MAX);
        if level == 0 {
            if let Some(w) = self.storage.get_mut(base.saturating_add(i)) {
                *w = s.pack() | mat;
            }
        } else if let Some(w) = self
            .storage
            .get_mut(base.saturating_add(NODE_WORDS * i)..base.saturating_add(NODE_WORDS * (i + 1)))
        {
            w.copy_from_slice(&[s.head, s.tail, s.max, s.blk | mat]);
        }
    }

    /// Returns whether node `i` of `level` is materialised; the node's own summary must be
    /// stored (the root, or a child of a materialised node).
    #[inline]
    pub(super) fn is_mat(&self, level: usize, i: usize) -> bool {
        let Some(&base) = self.base.get(level) else {
            return false;
        };
        let at = if level == 0 {
            base.saturating_add(i)
        } else {
            base.saturating_add(NODE_WORDS * i + 3)
        };
        self.storage.get(at).is_some_and(|&w| w & MAT != 0)
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
        self.node_sum_masks(level, i).0
    }

    /// Returns whether node `i` of `level` is stale (see `index.rs`).
    #[inline]
    pub(super) fn is_stale(&self, level: usize, i: usize) -> bool {
        self.flag_word(level, i).is_some_and(|&w| w & STALE != 0)
    }

    /// The word holding node `i` of `level`'s flags: a leaf's packed summary or an inner
    /// node's `blk` word.
    #[inline]
    pub(super) fn flag_word(&self, level: usize, i: usize) -> Option<&u64> {
        let base = *self.base.get(level)?;
        if level == 0 {
            self.storage.get(base.checked_add(i)?)
        } else {
            self.storage.get(base.checked_add(NODE_WORDS * i + 3)?)
        }
    }

    /// Computes an inner node's summary and masks from its children's stored summaries.
    pub(super) fn node_sum_masks(&self, level: usize, i: usize) -> (Sum, u64) {
        let child = level - 1;
        let cspan = Self::span(child);
        let mut c = Combine::new();
        let (Some(&base), Some(&n)) = (self.base.get(child), self.nodes.get(child)) else {
            return (Sum::ZERO, 0);
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
                                blk: blk & BLK_FIELD,
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
        let masks = c.masks();
        (c.finish(cspan), masks)
    }

    /// Recomputes the ancestors of leaves `lo..=hi` from level 1 up, stopping early once a
    /// level is unchanged.
    pub(super) fn propagate(&mut self, mut lo: usize, mut hi: usize) {
        for level in 1..=self.top {
            lo /= FANOUT;
            hi /= FANOUT;
            let mut changed = false;
            for i in lo..=hi {
                let (s, m) = self.node_sum_masks(level, i);
                let old = self.flag_word(level, i).map_or(0, |&w| w & MASKS);
                if s != self.sum(level, i) || m != old {
                    self.put_sum(level, i, s, MAT | m);
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }
}
