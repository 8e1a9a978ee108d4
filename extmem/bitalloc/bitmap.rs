// SPDX-License-Identifier: GPL-2.0

//! Reading and writing the bitmap part of the storage: one bit per unit, `1` when allocated.

use core::ops::DerefMut;

use super::{ix, wide, BitAlloc};

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    #[inline]
    pub(super) fn word(&self, i: usize) -> u64 {
        if i < self.words {
            self.storage.get(i).copied().unwrap_or(u64::MAX)
        } else {
            u64::MAX
        }
    }

    /// Sets (`alloc`) or clears the bits of units `s..e` (a non-empty range in the pool).
    pub(super) fn set_bits(&mut self, s: u64, e: u64, alloc: bool) {
        let w0 = ix(s / 64);
        let w1 = ix((e - 1) / 64);
        let first = u64::MAX << (s % 64);
        let last = u64::MAX >> (63 - (e - 1) % 64);
        if w0 == w1 {
            if let Some(w) = self.storage.get_mut(w0) {
                if alloc {
                    *w |= first & last;
                } else {
                    *w &= !(first & last);
                }
            }
            return;
        }
        let Some(bits) = self.storage.get_mut(w0..=w1) else {
            return;
        };
        let n = bits.len();
        if n == 1 {
            if let Some(w) = bits.first_mut() {
                if alloc {
                    *w |= first & last;
                } else {
                    *w &= !(first & last);
                }
            }
            return;
        }
        let fill = if alloc { u64::MAX } else { 0 };
        if let Some(w) = bits.first_mut() {
            *w = if alloc { *w | first } else { *w & !first };
        }
        if let Some(mid) = bits.get_mut(1..n - 1) {
            mid.fill(fill);
        }
        if let Some(w) = bits.last_mut() {
            *w = if alloc { *w | last } else { *w & !last };
        }
    }

    /// Returns whether bitmap words `w0..w1` (a non-empty range) all equal `want`.
    #[inline(always)]
    pub(super) fn words_are(&self, w0: usize, w1: usize, want: u64) -> bool {
        let Some(ws) = self.storage.get(w0..w1) else {
            return false;
        };
        if let Ok(a) = <&[u64; 8]>::try_from(ws) {
            // A 2 MiB block of 4 KiB units: a few vector compares instead of a loop.
            return a.iter().fold(0, |acc, &w| acc | (w ^ want)) == 0;
        }
        ws.iter().fold(0, |acc, &w| acc | (w ^ want)) == 0
    }

    /// Sets bitmap words `w0..w1` to `v`.
    #[inline(always)]
    pub(super) fn fill_words(&mut self, w0: usize, w1: usize, v: u64) {
        if let Some(ws) = self.storage.get_mut(w0..w1) {
            if let Ok(a) = <&mut [u64; 8]>::try_from(&mut *ws) {
                // A 2 MiB block of 4 KiB units: two vector stores instead of a call.
                *a = [v; 8];
            } else {
                ws.fill(v);
            }
        }
    }

    /// Returns whether every unit of `s..e` is allocated (`alloc`) or free.
    #[inline]
    pub(super) fn range_is(&self, s: u64, e: u64, alloc: bool) -> bool {
        let w0 = ix(s / 64);
        let w1 = ix((e - 1) / 64);
        let first = u64::MAX << (s % 64);
        let last = u64::MAX >> (63 - (e - 1) % 64);
        let want = if alloc { u64::MAX } else { 0 };
        if w0 == w1 {
            return (self.word(w0) ^ want) & first & last == 0;
        }
        let Some(bits) = self.storage.get(w0..=w1) else {
            return false;
        };
        match bits {
            [head, mid @ .., tail] => {
                // A branch-free reduction, so that long ranges are checked a vector at a time.
                let diff = mid.iter().fold(0, |acc, &w| acc | (w ^ want));
                (head ^ want) & first == 0 && (tail ^ want) & last == 0 && diff == 0
            }
            _ => false,
        }
    }

    /// Returns the first unit at or after `from` that is allocated (`alloc`) or free.
    ///
    /// Uniform nodes (whose words may not be stored) are decided from their summary and
    /// skipped whole; only materialised leaves are read a word at a time.
    pub(super) fn next_bit(&self, from: u64, alloc: bool) -> Option<u64> {
        let flip = if alloc { 0 } else { u64::MAX };
        let mut pos = from;
        while pos < self.units {
            let (state, end) = self.locate(pos);
            if let Some(st) = state {
                if st == alloc {
                    return Some(pos);
                }
                pos = end;
                continue;
            }
            // A materialised leaf: scan its words from `pos`.
            let mut i = ix(pos / 64);
            let last = ix((end - 1) / 64);
            let mut w = (self.word(i) ^ flip) & (u64::MAX << (pos % 64));
            loop {
                if w != 0 {
                    let u = wide(i) * 64 + u64::from(w.trailing_zeros());
                    return if u < self.units { Some(u) } else { None };
                }
                i += 1;
                if i > last || i >= self.words {
                    break;
                }
                w = self.word(i) ^ flip;
            }
            pos = end;
        }
        None
    }

    /// Returns the last unit before `before` that is allocated (`alloc`) or free, the mirror
    /// of [`Self::next_bit`]: uniform nodes are skipped whole, materialised leaves read a
    /// word at a time from the top.
    pub(super) fn prev_bit(&self, before: u64, alloc: bool) -> Option<u64> {
        let flip = if alloc { 0 } else { u64::MAX };
        let mut pos = before.min(self.units);
        while pos > 0 {
            let (state, start, _) = self.locate_span(pos - 1);
            if let Some(st) = state {
                if st == alloc {
                    return Some(pos - 1);
                }
                pos = start;
                continue;
            }
            // A materialised leaf: scan its words down from `pos - 1`.
            let first = ix(start / 64);
            let mut i = ix((pos - 1) / 64);
            let mut w = (self.word(i) ^ flip) & (u64::MAX >> (63 - (pos - 1) % 64));
            loop {
                if w != 0 {
                    return Some(wide(i) * 64 + 63 - u64::from(w.leading_zeros()));
                }
                if i <= first {
                    break;
                }
                i -= 1;
                w = self.word(i) ^ flip;
            }
            pos = start;
        }
        None
    }
}
