// SPDX-License-Identifier: GPL-2.0

//! An area's side of the per-CPU magazines: the allocator, the dirty set and the zeroer's
//! chunk in flight, as [`crate::magazine`] takes 2 MiB blocks from them and gives them back.
//!
//! `extmem/pool.rs` lends these under the area's lock as a [`Side`]; everything here runs with
//! that lock held, allocates nothing and never sleeps. What it keeps true (the argument is in
//! `Documentation/mm/extmem-allocator.rst`, "Scaling with CPUs"):
//!
//! - A magazine's value (see [`magazine::value`]) is *clean* only if every unit of its block
//!   read zero when the block left the allocator and nobody has written it since: [`Side`]'s
//!   `take` marks a block clean only if the dirty set reported no dirty piece of it and the
//!   block does not overlap the zeroer's chunk in flight (it skips such blocks: the chunk is
//!   free, out of the set and not yet zero). A freed block is always given to a magazine as
//!   dirty by the caller.
//! - A block given back ([`Side`]'s `give`, a drain or a spill) returns to the allocator
//!   around the area's poisoned units (they stay held), and, if dirty, into the dirty set;
//!   should the set have no room, its pieces are zeroed on the spot (with the lock held) and
//!   freed clean. So the pool's invariant holds again afterwards: a free unit outside the set
//!   and not in flight reads zero.
//! - [`steal_dirty`] (the background zeroer) takes a dirty value out of a magazine with a
//!   compare-exchange and makes its block the chunk in flight: free in the allocator, out of
//!   the set, to be zeroed with the lock dropped, exactly as a chunk the zeroer takes out of
//!   the dirty set.
//!
//! With the cargo feature `broken-magpool` (host builds only), `take` marks every block clean
//! whatever the dirty set says, a deliberately wrong shortcut that `host/tests/magpool.rs` must
//! catch.

#![forbid(unsafe_code)]

use crate::bitalloc::BitAlloc;
use crate::dirty::{DirtySet, Run};
use crate::magazine::{self, Blocks, Magazine};
use core::ops::DerefMut;

/// Units of a block: 2 MiB of 4 KiB units.
pub const BLOCK: u64 = 512;

/// Blocks a refill may skip because the zeroer's chunk in flight (at most [`BLOCK`] units)
/// overlaps them.
const SKIP: usize = 2;

/// What the area lends the magazines under its lock.
pub struct Side<'a, S, R, Z>
where
    S: DerefMut<Target = [u64]>,
    R: DerefMut<Target = [Run]>,
    Z: FnMut(u64, u64),
{
    alloc: &'a mut BitAlloc<S>,
    dirty: &'a mut DirtySet<R>,
    inflight: &'a mut Option<(u64, u64)>,
    /// The area's base in units: blocks are aligned in physical address.
    offset: u64,
    poisoned: &'a [u64],
    /// Zeroes units `[start, end)` now, with the lock held (a give with no room in the set).
    zero_now: Z,
    skipped: [u64; SKIP],
    nr_skipped: usize,
    /// Units [`Side`] zeroed with `zero_now`.
    pub zeroed: u64,
    /// Gives of blocks the allocator did not hold (must stay 0).
    pub bad: u64,
    /// Dirty units given back into the set (the zeroer has work).
    pub dirtied: u64,
}

impl<'a, S, R, Z> Side<'a, S, R, Z>
where
    S: DerefMut<Target = [u64]>,
    R: DerefMut<Target = [Run]>,
    Z: FnMut(u64, u64),
{
    /// Lends an area's state: its allocator, dirty set, chunk in flight, base (in units) and
    /// poisoned units, and how to zero a range on the spot.
    pub fn new(
        alloc: &'a mut BitAlloc<S>,
        dirty: &'a mut DirtySet<R>,
        inflight: &'a mut Option<(u64, u64)>,
        offset: u64,
        poisoned: &'a [u64],
        zero_now: Z,
    ) -> Self {
        Self {
            alloc,
            dirty,
            inflight,
            offset,
            poisoned,
            zero_now,
            skipped: [0; SKIP],
            nr_skipped: 0,
            zeroed: 0,
            bad: 0,
            dirtied: 0,
        }
    }

    /// Returns true if a refill (at most [`magazine::BATCH`] removals from the dirty set, each
    /// splitting at most one run) cannot find the set full.
    pub fn room_for_refill(&self) -> bool {
        self.dirty.spare() > magazine::BATCH
    }

    /// Returns true if giving back `n` dirty blocks free of poisoned units cannot find the set
    /// full.
    pub fn room_for(&self, n: usize) -> bool {
        self.dirty.spare() > n
    }

    /// Returns the lowest poisoned unit in `[cur, end)`, or `end`.
    fn next_poisoned(&self, cur: u64, end: u64) -> u64 {
        self.poisoned
            .iter()
            .copied()
            .filter(|&p| p >= cur && p < end)
            .min()
            .unwrap_or(end)
    }

    fn in_flight(&self, start: u64, end: u64) -> bool {
        self.inflight.is_some_and(|(s, e)| s < end && start < e)
    }

    /// Frees units `[start, end)` around the poisoned ones; the pieces go into the set if
    /// `dirty` (the caller checked the room).
    fn free_around_poison(&mut self, start: u64, end: u64, dirty: bool) {
        let mut cur = start;
        while cur < end {
            let next = self.next_poisoned(cur, end);
            if next > cur {
                if self.alloc.free(cur, next - cur).is_err() {
                    self.bad += 1;
                } else if dirty {
                    if self.dirty.insert(cur, next - cur).is_err() {
                        // Cannot happen (the room was checked); never leave it free and
                        // looking clean: hold it.
                        let _ = self.alloc.alloc_at(cur, next - cur);
                        self.bad += 1;
                    } else {
                        self.dirtied += next - cur;
                    }
                }
            }
            cur = next.saturating_add(1);
        }
    }
}

impl<S, R, Z> Drop for Side<'_, S, R, Z>
where
    S: DerefMut<Target = [u64]>,
    R: DerefMut<Target = [Run]>,
    Z: FnMut(u64, u64),
{
    /// Gives back the blocks a refill skipped: taken in the allocator only (never out of the
    /// set), so freeing them restores them exactly.
    fn drop(&mut self) {
        for i in 0..self.nr_skipped {
            let b = self.skipped[i];
            if self.alloc.free(b, BLOCK).is_err() {
                self.bad += 1;
            }
        }
        self.nr_skipped = 0;
    }
}

impl<S, R, Z> Blocks for Side<'_, S, R, Z>
where
    S: DerefMut<Target = [u64]>,
    R: DerefMut<Target = [Run]>,
    Z: FnMut(u64, u64),
{
    /// Takes the lowest 2 MiB block that is free and not in flight, out of the allocator and
    /// out of the dirty set; returns its value, dirty if the set held any unit of it.
    fn take(&mut self) -> Option<u64> {
        loop {
            let b = self.alloc.alloc_offset(BLOCK, BLOCK, self.offset).ok()?;
            if self.in_flight(b, b + BLOCK) {
                if self.nr_skipped < SKIP {
                    self.skipped[self.nr_skipped] = b;
                    self.nr_skipped += 1;
                    continue;
                }
                // Cannot happen (a chunk spans at most two blocks): give up.
                let _ = self.alloc.free(b, BLOCK);
                return None;
            }
            let mut dirty = false;
            if self.dirty.remove(b, BLOCK, |_, _| dirty = true).is_err() {
                // No room to split a run (the caller checks [`Side::room_for_refill`]).
                let _ = self.alloc.free(b, BLOCK);
                return None;
            }
            if cfg!(feature = "broken-magpool") {
                // Deliberately wrong: forgets that the block may hold old contents.
                dirty = false;
            }
            return Some(magazine::value(b, dirty));
        }
    }

    /// Gives a block back: around poisoned units, into the dirty set if it is dirty, or, with
    /// no room there, zeroed on the spot and free clean.
    fn give(&mut self, v: u64) {
        let b = magazine::block_of(v);
        let end = b + BLOCK;
        if !magazine::is_dirty(v) {
            self.free_around_poison(b, end, false);
            return;
        }
        let poisoned = self.poisoned.iter().filter(|&&p| p >= b && p < end).count();
        // Each piece needs at most one more run.
        if self.dirty.spare() > poisoned {
            self.free_around_poison(b, end, true);
            return;
        }
        let mut cur = b;
        while cur < end {
            let next = self.next_poisoned(cur, end);
            if next > cur {
                (self.zero_now)(cur, next);
                self.zeroed += next - cur;
            }
            cur = next.saturating_add(1);
        }
        self.free_around_poison(b, end, false);
    }
}

/// What [`steal_dirty`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steal {
    /// No magazine holds a dirty block (a snapshot), or a chunk is already in flight.
    Nothing,
    /// The block `[start, end)` is the chunk in flight now: free in the allocator, out of the
    /// set; zero it with the lock dropped, then clear the chunk.
    Chunk(u64, u64),
    /// The block held a poisoned unit: it went back around it, into the dirty set.
    Returned,
}

/// The background zeroer, with the lock held and no chunk in flight: takes the lowest dirty
/// block cached in `mags` and makes it the chunk in flight.
pub fn steal_dirty<S, R, Z>(mags: &[Magazine], side: &mut Side<'_, S, R, Z>) -> Steal
where
    S: DerefMut<Target = [u64]>,
    R: DerefMut<Target = [Run]>,
    Z: FnMut(u64, u64),
{
    if side.inflight.is_some() {
        return Steal::Nothing;
    }
    let Some(v) = magazine::take_dirty(mags) else {
        return Steal::Nothing;
    };
    let b = magazine::block_of(v);
    let end = b + BLOCK;
    if side.poisoned.iter().any(|&p| p >= b && p < end) {
        // The zeroer must not write a poisoned unit.
        side.give(v);
        return Steal::Returned;
    }
    if side.alloc.free(b, BLOCK).is_err() {
        side.bad += 1;
        return Steal::Nothing;
    }
    *side.inflight = Some((b, end));
    Steal::Chunk(b, end)
}

/// Returns the longest free run of `alloc` in units, counting as free the blocks cached in
/// magazines, without taking them out: `cached` holds their first units (in any order; it is
/// sorted here). A cached block is allocated in `alloc`, so a run through it is the free
/// units around it joined with its neighbours, cached or free. Blocks that are not allocated
/// in `alloc`, or reach past its end, are not counted. Costs O(k log k) for k cached blocks
/// plus two searches of `alloc` per group of adjacent ones.
pub fn largest_free_run<S>(alloc: &BitAlloc<S>, cached: &mut [u64]) -> u64
where
    S: DerefMut<Target = [u64]>,
{
    let units = alloc.units();
    let mut best = alloc.largest_free_run();
    cached.sort_unstable();
    // The run being built: `[lo, hi)`, free or cached throughout.
    let mut run: Option<(u64, u64)> = None;
    let mut i = 0;
    while let Some(&b) = cached.get(i) {
        i += 1;
        let Some(end) = b.checked_add(BLOCK).filter(|&e| e <= units) else {
            continue;
        };
        if !alloc.is_allocated(b) || !alloc.is_allocated(end - 1) {
            continue;
        }
        if let Some((_, hi)) = run {
            if b < hi {
                // A duplicate, or a block overlapping the last one (not a cached block).
                continue;
            }
        }
        // Adjacent cached blocks form one group `[b, e)`.
        let mut e = end;
        while let Some(&n) = cached.get(i) {
            if n == e && n + BLOCK <= units && alloc.is_allocated(n) {
                e = n + BLOCK;
                i += 1;
            } else if n < e {
                i += 1;
            } else {
                break;
            }
        }
        let (lo, hi) = alloc.free_around(b, e);
        let lo = match run {
            // The free run after the last group reaches this one: one run.
            Some((rlo, rhi)) if rhi == b => rlo,
            _ => lo,
        };
        run = Some((lo, hi));
        best = best.max(hi - lo);
    }
    best
}
