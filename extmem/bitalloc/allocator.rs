// SPDX-License-Identifier: GPL-2.0

//! The allocator type, its construction, queries and allocation and free entry points.

use core::ops::DerefMut;

use super::lazy::MUTANT;
use super::pending::Pending;
use super::search::Req;
use super::AllocError;
use super::{
    ix, storage_words, wide, BLOCK_B, BLOCK_G, FANOUT, LEAF_SHIFT, LEAF_UNITS, MAX_LEVELS,
    NODE_WORDS,
};

/// A first-fit range allocator over a caller-provided bitmap with a summary tree.
///
/// All positions and lengths are in allocation units; unit `i` is bit `i % 64` of word
/// `i / 64` of the storage's bitmap part.
///
/// # Invariants
///
/// - `storage.len() >= storage_words(units)`; bits for units `>= units` in the last bitmap word
///   are set, as if allocated.
/// - Every summary is exact for the bitmap, except for the leaf named by `pending` and its
///   ancestors, which are exact for the bitmap with that leaf's words
///   `word..word + words` equal to `orig` (when `exact`) or for an earlier state (when not).
/// - `free` is the number of clear bits below `units`; every unit below `hint` is allocated.
/// - No free block of `bmask + 1` units (a power of two) that starts at a multiple of its size
///   starts below `bhint`.
/// - `max_bound` is at least the longest free run and `blk_bound` at least the root's exact
///   `blk`: the root summary's values when they were last exact, raised to `u64::MAX` by every
///   free that leaves a leaf pending (only allocations happened since, which shrink both).
pub struct BitAlloc<S: DerefMut<Target = [u64]>> {
    pub(super) storage: S,
    pub(super) units: u64,
    pub(super) free: u64,
    pub(super) hint: u64,
    /// Lower bound of the lowest free naturally aligned block of `bmask + 1` units: the
    /// block size last searched for, so that repeated 2 MiB or 1 GiB requests start there.
    pub(super) bhint: u64,
    pub(super) bmask: u64,
    pub(super) words: usize,
    /// Highest level; the root is node 0 of this level.
    pub(super) top: usize,
    /// Start of each level's summaries in `storage`.
    pub(super) base: [usize; MAX_LEVELS],
    /// Number of nodes of each level.
    pub(super) nodes: [usize; MAX_LEVELS],
    pub(super) pending: Option<Pending>,
    /// Upper bound of the longest free run, so that longer requests fail in one compare.
    pub(super) max_bound: u64,
    /// Upper bound of the root's `blk`, so that requests needing a larger aligned free block
    /// fail in a few instructions.
    pub(super) blk_bound: u64,
    /// A leaf whose path from the root is materialised, or `usize::MAX` (see `lazy.rs`).
    pub(super) ready: usize,
    /// The leaf last changed by a 2 MiB block operation, whose bit in its parent's masks may
    /// lag its words (see `index.rs`); `usize::MAX` for none.
    pub(super) bpend: usize,
}

/// Iterator over the maximal allocated runs of a [`BitAlloc`], as `(start, count)` in units.
///
/// Created by [`BitAlloc::allocated_runs`]; runs come in increasing address order.
pub struct AllocatedRuns<'a, S: DerefMut<Target = [u64]>> {
    alloc: &'a BitAlloc<S>,
    pos: u64,
}

impl<S: DerefMut<Target = [u64]>> Iterator for AllocatedRuns<'_, S> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let start = self.alloc.next_bit(self.pos, true)?;
        let end = self
            .alloc
            .next_bit(start, false)
            .unwrap_or(self.alloc.units);
        self.pos = end;
        Some((start, end - start))
    }
}

/// Checks a count against a start and the pool size; returns the end of the range.
pub(super) fn range_end(start: u64, count: u64, units: u64) -> Result<u64, AllocError> {
    if count == 0 {
        return Err(AllocError::Zero);
    }
    let end = start.checked_add(count).ok_or(AllocError::Overflow)?;
    if end > units {
        return Err(AllocError::OutOfRange);
    }
    Ok(end)
}

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Creates an allocator over `storage` for a pool of `units` units, all free.
    ///
    /// `storage` must hold at least [`storage_words`]`(units)` words. Its previous contents
    /// need not be zeroed and are not read: the tree starts as uniformly free nodes, and only
    /// the root and the partial nodes along the right edge of the pool (at most 16 summaries
    /// per level and 16 bitmap words) are written. Bitmap words and summaries below a uniform
    /// node are written when an operation first looks inside it, so a pool whose storage is
    /// never touched beyond what its allocations need costs nothing for the rest. Takes
    /// O(log units) time.
    pub fn new(storage: S, units: u64) -> Result<Self, AllocError> {
        let mut a = Self::layout(storage, units)?;
        a.init_free();
        a.free = units;
        a.sync_bounds();
        Ok(a)
    }

    /// Creates an allocator whose allocated units are exactly the runs `(start, count)`.
    ///
    /// Like [`BitAlloc::new`], the storage is not read and need not be zeroed; each run costs
    /// O(log units) summary writes (plus the bitmap words of the at most two leaves it only
    /// partly covers), so a restore of `r` runs costs O(r log units) whatever the pool size.
    /// Runs may come in any order but must be non-empty, inside the pool and disjoint;
    /// otherwise this fails with the error [`BitAlloc::alloc_at`] gives.
    pub fn from_runs(
        storage: S,
        units: u64,
        runs: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<Self, AllocError> {
        let mut a = Self::new(storage, units)?;
        for (start, count) in runs {
            a.alloc_at(start, count)?;
        }
        Ok(a)
    }

    /// Creates an allocator whose allocated units are the set bits of `bitmap`.
    ///
    /// `bitmap` holds one bit per unit, unit `i` in bit `i % 64` of word `i / 64`, and must have
    /// at least `units.div_ceil(64)` words; bits at or above `units` are ignored. This converts
    /// a CMA-style bitmap and builds test patterns in one pass.
    pub fn from_bitmap(storage: S, units: u64, bitmap: &[u64]) -> Result<Self, AllocError> {
        let mut a = Self::layout(storage, units)?;
        let words = a.words;
        let src = bitmap.get(..words).ok_or(AllocError::BadStorage)?;
        if let Some(bits) = a.storage.get_mut(..words) {
            bits.copy_from_slice(src);
        }
        a.finish_build();
        Ok(a)
    }

    /// Checks the sizes and lays out the levels; the contents are not initialised yet.
    pub(super) fn layout(storage: S, units: u64) -> Result<Self, AllocError> {
        if units == 0 {
            return Err(AllocError::Zero);
        }
        let need = storage_words(units).ok_or(AllocError::OutOfRange)?;
        if storage.len() < need {
            return Err(AllocError::BadStorage);
        }
        let words = ix(units.div_ceil(64));
        let mut base = [0usize; MAX_LEVELS];
        let mut nodes = [0usize; MAX_LEVELS];
        let mut n = ix(units.div_ceil(LEAF_UNITS));
        let mut at = words;
        let mut top = 0;
        base[0] = at;
        nodes[0] = n;
        at += n;
        while n > 1 {
            n = n.div_ceil(FANOUT);
            top += 1;
            // `storage_words` succeeded, so there are at most `MAX_LEVELS` levels and no sum
            // overflows.
            if let (Some(b), Some(c)) = (base.get_mut(top), nodes.get_mut(top)) {
                *b = at;
                *c = n;
            }
            at += NODE_WORDS * n;
        }
        Ok(BitAlloc {
            storage,
            units,
            free: 0,
            hint: 0,
            bhint: 0,
            bmask: 0,
            words,
            top,
            base,
            nodes,
            pending: None,
            max_bound: 0,
            blk_bound: 0,
            ready: usize::MAX,
            bpend: usize::MAX,
        })
    }

    /// Sets the padding bits, counts free units and computes every summary.
    pub(super) fn finish_build(&mut self) {
        let tail_bits = self.units % 64;
        if tail_bits != 0 {
            if let Some(w) = self.storage.get_mut(self.words - 1) {
                *w |= u64::MAX << tail_bits;
            }
        }
        let mut used = 0u64;
        for w in self.storage.iter().take(self.words) {
            used += u64::from(w.count_ones());
        }
        self.free = (wide(self.words) * 64).saturating_sub(used);
        self.hint = 0;
        self.bhint = 0;
        self.bmask = 0;
        self.pending = None;
        self.ready = usize::MAX;
        for level in 0..=self.top {
            for i in 0..self.nodes[level] {
                self.refresh(level, i);
            }
        }
        self.sync_bounds();
    }

    /// Returns the storage, for the caller to free or reuse.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Returns the pool size in allocation units.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Returns the number of free allocation units, in O(1).
    pub fn free_units(&self) -> u64 {
        self.free
    }

    /// Returns the number of allocated allocation units, in O(1).
    pub fn used_units(&self) -> u64 {
        self.units - self.free
    }

    /// Returns the length in allocation units of the longest free run, in O(log units).
    ///
    /// This is O(1) unless a leaf is pending or block operations left stale summaries, in
    /// which case those paths are recomputed on the fly (read only).
    pub fn largest_free_run(&self) -> u64 {
        self.eval(self.top, 0).max
    }

    /// Returns whether `unit` is allocated; units outside the pool count as allocated.
    pub fn is_allocated(&self, unit: u64) -> bool {
        if unit >= self.units {
            return true;
        }
        self.word_at(ix(unit / 64)) & (1u64 << (unit % 64)) != 0
    }

    /// Returns the free units around the range `start..end`: the first unit of the free run
    /// that ends at `start` (`start` itself if unit `start - 1` is allocated) and the end of
    /// the one that starts at `end` (`end` itself if unit `end` is allocated). The range
    /// itself is not looked at; bounds past the pool are taken as the pool's end. Skips
    /// uniform nodes whole, so it costs O(log units) plus the words of the two leaves at the
    /// edges of each run.
    pub fn free_around(&self, start: u64, end: u64) -> (u64, u64) {
        let start = start.min(self.units);
        let end = end.min(self.units);
        let lo = self.prev_bit(start, true).map_or(0, |u| u + 1);
        let hi = self.next_bit(end, true).unwrap_or(self.units);
        (lo, hi)
    }

    /// Returns an iterator over the maximal runs of allocated units, as `(start, count)`.
    pub fn allocated_runs(&self) -> AllocatedRuns<'_, S> {
        AllocatedRuns {
            alloc: self,
            pos: 0,
        }
    }

    /// Allocates `count` units whose start is a multiple of `align` units; returns the start.
    ///
    /// `align` must be a power of two (1 for no alignment). The lowest such start with `count`
    /// free units is chosen. Fails with [`AllocError::NoSpace`] only when no aligned free run
    /// of `count` units exists.
    #[inline(always)]
    pub fn alloc(&mut self, count: u64, align: u64) -> Result<u64, AllocError> {
        self.alloc_offset(count, align, 0)
    }

    /// Allocates `count` units whose start plus `offset` is a multiple of `align` units.
    ///
    /// This is [`BitAlloc::alloc`] for a pool whose first unit is not itself aligned: pass the
    /// index of the pool's first unit in the global unit numbering (a PFN, say) as `offset`,
    /// like the `align_offset` of `bitmap_find_next_zero_area_off()`. Returns the start.
    #[inline(always)]
    pub fn alloc_offset(&mut self, count: u64, align: u64, offset: u64) -> Result<u64, AllocError> {
        if align.is_power_of_two() {
            if count > self.max_bound {
                // Longer than the longest free run.
                return Err(AllocError::NoSpace);
            }
            if count == align && (count == BLOCK_B || count == BLOCK_G) && offset & (count - 1) == 0
            {
                // A 2 MiB or 1 GiB block (of 4 KiB units): the block index, no summaries.
                if self.needs_larger_block(count, align, offset) {
                    return Err(AllocError::NoSpace);
                }
                return self.alloc_block(count);
            }
            if count.wrapping_sub(1) < 64 && align <= 64 {
                // 1 to 64 units aligned to at most 64: try the word at the hint first.
                if let Some(start) = self.alloc_small(count, align, offset) {
                    return Ok(start);
                }
            } else if count != 0 && self.needs_larger_block(count, align, offset) {
                // No free aligned block as large as the request's first aligned part.
                return Err(AllocError::NoSpace);
            } else if count.wrapping_sub(1) < LEAF_UNITS && align <= LEAF_UNITS {
                // Up to one leaf: try the lowest aligned start at the hint.
                if let Some(start) = self.alloc_probe(count, align, offset) {
                    return Ok(start);
                }
            }
        }
        self.alloc_search(count, align, offset)
    }

    /// The general case of [`BitAlloc::alloc_offset`]: a walk of the summary tree.
    #[inline(never)]
    fn alloc_search(&mut self, count: u64, align: u64, offset: u64) -> Result<u64, AllocError> {
        if count == 0 {
            return Err(AllocError::Zero);
        }
        if !align.is_power_of_two() {
            return Err(AllocError::BadAlign);
        }
        // Settle even for a request above the free total, so that the bounds let the next
        // such request fail in the inline shortcut.
        self.settle();
        self.sync_bounds();
        if count > self.free
            || count > self.max_bound
            || self.needs_larger_block(count, align, offset)
        {
            return Err(AllocError::NoSpace);
        }
        self.alloc_walk(count, align, offset)
    }

    /// [`Self::alloc_search`] once the summaries are exact and the root's `max` does not
    /// rule the request out.
    #[inline(never)]
    fn alloc_walk(&mut self, count: u64, align: u64, offset: u64) -> Result<u64, AllocError> {
        if align > self.units {
            // At most one aligned start lies inside the pool.
            let start = (align - offset % align) % align;
            return match self.alloc_at(start, count) {
                Ok(()) => Ok(start),
                Err(_) => Err(AllocError::NoSpace),
            };
        }
        let start = if count == align && offset & (align - 1) == 0 {
            // A naturally aligned block: follow `blk` down the tree, and remember where the
            // next request of that size may start: after this block, which is taken now, as
            // no free one lies below it (so a burst of such requests probes block after block).
            let found = self.search_block(count.trailing_zeros());
            self.bmask = align - 1;
            let skip = if MUTANT == 8 { 2 * count } else { count };
            self.bhint = found.map_or(self.units, |s| s.saturating_add(skip));
            found
        } else {
            self.search(&Req::new(count, align, offset))
        }
        .ok_or(AllocError::NoSpace)?;
        if count == 1 && align == 1 {
            // First fit for one unit finds the lowest free unit.
            self.hint = start;
        }
        self.mark(start, start + count, true);
        Ok(start)
    }

    /// Claims the fixed range of `count` units at `start`.
    ///
    /// Fails with [`AllocError::Busy`] if any of those units is allocated.
    pub fn alloc_at(&mut self, start: u64, count: u64) -> Result<(), AllocError> {
        let end = range_end(start, count, self.units)?;
        if self.prepare(start, end) {
            if !self.range_is(start, end, false) {
                return Err(AllocError::Busy);
            }
            self.set_bits(start, end, true);
            self.commit(start, end, true, true);
        } else {
            if !self.range_all(self.top, 0, start, end, false) {
                return Err(AllocError::Busy);
            }
            self.mark_lazy(start, end, true);
            self.commit(start, end, true, false);
        }
        Ok(())
    }

    /// Frees the `count` units at `start`.
    ///
    /// Every unit of the range must be allocated, otherwise (double free, a range never
    /// allocated) this fails with [`AllocError::NotAllocated`] and changes nothing. The range
    /// need not match one earlier allocation: any allocated units can be freed.
    #[inline(always)]
    pub fn free(&mut self, start: u64, count: u64) -> Result<(), AllocError> {
        let end = start.wrapping_add(count);
        if count == BLOCK_B && start & (BLOCK_B - 1) == 0 && end <= self.units && end > start {
            // A whole 2 MiB block: the block index, no summaries.
            return self.free_block_b(start);
        }
        if count == BLOCK_G
            && start & (BLOCK_G - 1) == 0
            && end <= self.units
            && end > start
            && self.free_block_g(start).is_some()
        {
            return Ok(());
        }
        if end > start && end <= self.units && (start ^ (end - 1)) < LEAF_UNITS {
            // Inside one leaf: check and clear at most 16 words, the leaf becomes pending.
            self.ensure_leaf(ix(start >> LEAF_SHIFT));
            if (start | end) & 63 == 0 {
                let (w0, w1) = (ix(start / 64), ix(end / 64));
                if !self.words_are(w0, w1, u64::MAX) {
                    return Err(AllocError::NotAllocated);
                }
                self.note(start, end);
                self.fill_words(w0, w1, 0);
            } else {
                if !self.range_is(start, end, true) {
                    return Err(AllocError::NotAllocated);
                }
                self.note(start, end);
                self.set_bits(start, end, false);
            }
            self.lower_hints(start);
            self.raise_bounds();
            self.free += count;
            return Ok(());
        }
        self.free_large(start, count)
    }

    /// [`BitAlloc::free`] of a range across leaves, or a bad range.
    #[inline(never)]
    fn free_large(&mut self, start: u64, count: u64) -> Result<(), AllocError> {
        let end = range_end(start, count, self.units)?;
        let single = self.prepare(start, end);
        if single {
            // Only a bad range can get here inside one leaf; check it word by word.
            if !self.range_is(start, end, true) {
                return Err(AllocError::NotAllocated);
            }
            self.set_bits(start, end, false);
        } else if !self.range_all(self.top, 0, start, end, true) {
            return Err(AllocError::NotAllocated);
        } else {
            self.mark_lazy(start, end, false);
        }
        self.lower_hints(start);
        self.commit(start, end, false, single);
        Ok(())
    }
}
