// SPDX-License-Identifier: GPL-2.0

//! The first-fit walk of the summary tree and the word-at-a-time scans of the leaves it reaches.

use core::ops::DerefMut;

use super::lazy::MUTANT;
use super::summary::BLK_FIELD;
use super::word::{windows, word_pattern};
use super::{wide, BitAlloc, FANOUT, FANOUT_SHIFT, FIELD_BITS, LEAF_SHIFT, LEAF_WORDS, NODE_WORDS};

/// One search request, normalised: starts `s` with `(s + off) & mask == 0`.
#[derive(Clone, Copy)]
pub(super) struct Req {
    count: u64,
    mask: u64,
    off: u64,
    /// Aligned bit positions inside a word when `mask < 64`, else 0.
    word_pat: u64,
    /// A node can hold a fit only if its `blk` is at least this (see [`Req::new`]).
    need: u64,
}

impl Req {
    pub(super) fn new(count: u64, align: u64, offset: u64) -> Req {
        let mask = align - 1;
        let off = offset & mask;
        let word_pat = if align <= 64 {
            word_pattern(align, offset)
        } else {
            0
        };
        // A fit starts at a multiple of `2^j`, `2^j` the largest power of two not above
        // `count` or `align`, when the offset is one too; then its first `2^j` units are a
        // free aligned block, which only nodes with `blk >= j + 1` have.
        let small = if count < align { count } else { align };
        let j = u64::from(63 - small.leading_zeros());
        let need = if off & ((1u64 << j) - 1) == 0 {
            j + 1
        } else {
            0
        };
        Req {
            count,
            mask,
            off,
            word_pat,
            need,
        }
    }

    /// Lowest aligned start at or above `r` (`r` and the alignment are at most 2^57).
    #[inline]
    fn first_at(&self, r: u64) -> u64 {
        ((r + self.off + self.mask) & !self.mask) - self.off
    }

    /// Aligned start positions within the word whose first unit is `base`.
    #[inline]
    fn word_mask(&self, base: u64) -> u64 {
        if self.mask < 64 {
            self.word_pat
        } else {
            let c = self.first_at(base);
            if c - base < 64 {
                1u64 << (c - base)
            } else {
                0
            }
        }
    }
}

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Walks the summary tree in address order for the first fit; summaries must be exact.
    pub(super) fn search(&self, req: &Req) -> Option<u64> {
        let count = req.count;
        let top = self.top;
        let mut level = top;
        let mut idx = 0usize;
        // Start of the free run that reaches the current node from the left.
        let mut rs: Option<u64> = None;
        loop {
            let span = Self::span(level);
            let a = wide(idx) * span;
            if a >= self.units {
                return None;
            }
            let b = a + span;
            let sm = self.sum(level, idx);
            let mut descend = false;
            if sm.head >= span {
                let r = rs.unwrap_or(a);
                let s = req.first_at(r);
                if s + count <= b {
                    return Some(s);
                }
                rs = Some(r);
            } else {
                let r = match rs {
                    Some(r) => Some(r),
                    None if sm.head > 0 => Some(a),
                    None => None,
                };
                if let Some(r) = r {
                    let s = req.first_at(r);
                    if s + count <= a + sm.head {
                        return Some(s);
                    }
                }
                if sm.max >= count && sm.blk >= req.need && req.first_at(a + 1) + count <= b {
                    descend = true;
                } else {
                    rs = if sm.tail > 0 { Some(b - sm.tail) } else { None };
                }
            }
            if descend {
                if level == 0 {
                    match self.scan_leaf(idx, rs, req) {
                        Ok(s) => return Some(s),
                        Err(r) => rs = r,
                    }
                } else {
                    level -= 1;
                    idx *= FANOUT;
                    continue;
                }
            }
            // Next node in address order: the next sibling, or the parent's next sibling.
            loop {
                if level == top {
                    return None;
                }
                if (idx + 1) & (FANOUT - 1) != 0 {
                    idx += 1;
                    break;
                }
                idx /= FANOUT;
                level += 1;
            }
        }
    }

    /// Returns the lowest free block of `2^j` units that starts at a multiple of `2^j`;
    /// summaries must be exact.
    ///
    /// Such a block lies inside one child of every node whose span is larger, or covers an
    /// aligned group of entirely free children, so the walk reads at most one node per level:
    /// the first child whose `blk` shows a free aligned block of at least `2^j` units.
    pub(super) fn search_block(&self, j: u32) -> Option<u64> {
        let need = u64::from(j) + 1;
        let mut level = self.top;
        let mut idx = 0usize;
        if self.sum(level, idx).blk < need {
            return None;
        }
        loop {
            let span = Self::span(level);
            let a = wide(idx) * span;
            if self.sum(level, idx).head >= span && MUTANT != 4 {
                // An entirely free node (perhaps not materialised): its first block.
                return Some(a);
            }
            if level == 0 {
                return self.leaf_block(idx, j).map(|b| a + b);
            }
            let child = level - 1;
            let clog = LEAF_SHIFT + FANOUT_SHIFT * (child as u32);
            let first = idx * FANOUT;
            if j > clog {
                // The block is `2^(j - clog)` entirely free children, aligned to that many
                // (at most all [`FANOUT`] of them, as this node's `blk` shows).
                if j - clog > FANOUT_SHIFT {
                    return None;
                }
                let g = 1u32 << (j - clog);
                let mut full = 0u32;
                for k in 0..FANOUT {
                    if self.sum(child, first + k).head >= Self::span(child) {
                        full |= 1 << k;
                    }
                }
                let mut k = 0;
                while k < FANOUT as u32 {
                    let group = (u32::MAX >> (32 - g)) << k;
                    if full & group == group {
                        return Some(a + (u64::from(k) << clog));
                    }
                    k += g;
                }
                return None;
            }
            idx = first + self.first_child_blk(child, first, need)?;
            level = child;
        }
    }

    /// Returns `k` for the first of the (at most [`FANOUT`]) nodes `first + k` of `level`
    /// whose `blk` is at least `need`.
    #[inline]
    fn first_child_blk(&self, level: usize, first: usize, need: u64) -> Option<usize> {
        let base = *self.base.get(level)?;
        let last = (first + FANOUT).min(*self.nodes.get(level)?);
        if level == 0 {
            let sums = self.storage.get(base + first..base + last)?;
            sums.iter()
                .position(|&w| (w >> (3 * FIELD_BITS)) & BLK_FIELD >= need)
        } else {
            let sums = self
                .storage
                .get(base + NODE_WORDS * first..base + NODE_WORDS * last)?;
            sums.chunks_exact(NODE_WORDS)
                .position(|n| n.get(3).is_some_and(|&b| b & BLK_FIELD >= need))
        }
    }

    /// Returns the offset inside `leaf` of its lowest free block of `2^j` units aligned to
    /// `2^j` (`j <= 10`).
    fn leaf_block(&self, leaf: usize, j: u32) -> Option<u64> {
        let w0 = leaf * LEAF_WORDS;
        let ws = self.storage.get(w0..(w0 + LEAF_WORDS).min(self.words))?;
        if j > LEAF_SHIFT {
            return None;
        }
        if j < 6 {
            let size = 1u64 << j;
            let pat = word_pattern(size, 0);
            for (k, &w) in ws.iter().enumerate() {
                let m = windows(!w, size as u32) & pat;
                if m != 0 {
                    return Some(wide(k) * 64 + u64::from(m.trailing_zeros()));
                }
            }
            return None;
        }
        let g = 1usize << (j - 6);
        for (k, grp) in ws.chunks_exact(g).enumerate() {
            if grp.iter().fold(0, |acc, &w| acc | w) == 0 {
                return Some(wide(k * g) * 64);
            }
        }
        None
    }

    /// Scans one leaf a word at a time for the first fit, with a free run entering from the
    /// left at `rs`; returns the start, or the free run leaving on the right.
    fn scan_leaf(&self, leaf: usize, mut rs: Option<u64>, req: &Req) -> Result<u64, Option<u64>> {
        let count = req.count;
        let w0 = leaf * LEAF_WORDS;
        for i in w0..w0 + LEAF_WORDS {
            if i >= self.words {
                return Err(None);
            }
            let base = wide(i) * 64;
            let z = !self.word(i);
            if z == 0 {
                rs = None;
                continue;
            }
            if let Some(r) = rs {
                let t = u64::from(z.trailing_ones());
                let s = req.first_at(r);
                if s + count <= base + t {
                    return Ok(s);
                }
                if t == 64 {
                    continue;
                }
            } else if z == u64::MAX {
                rs = Some(base);
                let s = req.first_at(base);
                if s + count <= base + 64 {
                    return Ok(s);
                }
                continue;
            }
            if count <= 64 {
                let m = windows(z, count as u32) & req.word_mask(base);
                if m != 0 {
                    return Ok(base + u64::from(m.trailing_zeros()));
                }
            }
            let l = u64::from(z.leading_ones());
            rs = if l > 0 { Some(base + 64 - l) } else { None };
        }
        Err(rs)
    }
}
