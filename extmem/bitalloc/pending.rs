// SPDX-License-Identifier: GPL-2.0

//! The one pending leaf: a change inside one leaf defers its summary update until the next
//! operation that needs the summaries, which costs nothing when the words are back to their
//! snapshot.

use core::ops::DerefMut;

use super::summary::{Combine, Sum};
use super::{ix, BitAlloc, FANOUT, FANOUT_SHIFT, LEAF_SHIFT};

/// State of the one leaf whose summary may be behind its bitmap words.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    pub(super) leaf: usize,
    word: usize,
    words: usize,
    /// Value every word in `word..word + words` had when the leaf summary was last exact.
    orig: u64,
    /// Whether `orig` describes the words; if not, the leaf must be rescanned.
    exact: bool,
}

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Returns whether the pending leaf's words are back to their snapshot.
    pub(super) fn pending_clean(&self, p: &Pending) -> bool {
        p.exact
            && self
                .storage
                .get(p.word..p.word + p.words)
                .is_some_and(|ws| ws.iter().fold(0, |acc, &w| acc | (w ^ p.orig)) == 0)
    }

    /// Makes every summary exact again; a pending leaf whose words are back to their
    /// snapshot stays pending (its summaries are exact already).
    #[inline]
    pub(super) fn settle(&mut self) {
        if self.is_stale(self.top, 0) {
            // Block operations left stale summaries: fold the pending leaf into them and
            // recompute every stale node once.
            self.flush_pending();
            self.repair(self.top, 0);
            // The repair recomputed the masks of every stale node, the lagging leaf's path too.
            self.bpend = usize::MAX;
            return;
        }
        if let Some(p) = self.pending {
            if !self.pending_clean(&p) {
                self.settle_leaf(p.leaf);
            }
        }
    }

    /// Rescans the pending leaf and updates its ancestors.
    #[inline(never)]
    fn settle_leaf(&mut self, leaf: usize) {
        self.pending = None;
        let s = self.leaf_summary(leaf);
        if s != self.sum(0, leaf) {
            self.set_sum(0, leaf, s);
            self.propagate(leaf, leaf);
        }
    }

    /// Makes every summary exact again and forgets the pending leaf.
    pub(super) fn settle_all(&mut self) {
        self.settle();
        self.pending = None;
    }

    /// Ends the pending state before a block operation (`index.rs`): a leaf whose words
    /// differ from the snapshot becomes stale, and its ancestors' masks are brought up to
    /// date.
    #[inline]
    pub(super) fn flush_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            if !self.pending_clean(&p) {
                self.leaf_changed(p.leaf);
            }
        }
    }

    /// The exact summary of node `i` of `level`, recomputing the stale nodes and the pending
    /// leaf's path below it without writing anything.
    pub(super) fn eval(&self, level: usize, i: usize) -> Sum {
        let pend = match self.pending {
            Some(p) if !self.pending_clean(&p) => p.leaf >> (FANOUT_SHIFT * level as u32) == i,
            _ => false,
        };
        if !pend && !self.is_stale(level, i) {
            return self.sum(level, i);
        }
        if level == 0 {
            return self.leaf_summary(i);
        }
        let cspan = Self::span(level - 1);
        let n = self.nodes.get(level - 1).copied().unwrap_or(0);
        let first = i * FANOUT;
        let last = (first + FANOUT).min(n);
        let mut c = Combine::new();
        for k in first..last {
            c.push(self.eval(level - 1, k), cspan);
        }
        if last < first + FANOUT {
            c.push(Sum::ZERO, cspan);
        }
        c.finish(cspan)
    }

    /// Prepares the summaries for a change of units `s..e` (a non-empty range in the pool).
    ///
    /// Must be called before the bits change. A change inside one leaf makes that leaf the
    /// pending one (settling another pending leaf first) and returns `true`; a larger change
    /// settles everything and returns `false`, and [`Self::commit`] then refreshes the
    /// summaries. Calling this and then not changing the bits is harmless.
    #[inline(never)]
    pub(super) fn prepare(&mut self, s: u64, e: u64) -> bool {
        let leaf = ix(s >> LEAF_SHIFT);
        if leaf != ix((e - 1) >> LEAF_SHIFT) {
            self.settle_all();
            return false;
        }
        self.ensure_leaf(leaf);
        let w0 = ix(s / 64);
        let n = ix((e - 1) / 64) - w0 + 1;
        if let Some(p) = self.pending {
            if p.leaf == leaf {
                if (p.word == w0 && p.words == n) || !p.exact {
                    // The snapshot covers these words, or the leaf will be rescanned anyway.
                    return true;
                }
                if !self.pending_clean(&p) {
                    // Other words of the leaf changed: only a rescan can settle it now.
                    if let Some(q) = self.pending.as_mut() {
                        q.exact = false;
                    }
                    return true;
                }
                // The leaf is back to its snapshot: take a new one for these words.
            }
        }
        self.settle_all();
        let orig = self.word(w0);
        let exact = self
            .storage
            .get(w0..w0 + n)
            .is_some_and(|ws| ws.iter().all(|&w| w == orig));
        self.pending = Some(Pending {
            leaf,
            word: w0,
            words: n,
            orig,
            exact,
        });
        true
    }

    /// Finishes a change of units `s..e` begun by [`Self::prepare`] (which returned `single`);
    /// a change across leaves has been applied by [`Self::mark_lazy`].
    #[inline]
    pub(super) fn commit(&mut self, s: u64, e: u64, alloc: bool, single: bool) {
        if !single {
            self.sync_bounds();
        } else if !alloc {
            self.raise_bounds();
        }
        if alloc {
            self.free -= e - s;
        } else {
            self.free += e - s;
        }
    }

    /// Marks units `s..e` allocated (`alloc`) or free and keeps the summaries exact.
    pub(super) fn mark(&mut self, s: u64, e: u64, alloc: bool) {
        let single = self.prepare(s, e);
        if single {
            self.set_bits(s, e, alloc);
        } else {
            self.mark_lazy(s, e, alloc);
        }
        self.commit(s, e, alloc, single);
    }

    /// [`Self::prepare`] for units `s..e` inside one leaf, before they change; free when the
    /// pending snapshot already covers exactly their words.
    #[inline(always)]
    pub(super) fn note(&mut self, s: u64, e: u64) {
        let w0 = ix(s / 64);
        let n = ix((e - 1) / 64) - w0 + 1;
        if !matches!(self.pending, Some(p) if p.word == w0 && p.words == n) {
            self.prepare(s, e);
        }
    }
}
