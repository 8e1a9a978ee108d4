// SPDX-License-Identifier: GPL-2.0

//! Uniform nodes: metadata that is built only where an operation looks.
//!
//! A node of the summary tree is either *materialised* (a leaf's bitmap words, or an inner
//! node's children's summaries, are stored and exact) or *uniform*: entirely free or entirely
//! allocated, as its own summary says (`Sum::full(span)` or `Sum::ZERO`), with whatever lies
//! below it in the storage left as garbage. The flag is bit 63 of the leaf's packed summary
//! word or of the inner node's `blk` word ([`MAT`]). Only the root's summary is always stored;
//! a node's summary is stored when its parent is materialised.
//!
//! So a new pool writes the summaries along its right edge only (a pool that is not a multiple
//! of a node's span has a partial node there, which is never uniformly free), an allocation or
//! free of a whole node writes one summary and recomputes its ancestors, and a restore costs a
//! few nodes per allocated run. An operation that must look inside a uniform node first
//! *materialises* it: it writes its children as uniform nodes of the same state (or a leaf's
//! bitmap words as all zero or all one) and sets its flag, top down from the root.
//!
//! `ready` caches one leaf whose path from the root is materialised, so that the constant-time
//! paths pay one compare; any change that may make that leaf uniform again forgets it.

use core::ops::DerefMut;

use super::summary::{mask_bits, Sum, MAT};
use super::{ix, wide, BitAlloc, FANOUT, FANOUT_SHIFT, LEAF_SHIFT, LEAF_UNITS, LEAF_WORDS};

/// Selects a deliberately broken shortcut for `scripts/mutation.sh` (0: none), so that the
/// property tests are shown to catch each: 1 materialises an allocated node as free, 2 keeps
/// the ready leaf after it became uniform, 3 lets a range check pass over a uniform node of
/// the other state, 4 drops the free-node stop of the block search, 5 trusts the pending
/// leaf's stale summaries in `locate`, 6 makes the partial last leaf of a new pool uniform,
/// 7 skips writing the whole nodes of a range across leaves, 8 and 9 move the block hint one
/// block too far after a block search or a successful probe, 10 stops the eager mask update
/// of a block operation after the parent (`index.rs`), 11 trusts a stale node's summary in
/// `locate`, 12 takes the first 2 MiB block of a leaf found by the block index even when it
/// is allocated, 13 never brings the lagging leaf's bit up to date, 14 and 15 decide that a
/// freed 2 MiB block is the lowest free one without looking at the other half of its leaf or
/// at the masks above its parent, 16 skips the leaf's siblings when looking for the next free
/// 2 MiB block from the block hint, 17 misses a free block that appeared in the lagging leaf
/// to the left when deciding it, 18 misses the others when the one the walk saw there is gone
/// (`index.rs`). Set at build time by the
/// environment variable `EXTMEM_MUTANT` (no `cfg`, so the kernel build, which never sets it,
/// sees no unknown cfg); with 0 every test compiles away.
pub(super) const MUTANT: u32 = parse_mutant(option_env!("EXTMEM_MUTANT"));

const fn parse_mutant(s: Option<&str>) -> u32 {
    let Some(s) = s else {
        return 0;
    };
    let b = s.as_bytes();
    let mut v = 0u32;
    let mut i = 0;
    while i < b.len() && i < 4 {
        let d = b[i];
        if d >= b'0' && d <= b'9' {
            v = v * 10 + (d - b'0') as u32;
        }
        i += 1;
    }
    v
}

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Whether node `i` of `level` lies entirely inside units `s..e`.
    #[inline]
    fn covered(level: usize, i: u64, s: u64, e: u64) -> bool {
        let span = Self::span(level);
        i * span >= s && (i + 1) * span <= e
    }

    /// Writes node `i` of `level` as a uniform node, allocated (`alloc`) or free; a free one
    /// must lie entirely inside the pool.
    pub(super) fn set_uniform(&mut self, level: usize, i: usize, alloc: bool) {
        let s = if alloc {
            Sum::ZERO
        } else {
            Sum::full(Self::span(level))
        };
        self.put_sum(level, i, s, 0);
    }

    /// Materialises node `i` of `level`, whose own summary must be stored: a uniform leaf gets
    /// its bitmap words, a uniform inner node its children (uniform, of its state).
    pub(super) fn materialise(&mut self, level: usize, i: usize) {
        if self.is_mat(level, i) {
            return;
        }
        let sm = self.sum(level, i);
        let alloc = MUTANT != 1 && sm == Sum::ZERO;
        if level == 0 {
            let w0 = i * LEAF_WORDS;
            let w1 = (w0 + LEAF_WORDS).min(self.words);
            if let Some(ws) = self.storage.get_mut(w0..w1) {
                ws.fill(if alloc { u64::MAX } else { 0 });
            }
        } else {
            let first = i * FANOUT;
            let last = (first + FANOUT).min(self.nodes.get(level - 1).copied().unwrap_or(0));
            for c in first..last {
                self.set_uniform(level - 1, c, alloc);
            }
            let masks = if alloc {
                0
            } else {
                // Every child is entirely free: the same status bits at each child's position.
                let cspan = Self::span(level - 1);
                let st = Sum::status(Sum::full(cspan), cspan);
                let present = (1u64 << (last - first)) - 1;
                (0..3).fold(0, |m, b| {
                    if st & (1 << b) != 0 {
                        m | (present << mask_bits(1 << b, 0).trailing_zeros())
                    } else {
                        m
                    }
                })
            };
            self.put_sum(level, i, sm, MAT | masks);
            return;
        }
        self.put_sum(level, i, sm, MAT);
    }

    /// Materialises the path from the root to `leaf` and remembers it as `ready`.
    #[inline(never)]
    #[cold]
    pub(super) fn make_ready(&mut self, leaf: usize) {
        if leaf >= self.nodes[0] {
            return;
        }
        for level in (0..=self.top).rev() {
            let i = leaf >> (FANOUT_SHIFT * level as u32);
            if !self.is_mat(level, i) {
                self.materialise(level, i);
            }
        }
        self.ready = leaf;
    }

    /// Makes the bitmap words of `leaf` stored, in one compare when it is the ready leaf.
    #[inline(always)]
    pub(super) fn ensure_leaf(&mut self, leaf: usize) {
        if leaf != self.ready {
            self.make_ready(leaf);
        }
    }

    /// Writes the summaries of a new pool whose units are all free: uniform nodes, except
    /// the partial nodes along the right edge of a pool that is not a multiple of their span.
    pub(super) fn init_free(&mut self) {
        let units = self.units;
        let top = self.top;
        self.ready = usize::MAX;
        // Top down along the right edge: the root's summary is always stored, and the
        // children of a partial node are stored once it is marked materialised.
        let mut level = top;
        loop {
            let span = Self::span(level);
            let last = ix((units - 1) / span);
            if level != top {
                // The whole siblings before the last node of a partial parent.
                for c in (last & !(FANOUT - 1))..last {
                    self.set_uniform(level, c, false);
                }
            }
            if (wide(last) + 1) * span <= units || (MUTANT == 6 && level == 0) {
                self.set_uniform(level, last, false);
                break;
            }
            // A partial node: materialised, its summary computed below.
            self.put_sum(level, last, Sum::ZERO, MAT);
            if level == 0 {
                let w0 = last * LEAF_WORDS;
                if let Some(ws) = self.storage.get_mut(w0..self.words) {
                    ws.fill(0);
                }
                let tail_bits = units % 64;
                if tail_bits != 0 {
                    if let Some(w) = self.storage.get_mut(self.words - 1) {
                        *w = u64::MAX << tail_bits;
                    }
                }
                break;
            }
            level -= 1;
        }
        // Recompute the partial right-edge nodes bottom up.
        for level in 0..=top {
            let span = Self::span(level);
            let last = ix((units - 1) / span);
            if (wide(last) + 1) * span <= units {
                continue;
            }
            self.refresh(level, last);
        }
    }

    /// Returns whether every unit of `s..e` (inside node `i` of `level`, clipped to it) is
    /// allocated (`alloc`) or free, without materialising anything; summaries must be exact.
    pub(super) fn range_all(&self, level: usize, i: u64, s: u64, e: u64, alloc: bool) -> bool {
        let span = Self::span(level);
        let a = i * span;
        let b = a + span;
        let lo = if s > a { s } else { a };
        let hi = if e < b { e } else { b };
        if lo >= hi {
            return true;
        }
        let sm = self.sum(level, ix(i));
        let want = if alloc { Sum::ZERO } else { Sum::full(span) };
        if sm == want {
            return true;
        }
        if lo == a && hi == b {
            // A whole node whose exact summary is not the wanted uniform one.
            return false;
        }
        if !self.is_mat(level, ix(i)) {
            // Uniform in the other state.
            return MUTANT == 3;
        }
        if level == 0 {
            return self.range_is(lo, hi, alloc);
        }
        let cspan = Self::span(level - 1);
        let mut c = lo / cspan;
        while c * cspan < hi {
            if !self.range_all(level - 1, c, lo, hi, alloc) {
                return false;
            }
            c += 1;
        }
        true
    }

    /// Marks units `s..e` (a non-empty range of the pool across leaves) allocated (`alloc`) or
    /// free and updates the summaries; nothing may be pending.
    ///
    /// Nodes inside `s..e` become uniform: only those whose parent is partly outside get a
    /// summary written, the rest of the range is not touched. The partial nodes at both ends
    /// are materialised first, and their bitmap words or summaries recomputed.
    pub(super) fn mark_lazy(&mut self, s: u64, e: u64, alloc: bool) {
        let top = self.top;
        // 1. Materialise the partial nodes at both ends, top down (a partial node's parent is
        //    partial too, so its summary is stored by then).
        for level in (0..=top).rev() {
            let span = Self::span(level);
            for i in [s / span, (e - 1) / span] {
                if !Self::covered(level, i, s, e) {
                    self.materialise(level, ix(i));
                }
            }
        }
        // 2. The bits of the partial leaves.
        let lo = s >> LEAF_SHIFT;
        let hi = (e - 1) >> LEAF_SHIFT;
        if !Self::covered(0, lo, s, e) {
            let end = (lo + 1) * LEAF_UNITS;
            self.set_bits(s, if end < e { end } else { e }, alloc);
        }
        if hi != lo && !Self::covered(0, hi, s, e) {
            self.set_bits(hi * LEAF_UNITS, e, alloc);
        }
        // 3. Summaries, bottom up: whole nodes under a partial parent become uniform (those
        //    under a whole parent are left as they are: garbage below a uniform node), the
        //    partial ones are recomputed from their children.
        for level in 0..=top {
            let span = Self::span(level);
            let (lo, hi) = (s / span, (e - 1) / span);
            let (cf, cl) = (s.div_ceil(span), e / span);
            if cf < cl {
                if level == top {
                    self.set_uniform(level, 0, alloc);
                } else {
                    let pspan = Self::span(level + 1);
                    let (plo, phi) = (s / pspan, (e - 1) / pspan);
                    for p in [plo, phi] {
                        if !Self::covered(level + 1, p, s, e) {
                            let first = p * FANOUT_U;
                            let mut c = if cf > first { cf } else { first };
                            let end = if cl < first + FANOUT_U {
                                cl
                            } else {
                                first + FANOUT_U
                            };
                            while c < end && MUTANT != 7 {
                                self.set_uniform(level, ix(c), alloc);
                                c += 1;
                            }
                        }
                        if plo == phi {
                            break;
                        }
                    }
                }
            }
            for i in [lo, hi] {
                if !Self::covered(level, i, s, e) {
                    self.refresh(level, ix(i));
                }
                if lo == hi {
                    break;
                }
            }
        }
        // The ready leaf is uniform now if it lies inside the range.
        let r = wide(self.ready);
        if MUTANT != 2
            && self.ready != usize::MAX
            && r * LEAF_UNITS >= s
            && (r + 1) * LEAF_UNITS <= e
        {
            self.ready = usize::MAX;
        }
    }

    /// Finds the node that decides `unit`: returns `(Some(allocated), end)` for a uniform
    /// node (materialised or not, but not on the pending path) ending at `end`, or
    /// `(None, end)` for a materialised leaf ending at `end`.
    pub(super) fn locate(&self, unit: u64) -> (Option<bool>, u64) {
        let (state, _, end) = self.locate_span(unit);
        (state, end)
    }

    /// [`Self::locate`], with the first unit of the node as well: `(state, start, end)`.
    pub(super) fn locate_span(&self, unit: u64) -> (Option<bool>, u64, u64) {
        let mut level = self.top;
        loop {
            let span = Self::span(level);
            let i = unit / span;
            let (start, end) = (i * span, (i + 1) * span);
            let on_pending = matches!(self.pending, Some(p)
                if wide(p.leaf) >> (FANOUT_SHIFT * level as u32) == i)
                || (MUTANT != 11 && self.is_stale(level, ix(i)));
            let mat = self.is_mat(level, ix(i));
            if !on_pending || !mat || MUTANT == 5 {
                let sm = self.sum(level, ix(i));
                if sm == Sum::ZERO {
                    return (Some(true), start, end);
                }
                if sm.head >= span || !mat {
                    return (Some(false), start, end);
                }
            }
            if level == 0 {
                return (None, start, end);
            }
            level -= 1;
        }
    }

    /// Returns bitmap word `i` as stored or as its uniform leaf implies (all ones past the
    /// pool).
    pub(super) fn word_at(&self, i: usize) -> u64 {
        if i >= self.words {
            return u64::MAX;
        }
        match self.locate(wide(i) * 64) {
            (Some(true), _) => u64::MAX,
            (Some(false), _) => 0,
            (None, _) => self.word(i),
        }
    }
}

const FANOUT_U: u64 = FANOUT as u64;
