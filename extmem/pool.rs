// SPDX-License-Identifier: GPL-2.0

//! The pool: the areas `boot.c` carved out, each with the allocator that owns it.
//!
//! The pool is built once at `device_initcall` from the boot records and never changes shape
//! afterwards: areas are neither added nor removed at run time. Each area has one
//! [`BitAlloc`] over 4 KiB units behind its own spinlock, which covers only the search and the
//! bitmap update (no allocation, no sleeping, nothing proportional to the request size); the
//! counters sysfs shows are updated under the same lock.
//!
//! Each area is also mapped write-back with `memremap()` ([`MemRemap`]). That reserves the WB
//! memory type for the range with PAT, so that user mappings of it are cached (without it PAT
//! would default the range, which is not System RAM any more, to UC-), and gives the kernel an
//! address to zero allocations through. The mapping writes page-table entries in proportion
//! to the area's size (one PUD per GiB), so it is made *after* the pool is published, by the
//! area's zeroer thread before it zeroes anything ([`Area::map_now`]), and is not part of the
//! area's readiness: it is logged and shown apart (`areaN/map_us`). Everything that needs it
//! goes through [`Area::mapping`], which waits for it: allocations (so no range is handed out
//! before its memory type is reserved), zeroing, and the frames user mappings and guest_memfd
//! insert. Should the mapping fail, every allocation from the area fails with `ENOMEM` and
//! nothing of it is handed out (the preserved allocations a kexec brought in cannot be
//! mapped either).
//!
//! A unit that suffers a memory failure (`crate::poison`) is *poisoned*: it is held in the
//! allocator for good (at once if it was free, else when the allocation that holds it is
//! freed, which frees all of the allocation but that unit), listed in the area's state and
//! counted in sysfs (`areaN/poisoned`).
//!
//! The allocator's storage (bitmap and summaries, about 35 KiB per GiB of area) is the
//! memory `boot.c` reserved in memblock when it carved the area ([`Meta::Boot`]), neither
//! zeroed nor touched there nor here (the allocator writes it lazily, where allocations
//! need it); only if memblock had no room is it allocated here ([`Meta::Heap`]). Building
//! the pool runs nothing proportional to an area's size: each area's readiness time and
//! its parts are logged and shown in sysfs (`areaN/ready_us`, `areaN/metadata_bytes`).
//!
//! Memory is handed out zeroed, but not zeroed when it is handed out: each area keeps the set
//! of its free units that may hold old contents ([`DirtySet`], `extmem/dirty.rs`), under the
//! same lock. Freeing puts the range in the set; the area's background zeroer (a kthread on
//! the area's node, `extmem/zero.c`, driving [`Area::zero_step`]) takes a chunk of at most
//! [`ZERO_CHUNK`] bytes out of the set under the lock, marks it in flight, zeroes it with the
//! lock dropped and clears the mark under the lock. An allocation takes its range out of the
//! set under the lock, waits for an in-flight chunk it overlaps to finish, and zeroes only the
//! dirty pieces it got ([`Area::alloc_zeroed`]). At boot, fresh or after a kexec, every free
//! unit is dirty; so no state about cleanliness crosses a kexec and none can be wrong. Should
//! the set be full (it has a fixed number of runs), a free zeroes its range itself, and an
//! allocation that would split a run also claims, zeroes and frees the rest of that run.
//!
//! Naturally aligned 2 MiB allocations and frees usually take no lock: each area has a
//! magazine of cached 2 MiB blocks per CPU (`extmem/magazine.rs`), refilled from and spilled
//! to the allocator under the lock 8 blocks at a time (`extmem/magpool.rs` is the area's side
//! of that exchange). A cached block is allocated in the allocator and counted as free; its
//! slot says whether it is dirty. Everything that must see every free block drains the
//! magazines first under the lock; the argument that this is safe is in
//! `Documentation/mm/extmem-allocator.rst`, "Scaling with CPUs".
//!
//! Lock order: an area's lock is a leaf lock; nothing else is taken under it.

use crate::bitalloc::{self, BitAlloc};
use crate::dirty::{DirtySet, Run};
use crate::handover;
use crate::kho;
use crate::magazine::{self, Magazine};
use crate::magpool::{self, Side, Steal};
use crate::wrappers::carveout::{self, BootArea};
use crate::wrappers::memremap::MemRemap;
use core::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU64, Ordering};
use kernel::cpu::{nr_cpu_ids, CpuId};
use kernel::prelude::*;
use kernel::sync::{Completion, CondVar, Mutex, SetOnce, SpinLock};
use kernel::time::{Instant, Monotonic};
use kernel::{new_condvar, new_mutex, new_spinlock};

/// Bytes per allocation unit: one 4 KiB page.
pub(crate) const UNIT: u64 = 1 << UNIT_SHIFT;
/// `log2(UNIT)`.
pub(crate) const UNIT_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;

/// The storage of an area's allocator.
pub(crate) enum Meta {
    /// Reserved by `boot.c` in memblock at carve time; lives as long as the kernel.
    Boot(&'static mut [u64]),
    /// Allocated when the pool was built, because memblock had no room at carve time.
    Heap(KVVec<u64>),
}

impl core::ops::Deref for Meta {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        match self {
            Meta::Boot(s) => s,
            Meta::Heap(v) => v,
        }
    }
}

impl core::ops::DerefMut for Meta {
    fn deref_mut(&mut self) -> &mut [u64] {
        match self {
            Meta::Boot(s) => s,
            Meta::Heap(v) => v,
        }
    }
}

impl Meta {
    /// Returns the storage for an area of `units` units: `boot.c`'s for area `idx` if it
    /// reserved it (only once), else `words` words of the heap.
    ///
    /// The heap's is zeroed (`KVVec` has no uninitialised constructor), which costs time
    /// proportional to the area: the fallback only.
    pub(crate) fn take(idx: usize, units: u64) -> Result<Self> {
        let words = bitalloc::storage_words(units).ok_or(EINVAL)?;
        match carveout::take_area_meta(idx) {
            Some(s) if s.len() >= words => Ok(Meta::Boot(s)),
            _ => Ok(Meta::Heap(KVVec::from_elem(0u64, words, GFP_KERNEL)?)),
        }
    }

    /// Returns where the storage lives, for log lines.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Meta::Boot(_) => "boot",
            Meta::Heap(_) => "heap",
        }
    }
}

/// The allocator of an area.
pub(crate) type Alloc = BitAlloc<Meta>;

/// How long an area took to become ready, and its metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// From the start of the area's build to the end, in ns.
    pub(crate) total_ns: u64,
    /// Taking the allocator's storage, in ns.
    pub(crate) meta_ns: u64,
    /// Building the allocator (empty, or from the handed-over state), in ns.
    pub(crate) alloc_ns: u64,
    /// Bytes of allocator storage.
    pub(crate) meta_bytes: u64,
}

/// Bytes the background zeroer zeroes per step (with the lock dropped).
pub(crate) const ZERO_CHUNK: u64 = 2 << 20;

/// Runs the dirty set of an area holds at least (16 bytes each).
const DIRTY_RUNS: usize = 4096;

/// Dirty pieces of a taken range recorded exactly; the rest is zeroed as one span.
const PIECES: usize = 8;

/// Bytes of the requests the per-CPU magazines serve (naturally aligned).
pub(crate) const BLOCK_BYTES: u64 = magpool::BLOCK << UNIT_SHIFT;

/// Words of [`Area`]'s poison filter: 4096 bits, 512 bytes per area.
const POISON_WORDS: usize = 64;

/// Bits of [`Area`]'s poison filter.
const POISON_BITS: u64 = POISON_WORDS as u64 * 64;

/// Allocations minus frees a CPU made through the magazines, on a cache line of its own.
#[repr(align(128))]
struct Net(AtomicI64);

/// One carved-out area and its allocator.
pub(crate) struct Area {
    /// Index of the area (its `areaN` in sysfs).
    pub(crate) idx: usize,
    /// Physical base address in bytes.
    pub(crate) base: u64,
    /// Size in bytes.
    pub(crate) size: u64,
    /// NUMA node of the whole area.
    pub(crate) nid: i32,
    /// The write-back mapping of the whole area, once [`Area::map_now`] made it (`None` if it
    /// failed); [`Area::mapping`] waits for it.
    map: SetOnce<Option<MemRemap>>,
    /// Completed once `map` is set.
    map_done: Pin<KBox<Completion>>,
    /// Nanoseconds [`Area::map_now`] took.
    map_ns: AtomicU64,
    /// Why the area is quarantined (all of it held, nothing handed out), if it is.
    pub(crate) quarantined: Option<&'static CStr>,
    state: Pin<KBox<SpinLock<AreaState>>>,
    /// Notified (under no lock) each time the zeroer's chunk stops being in flight
    /// (`AreaState::inflight` cleared); an allocation that overlaps the chunk waits on it
    /// with `state` held.
    inflight_done: Pin<KBox<CondVar>>,
    /// Length of `AreaState::poisoned`, readable without the lock (`areaN/poisoned`).
    nr_poisoned: AtomicU64,
    /// How long the area took to become ready.
    pub(crate) ready: Readiness,
    /// Bytes the background zeroer zeroed, and the nanoseconds it spent zeroing them.
    bg_zeroed: AtomicU64,
    bg_ns: AtomicU64,
    /// Bytes allocations zeroed themselves, and the nanoseconds they spent zeroing them.
    sync_zeroed: AtomicU64,
    sync_ns: AtomicU64,
    /// One magazine of cached 2 MiB blocks per possible CPU, by `raw_smp_processor_id()`.
    mags: KVec<Magazine>,
    /// Per CPU, allocations made minus frees taken through the magazines without the lock
    /// (`AreaState::allocations` counts the rest).
    net: KVec<Net>,
    /// False makes 2 MiB requests take the lock as any other (the KUnit benchmark's single
    /// lock); turning it off drains the magazines.
    mags_on: AtomicBool,
    /// A filter of the physically aligned 2 MiB blocks that hold a poisoned unit: block `b`
    /// (see [`Area::block_bit`]) is bit `b % POISON_BITS`, set by [`Area::poison`] before it
    /// drains the magazines. A block popped or freed into a magazine, or a fault's range
    /// ([`Area::is_poisoned`]), is checked against the poisoned list, under the lock, only if
    /// a bit of it is set: never a false negative, and a false positive (a block sharing a
    /// bit with a poisoned one) costs only the lock. Fixed size, so building an area costs
    /// nothing whatever its size. Bits are never cleared (a poisoned unit stays held).
    poison_blocks: [AtomicU64; POISON_WORDS],
    /// Set by the zeroer before it sleeps; a free into a magazine wakes it if set.
    zeroer_idle: AtomicBool,
}

/// What an area's lock protects.
struct AreaState {
    alloc: Alloc,
    /// Live allocations, but for those the magazines' `net` counts (wrapping: the sum is
    /// what is true).
    allocations: u64,
    failed: u64,
    /// Poisoned units (unit index in the area), each held in `alloc` or by the allocation
    /// that holds it, which leaves it held when it is freed.
    poisoned: KVec<u64>,
    /// Free units that may hold old contents; no allocated or in-flight unit is in it.
    dirty: DirtySet<KVVec<Run>>,
    /// Units `[start, end)` the zeroer is zeroing: free, out of `dirty`, not yet clean.
    inflight: Option<(u64, u64)>,
}

/// What a range just taken out of the free memory needs before its owner may use it.
#[derive(Default)]
struct Taken {
    /// Dirty pieces `[start, end)` of the range, in units: the first [`PIECES`] exactly, the
    /// span of the others in `rest`.
    pieces: [(u64, u64); PIECES],
    n: usize,
    rest: Option<(u64, u64)>,
    /// The zeroer's in-flight chunk overlaps the range: wait for it first.
    wait: bool,
    /// Free units claimed with the range because the dirty set could not split their run:
    /// to be zeroed and freed.
    tail: Option<(u64, u64)>,
}

impl Taken {
    fn add(&mut self, s: u64, e: u64) {
        if self.n < PIECES {
            self.pieces[self.n] = (s, e);
            self.n += 1;
        } else {
            self.rest = Some(match self.rest {
                Some((a, b)) => (a.min(s), b.max(e)),
                None => (s, e),
            });
        }
    }

    /// Returns the dirty pieces and the span of the rest.
    fn dirty(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        Iterator::chain(self.pieces[..self.n].iter().copied(), self.rest)
    }
}

/// An area's zeroing figures, in bytes and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ZeroStats {
    /// Free bytes that read zero.
    pub(crate) clean: u64,
    /// Free bytes that may hold old contents (including the zeroer's chunk in flight).
    pub(crate) dirty: u64,
    /// Bytes the background zeroer zeroed, and the time it spent zeroing.
    pub(crate) zeroed: u64,
    pub(crate) zeroing_ns: u64,
    /// Bytes allocations zeroed synchronously, and the time they spent zeroing.
    pub(crate) sync_zeroed: u64,
    pub(crate) sync_zeroing_ns: u64,
}

/// Where a poisoned unit was when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Poisoned {
    /// It was free and is now held for good.
    WasFree,
    /// An allocation (or the quarantine) holds it; it stays held when that is freed.
    InUse,
    /// It was poisoned before.
    Again,
}

/// A snapshot of an area's usage, in bytes and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Bytes not allocated.
    pub(crate) free: u64,
    /// Bytes in the largest free run.
    pub(crate) largest_free: u64,
    /// Live allocations.
    pub(crate) allocations: u64,
    /// Requests this area could not satisfy.
    pub(crate) failed: u64,
    /// Poisoned units.
    pub(crate) poisoned: u64,
}

impl Area {
    /// Returns a snapshot of the area's usage.
    ///
    /// Blocks cached in the per-CPU magazines count as free, and the largest free run is the
    /// one they would make back in the allocator, but they stay where they are: reading the
    /// figures (sysfs, `EXTMEM_IOC_AREA_INFO`) costs the CPUs' caches nothing. Exact when no
    /// CPU allocates or frees meanwhile; a block taken or freed during the read may count
    /// either way. May sleep (it allocates room for the snapshot).
    pub(crate) fn usage(&self) -> Usage {
        // Room for the blocks cached now and a refill more, taken before the lock (a block
        // cached past that is counted in `free` but may be missed by the largest run, as a
        // block cached just after the read would be).
        let now = usize::try_from(magazine::cached(&self.mags)).unwrap_or(usize::MAX);
        let mut blocks = if now > 0 {
            let room = now
                .saturating_add(magazine::SLOTS)
                .min(self.mags.len() * magazine::SLOTS);
            KVec::<u64>::with_capacity(room, GFP_KERNEL).ok()
        } else {
            None
        };
        let mut state = self.state.lock();
        let mut dirtied = false;
        let (mut cached, _) = magazine::counts(&self.mags);
        let largest = match blocks.as_mut() {
            _ if cached == 0 => state.alloc.largest_free_run(),
            Some(v) => {
                for m in self.mags.iter() {
                    m.for_each(|b| {
                        let _ = v.push_within_capacity(magazine::block_of(b));
                    });
                }
                magpool::largest_free_run(&state.alloc, v)
            }
            None => {
                // No memory for the snapshot: the old way, a drain (the blocks are in the
                // allocator's free count now).
                dirtied = self.drain_locked(&mut state);
                cached = magazine::counts(&self.mags).0;
                state.alloc.largest_free_run()
            }
        };
        let usage = Usage {
            free: (state.alloc.free_units() + cached * magpool::BLOCK) << UNIT_SHIFT,
            largest_free: largest << UNIT_SHIFT,
            allocations: self.allocations(&state),
            failed: state.failed,
            poisoned: state.poisoned.len() as u64,
        };
        drop(state);
        if dirtied {
            crate::zero::wake(self.idx);
        }
        usage
    }

    /// Returns the index in the area of the 2 MiB block (aligned in physical address) that
    /// holds unit `unit` of the area; its bit in [`Area::poison_blocks`] is this modulo
    /// [`POISON_BITS`].
    fn block_bit(&self, unit: u64) -> u64 {
        let base = self.base >> UNIT_SHIFT;
        (base + unit) / magpool::BLOCK - base / magpool::BLOCK
    }

    /// Returns true if a 2 MiB block (physically aligned) that holds any of the `count >= 1`
    /// units at `unit` may hold a poisoned unit: its bit is set. A 2 MiB block is one bit, a
    /// 1 GiB range 512 bits in at most 9 words; a range of more blocks than the filter has
    /// bits reads all of them.
    fn range_may_be_poisoned(&self, unit: u64, count: u64) -> bool {
        let first = self.block_bit(unit);
        let last = self
            .block_bit(unit.saturating_add(count.max(1) - 1))
            .min(first + POISON_BITS - 1);
        let mut bit = first;
        while bit <= last {
            let i = bit / 64;
            let hi = if last / 64 == i { last % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << (bit % 64));
            if self
                .filter_word(bit)
                .is_none_or(|w| w.load(Ordering::Relaxed) & mask != 0)
            {
                return true;
            }
            bit = (i + 1) * 64;
        }
        false
    }

    /// Returns the word of [`Area::poison_blocks`] that holds filter bit `bit % POISON_BITS`.
    fn filter_word(&self, bit: u64) -> Option<&AtomicU64> {
        self.poison_blocks
            .get((bit / 64 % POISON_WORDS as u64) as usize)
    }

    /// Returns the live allocations: the locked count plus the magazines' net counts.
    fn allocations(&self, state: &AreaState) -> u64 {
        let net = self
            .net
            .iter()
            .fold(0i64, |n, c| n.wrapping_add(c.0.load(Ordering::Relaxed)));
        let n = state.allocations.wrapping_add(net as u64);
        // A free counted before its allocation (another CPU's counter) reads as a negative
        // sum for an instant.
        if n > i64::MAX as u64 {
            0
        } else {
            n
        }
    }

    /// Lends the area's state to the magazines (`extmem/magpool.rs`), with the lock held.
    fn side<'a>(
        &'a self,
        state: &'a mut AreaState,
    ) -> Side<'a, Meta, KVVec<Run>, impl FnMut(u64, u64) + 'a> {
        let map = self.map.as_ref().and_then(Option::as_ref);
        let st = state;
        Side::new(
            &mut st.alloc,
            &mut st.dirty,
            &mut st.inflight,
            self.base >> UNIT_SHIFT,
            &st.poisoned[..],
            move |s: u64, e: u64| {
                // Blocks reach a magazine only through an allocation, which waits for the
                // mapping: a magazine holds nothing before it exists.
                if let (Some(map), Ok(off), Ok(len)) = (
                    map,
                    usize::try_from(s << UNIT_SHIFT),
                    usize::try_from((e - s) << UNIT_SHIFT),
                ) {
                    let _ = map.zero_atomic(off, len);
                }
            },
        )
    }

    /// Gives every block cached in a magazine back to the allocator (dirty ones into the dirty
    /// set), with the lock held; returns true if the zeroer has new work. For everything that
    /// must see every free block in the allocator.
    fn drain_locked(&self, state: &mut AreaState) -> bool {
        let (n, _) = magazine::counts(&self.mags);
        if n == 0 {
            return false;
        }
        let mut side = self.side(state);
        magazine::drain_all(&self.mags, &mut side);
        let (zeroed, bad, dirtied) = (side.zeroed, side.bad, side.dirtied);
        drop(side);
        if zeroed > 0 {
            self.sync_zeroed
                .fetch_add(zeroed << UNIT_SHIFT, Ordering::Relaxed);
        }
        if bad > 0 {
            pr_err!("area {}: a cached block was not allocated\n", self.idx);
        }
        dirtied > 0
    }

    /// Allocates a 2 MiB block through this CPU's magazine: a pop without the lock, else a
    /// refill under it. Returns the block (in units) and whether it may hold old contents, or
    /// `None` to send the request down the locked path (magazines off, the dirty set short of
    /// room for a refill, or no free block outside the zeroer's chunk).
    fn alloc_block(&self, zero: bool) -> Option<(u64, bool)> {
        if !self.mags_on.load(Ordering::Relaxed) {
            return None;
        }
        let cpu = CpuId::current().as_u32() as usize;
        let m = self.mags.get(cpu)?;
        loop {
            // A caller that zeroes takes a clean block first (no zeroing), as the pool
            // prefers clean memory; one that does not takes the lowest.
            let popped = if zero { m.pop_clean_first() } else { m.pop() };
            let Some(v) = popped else {
                let mut state = self.state.lock();
                let mut side = self.side(&mut state);
                let v = if side.room_for_refill() {
                    magazine::refill(m, &mut side)
                } else {
                    None
                };
                let bad = side.bad;
                // Gives back the blocks the refill skipped.
                drop(side);
                if bad > 0 {
                    pr_err!("area {}: a skipped block was not allocated\n", self.idx);
                }
                let v = v?;
                state.allocations = state.allocations.wrapping_add(1);
                return Some((magazine::block_of(v), magazine::is_dirty(v)));
            };
            // Pairs with the fence in `poison()`: either its drain took the block, or this
            // sees the block's bit and checks the list under the lock.
            fence(Ordering::SeqCst);
            if self.is_poisoned(magazine::block_of(v), magpool::BLOCK) {
                let mut state = self.state.lock();
                let mut side = self.side(&mut state);
                magazine::Blocks::give(&mut side, v);
                drop(side);
                drop(state);
                crate::zero::wake(self.idx);
                continue;
            }
            if let Some(n) = self.net.get(cpu) {
                n.0.fetch_add(1, Ordering::Relaxed);
            }
            return Some((magazine::block_of(v), magazine::is_dirty(v)));
        }
    }

    /// The magazines' path of [`Area::alloc`] and [`Area::alloc_zeroed`]: `None` if the
    /// request is not a naturally aligned 2 MiB block or must take the locked path.
    fn alloc_fast(&self, len: u64, align: u64, zero: bool) -> Option<Result<u64>> {
        if len != BLOCK_BYTES || align != BLOCK_BYTES || !self.is_mapped() {
            return None;
        }
        let (b, dirty) = self.alloc_block(zero)?;
        let offset = b << UNIT_SHIFT;
        if zero && dirty {
            let t0 = Instant::<Monotonic>::now();
            if let Err(e) = self.clear(offset, BLOCK_BYTES) {
                self.free(offset, BLOCK_BYTES);
                return Some(Err(e));
            }
            self.sync_zeroed.fetch_add(BLOCK_BYTES, Ordering::Relaxed);
            self.sync_ns.fetch_add(elapsed_ns(&t0), Ordering::Relaxed);
        }
        Some(Ok(offset))
    }

    /// Frees a naturally aligned 2 MiB block into this CPU's magazine, as dirty; returns
    /// false (nothing done) to send it down the locked path.
    fn free_fast(&self, offset: u64, len: u64) -> bool {
        if len != BLOCK_BYTES
            || !(self.base + offset).is_multiple_of(BLOCK_BYTES)
            || !self.mags_on.load(Ordering::Relaxed)
        {
            return false;
        }
        let b = offset >> UNIT_SHIFT;
        // A block with a poisoned unit goes back around it (the locked path).
        if self.is_poisoned(b, magpool::BLOCK) {
            return false;
        }
        let cpu = CpuId::current().as_u32() as usize;
        let Some(m) = self.mags.get(cpu) else {
            return false;
        };
        let v = magazine::value(b, true);
        if m.push(v) {
            if let Some(n) = self.net.get(cpu) {
                n.0.fetch_sub(1, Ordering::Relaxed);
            }
            self.wake_idle_zeroer();
            return true;
        }
        if v >= m.ceiling() {
            return false;
        }
        // Full: its highest blocks go back, if the dirty set has room for them.
        let mut state = self.state.lock();
        let mut side = self.side(&mut state);
        if !side.room_for(magazine::BATCH + 1) {
            return false;
        }
        if !magazine::spill(m, &mut side, v) {
            magazine::Blocks::give(&mut side, v);
        }
        let bad = side.bad;
        drop(side);
        state.allocations = state.allocations.wrapping_sub(1);
        drop(state);
        if bad > 0 {
            pr_err!("area {}: a spilled block was not allocated\n", self.idx);
        }
        crate::zero::wake(self.idx);
        true
    }

    /// Wakes the zeroer if it sleeps: a dirty block was just freed into a magazine.
    fn wake_idle_zeroer(&self) {
        // Pairs with the fence in `zero_pending()`: either it sees the block, or this sees
        // that it is going to sleep.
        fence(Ordering::SeqCst);
        if self.zeroer_idle.load(Ordering::Relaxed)
            && self.zeroer_idle.swap(false, Ordering::Relaxed)
        {
            crate::zero::wake(self.idx);
        }
    }

    /// Turns the magazines on or off (off: 2 MiB requests take the lock like any other, and
    /// the magazines are drained), for the KUnit benchmark of the single lock.
    #[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
    pub(crate) fn set_magazines(&self, on: bool) {
        self.mags_on.store(on, Ordering::Relaxed);
        if !on {
            let mut state = self.state.lock();
            let dirtied = self.drain_locked(&mut state);
            drop(state);
            if dirtied {
                crate::zero::wake(self.idx);
            }
        }
    }

    /// Returns the blocks cached in the magazines, and how many of them are dirty (a
    /// snapshot), for tests.
    #[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
    pub(crate) fn cached_blocks(&self) -> (u64, u64) {
        magazine::counts(&self.mags)
    }

    /// Poisons the unit at `unit` (index in the area): it is never handed out again.
    ///
    /// Fails with `EINVAL` for a unit outside the area and `ENOMEM` if the list has no room
    /// (then a free unit is still held for good, but one in use returns to the pool when its
    /// allocation is freed).
    pub(crate) fn poison(&self, unit: u64) -> Result<Poisoned> {
        if unit >= self.size >> UNIT_SHIFT {
            return Err(EINVAL);
        }
        let mut state = self.state.lock();
        if state.poisoned.contains(&unit) {
            return Ok(Poisoned::Again);
        }
        // A block popped from a magazine from now on is checked against the list (which
        // this critical section extends before anyone can look), and the drain puts every
        // block cached before back in the allocator, so the unit is free or held by a caller.
        let bit = self.block_bit(unit);
        if let Some(w) = self.filter_word(bit) {
            w.fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        let dirtied = self.drain_locked(&mut state);
        let was_free = state.alloc.alloc_at(unit, 1).is_ok();
        // A free unit leaves the dirty set: the zeroer must not write it.
        let taken = if was_free {
            match take(&mut state, unit, 1) {
                Ok(t) => Some(t),
                Err(e) => {
                    let _ = state.alloc.free(unit, 1);
                    return Err(e);
                }
            }
        } else {
            None
        };
        // Under a spinlock: an atomic allocation, a few bytes.
        let pushed = state.poisoned.push(unit, GFP_ATOMIC);
        self.nr_poisoned
            .store(state.poisoned.len() as u64, Ordering::Release);
        drop(state);
        if let Some(t) = taken {
            // The poisoned unit is held for good and never zeroed; a claimed tail is.
            let _ = self.finish(unit, 1, &t, false);
        }
        if dirtied {
            crate::zero::wake(self.idx);
        }
        pushed?;
        Ok(if was_free {
            Poisoned::WasFree
        } else {
            Poisoned::InUse
        })
    }

    /// Appends the physical addresses of the area's poisoned units to `out`, as far as its
    /// capacity goes; returns false if some did not fit.
    pub(crate) fn poisoned_phys(&self, out: &mut KVec<u64>) -> bool {
        let state = self.state.lock();
        state.poisoned.iter().all(|&u| {
            out.push_within_capacity(self.base + (u << UNIT_SHIFT))
                .is_ok()
        })
    }

    /// Returns the number of poisoned units.
    pub(crate) fn nr_poisoned(&self) -> u64 {
        self.nr_poisoned.load(Ordering::Acquire)
    }

    /// Quarantines the area while the pool is being built: every free unit is held for good.
    pub(crate) fn quarantine(&mut self, why: &'static CStr) {
        self.mags_on.store(false, Ordering::Relaxed);
        let mut state = self.state.lock();
        // Nothing is cached while the pool is built; should a block be, it is held below.
        self.drain_locked(&mut state);
        while state.alloc.free_units() > 0 {
            let run = state.alloc.largest_free_run();
            if run == 0 || state.alloc.alloc(run, 1).is_err() {
                break;
            }
        }
        // Nothing of the area is free any more.
        state.dirty.clear();
        drop(state);
        self.quarantined = Some(why);
    }

    /// Returns true if any of the `count` units at `unit` is poisoned.
    ///
    /// Lock-free unless a 2 MiB block of the range has its filter bit set (the fault path of
    /// every mapping and the magazines' pops and fast frees call it): a poisoned unit slows
    /// only its own block. A bit is set before the unit's `poison()` drains the magazines and
    /// extends the list under the lock, so a caller that sees the bit and then takes the lock
    /// sees the list with the unit.
    pub(crate) fn is_poisoned(&self, unit: u64, count: u64) -> bool {
        if !self.range_may_be_poisoned(unit, count) {
            return false;
        }
        let end = unit.saturating_add(count);
        let state = self.state.lock();
        state.poisoned.iter().any(|&p| p >= unit && p < end)
    }

    /// Allocates `len` bytes aligned to `align` bytes (both multiples of [`UNIT`], `align` a
    /// power of two) and returns the offset of the range in the area, in bytes.
    ///
    /// Does not zero the memory (its old contents stay: for HugeTLB, which zeroes its pages
    /// when it maps them). Fails with `ENOMEM` when no aligned free range of that size
    /// exists; the failure is counted. May sleep.
    pub(crate) fn alloc(&self, len: u64, align: u64) -> Result<u64> {
        if let Some(r) = self.alloc_fast(len, align, false) {
            return r;
        }
        let (start, count, taken) = self.alloc_taken(len, align)?;
        // Only a claimed tail is zeroed (uninterruptibly).
        self.finish(start, count, &taken, false)?;
        Ok(start << UNIT_SHIFT)
    }

    /// Allocates as [`Area::alloc`] does, and returns the range zeroed.
    ///
    /// Zeroes only what the dirty set says may hold old contents, after waiting for the
    /// zeroer's chunk if the range overlaps it. Fails with `ENOMEM` as [`Area::alloc`], and
    /// `EINTR` (the range freed again) if the task gets a fatal signal while it zeroes. May
    /// sleep.
    pub(crate) fn alloc_zeroed(&self, len: u64, align: u64) -> Result<u64> {
        if let Some(r) = self.alloc_fast(len, align, true) {
            return r;
        }
        let (start, count, taken) = self.alloc_taken(len, align)?;
        if let Err(e) = self.finish(start, count, &taken, true) {
            self.free(start << UNIT_SHIFT, len);
            return Err(e);
        }
        Ok(start << UNIT_SHIFT)
    }

    /// Takes the first fit out of the allocator and its range out of the dirty set.
    fn alloc_taken(&self, len: u64, align: u64) -> Result<(u64, u64, Taken)> {
        let mut dirtied = false;
        let r = self.alloc_taken_locked(len, align, &mut dirtied);
        if dirtied {
            crate::zero::wake(self.idx);
        }
        r
    }

    /// [`Area::alloc_taken`] but for waking the zeroer (not under the lock): sets `dirtied`
    /// if a drain gave it work.
    fn alloc_taken_locked(
        &self,
        len: u64,
        align: u64,
        dirtied: &mut bool,
    ) -> Result<(u64, u64, Taken)> {
        // Nothing is handed out before the memory type of the area is reserved, nor at all if
        // the area could not be mapped.
        self.mapping()?;
        let count = len >> UNIT_SHIFT;
        let align_units = (align >> UNIT_SHIFT).max(1);
        let mut state = self.state.lock();
        let mut got = state
            .alloc
            .alloc_offset(count, align_units, self.base >> UNIT_SHIFT);
        if got.is_err() {
            // No false full: the magazines' blocks count as free. Drain them and retry under
            // the same lock.
            *dirtied = self.drain_locked(&mut state);
            got = state
                .alloc
                .alloc_offset(count, align_units, self.base >> UNIT_SHIFT);
        }
        match got {
            Ok(start) => match take(&mut state, start, count) {
                Ok(t) => {
                    state.allocations = state.allocations.wrapping_add(1);
                    Ok((start, count, t))
                }
                Err(e) => {
                    let _ = state.alloc.free(start, count);
                    state.failed += 1;
                    drop(state);
                    pr_err!(
                        "area {}: the dirty set does not match the allocator\n",
                        self.idx
                    );
                    Err(e)
                }
            },
            Err(_) => {
                state.failed += 1;
                Err(ENOMEM)
            }
        }
    }

    /// Makes units `start..start + count`, just taken with `t`, safe to hand out: waits for
    /// the zeroer's chunk it overlaps, zeroes its dirty pieces if `zero` (interruptibly:
    /// `EINTR`), and zeroes and frees a claimed tail (uninterruptibly). May sleep.
    fn finish(&self, start: u64, count: u64, t: &Taken, zero: bool) -> Result {
        if t.wait {
            let end = start + count;
            let mut state = self.state.lock();
            // One chunk is at most `ZERO_CHUNK` bytes: a memset of a few hundred microseconds.
            // Uninterruptible, as the range is already taken; the zeroer notifies when it
            // clears the mark.
            while state.inflight.is_some_and(|(s, e)| s < end && start < e) {
                self.inflight_done.wait(&mut state);
            }
        }
        if let Some((s, e)) = t.tail {
            self.zero_units(s, e, false);
            let mut state = self.state.lock();
            if state.alloc.free(s, e - s).is_err() {
                drop(state);
                pr_err!("area {}: a claimed tail was not allocated\n", self.idx);
            }
        }
        if zero {
            let t0 = Instant::<Monotonic>::now();
            let mut bytes = 0;
            for (s, e) in t.dirty() {
                self.clear(s << UNIT_SHIFT, (e - s) << UNIT_SHIFT)?;
                bytes += (e - s) << UNIT_SHIFT;
            }
            if bytes > 0 {
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.sync_zeroed.fetch_add(bytes, Ordering::Relaxed);
                self.sync_ns.fetch_add(ns, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Zeroes units `s..e` through the kernel mapping, ignoring signals if not
    /// `interruptible`.
    fn zero_units(&self, s: u64, e: u64, interruptible: bool) {
        // Without a mapping nothing of the area is handed out, so nothing needs zeroing.
        let Ok(map) = self.mapping() else {
            return;
        };
        let (Ok(off), Ok(len)) = (
            usize::try_from(s << UNIT_SHIFT),
            usize::try_from((e - s) << UNIT_SHIFT),
        ) else {
            return;
        };
        let _ = if interruptible {
            map.zero(off, len)
        } else {
            map.zero_all(off, len)
        };
    }

    /// Background zeroing, one step: takes up to [`ZERO_CHUNK`] bytes out of the dirty set,
    /// zeroes them without the lock, and marks them clean. Returns false if there was nothing
    /// to do. For the area's zeroer thread only (one per area). May sleep.
    pub(crate) fn zero_step(&self) -> bool {
        if !self.is_mapped() {
            return false;
        }
        let run = {
            let mut state = self.state.lock();
            if state.inflight.is_some() {
                return false;
            }
            match state.dirty.take_first(ZERO_CHUNK >> UNIT_SHIFT) {
                Some(run) => {
                    state.inflight = Some((run.start, run.end));
                    run
                }
                // Nothing dirty in the allocator: a dirty block cached in a magazine becomes
                // the chunk (free, out of the set, in flight) and is cleaned like any other.
                None => {
                    let mut side = self.side(&mut state);
                    let got = magpool::steal_dirty(&self.mags, &mut side);
                    let bad = side.bad;
                    drop(side);
                    drop(state);
                    if bad > 0 {
                        pr_err!("area {}: a cached block was not allocated\n", self.idx);
                    }
                    match got {
                        Steal::Chunk(start, end) => Run { start, end },
                        Steal::Returned => return true,
                        Steal::Nothing => return false,
                    }
                }
            }
        };
        let t0 = Instant::<Monotonic>::now();
        self.zero_units(run.start, run.end, false);
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.state.lock().inflight = None;
        self.inflight_done.notify_all();
        self.bg_zeroed
            .fetch_add((run.end - run.start) << UNIT_SHIFT, Ordering::Relaxed);
        self.bg_ns.fetch_add(ns, Ordering::Relaxed);
        true
    }

    /// Returns true if the zeroer has work: dirty free memory in the allocator or a dirty
    /// block cached in a magazine. Else the zeroer is about to sleep, and a free into a
    /// magazine wakes it.
    pub(crate) fn zero_pending(&self) -> bool {
        if !self.is_mapped() {
            return false;
        }
        self.zeroer_idle.store(true, Ordering::Relaxed);
        // Pairs with the fence in `wake_idle_zeroer()`.
        fence(Ordering::SeqCst);
        let pending = !self.state.lock().dirty.is_empty()
            || self
                .mags
                .iter()
                .any(|m| m.lowest_dirty() != magazine::EMPTY);
        if pending {
            self.zeroer_idle.store(false, Ordering::Relaxed);
        }
        pending
    }

    /// Returns the area's zeroing figures.
    ///
    /// Blocks cached in the magazines count as free, and as dirty if their slot says so.
    pub(crate) fn zero_stats(&self) -> ZeroStats {
        let state = self.state.lock();
        let (cached, cached_dirty) = magazine::counts(&self.mags);
        let inflight = state.inflight.map_or(0, |(s, e)| e - s);
        let dirty =
            (state.dirty.dirty_units() + inflight + cached_dirty * magpool::BLOCK) << UNIT_SHIFT;
        let free = (state.alloc.free_units() + cached * magpool::BLOCK) << UNIT_SHIFT;
        drop(state);
        ZeroStats {
            clean: free.saturating_sub(dirty),
            dirty,
            zeroed: self.bg_zeroed.load(Ordering::Relaxed),
            zeroing_ns: self.bg_ns.load(Ordering::Relaxed),
            sync_zeroed: self.sync_zeroed.load(Ordering::Relaxed),
            sync_zeroing_ns: self.sync_ns.load(Ordering::Relaxed),
        }
    }

    /// Gives units `start..end` back to the allocator as dirty, around their poisoned units
    /// (which stay held), or, should the dirty set have no room, zeroes them first and gives
    /// them back clean. Wakes the zeroer. May sleep.
    fn release(&self, start: u64, end: u64) -> core::result::Result<(), bitalloc::AllocError> {
        let mut state = self.state.lock();
        let poisoned = state
            .poisoned
            .iter()
            .filter(|&&p| p >= start && p < end)
            .count();
        // Each piece needs at most one more run.
        if state.dirty.spare() > poisoned {
            let r = free_pieces(&mut state, start, end, true);
            drop(state);
            crate::zero::wake(self.idx);
            return r;
        }
        drop(state);
        // The dirty set is full: zero the range here, around its poisoned units.
        self.for_each_healthy(start, end, |s, e| self.zero_units(s, e, false));
        let mut state = self.state.lock();
        free_pieces(&mut state, start, end, false)
    }

    /// Calls `f` on each run of units in `start..end` that holds no poisoned unit, in order,
    /// without the lock held (which it takes only if the filter says the range may hold one).
    fn for_each_healthy(&self, start: u64, end: u64, mut f: impl FnMut(u64, u64)) {
        if start >= end {
            return;
        }
        if !self.range_may_be_poisoned(start, end - start) {
            f(start, end);
            return;
        }
        let mut cur = start;
        while cur < end {
            let next = next_poisoned(&self.state.lock(), cur, end);
            if next > cur {
                f(cur, next);
            }
            cur = next.saturating_add(1);
        }
    }

    /// Frees `len` bytes at `offset` bytes into the area, as returned by [`Area::alloc`]; its
    /// poisoned units stay held. May sleep.
    pub(crate) fn free(&self, offset: u64, len: u64) {
        if self.free_fast(offset, len) {
            return;
        }
        let (start, end) = (offset >> UNIT_SHIFT, (offset + len) >> UNIT_SHIFT);
        match self.release(start, end) {
            Ok(()) => {
                let mut state = self.state.lock();
                state.allocations = state.allocations.wrapping_sub(1);
            }
            Err(e) => {
                pr_err!(
                    "area {}: freeing {:#x}+{:#x}: {}\n",
                    self.idx,
                    offset,
                    len,
                    e.as_str()
                );
            }
        }
    }

    /// Frees `len` bytes at `offset` of a live allocation that keeps the rest (a hole a
    /// guest_memfd punched): the range goes back to the allocator, but its poisoned units,
    /// which stay held; the allocation stays counted until [`Area::forget_allocation`].
    pub(crate) fn free_part(&self, offset: u64, len: u64) -> Result {
        let (start, end) = (offset >> UNIT_SHIFT, (offset + len) >> UNIT_SHIFT);
        self.release(start, end).map_err(|_| EINVAL)
    }

    /// Takes back `len` bytes at `offset` that [`Area::free_part`] gave back, for the same
    /// allocation (its poisoned units, which the free kept held, stay as they are); `EBUSY`
    /// (nothing taken) if any of it has been allocated since. Does not zero. May sleep.
    pub(crate) fn reclaim_part(&self, offset: u64, len: u64) -> Result {
        let (start, end) = (offset >> UNIT_SHIFT, (offset + len) >> UNIT_SHIFT);
        let mut taken_to = start;
        let mut r = Ok(());
        self.for_each_healthy(start, end, |s, e| {
            if r.is_ok() {
                r = self.reclaim_units(s, e - s);
                if r.is_ok() {
                    taken_to = e;
                }
            }
        });
        if r.is_err() && taken_to > start {
            // Give back what this call took: the range stays a hole.
            let _ = self.free_part(offset, (taken_to - start) << UNIT_SHIFT);
        }
        r
    }

    /// Takes back the `count` units at `start`, free and none of them poisoned; `EBUSY` if
    /// any is allocated. May sleep.
    fn reclaim_units(&self, start: u64, count: u64) -> Result {
        let mut state = self.state.lock();
        // A refill may have cached part of the range: the allocator must see it free.
        let dirtied = self.drain_locked(&mut state);
        let taken = match state.alloc.alloc_at(start, count) {
            Err(_) => Err(EBUSY),
            Ok(()) => match take(&mut state, start, count) {
                Ok(t) => Ok(t),
                Err(e) => {
                    let _ = state.alloc.free(start, count);
                    Err(e)
                }
            },
        };
        drop(state);
        if dirtied {
            crate::zero::wake(self.idx);
        }
        self.finish(start, count, &taken?, false)
    }

    /// Counts as gone an allocation whose every part was freed with [`Area::free_part`].
    pub(crate) fn forget_allocation(&self) {
        let mut state = self.state.lock();
        state.allocations = state.allocations.wrapping_sub(1);
    }

    /// Zeroes `len` bytes at `offset` bytes into the area through its kernel mapping.
    ///
    /// The caller must own the range (it allocated it and has not freed it). Fails with
    /// `ERANGE` for a range outside the area (left alone) and `EINTR` when the task gets a
    /// fatal signal while it waits (part of the range zeroed): the caller then frees the range
    /// and returns the error, so that a task killed during a large allocation dies promptly and
    /// owns nothing.
    ///
    /// Poisoned units of the range are left alone (a guest_memfd's hole may hold one).
    pub(crate) fn clear(&self, offset: u64, len: u64) -> Result {
        let zero = |o: u64, l: u64| -> Result {
            let o = usize::try_from(o).map_err(|_| ERANGE)?;
            let l = usize::try_from(l).map_err(|_| ERANGE)?;
            self.mapping()?.zero(o, l)
        };
        let (start, end) = (
            offset >> UNIT_SHIFT,
            offset.saturating_add(len) >> UNIT_SHIFT,
        );
        let mut r = Ok(());
        self.for_each_healthy(start, end, |s, e| {
            if r.is_ok() {
                r = zero(s << UNIT_SHIFT, (e - s) << UNIT_SHIFT);
            }
        });
        r
    }

    /// Returns the write-back mapping of the whole area, waiting (uninterruptibly, for at
    /// most the time [`Area::map_now`] takes) until it is made. Fails with `ENOMEM` if the
    /// area could not be mapped. May sleep.
    pub(crate) fn mapping(&self) -> Result<&MemRemap> {
        if self.map.as_ref().is_none() {
            self.map_done.wait_for_completion();
        }
        self.map.as_ref().and_then(Option::as_ref).ok_or(ENOMEM)
    }

    /// Returns true if making the mapping failed (nothing of the area is handed out); does
    /// not wait.
    pub(crate) fn map_failed(&self) -> bool {
        self.map.as_ref().is_some_and(Option::is_none)
    }

    /// Returns true if the mapping is made (and did not fail); does not wait.
    fn is_mapped(&self) -> bool {
        self.map.as_ref().is_some_and(Option::is_some)
    }

    /// Returns the nanoseconds mapping the area took, or `None` before it is mapped.
    pub(crate) fn map_ns(&self) -> Option<u64> {
        self.map
            .as_ref()
            .map(|_| self.map_ns.load(Ordering::Relaxed))
    }

    /// Maps the area write-back (see the module documentation) and wakes whoever waits in
    /// [`Area::mapping`]; a no-op if it is done. For the area's zeroer thread (or, if it
    /// could not be started, `extmem/zero.c` itself), once, after the pool is published. May
    /// sleep.
    pub(crate) fn map_now(&self) {
        if self.map.as_ref().is_some() {
            return;
        }
        let start = Instant::<Monotonic>::now();
        // The range is not System RAM any more (`boot.c` released it), so this creates a new
        // mapping and reserves the WB memtype for it.
        // A test kernel can make it fail here (`extmem.test_fail_map`), to check the quarantine.
        let map = usize::try_from(self.size)
            .ok()
            .filter(|_| !crate::wrappers::zeroer::test_fail_map(self.idx))
            .and_then(|size| MemRemap::write_back(self.base, size).ok());
        let ns = elapsed_ns(&start);
        self.map_ns.store(ns, Ordering::Relaxed);
        if map.is_some() {
            pr_info!(
                "area {}: mapped write-back in {} us, after the pool was ready\n",
                self.idx,
                ns / 1000
            );
        } else {
            pr_err!(
                "area {}: cannot map it write-back; nothing of it is handed out\n",
                self.idx
            );
        }
        // Only this thread sets it (one mapper per area).
        let _ = self.map.populate(map);
        self.map_done.complete_all();
    }
}

/// Returns the lowest poisoned unit in `cur..end`, or `end`; the list is short.
fn next_poisoned(state: &AreaState, cur: u64, end: u64) -> u64 {
    state
        .poisoned
        .iter()
        .copied()
        .filter(|&p| p >= cur && p < end)
        .min()
        .unwrap_or(end)
}

/// Frees units `start..end` of `state`'s allocator but its poisoned units, which stay held;
/// each piece freed goes into the dirty set if `dirty` (the caller checked it has room for all
/// of them).
fn free_pieces(
    state: &mut AreaState,
    start: u64,
    end: u64,
    dirty: bool,
) -> core::result::Result<(), bitalloc::AllocError> {
    let mut cur = start;
    while cur < end {
        let next = next_poisoned(state, cur, end);
        if next > cur {
            state.alloc.free(cur, next - cur)?;
            if dirty && state.dirty.insert(cur, next - cur).is_err() {
                // Cannot happen (the caller checked the room), and must not leave the
                // range free and clean: hold it until the pool is rebuilt.
                let _ = state.alloc.alloc_at(cur, next - cur);
                return Err(bitalloc::AllocError::NoSpace);
            }
        }
        cur = next.saturating_add(1);
    }
    Ok(())
}

/// Takes units `start..start + count`, just allocated in `state.alloc`, out of the dirty set
/// and returns what must happen before they are handed out.
///
/// Should the set have no room to split the run the range lies in, the rest of that run is
/// claimed in the allocator too (it is free: the set holds only free units) and returned as
/// the tail to zero and free. Fails with `EINVAL` (nothing changed) only if the set and the
/// allocator disagree.
fn take(state: &mut AreaState, start: u64, count: u64) -> Result<Taken> {
    let end = start + count;
    let mut t = Taken {
        wait: state.inflight.is_some_and(|(s, e)| s < end && start < e),
        ..Taken::default()
    };
    if state.dirty.remove(start, count, |s, e| t.add(s, e)).is_ok() {
        return Ok(t);
    }
    // Full: the range lies strictly inside one run.
    let run_end = state
        .dirty
        .runs()
        .iter()
        .find(|r| r.start < start && r.end > end)
        .map(|r| r.end)
        .ok_or(EINVAL)?;
    state
        .alloc
        .alloc_at(end, run_end - end)
        .map_err(|_| EINVAL)?;
    // The end of a run: no split, no room needed.
    if state
        .dirty
        .remove(start, run_end - start, |_, _| {})
        .is_err()
    {
        let _ = state.alloc.free(end, run_end - end);
        return Err(EINVAL);
    }
    t.add(start, end);
    t.tail = Some((end, run_end));
    Ok(t)
}

/// All areas, in the order `boot.c` recorded them (the `areaN` order of sysfs).
pub(crate) struct Pool {
    areas: KVec<Area>,
    /// Allocations the previous kernel preserved, until retrieved or discarded.
    pub(crate) incoming: Pin<KBox<Mutex<KVec<kho::Incoming>>>>,
    /// Allocations preserved for the next kernel.
    pub(crate) preserved: Pin<KBox<Mutex<KVec<handover::Alloc>>>>,
    /// Sticky regions, as they are handed over (`devif/region.rs` keeps the list). Lock
    /// order: after `preserved`.
    pub(crate) sticky: Pin<KBox<Mutex<KVec<handover::Region>>>>,
    /// The previous kernel's sticky regions, with the pool index of their area, until
    /// `devif/region.rs` makes them again at init.
    pub(crate) incoming_regions: Pin<KBox<Mutex<KVec<kho::IncomingRegion>>>>,
    /// The buffer the state for the next kernel is written into, if KHO is enabled and the
    /// pool has areas. Lock order: this before `preserved`.
    pub(crate) outgoing: Option<kho::Outgoing>,
}

impl Pool {
    /// Returns the areas.
    pub(crate) fn areas(&self) -> &[Area] {
        &self.areas
    }
}

static POOL: SetOnce<Pool> = SetOnce::new();

/// Returns the pool, or `None` before [`init`] has run (or if it failed).
pub(crate) fn get() -> Option<&'static Pool> {
    POOL.as_ref()
}

fn new_area(idx: usize, rec: &BootArea, restore: Option<&kho::Restore<'_>>) -> Result<Area> {
    let start = Instant::<Monotonic>::now();
    let units = rec.size >> UNIT_SHIFT;
    let storage = Meta::take(idx, units)?;
    let meta_bytes = (storage.len() as u64) << 3;
    let kind = storage.kind();
    let meta_ns = elapsed_ns(&start);
    let (alloc, allocations, quarantined) = match restore {
        Some(r) => r.area_allocator(idx, storage, units)?,
        // An area of the previous kernel whose state was rejected (`boot.c` carved it from
        // the area record) or whose layout differs: quarantined.
        None => match carveout::handover_mismatch(idx) {
            Some(reason) => kho::quarantine(idx, storage, units, reason)?,
            None => (BitAlloc::new(storage, units).map_err(|_| EINVAL)?, 0, None),
        },
    };
    let alloc_ns = elapsed_ns(&start) - meta_ns;
    let dirty = initial_dirty(&alloc, restore.is_some())?;
    let state = KBox::pin_init(
        new_spinlock!(
            AreaState {
                alloc,
                allocations,
                failed: 0,
                poisoned: KVec::new(),
                dirty,
                inflight: None,
            },
            "extmem_area"
        ),
        GFP_KERNEL,
    )?;
    let map_done = KBox::pin_init(Completion::new(), GFP_KERNEL)?;
    let inflight_done = KBox::pin_init(new_condvar!("extmem_area_inflight"), GFP_KERNEL)?;
    let cpus = nr_cpu_ids() as usize;
    let mut mags = KVec::with_capacity(cpus, GFP_KERNEL)?;
    let mut net = KVec::with_capacity(cpus, GFP_KERNEL)?;
    for _ in 0..cpus {
        mags.push(Magazine::new(), GFP_KERNEL)?;
        net.push(Net(AtomicI64::new(0)), GFP_KERNEL)?;
    }
    let ready = Readiness {
        total_ns: elapsed_ns(&start),
        meta_ns,
        alloc_ns,
        meta_bytes,
    };
    pr_info!(
        "area {}: {} MiB ready in {} us (metadata {} KiB from {} in {} us, allocator {} {} us; the write-back mapping is made after)\n",
        idx,
        rec.size >> 20,
        ready.total_ns / 1000,
        meta_bytes >> 10,
        kind,
        meta_ns / 1000,
        if restore.is_some() { "restored in" } else { "built in" },
        alloc_ns / 1000
    );
    Ok(Area {
        idx,
        base: rec.base,
        size: rec.size,
        nid: rec.nid,
        map: SetOnce::new(),
        map_done,
        map_ns: AtomicU64::new(0),
        quarantined,
        state,
        inflight_done,
        nr_poisoned: AtomicU64::new(0),
        ready,
        bg_zeroed: AtomicU64::new(0),
        bg_ns: AtomicU64::new(0),
        sync_zeroed: AtomicU64::new(0),
        sync_ns: AtomicU64::new(0),
        mags,
        net,
        mags_on: AtomicBool::new(true),
        poison_blocks: [const { AtomicU64::new(0) }; POISON_WORDS],
        zeroer_idle: AtomicBool::new(false),
    })
}

/// Nanoseconds since `start`.
fn elapsed_ns(start: &Instant<Monotonic>) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Returns the words of storage the allocator of an area of `units` units needs, 0 if it
/// cannot have one; for `boot.c`, which reserves them at carve time (see `internal.h`).
#[export]
pub(crate) extern "C" fn extmem_meta_words(units: u64) -> usize {
    bitalloc::storage_words(units).unwrap_or(0)
}

/// Returns the dirty set of an area at boot: every free unit, since nothing says what the
/// firmware or the previous kernel left in free memory (the clean state is not handed over
/// across kexec, so it can never be wrongly clean).
fn initial_dirty(alloc: &Alloc, restored: bool) -> Result<DirtySet<KVVec<Run>>> {
    let units = alloc.units();
    if !restored && alloc.free_units() == units {
        // A fresh area: one run, without reading the bitmap.
        let mut set = DirtySet::new(KVVec::from_elem(Run::default(), DIRTY_RUNS, GFP_KERNEL)?);
        if units > 0 {
            set.insert(0, units).map_err(|_| EINVAL)?;
        }
        return Ok(set);
    }
    // The free runs are the gaps between the allocated ones.
    let gaps = |f: &mut dyn FnMut(u64, u64)| {
        let mut at = 0;
        for (s, n) in alloc.allocated_runs() {
            if s > at {
                f(at, s - at);
            }
            at = s + n;
        }
        if at < units {
            f(at, units - at);
        }
    };
    let mut nr = 0usize;
    gaps(&mut |_, _| nr += 1);
    let cap = DIRTY_RUNS.max(nr.saturating_mul(2));
    let mut set = DirtySet::new(KVVec::from_elem(Run::default(), cap, GFP_KERNEL)?);
    let mut ok = true;
    gaps(&mut |s, n| ok &= set.insert(s, n).is_ok());
    if !ok {
        return Err(ENOMEM);
    }
    Ok(set)
}

/// Builds the pool from the boot records. Called once, from the module's init.
pub(crate) fn init() -> Result<&'static Pool> {
    let start = Instant::<Monotonic>::now();
    let n = carveout::nr_areas();
    let handed_over = carveout::take_handover_state();
    let restore = handed_over.as_ref().and_then(kho::Restore::begin);
    let mut areas = KVec::with_capacity(n as usize, GFP_KERNEL)?;
    for idx in 0..n {
        let Some(rec) = carveout::area(idx) else {
            break;
        };
        areas.push(new_area(idx as usize, &rec, restore.as_ref())?, GFP_KERNEL)?;
    }
    let areas_done = elapsed_ns(&start);
    // Before anything can allocate: the units the previous kernel found poisoned.
    crate::poison::restore(&mut areas);
    let incoming = match &restore {
        Some(r) => r.incoming(&areas)?,
        None => KVec::new(),
    };
    let incoming_regions = match &restore {
        Some(r) => r.regions(&areas)?,
        None => KVec::new(),
    };
    if let Some(r) = restore {
        r.finish(&areas, &incoming, &incoming_regions);
    }
    // Everything needed is copied out: give the handed-over state back (`kho_restore_free()`).
    drop(handed_over);
    let taken_in = elapsed_ns(&start);
    let outgoing = if areas.is_empty() {
        None
    } else {
        kho::outgoing(&areas)
    };
    let pool = Pool {
        outgoing,
        areas,
        incoming: KBox::pin_init(new_mutex!(incoming, "extmem_incoming"), GFP_KERNEL)?,
        preserved: KBox::pin_init(new_mutex!(KVec::new(), "extmem_preserved"), GFP_KERNEL)?,
        sticky: KBox::pin_init(new_mutex!(KVec::new(), "extmem_sticky"), GFP_KERNEL)?,
        incoming_regions: KBox::pin_init(
            new_mutex!(incoming_regions, "extmem_incoming_regions"),
            GFP_KERNEL,
        )?,
    };
    if !POOL.populate(pool) {
        return Err(EBUSY);
    }
    let pool = get().ok_or(EBUSY)?;
    let handover_out_start = elapsed_ns(&start);
    // The areas (and any quarantine) are handed over from now on, with or without LUO.
    kho::rewrite(pool);
    let handover_out = elapsed_ns(&start).saturating_sub(handover_out_start);
    crate::poison::register(pool);
    let areas = pool.areas();
    if !areas.is_empty() {
        let ns = elapsed_ns(&start);
        let bytes: u64 = areas.iter().map(|a| a.size).sum();
        let meta: u64 = areas.iter().map(|a| a.ready.meta_bytes).sum();
        let in_areas: u64 = areas.iter().map(|a| a.ready.total_ns).sum();
        // The outgoing state is built between `taken_in` and publishing the pool.
        let handover_out = handover_out + handover_out_start.saturating_sub(taken_in);
        let taken_in = taken_in.saturating_sub(areas_done);
        pr_info!(
            "pool of {} area(s), {} MiB, ready in {} us ({} us in the areas, {} us taking in the handover, {} us writing the next one, {} us other), metadata {} KiB\n",
            areas.len(),
            bytes >> 20,
            ns / 1000,
            in_areas / 1000,
            taken_in / 1000,
            handover_out / 1000,
            ns.saturating_sub(in_areas + taken_in + handover_out) / 1000,
            meta >> 10
        );
    }
    // Free memory is dirty until the zeroers clean it.
    crate::zero::start(pool);
    Ok(pool)
}
