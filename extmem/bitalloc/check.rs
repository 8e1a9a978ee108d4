// SPDX-License-Identifier: GPL-2.0

//! The full consistency check of the summaries, hints and counters against the bitmap.

use core::ops::DerefMut;

use super::summary::{mask_bits, Sum, MASKS};
use super::word::{windows, word_pattern};
use super::{ix, wide, AllocError, BitAlloc, FANOUT, LEAF_WORDS};

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Checks every summary against the bitmap and the free counter; for tests and debugging.
    ///
    /// Settles the pending leaf first. Takes time linear in the materialised part of the
    /// storage; uniform nodes are checked from their summary alone.
    pub fn check(&mut self) -> Result<(), AllocError> {
        // The block index first, before a repair recomputes the masks.
        self.flush_pending();
        self.flush_bpend();
        self.check_masks(self.top, 0)?;
        self.settle();
        let free = self.check_node(self.top, 0)?;
        if free != self.free {
            return Err(AllocError::Inconsistent);
        }
        let tail_bits = self.units % 64;
        if tail_bits != 0
            && self.locate(self.units - 1).0.is_none()
            && (self.word(self.words - 1) >> tail_bits) != (u64::MAX >> tail_bits)
        {
            return Err(AllocError::Inconsistent);
        }
        if self.hint > self.units
            || (self.hint > 0 && !self.range_all(self.top, 0, 0, self.hint, true))
        {
            return Err(AllocError::Inconsistent);
        }
        // No free naturally aligned block of `bmask + 1` units below `bhint`.
        let size = self.bmask + 1;
        if size <= 64 {
            let pat = word_pattern(size, 0);
            for i in 0..ix(self.bhint.min(self.units).div_ceil(64)) {
                let below = self.bhint - wide(i) * 64;
                let m = windows(!self.word_at(i), size as u32) & pat;
                if below < 64 && m & !(u64::MAX << below) != 0 || below >= 64 && m != 0 {
                    return Err(AllocError::Inconsistent);
                }
            }
        } else {
            let mut b = 0;
            while b < self.bhint && b + size <= self.units {
                if self.range_all(self.top, 0, b, b + size, false) {
                    return Err(AllocError::Inconsistent);
                }
                b += size;
            }
        }
        // The reject bounds may only be above the exact root.
        let root = self.sum(self.top, 0);
        if self.max_bound < root.max || self.blk_bound < root.blk {
            return Err(AllocError::Inconsistent);
        }
        Ok(())
    }

    /// Checks the masks and stale marks of node `i` of `level` and below against the words;
    /// returns the node's status bits. Nothing may be pending.
    fn check_masks(&self, level: usize, i: usize) -> Result<u64, AllocError> {
        let stale = self.is_stale(level, i);
        if !self.is_mat(level, i) {
            if stale {
                return Err(AllocError::Inconsistent);
            }
            return Ok(self.status(level, i));
        }
        if level == 0 {
            return Ok(self.status(0, i));
        }
        let first = i * FANOUT;
        let last = (first + FANOUT).min(self.nodes.get(level - 1).copied().unwrap_or(0));
        let mut masks = 0;
        for c in first..last {
            let st = self.check_masks(level - 1, c)?;
            if self.is_stale(level - 1, c) && !stale {
                return Err(AllocError::Inconsistent);
            }
            masks |= mask_bits(st, (c - first) as u32);
        }
        let w = self.flag_word(level, i).copied().unwrap_or(0);
        if w & MASKS != masks {
            return Err(AllocError::Inconsistent);
        }
        Ok(self.status(level, i))
    }

    /// Checks node `i` of `level` and everything stored below it; returns its free units.
    fn check_node(&self, level: usize, i: usize) -> Result<u64, AllocError> {
        let span = Self::span(level);
        let sm = self.sum(level, i);
        if !self.is_mat(level, i) {
            // Uniform: entirely allocated, or entirely free and inside the pool.
            if sm == Sum::ZERO {
                return Ok(0);
            }
            if sm == Sum::full(span) && (wide(i) + 1) * span <= self.units {
                return Ok(span);
            }
            return Err(AllocError::Inconsistent);
        }
        if level == 0 {
            if self.leaf_summary(i) != sm {
                return Err(AllocError::Inconsistent);
            }
            let w0 = i * LEAF_WORDS;
            let w1 = (w0 + LEAF_WORDS).min(self.words);
            let used: u64 = self
                .storage
                .get(w0..w1)
                .map_or(0, |ws| ws.iter().map(|w| u64::from(w.count_ones())).sum());
            return Ok((wide(w1 - w0) * 64).saturating_sub(used));
        }
        if self.node_summary(level, i) != sm {
            return Err(AllocError::Inconsistent);
        }
        let first = i * FANOUT;
        let last = (first + FANOUT).min(self.nodes.get(level - 1).copied().unwrap_or(0));
        let mut free = 0;
        for c in first..last {
            free += self.check_node(level - 1, c)?;
        }
        Ok(free)
    }
}
