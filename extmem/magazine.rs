// SPDX-License-Identifier: GPL-2.0

//! Per-CPU magazines of 2 MiB blocks in front of an allocator behind one lock.
//!
//! At `N` CPUs allocating and freeing naturally aligned 2 MiB blocks, one lock around the
//! area's [`crate::bitalloc::BitAlloc`] caps throughput at one lock holder. A [`Magazine`] is a
//! CPU's small cache of blocks the allocator has already marked allocated: [`alloc`] pops one
//! without the lock, [`free`] pushes one back. Only when its magazine is empty (a *refill*) or
//! full (a *spill*) does a CPU take the lock, and then it moves [`BATCH`] blocks in one
//! acquisition, so the lock is taken at most once per [`BATCH`] operations and not at all while
//! a CPU allocates and frees within what its magazine holds.
//!
//! Each slot of a magazine is one `AtomicU64` holding a block (the allocator's unit index of
//! its start) or [`EMPTY`]. A block moves in or out of a slot only by an atomic exchange or
//! compare-exchange, so a block is in at most one slot, and exactly one taker gets it:
//! another CPU may empty a magazine ([`drain_all`]) while its owner pops and pushes, with no
//! interrupt to the owner and no lock in the owner's path. The same holds when two tasks use
//! one CPU's magazine because one was preempted or migrated after it chose the magazine (the
//! kernel picks it with `raw_smp_processor_id()`): slots are the only shared state, and their
//! contents are taken and put atomically.
//!
//! The rules that keep the placement first fit and the pool never falsely full:
//!
//! - *Refill takes the lowest free blocks*: the allocator's first fit, [`BATCH`] times, under
//!   one lock acquisition. The caller gets the lowest; the others go into its magazine, whose
//!   *ceiling* becomes the highest block that refill took.
//! - *Pop takes the magazine's lowest block.*
//! - *A freed block stays in the magazine only if it is below the ceiling*; a block at or
//!   above it goes back to the allocator. A block freed below the ceiling into a full
//!   magazine first sends the magazine's [`BATCH`] highest blocks back to the allocator (one
//!   lock acquisition) and takes one of their slots. So a magazine only ever holds blocks no
//!   higher than what was among the lowest free blocks when it was refilled (but while two
//!   tasks share one magazine, when one refills as the other frees): magazines never keep
//!   high memory allocated, and a 2 MiB allocation differs from a single-lock first fit only
//!   among blocks below some magazine's ceiling.
//! - *No false full*: an allocation the allocator cannot satisfy takes every block out of
//!   every magazine with atomic exchanges, gives them back to the allocator and retries, all
//!   under the same lock acquisition, before it fails. A refill moves blocks into a magazine
//!   under the lock too, so no block is in flight between the allocator and a magazine when
//!   the retry looks: a request fails only if every block is held by a caller (or was freed
//!   into a magazine after the drain passed it, i.e. concurrently with the request).
//!
//! Memory is never lost: a block is always in exactly one place, the allocator (free), one
//! slot of one magazine, or a caller that allocated it. Whoever counts free memory counts
//! [`cached`] blocks as free.
//!
//! Nothing here allocates, sleeps or knows about CPUs: the caller owns the magazines (one per
//! CPU, indexed as it likes) and the lock, which it lends through [`Locked`]. The same file
//! builds in the kernel and on the host, where `host/tests/magazine.rs` runs it with threads
//! as CPUs against an oracle.
//!
//! With the cargo feature `broken-magazine` (host builds only), a pop takes a slot's block
//! with a plain load and store instead of a compare-exchange, a deliberately wrong shortcut
//! that hands a block out twice when another taker races it; the threaded tests of
//! `host/tests/magazine.rs` must catch it.

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

/// Slots of one magazine.
pub const SLOTS: usize = 16;

/// Blocks a refill takes and a spill gives back, in one lock acquisition.
pub const BATCH: usize = SLOTS / 2;

/// The value of an empty slot (no block starts there).
pub const EMPTY: u64 = u64::MAX;

/// Returns the value a slot holds for `block` (below `2^62`): the block shifted left by one,
/// its lowest bit set if the block may hold old contents (*dirty*).
///
/// Values order as their blocks do, so every rule of this module (the lowest block, the
/// ceiling) reads the same on values; a value is never [`EMPTY`]. Callers that have no use
/// for cleanliness may put any value below [`EMPTY`] in a magazine.
pub const fn value(block: u64, dirty: bool) -> u64 {
    (block << 1) | dirty as u64
}

/// Returns the block of a slot's value (see [`value`]).
pub const fn block_of(v: u64) -> u64 {
    v >> 1
}

/// Returns true if a slot's value says its block may hold old contents (see [`value`]).
pub const fn is_dirty(v: u64) -> bool {
    v & 1 != 0
}

/// The allocator behind the magazines, as [`Locked::with`] lends it.
pub trait Blocks {
    /// Takes the lowest free block out of the allocator (first fit), or `None` if no block is
    /// free.
    fn take(&mut self) -> Option<u64>;
    /// Gives `block`, taken with [`Blocks::take`], back to the allocator.
    fn give(&mut self, block: u64);
}

/// The lock around the allocator.
pub trait Locked {
    /// The allocator.
    type Inner: Blocks;
    /// Runs `f` with the lock held.
    fn with<R>(&self, f: impl FnOnce(&mut Self::Inner) -> R) -> R;
}

/// One CPU's cache of allocated 2 MiB blocks.
///
/// # Invariants
///
/// Each slot holds [`EMPTY`] or a block that the allocator has marked allocated and that no
/// caller holds; no block is in two slots (of this or any other magazine).
///
/// Aligned to two cache lines (with the adjacent-line prefetch, 128 bytes are what CPUs
/// share), so that magazines in one array do not share a line.
#[repr(align(128))]
pub struct Magazine {
    slots: [AtomicU64; SLOTS],
    /// The highest block the last refill took; freed blocks below it may stay.
    ceiling: AtomicU64,
}

impl Default for Magazine {
    fn default() -> Self {
        Self::new()
    }
}

impl Magazine {
    /// Returns an empty magazine.
    pub const fn new() -> Self {
        // INVARIANT: all slots are empty.
        Self {
            slots: [const { AtomicU64::new(EMPTY) }; SLOTS],
            ceiling: AtomicU64::new(0),
        }
    }

    /// Takes the lowest block out of the magazine, or `None` if it is empty.
    pub fn pop(&self) -> Option<u64> {
        loop {
            let (mut at, mut low) = (SLOTS, EMPTY);
            for (i, s) in self.slots.iter().enumerate() {
                let b = s.load(Ordering::Relaxed);
                if b < low {
                    (at, low) = (i, b);
                }
            }
            let slot = self.slots.get(at)?;
            if cfg!(feature = "broken-magazine") {
                // Deliberately wrong: another taker may get the block between these two.
                if slot.load(Ordering::Acquire) == low {
                    slot.store(EMPTY, Ordering::Release);
                    return Some(low);
                }
                continue;
            }
            // Acquire: pairs with the release of whoever put the block here.
            if slot
                .compare_exchange(low, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(low);
            }
            // Someone else took it (a drain, or another task on this magazine): look again.
        }
    }

    /// Takes the lowest clean value (see [`value`]) out of the magazine, else the lowest
    /// dirty one, or `None` if it is empty: for a caller that would have to zero a dirty
    /// block. Takes it with a compare-exchange, like [`Magazine::pop`].
    pub fn pop_clean_first(&self) -> Option<u64> {
        loop {
            let (mut at, mut low) = (SLOTS, (true, EMPTY));
            for (i, s) in self.slots.iter().enumerate() {
                let v = s.load(Ordering::Relaxed);
                if v != EMPTY && (is_dirty(v), v) < low {
                    (at, low) = (i, (is_dirty(v), v));
                }
            }
            let slot = self.slots.get(at)?;
            if slot
                .compare_exchange(low.1, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(low.1);
            }
        }
    }

    /// Puts `block` into an empty slot; returns false (the block not taken) if none is empty.
    fn put(&self, block: u64) -> bool {
        self.slots.iter().any(|s| {
            s.load(Ordering::Relaxed) == EMPTY
                && s.compare_exchange(EMPTY, block, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
        })
    }

    /// Puts a freed `block` into the magazine if it is below the ceiling and a slot is empty;
    /// returns false (the block not taken) otherwise.
    pub fn push(&self, block: u64) -> bool {
        block < self.ceiling.load(Ordering::Relaxed) && self.put(block)
    }

    /// Takes every block out of the magazine and passes each to `f`; returns how many.
    pub fn drain(&self, mut f: impl FnMut(u64)) -> usize {
        let mut n = 0;
        for s in &self.slots {
            // Cheap check first: a drain of idle magazines writes no cache line.
            if s.load(Ordering::Relaxed) != EMPTY {
                let b = s.swap(EMPTY, Ordering::Acquire);
                if b != EMPTY {
                    f(b);
                    n += 1;
                }
            }
        }
        n
    }

    /// Takes the `n` highest blocks out of the magazine (as one snapshot saw them; fewer if
    /// another taker got some first) and passes each to `f`.
    fn take_highest(&self, n: usize, mut f: impl FnMut(u64)) {
        let mut seen = [EMPTY; SLOTS];
        for (v, s) in seen.iter_mut().zip(&self.slots) {
            *v = s.load(Ordering::Relaxed);
        }
        // Empty slots (`EMPTY`, the largest value) first, then the blocks in descending order.
        let mut sorted = seen;
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let empty = sorted.iter().take_while(|&&b| b == EMPTY).count();
        let Some(&lowest_taken) = sorted[empty..].get(n.saturating_sub(1)).or(sorted.last()) else {
            return;
        };
        for (v, s) in seen.iter().zip(&self.slots) {
            if *v != EMPTY
                && *v >= lowest_taken
                && s.compare_exchange(*v, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                f(*v);
            }
        }
    }

    /// Takes the lowest dirty value (see [`value`]) out of the magazine, or `None` if it holds
    /// none: for a zeroer that cleans blocks cached in magazines. Takes it with a
    /// compare-exchange, like [`Magazine::pop`], so it and a pop never both get a block.
    pub fn take_dirty(&self) -> Option<u64> {
        loop {
            let (mut at, mut low) = (SLOTS, EMPTY);
            for (i, s) in self.slots.iter().enumerate() {
                let v = s.load(Ordering::Relaxed);
                if v != EMPTY && is_dirty(v) && v < low {
                    (at, low) = (i, v);
                }
            }
            let slot = self.slots.get(at)?;
            if slot
                .compare_exchange(low, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(low);
            }
        }
    }

    /// Returns the lowest dirty value in the magazine (a snapshot), or [`EMPTY`].
    pub fn lowest_dirty(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&v| v != EMPTY && is_dirty(v))
            .min()
            .unwrap_or(EMPTY)
    }

    /// Returns the number of values in the magazine and how many of them are dirty (one
    /// snapshot of each slot, so the second is never above the first).
    pub fn counts(&self) -> (u64, u64) {
        self.slots.iter().fold((0, 0), |(n, d), s| {
            let v = s.load(Ordering::Relaxed);
            if v == EMPTY {
                (n, d)
            } else {
                (n + 1, d + u64::from(is_dirty(v)))
            }
        })
    }

    /// Returns the number of blocks in the magazine (a snapshot).
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != EMPTY)
            .count()
    }

    /// Returns true if the magazine holds no block (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Passes each block in the magazine to `f` (a snapshot, for tests and checks).
    pub fn for_each(&self, mut f: impl FnMut(u64)) {
        for s in &self.slots {
            let b = s.load(Ordering::Relaxed);
            if b != EMPTY {
                f(b);
            }
        }
    }

    /// Returns the ceiling: the highest block the last refill took (0 before any).
    pub fn ceiling(&self) -> u64 {
        self.ceiling.load(Ordering::Relaxed)
    }
}

/// Refills `m` from `a` (lock held): returns the lowest free block for the caller and puts
/// up to [`BATCH`]` - 1` of the next lowest into `m`, whose ceiling becomes the highest of
/// them. [`alloc`]'s refill, for callers that take the lock themselves.
pub fn refill(m: &Magazine, a: &mut impl Blocks) -> Option<u64> {
    let first = a.take()?;
    let mut high = first;
    for _ in 1..BATCH {
        let Some(b) = a.take() else {
            break;
        };
        if !m.put(b) {
            // Another task on this magazine filled it meanwhile.
            a.give(b);
            break;
        }
        high = b;
    }
    m.ceiling.store(high, Ordering::Relaxed);
    Some(first)
}

/// Takes every block out of every magazine and gives it back to `a` (lock held); returns how
/// many. For the allocator's other users too: anything that needs to see every free block as
/// free in the allocator (a request of another size that failed, a poisoned unit, a handover)
/// drains first.
pub fn drain_all(mags: &[Magazine], a: &mut impl Blocks) -> usize {
    mags.iter().map(|m| m.drain(|b| a.give(b))).sum()
}

/// Allocates a block with magazine `cpu` of `mags`: its lowest cached block, else a refill's
/// first fit, else (the allocator has no free block) a drain of every magazine and a retry.
/// Returns `None` only when no block is free anywhere. A `cpu` without a magazine goes
/// straight to the allocator.
pub fn alloc<L: Locked>(mags: &[Magazine], cpu: usize, lock: &L) -> Option<u64> {
    let Some(m) = mags.get(cpu) else {
        return lock.with(|a| a.take().or_else(|| retry(mags, a)));
    };
    if let Some(b) = m.pop() {
        return Some(b);
    }
    lock.with(|a| refill(m, a).or_else(|| retry(mags, a)))
}

/// The allocator is out of blocks: drains every magazine into it and tries once more.
#[cold]
fn retry(mags: &[Magazine], a: &mut impl Blocks) -> Option<u64> {
    if drain_all(mags, a) == 0 {
        return None;
    }
    a.take()
}

/// Frees `block` (allocated with [`alloc`]) with magazine `cpu` of `mags`: into the magazine
/// if it is below the ceiling and there is room; at or above the ceiling, back to the
/// allocator; into a full magazine, after its [`BATCH`] highest blocks went back to the
/// allocator (one lock acquisition).
pub fn free<L: Locked>(mags: &[Magazine], cpu: usize, block: u64, lock: &L) {
    let Some(m) = mags.get(cpu) else {
        lock.with(|a| a.give(block));
        return;
    };
    if m.push(block) {
        return;
    }
    if block >= m.ceiling() {
        lock.with(|a| a.give(block));
        return;
    }
    // Full: give back its highest blocks, keep the (lower) freed one.
    lock.with(|a| {
        if !spill(m, a, block) {
            a.give(block);
        }
    });
}

/// Frees `v` into the full magazine `m` with the lock held: gives `m`'s [`BATCH`] highest
/// values back to `a` and keeps `v` if it is below the ceiling and a slot is empty; returns
/// true if it kept `v`, false if the caller still holds it. [`free`]'s spill, for callers that
/// take the lock themselves.
pub fn spill(m: &Magazine, a: &mut impl Blocks, v: u64) -> bool {
    m.take_highest(BATCH, |b| a.give(b));
    v < m.ceiling() && m.put(v)
}

/// Takes the lowest dirty value out of all magazines (see [`Magazine::take_dirty`]), or
/// `None` if none holds one (a snapshot: one may be freed into a magazine meanwhile).
pub fn take_dirty(mags: &[Magazine]) -> Option<u64> {
    loop {
        let m = mags
            .iter()
            .map(|m| (m.lowest_dirty(), m))
            .filter(|(v, _)| *v != EMPTY)
            .min_by_key(|(v, _)| *v)
            .map(|(_, m)| m)?;
        if let Some(v) = m.take_dirty() {
            return Some(v);
        }
    }
}

/// Returns the values all magazines hold and how many of them are dirty (a snapshot).
pub fn counts(mags: &[Magazine]) -> (u64, u64) {
    mags.iter().fold((0, 0), |(n, d), m| {
        let (a, b) = m.counts();
        (n + a, d + b)
    })
}

/// Returns the number of blocks all magazines hold (a snapshot: free memory includes them).
pub fn cached(mags: &[Magazine]) -> u64 {
    mags.iter().map(|m| m.len() as u64).sum()
}
