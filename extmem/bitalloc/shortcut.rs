// SPDX-License-Identifier: GPL-2.0

//! The constant-time paths in front of the tree search: the hints and the reject bounds.
//!
//! A request of at most 64 units is first tried in the word at the hint, one of up to a leaf
//! at the lowest aligned start at or above it; both give the first-fit answer when they fit.
//! The reject bounds refuse a request longer than the longest free run, or one needing a
//! larger aligned free block than exists, in a few compares.

use core::ops::DerefMut;

use super::word::{windows, word_pattern};
use super::{ix, wide, BitAlloc, LEAF_SHIFT, LEAF_UNITS, LEAF_WORDS};

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Forgets the reject bounds after a free whose leaf stays pending.
    #[inline(always)]
    pub(super) fn raise_bounds(&mut self) {
        self.max_bound = u64::MAX;
        self.blk_bound = u64::MAX;
    }

    /// Sets the reject bounds to the root summary; every summary must be exact.
    #[inline]
    pub(super) fn sync_bounds(&mut self) {
        let r = self.sum(self.top, 0);
        self.max_bound = r.max;
        self.blk_bound = r.blk;
    }

    /// Whether a request of `count >= 1` units aligned to `align` (a power of two) with
    /// `offset` needs a free aligned block larger than `blk_bound` allows: a fit starts at a
    /// multiple of `2^j`, `2^j` the largest power of two not above `count` or `align`, when
    /// the offset is one too, and its first `2^j` units are then such a block.
    #[inline(always)]
    pub(super) fn needs_larger_block(&self, count: u64, align: u64, offset: u64) -> bool {
        let small = if count < align { count } else { align };
        let j = 63 - small.leading_zeros();
        u64::from(j) >= self.blk_bound && offset & ((1u64 << j) - 1) == 0
    }

    /// Keeps both hints lower bounds after units from `start` on were freed.
    #[inline(always)]
    pub(super) fn lower_hints(&mut self, start: u64) {
        if start < self.hint {
            self.hint = start;
        }
        if start < self.bhint {
            self.bhint = start & !self.bmask;
        }
    }

    /// Tries the lowest aligned start at or above the hint for up to [`LEAF_UNITS`] units
    /// aligned to at most [`LEAF_UNITS`]: units below the hint are allocated, so if that start
    /// fits it is the first fit. A fit that would cross a leaf is left to the tree search.
    #[inline(always)]
    pub(super) fn alloc_probe(&mut self, count: u64, align: u64, offset: u64) -> Option<u64> {
        let mask = align - 1;
        let off = offset & mask;
        let mut from = self.hint;
        if count == align && mask == self.bmask && off == 0 && self.bhint > from {
            // No free block of this size starts below `bhint`.
            from = self.bhint;
        }
        let s = ((from + off + mask) & !mask) - off;
        let e = s + count;
        if e > self.units || (s ^ (e - 1)) >= LEAF_UNITS {
            return None;
        }
        self.ensure_leaf(ix(s >> LEAF_SHIFT));
        if (s | e) & 63 == 0 {
            // Whole words (a 2 MiB block of 4 KiB units is 8): no edge masks.
            let (w0, w1) = (ix(s / 64), ix(e / 64));
            if !self.words_are(w0, w1, 0) {
                return None;
            }
            self.note(s, e);
            self.fill_words(w0, w1, u64::MAX);
        } else {
            if !self.range_is(s, e, false) {
                return None;
            }
            self.note(s, e);
            self.set_bits(s, e, true);
        }
        self.free -= count;
        Some(s)
    }

    /// Tries the word at the hint for `count <= 64` units aligned to `align <= 64`.
    ///
    /// Units below the hint are allocated, so a fit that lies entirely inside the hint's word
    /// is the first fit; one that would cross into the next word is left to the tree search.
    #[inline(always)]
    pub(super) fn alloc_small(&mut self, count: u64, align: u64, offset: u64) -> Option<u64> {
        let mut h = self.hint;
        let mut z = 0;
        let mut w = 0;
        for _ in 0..2 {
            if h >= self.units {
                return None;
            }
            w = ix(h / 64);
            self.ensure_leaf(w / LEAF_WORDS);
            z = !self.word(w) & (u64::MAX << (h % 64));
            if z != 0 {
                break;
            }
            // Nothing free from the hint to the end of its word.
            h = ((h | 63) + 1).min(self.units);
            self.hint = h;
        }
        let mut m = if count == 1 {
            z
        } else {
            windows(z, count as u32)
        };
        if align > 1 {
            m &= word_pattern(align, offset);
        }
        if m == 0 {
            return None;
        }
        let bit = u64::from(m.trailing_zeros());
        let start = wide(w) * 64 + bit;
        self.note(start, start + count);
        if let Some(x) = self.storage.get_mut(w) {
            *x |= (u64::MAX >> (64 - count)) << bit;
        }
        self.free -= count;
        Some(start)
    }
}
