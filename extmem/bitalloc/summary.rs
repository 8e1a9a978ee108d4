// SPDX-License-Identifier: GPL-2.0

//! The free-run summary of one node of the tree and how children combine into their parent.

use super::word::group_blk;
use super::{BLOCK_B_LOG, BLOCK_G_LOG, FIELD_BITS, FIELD_MASK};

/// Bit 63 of a leaf's packed summary word and of an inner node's `blk` word: set when the
/// node is *materialised* (its bitmap words, or its children's summaries, are stored); clear
/// when the node is uniform (entirely free or entirely allocated, as its summary says) and
/// what lies below it in the storage is garbage.
pub(super) const MAT: u64 = 1 << 63;

/// Bit 62 of the same words: set when the node's summary (head, tail, max, blk) may be behind
/// its words or children because a block operation changed them (see `index.rs`); a stale
/// node is materialised and its parent is stale too. Its masks are exact all the same.
pub(super) const STALE: u64 = 1 << 62;

/// The `blk` value inside an inner node's `blk` word (bits 0..8); bits 8..56 hold the masks.
pub(super) const BLK_FIELD: u64 = 0xff;

/// Shift of the 16-bit mask, in an inner node's `blk` word, of the children that hold a free
/// block of `2^BLOCK_B_LOG` units aligned to its size (`BM`), that are entirely free (`FM`),
/// and that hold a free block of `2^BLOCK_G_LOG` units aligned to its size (`GM`).
pub(super) const BM_SHIFT: u32 = 8;
pub(super) const FM_SHIFT: u32 = 24;
pub(super) const GM_SHIFT: u32 = 40;
/// All mask bits of an inner node's `blk` word.
pub(super) const MASKS: u64 = 0xffff_ffff_ffff << BM_SHIFT;

/// Bits of a node's *status* (what its parent's masks say about it): it holds a free aligned
/// block of `2^BLOCK_B_LOG` units, it is entirely free, it holds a free aligned block of
/// `2^BLOCK_G_LOG` units.
pub(super) const ST_B: u64 = 1;
pub(super) const ST_F: u64 = 2;
pub(super) const ST_G: u64 = 4;

/// Places a child's status bits at position `k` of the three masks.
#[inline(always)]
pub(super) const fn mask_bits(st: u64, k: u32) -> u64 {
    ((st & ST_B) << (BM_SHIFT + k))
        | (((st & ST_F) >> 1) << (FM_SHIFT + k))
        | (((st & ST_G) >> 2) << (GM_SHIFT + k))
}

/// Free-run summary of one node: runs of free units at the start, at the end and anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sum {
    pub(super) head: u64,
    pub(super) tail: u64,
    pub(super) max: u64,
    /// `k + 1` if a free block of `2^k` units starting at a multiple of `2^k` lies inside,
    /// for the largest such `k`; 0 if no unit is free.
    pub(super) blk: u64,
}

impl Sum {
    pub(super) const ZERO: Sum = Sum {
        head: 0,
        tail: 0,
        max: 0,
        blk: 0,
    };

    /// The summary of an entirely free node of `span` units (a power of two).
    pub(super) const fn full(span: u64) -> Sum {
        Sum {
            head: span,
            tail: span,
            max: span,
            blk: span.trailing_zeros() as u64 + 1,
        }
    }

    /// The status bits of a node of `span` units whose summary `s` is exact.
    #[inline]
    pub(super) fn status(s: Sum, span: u64) -> u64 {
        let mut st = 0;
        if s.blk > u64::from(BLOCK_B_LOG) {
            st |= ST_B;
        }
        if s.head >= span {
            st |= ST_F;
        }
        if s.blk > u64::from(BLOCK_G_LOG) {
            st |= ST_G;
        }
        st
    }

    pub(super) fn pack(self) -> u64 {
        self.head
            | (self.tail << FIELD_BITS)
            | (self.max << (2 * FIELD_BITS))
            | (self.blk << (3 * FIELD_BITS))
    }

    pub(super) fn unpack(w: u64) -> Sum {
        Sum {
            head: w & FIELD_MASK,
            tail: (w >> FIELD_BITS) & FIELD_MASK,
            max: (w >> (2 * FIELD_BITS)) & FIELD_MASK,
            blk: (w >> (3 * FIELD_BITS)) & BLK_FIELD,
        }
    }
}

/// Accumulates child summaries, left to right, into their parent's summary.
pub(super) struct Combine {
    head: u64,
    head_done: bool,
    run: u64,
    best: u64,
    blk: u64,
    /// Bit `i` set when child `i` is entirely free.
    full: u32,
    n: u32,
    /// Bit `i` set when child `i` holds a free aligned block of `2^BLOCK_B_LOG` units (`bm`)
    /// or of `2^BLOCK_G_LOG` units (`gm`); `full` is the `FM` mask.
    bm: u32,
    gm: u32,
}

impl Combine {
    pub(super) fn new() -> Self {
        Combine {
            head: 0,
            head_done: false,
            run: 0,
            best: 0,
            blk: 0,
            full: 0,
            n: 0,
            bm: 0,
            gm: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, c: Sum, span: u64) {
        if c.blk > self.blk {
            self.blk = c.blk;
        }
        self.bm |= u32::from(c.blk > u64::from(BLOCK_B_LOG)) << self.n;
        self.gm |= u32::from(c.blk > u64::from(BLOCK_G_LOG)) << self.n;
        self.n += 1;
        if c.head >= span {
            self.full |= 1 << (self.n - 1);
            self.run += span;
            if !self.head_done {
                self.head += span;
            }
        } else {
            if !self.head_done {
                self.head += c.head;
                self.head_done = true;
            }
            let joined = self.run + c.head;
            if joined > self.best {
                self.best = joined;
            }
            if c.max > self.best {
                self.best = c.max;
            }
            self.run = c.tail;
        }
    }

    /// The masks of the children pushed so far, for the parent's `blk` word.
    pub(super) fn masks(&self) -> u64 {
        // Only the first 16 children count (a missing child pushed last is never free).
        let m = |x: u32| u64::from(x & 0xffff);
        (m(self.bm) << BM_SHIFT) | (m(self.full) << FM_SHIFT) | (m(self.gm) << GM_SHIFT)
    }

    /// Returns the parent's summary; children span `span` units (a power of two).
    pub(super) fn finish(self, span: u64) -> Sum {
        let blk = group_blk(self.full, span.trailing_zeros().into());
        Sum {
            head: self.head,
            tail: self.run,
            max: if self.run > self.best {
                self.run
            } else {
                self.best
            },
            blk: if blk > self.blk { blk } else { self.blk },
        }
    }
}
