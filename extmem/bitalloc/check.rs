// SPDX-License-Identifier: GPL-2.0

//! The full consistency check of the summaries, hints and counters against the bitmap.

use core::ops::DerefMut;

use super::word::{windows, word_pattern};
use super::{ix, wide, AllocError, BitAlloc};

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Checks every summary against the bitmap and the free counter; for tests and debugging.
    ///
    /// Settles the pending leaf first. Takes time linear in `units / 64`.
    pub fn check(&mut self) -> Result<(), AllocError> {
        self.settle();
        let mut used = 0u64;
        for w in self.storage.iter().take(self.words) {
            used += u64::from(w.count_ones());
        }
        if (wide(self.words) * 64).saturating_sub(used) != self.free {
            return Err(AllocError::Inconsistent);
        }
        let tail_bits = self.units % 64;
        if tail_bits != 0 && (self.word(self.words - 1) >> tail_bits) != (u64::MAX >> tail_bits) {
            return Err(AllocError::Inconsistent);
        }
        if self.hint > self.units || (self.hint > 0 && !self.range_is(0, self.hint, true)) {
            return Err(AllocError::Inconsistent);
        }
        // No free naturally aligned block of `bmask + 1` units below `bhint`.
        let size = self.bmask + 1;
        if size <= 64 {
            let pat = word_pattern(size, 0);
            for i in 0..ix(self.bhint.min(self.units).div_ceil(64)) {
                let below = self.bhint - wide(i) * 64;
                let m = windows(!self.word(i), size as u32) & pat;
                if below < 64 && m & !(u64::MAX << below) != 0 || below >= 64 && m != 0 {
                    return Err(AllocError::Inconsistent);
                }
            }
        } else {
            let mut b = 0;
            while b < self.bhint && b + size <= self.units {
                if self.range_is(b, b + size, false) {
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
        for leaf in 0..self.nodes[0] {
            if self.leaf_summary(leaf) != self.sum(0, leaf) {
                return Err(AllocError::Inconsistent);
            }
        }
        for level in 1..=self.top {
            for i in 0..self.nodes[level] {
                if self.node_summary(level, i) != self.sum(level, i) {
                    return Err(AllocError::Inconsistent);
                }
            }
        }
        Ok(())
    }
}
