// SPDX-License-Identifier: GPL-2.0

//! The block index: 2 MiB and 1 GiB blocks (of 4 KiB units) without the summaries.
//!
//! Every materialised inner node keeps, in spare bits of its `blk` word, three 16-bit masks
//! over its children: which hold a free block of [`BLOCK_B`] units aligned to its size (`BM`),
//! which are entirely free (`FM`), and which hold a free block of [`BLOCK_G`] units aligned to
//! its size (`GM`). These masks are a 16-ary bit tree of the free blocks, exact at all times
//! (but for the pending leaf's path, as the summaries are), and kept so by every operation: by
//! the summary updates, which compute them alongside, and by the block operations here, which
//! update them directly.
//!
//! A *block operation* is an allocation of `count == align` equal to one of the two block
//! sizes (with an offset that keeps natural alignment), or a free of exactly such a block.
//! It finds the lowest free block by following the first set mask bit from the root (one word
//! per level), writes the block's words (8 for [`BLOCK_B`]) or the level-[`G_LEVEL`] node as a
//! uniform node (for [`BLOCK_G`]), and updates the masks on the way up, stopping at the first
//! ancestor whose word does not change. It does not recompute any summary: the changed node
//! and its ancestors are marked *stale* ([`STALE`]) instead, and the next operation that needs
//! the summaries (any other search, a range across leaves, a check) recomputes every stale
//! node once, bottom up ([`BitAlloc::repair`]). The cost of that repair is at most that of
//! the summary updates the block operations skipped, with the upper levels shared, so a mix
//! of operations costs no more than before, and a run of block operations costs O(levels)
//! word reads and writes each, with no 16-child recombination.
//!
//! The block hint keeps the common [`BLOCK_B`] cases off that walk: a free of a block with no
//! free block to its left (the masks of its path's left siblings, read on the same walk that
//! checks the path is materialised) moves the hint onto it, so the next request takes it in
//! the probe; and when the probe fails, the next free block is looked for from the hint
//! upwards, near the leaves, before the walk from the root.
//!
//! While some node is stale, the reject bounds stay upper bounds (a block free raises them),
//! `locate` does not trust a stale node's summary (it descends, as on the pending path), and
//! `largest_free_run` recomputes the stale paths read only.
//!
//! The masks live in bits of the `blk` words that were unused, so the index adds no
//! metadata, and they are written only where the tree is materialised, so it keeps
//! construction lazy.

use core::ops::DerefMut;

use super::lazy::MUTANT;
use super::summary::{mask_bits, Sum, BM_SHIFT, FM_SHIFT, GM_SHIFT, MAT, STALE, ST_B, ST_F, ST_G};
use super::{
    ix, wide, AllocError, BitAlloc, BLOCK_B, BLOCK_B_LOG, BLOCK_G, BLOCK_G_LOG, FANOUT,
    FANOUT_SHIFT, G_LEVEL, LEAF_SHIFT, LEAF_WORDS, NODE_WORDS,
};

/// Words of one [`BLOCK_B`] block.
const B_WORDS: usize = (BLOCK_B / 64) as usize;

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// The status bits (`ST_B`, `ST_F`, `ST_G`) of a materialised inner node whose `blk` word
    /// is `w`, for a node of `level`.
    #[inline]
    fn status_of_word(level: usize, w: u64) -> u64 {
        let mut st = 0;
        if (w >> BM_SHIFT) & 0xffff != 0 {
            st |= ST_B;
        }
        let full = (w >> FM_SHIFT) & 0xffff == 0xffff;
        if full {
            st |= ST_F;
        }
        let g = match level {
            G_LEVEL => full,
            l if l > G_LEVEL => (w >> GM_SHIFT) & 0xffff != 0,
            _ => false,
        };
        if g {
            st |= ST_G;
        }
        st
    }

    /// The status bits of node `i` of `level`, whose own summary is stored; exact even when
    /// the node is stale (from its words or masks), but not on the pending leaf's path.
    pub(super) fn status(&self, level: usize, i: usize) -> u64 {
        let span = Self::span(level);
        if !self.is_mat(level, i) {
            return Sum::status(self.sum(level, i), span);
        }
        if level == 0 {
            let w0 = i * LEAF_WORDS;
            let (mut lo, mut hi) = (0u64, 0u64);
            match self.storage.get(w0..w0 + LEAF_WORDS) {
                Some(ws) if w0 + LEAF_WORDS <= self.words => {
                    // A whole leaf: two vector reductions.
                    lo = ws.iter().take(B_WORDS).fold(0, |acc, &w| acc | w);
                    hi = ws.iter().skip(B_WORDS).fold(0, |acc, &w| acc | w);
                }
                _ => {
                    for k in 0..B_WORDS {
                        lo |= self.word(w0 + k);
                        hi |= self.word(w0 + B_WORDS + k);
                    }
                }
            }
            let mut st = 0;
            if lo == 0 || hi == 0 {
                st |= ST_B;
            }
            if lo | hi == 0 {
                st |= ST_F;
            }
            return st;
        }
        self.flag_word(level, i)
            .map_or(0, |&w| Self::status_of_word(level, w))
    }

    /// Marks a materialised leaf whose words changed stale and updates its ancestors.
    pub(super) fn leaf_changed(&mut self, leaf: usize) {
        let st = self.status(0, leaf);
        let base = self.base[0];
        if let Some(w) = self.storage.get_mut(base + leaf) {
            *w |= STALE;
        }
        self.ancestors_changed(0, leaf, st);
    }

    /// Updates the masks of the ancestors of node `i` of `level` (whose status may have
    /// changed) and marks them stale, up to the first whose word does not change.
    pub(super) fn node_changed(&mut self, level: usize, i: usize) {
        let st = self.status(level, i);
        self.ancestors_changed(level, i, st);
    }

    /// [`Self::node_changed`] for a node whose new status `st` is known.
    #[inline]
    fn ancestors_changed(&mut self, level: usize, i: usize, st: u64) {
        let mut st = st;
        let mut i = i;
        for p in level + 1..=self.top {
            let k = (i % FANOUT) as u32;
            i /= FANOUT;
            let Some(&base) = self.base.get(p) else {
                return;
            };
            let Some(w) = self.storage.get_mut(base + 4 * i + 3) else {
                return;
            };
            let clear =
                (1u64 << (BM_SHIFT + k)) | (1u64 << (FM_SHIFT + k)) | (1u64 << (GM_SHIFT + k));
            let new = (*w & !clear) | mask_bits(st, k) | STALE;
            if new == *w {
                return;
            }
            *w = new;
            if MUTANT == 10 && p > level + 1 {
                return;
            }
            st = Self::status_of_word(p, new);
        }
    }

    /// Recomputes the summary of every stale node at or below node `i` of `level`, bottom
    /// up, and clears their stale marks.
    pub(super) fn repair(&mut self, level: usize, i: usize) {
        if !self.is_stale(level, i) {
            return;
        }
        if level == 0 {
            let s = self.leaf_summary(i);
            self.put_sum(0, i, s, MAT);
            return;
        }
        let first = i * FANOUT;
        let last = (first + FANOUT).min(self.nodes.get(level - 1).copied().unwrap_or(0));
        for c in first..last {
            self.repair(level - 1, c);
        }
        let (s, m) = self.node_sum_masks(level, i);
        self.put_sum(level, i, s, MAT | m);
    }

    /// The lowest free block of `2^log` units aligned to its size, `log` one of the two block
    /// sizes, from the masks: its start. Nothing may be pending.
    fn find_block(&self, log: u32) -> Option<(u64, bool)> {
        let (st_bit, shift, stop) = if log == BLOCK_B_LOG {
            (ST_B, BM_SHIFT, 0)
        } else {
            (ST_G, GM_SHIFT, G_LEVEL)
        };
        let mut level = self.top;
        if level < stop || self.status(level, 0) & st_bit == 0 {
            return None;
        }
        let mut i = 0usize;
        loop {
            if !self.is_mat(level, i) || level == stop && level != 0 {
                // An entirely free node (its status says so): its first block.
                return Some((wide(i) * Self::span(level), false));
            }
            if level == 0 {
                // A materialised leaf, reached through materialised nodes.
                let w0 = i * LEAF_WORDS;
                let lo = (0..B_WORDS).fold(0, |acc, k| acc | self.word(w0 + k));
                let off = if lo == 0 || MUTANT == 12 { 0 } else { BLOCK_B };
                return Some(((wide(i) << LEAF_SHIFT) + off, true));
            }
            let w = self.flag_word(level, i).copied().unwrap_or(0);
            let m = (w >> shift) & 0xffff;
            if m == 0 {
                return None;
            }
            i = i * FANOUT + m.trailing_zeros() as usize;
            level -= 1;
        }
    }

    /// The lowest free [`BLOCK_B`] block, found from the block hint upwards: no free block
    /// lies below the hint, so it is the first set bit of the masks to the right of the
    /// hint's path, at the lowest level that has one, followed down. First fits come in
    /// rising order in a pool with scattered holes, so the next one is usually a few leaves
    /// away and the walk stays near the leaves, where the one from the root
    /// ([`Self::find_block`]) reads a word per level. Only when the failed probe left the
    /// hint's leaf ready (its path materialised) and nothing is pending or lagging; `None`
    /// when this walk finds nothing (the caller then walks from the root, which also
    /// decides a refusal).
    fn next_block_b(&self) -> Option<(u64, bool)> {
        let from = self.bhint;
        let leaf0 = ix(from >> LEAF_SHIFT);
        if self.bmask != BLOCK_B - 1 || from & (BLOCK_B - 1) != 0 || self.ready != leaf0 {
            return None;
        }
        let half = |leaf: usize, hi: bool| {
            let w0 = leaf * LEAF_WORDS + if hi { B_WORDS } else { 0 };
            (0..B_WORDS).fold(0, |acc, k| acc | self.word(w0 + k)) == 0
        };
        // The hint's own leaf, from the hint on.
        if from & BLOCK_B == 0 && half(leaf0, false) {
            return Some((from, true));
        }
        let base = wide(leaf0) << LEAF_SHIFT;
        if base + 2 * BLOCK_B <= self.units && half(leaf0, true) {
            return Some((base + BLOCK_B, true));
        }
        // Up the path until a sibling to the right holds a free block, then down to it.
        let mut i = leaf0;
        for p in 1..=self.top {
            let k = (i % FANOUT) as u32;
            i /= FANOUT;
            let w = self.flag_word(p, i).copied().unwrap_or(0);
            let mut m = (w >> BM_SHIFT) & 0xffff & !((2u64 << k) - 1);
            if MUTANT == 16 && p == 1 {
                m = 0;
            }
            if m == 0 {
                continue;
            }
            let mut level = p - 1;
            let mut j = i * FANOUT + m.trailing_zeros() as usize;
            loop {
                if !self.is_mat(level, j) {
                    // An entirely free node (its parent's mask says it holds a block).
                    return Some((wide(j) * Self::span(level), false));
                }
                if level == 0 {
                    let start = wide(j) << LEAF_SHIFT;
                    return Some(if half(j, false) {
                        (start, true)
                    } else {
                        (start + BLOCK_B, true)
                    });
                }
                let m = (self.flag_word(level, j).copied().unwrap_or(0) >> BM_SHIFT) & 0xffff;
                if m == 0 {
                    return None;
                }
                j = j * FANOUT + m.trailing_zeros() as usize;
                level -= 1;
            }
        }
        None
    }

    /// Allocates the lowest free block of `count` units aligned to its size, `count` one of
    /// the two block sizes.
    #[inline]
    pub(super) fn alloc_block(&mut self, count: u64) -> Result<u64, AllocError> {
        self.flush_pending();
        if count == BLOCK_B {
            let s = match self.probe_block_b() {
                Some(s) => s,
                None => {
                    self.flush_bpend();
                    let Some((s, ready)) =
                        self.next_block_b().or_else(|| self.find_block(BLOCK_B_LOG))
                    else {
                        return Err(self.block_refused());
                    };
                    let leaf = ix(s >> LEAF_SHIFT);
                    if ready {
                        // The search came down through materialised nodes only.
                        self.ready = leaf;
                    } else {
                        self.ensure_leaf(leaf);
                    }
                    s
                }
            };
            let w0 = ix(s / 64);
            self.touch_leaf(ix(s >> LEAF_SHIFT));
            self.fill_words(w0, w0 + B_WORDS, u64::MAX);
            // No free block of this size lies below `s`, which is taken now.
            self.bmask = BLOCK_B - 1;
            self.bhint = s + if MUTANT == 9 { 2 * BLOCK_B } else { BLOCK_B };
            self.free -= count;
            Ok(s)
        } else {
            self.flush_bpend();
            let Some((s, _)) = self.find_block(BLOCK_G_LOG) else {
                return Err(self.block_refused());
            };
            self.set_block_g(s, true);
            self.free -= count;
            Ok(s)
        }
    }

    /// A refused block request: makes the summaries exact and the reject bounds tight, so that
    /// the next such request fails in the inline compare of `alloc_offset`.
    #[cold]
    fn block_refused(&mut self) -> AllocError {
        self.settle();
        self.sync_bounds();
        AllocError::NoSpace
    }

    /// The [`BLOCK_B`] block at the block hint when it is free: the first fit, as no free block
    /// of that size starts below the hint.
    #[inline]
    fn probe_block_b(&mut self) -> Option<u64> {
        let s = self.bhint;
        if self.bmask != BLOCK_B - 1 || s & (BLOCK_B - 1) != 0 || s + BLOCK_B > self.units {
            return None;
        }
        self.ensure_leaf(ix(s >> LEAF_SHIFT));
        let w0 = ix(s / 64);
        if self.words_are(w0, w0 + B_WORDS, 0) {
            Some(s)
        } else {
            None
        }
    }

    /// Prepares a 2 MiB block operation on `leaf` (materialised): the leaf and its ancestors
    /// are marked stale, and the leaf becomes the one whose bit in its parent's masks may lag
    /// (the previous such leaf is brought up to date first).
    #[inline]
    fn touch_leaf(&mut self, leaf: usize) {
        if self.bpend == leaf {
            return;
        }
        self.flush_bpend();
        self.bpend = leaf;
        let mut i = leaf;
        for level in 0..=self.top {
            let Some(&base) = self.base.get(level) else {
                return;
            };
            let at = if level == 0 {
                base + i
            } else {
                base + 4 * i + 3
            };
            let Some(w) = self.storage.get_mut(at) else {
                return;
            };
            if *w & STALE != 0 {
                // Its ancestors are stale already.
                return;
            }
            *w |= STALE;
            i /= FANOUT;
        }
    }

    /// Brings the parent's masks of the leaf last changed by a 2 MiB block operation up to
    /// date with its words; returns that leaf's status (0 if there was none).
    #[inline]
    pub(super) fn flush_bpend(&mut self) -> u64 {
        let leaf = self.bpend;
        if leaf != usize::MAX {
            self.bpend = usize::MAX;
            if MUTANT != 13 {
                let st = self.status(0, leaf);
                self.ancestors_changed(0, leaf, st);
                return st;
            }
        }
        0
    }

    /// Writes the level-[`G_LEVEL`] node at `s` as a uniform node, allocated (`alloc`) or
    /// free, materialising its ancestors first, and updates the masks above it.
    fn set_block_g(&mut self, s: u64, alloc: bool) {
        let g = ix(s >> BLOCK_G_LOG);
        for level in (G_LEVEL + 1..=self.top).rev() {
            self.materialise(level, g >> (FANOUT_SHIFT * (level - G_LEVEL) as u32));
        }
        self.set_uniform(G_LEVEL, g, alloc);
        if self.bpend != usize::MAX && self.bpend >> (FANOUT_SHIFT * G_LEVEL as u32) == g {
            // Garbage below a uniform node now, and its parent's bit is rewritten below.
            self.bpend = usize::MAX;
        }
        if self.ready != usize::MAX && self.ready >> (FANOUT_SHIFT * G_LEVEL as u32) == g {
            // The ready leaf lies inside: it is garbage below a uniform node now.
            self.ready = usize::MAX;
        }
        self.node_changed(G_LEVEL, g);
    }

    /// Frees the [`BLOCK_B`] block at `s` (aligned, inside the pool).
    #[inline]
    pub(super) fn free_block_b(&mut self, s: u64) -> Result<(), AllocError> {
        let leaf = ix(s >> LEAF_SHIFT);
        let w0 = ix(s / 64);
        // The lines that may miss first (the path, the block's words), so that their loads
        // overlap the flushes below: the words decide only once the path is known to be
        // materialised, and the masks only once nothing lags.
        let path = if leaf == self.ready && self.bmask == BLOCK_B - 1 && s <= self.bhint {
            // The path is known to be materialised, and the hint lands on `s` below anyway
            // (a free of the block just allocated, as in an alloc + free loop): no walk.
            Some(true)
        } else {
            self.block_path(leaf)
        };
        let mut busy = self.words_are(w0, w0 + B_WORDS, u64::MAX);
        // Bring the masks up to date (this changes no allocation, so a refused free may do
        // it too). The masks the walk read were exact but for the paths of the pending leaf
        // and of the lagging leaf; only one of those to the left of `leaf` can hide a free
        // block there: a pending one counts as such, a lagging one if its status now says so.
        let pend_left = matches!(self.pending, Some(p) if p.leaf < leaf);
        self.flush_pending();
        let lag = self.bpend;
        let (mut lag_was, mut lag_st) = (false, 0);
        if lag != leaf && lag != usize::MAX {
            // What the walk saw of the lagging leaf (its parent's bit), and what it is.
            let bit = BM_SHIFT + (lag % FANOUT) as u32;
            lag_was = self
                .flag_word(1, lag / FANOUT)
                .is_some_and(|&w| w >> bit & 1 != 0);
            lag_st = self.flush_bpend();
        }
        let lag_now = lag_st & ST_B != 0 && MUTANT != 17;
        let left = match path {
            Some(left) => {
                self.ready = leaf;
                if lag >= leaf || lag_now == lag_was {
                    left || pend_left
                } else if lag_now {
                    // A free block appeared to the left.
                    true
                } else {
                    // The one the walk saw to the left is gone: look again, on cached lines.
                    pend_left || (MUTANT != 18 && self.block_path(leaf) != Some(false))
                }
            }
            None => {
                self.make_ready(leaf);
                busy = self.words_are(w0, w0 + B_WORDS, u64::MAX);
                true
            }
        };
        if !busy {
            return Err(AllocError::NotAllocated);
        }
        self.touch_leaf(leaf);
        self.fill_words(w0, w0 + B_WORDS, 0);
        self.lower_hints(s);
        if !left && (s & BLOCK_B == 0 || MUTANT == 14 || !self.words_are(w0 - B_WORDS, w0, 0)) {
            // No free block to the left of the path, nor in the lower half of the leaf: the
            // block just freed is the lowest free one, and the next 2 MiB request takes it in
            // the probe instead of a walk down the index.
            self.bmask = BLOCK_B - 1;
            self.bhint = s;
        }
        self.raise_bounds();
        self.free += BLOCK_B;
        Ok(())
    }

    /// Walks the path from the root down to `leaf`: `None` unless every node on it, the leaf
    /// included, is materialised; otherwise whether a child to the left of the path holds a
    /// free [`BLOCK_B`] block, by the masks (exact for those children when nothing is
    /// pending: a lagging leaf's bit lies on its own path). One word per level.
    #[inline]
    fn block_path(&self, leaf: usize) -> Option<bool> {
        let mut left = 0u64;
        for level in (1..=self.top).rev() {
            let sh = FANOUT_SHIFT * level as u32;
            let k = (leaf >> (sh - FANOUT_SHIFT)) % FANOUT;
            let at = self.base.get(level)? + NODE_WORDS * (leaf >> sh) + 3;
            let w = *self.storage.get(at)?;
            if w & MAT == 0 {
                return None;
            }
            if MUTANT != 15 || level == 1 {
                left |= (w >> BM_SHIFT) & ((1u64 << k) - 1);
            }
        }
        let w = *self.storage.get(self.base.first()? + leaf)?;
        (w & MAT != 0).then_some(left != 0)
    }

    /// Frees the [`BLOCK_G`] block at `s` (aligned, inside the pool) when it is a uniform
    /// allocated node, as [`Self::alloc_block`] leaves it; returns `None` otherwise (for the
    /// general path).
    #[inline(never)]
    pub(super) fn free_block_g(&mut self, s: u64) -> Option<()> {
        if self.top < G_LEVEL {
            return None;
        }
        let g = ix(s >> BLOCK_G_LOG);
        for level in (G_LEVEL + 1..=self.top).rev() {
            self.materialise(level, g >> (FANOUT_SHIFT * (level - G_LEVEL) as u32));
        }
        if self.is_mat(G_LEVEL, g) || self.sum(G_LEVEL, g) != Sum::ZERO {
            return None;
        }
        // Uniform and allocated: neither the pending leaf nor the ready leaf is inside.
        self.set_block_g(s, false);
        self.lower_hints(s);
        self.raise_bounds();
        self.free += BLOCK_G;
        Some(())
    }
}
