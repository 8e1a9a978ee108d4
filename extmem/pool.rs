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
//! address to zero allocations through.
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
//! Lock order: an area's lock is a leaf lock; nothing else is taken under it.

use crate::bitalloc::{self, BitAlloc};
use crate::handover;
use crate::kho;
use crate::wrappers::carveout::{self, BootArea};
use crate::wrappers::memremap::MemRemap;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Mutex, SetOnce, SpinLock};
use kernel::time::{Instant, Monotonic};
use kernel::{new_mutex, new_spinlock};

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
    /// Mapping the area write-back, in ns.
    pub(crate) map_ns: u64,
    /// Bytes of allocator storage.
    pub(crate) meta_bytes: u64,
}

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
    /// The write-back mapping of the whole area.
    map: MemRemap,
    /// Why the area is quarantined (all of it held, nothing handed out), if it is.
    pub(crate) quarantined: Option<&'static CStr>,
    state: Pin<KBox<SpinLock<AreaState>>>,
    /// Length of `AreaState::poisoned`, readable without the lock (the fault path skips the
    /// lock while it is 0).
    nr_poisoned: AtomicU64,
    /// How long the area took to become ready.
    pub(crate) ready: Readiness,
}

/// What an area's lock protects.
struct AreaState {
    alloc: Alloc,
    allocations: u64,
    failed: u64,
    /// Poisoned units (unit index in the area), each held in `alloc` or by the allocation
    /// that holds it, which leaves it held when it is freed.
    poisoned: KVec<u64>,
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
    /// Returns a consistent snapshot of the area's usage.
    pub(crate) fn usage(&self) -> Usage {
        let state = self.state.lock();
        Usage {
            free: state.alloc.free_units() << UNIT_SHIFT,
            largest_free: state.alloc.largest_free_run() << UNIT_SHIFT,
            allocations: state.allocations,
            failed: state.failed,
            poisoned: state.poisoned.len() as u64,
        }
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
        let was_free = state.alloc.alloc_at(unit, 1).is_ok();
        // Under a spinlock: an atomic allocation, a few bytes.
        state.poisoned.push(unit, GFP_ATOMIC)?;
        self.nr_poisoned
            .store(state.poisoned.len() as u64, Ordering::Release);
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
        let mut state = self.state.lock();
        while state.alloc.free_units() > 0 {
            let run = state.alloc.largest_free_run();
            if run == 0 || state.alloc.alloc(run, 1).is_err() {
                break;
            }
        }
        drop(state);
        self.quarantined = Some(why);
    }

    /// Returns true if any of the `count` units at `unit` is poisoned.
    pub(crate) fn is_poisoned(&self, unit: u64, count: u64) -> bool {
        if self.nr_poisoned.load(Ordering::Acquire) == 0 {
            return false;
        }
        let end = unit.saturating_add(count);
        let state = self.state.lock();
        state.poisoned.iter().any(|&p| p >= unit && p < end)
    }

    /// Allocates `len` bytes aligned to `align` bytes (both multiples of [`UNIT`], `align` a
    /// power of two) and returns the offset of the range in the area, in bytes.
    ///
    /// Does not zero the memory. Fails with `ENOMEM` when no aligned free range of that size
    /// exists; the failure is counted.
    pub(crate) fn alloc(&self, len: u64, align: u64) -> Result<u64> {
        let count = len >> UNIT_SHIFT;
        let align_units = (align >> UNIT_SHIFT).max(1);
        let mut state = self.state.lock();
        match state
            .alloc
            .alloc_offset(count, align_units, self.base >> UNIT_SHIFT)
        {
            Ok(start) => {
                state.allocations += 1;
                Ok(start << UNIT_SHIFT)
            }
            Err(_) => {
                state.failed += 1;
                Err(ENOMEM)
            }
        }
    }

    /// Frees `len` bytes at `offset` bytes into the area, as returned by [`Area::alloc`]; its
    /// poisoned units stay held.
    pub(crate) fn free(&self, offset: u64, len: u64) {
        let mut state = self.state.lock();
        let (start, end) = (offset >> UNIT_SHIFT, (offset + len) >> UNIT_SHIFT);
        match free_around_poison(&mut state, start, end) {
            Ok(()) => state.allocations = state.allocations.saturating_sub(1),
            Err(e) => {
                drop(state);
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
    /// guest_memfd punched): the range goes back to the allocator, the allocation stays
    /// counted until [`Area::forget_allocation`].
    pub(crate) fn free_part(&self, offset: u64, len: u64) -> Result {
        let mut state = self.state.lock();
        state
            .alloc
            .free(offset >> UNIT_SHIFT, len >> UNIT_SHIFT)
            .map_err(|_| EINVAL)
    }

    /// Takes back `len` bytes at `offset` that [`Area::free_part`] gave back, for the same
    /// allocation; `EBUSY` if any of it has been allocated since. Does not zero.
    pub(crate) fn reclaim_part(&self, offset: u64, len: u64) -> Result {
        let mut state = self.state.lock();
        state
            .alloc
            .alloc_at(offset >> UNIT_SHIFT, len >> UNIT_SHIFT)
            .map_err(|_| EBUSY)
    }

    /// Counts as gone an allocation whose every part was freed with [`Area::free_part`].
    pub(crate) fn forget_allocation(&self) {
        let mut state = self.state.lock();
        state.allocations = state.allocations.saturating_sub(1);
    }

    /// Zeroes `len` bytes at `offset` bytes into the area through its kernel mapping.
    ///
    /// The caller must own the range (it allocated it and has not freed it). Fails with
    /// `ERANGE` for a range outside the area (left alone) and `EINTR` when the task gets a
    /// fatal signal while it waits (part of the range zeroed): the caller then frees the range
    /// and returns the error, so that a task killed during a large allocation dies promptly and
    /// owns nothing.
    pub(crate) fn clear(&self, offset: u64, len: u64) -> Result {
        let offset = usize::try_from(offset).map_err(|_| ERANGE)?;
        let len = usize::try_from(len).map_err(|_| ERANGE)?;
        self.map.zero(offset, len)
    }

    /// Returns the write-back mapping of the whole area.
    pub(crate) fn mapping(&self) -> &MemRemap {
        &self.map
    }
}

/// Frees units `start..end` of `state`'s allocator but its poisoned units, which stay held.
fn free_around_poison(
    state: &mut AreaState,
    start: u64,
    end: u64,
) -> core::result::Result<(), bitalloc::AllocError> {
    let mut cur = start;
    while cur < end {
        // The lowest poisoned unit in `cur..end`; the list is short.
        let next = state
            .poisoned
            .iter()
            .copied()
            .filter(|&p| p >= cur && p < end)
            .min()
            .unwrap_or(end);
        if next > cur {
            state.alloc.free(cur, next - cur)?;
        }
        cur = next.saturating_add(1);
    }
    Ok(())
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
    let size = usize::try_from(rec.size)?;
    // The range is not System RAM any more (`boot.c` released it), so this creates a new
    // mapping and reserves the WB memtype for it.
    let Ok(map) = MemRemap::write_back(rec.base, size) else {
        pr_err!("area {}: cannot map it write-back; not using it\n", idx);
        return Err(ENOMEM);
    };
    let map_ns = elapsed_ns(&start) - meta_ns - alloc_ns;
    let state = KBox::pin_init(
        new_spinlock!(
            AreaState {
                alloc,
                allocations,
                failed: 0,
                poisoned: KVec::new(),
            },
            "extmem_area"
        ),
        GFP_KERNEL,
    )?;
    let ready = Readiness {
        total_ns: elapsed_ns(&start),
        meta_ns,
        alloc_ns,
        map_ns,
        meta_bytes,
    };
    pr_info!(
        "area {}: {} MiB ready in {} us (metadata {} KiB from {} in {} us, allocator {} {} us, mapping {} us)\n",
        idx,
        rec.size >> 20,
        ready.total_ns / 1000,
        meta_bytes >> 10,
        kind,
        meta_ns / 1000,
        if restore.is_some() { "restored in" } else { "built in" },
        alloc_ns / 1000,
        map_ns / 1000
    );
    Ok(Area {
        idx,
        base: rec.base,
        size: rec.size,
        nid: rec.nid,
        map,
        quarantined,
        state,
        nr_poisoned: AtomicU64::new(0),
        ready,
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
    // The areas (and any quarantine) are handed over from now on, with or without LUO.
    kho::rewrite(pool);
    crate::poison::register(pool);
    let areas = pool.areas();
    if !areas.is_empty() {
        let ns = elapsed_ns(&start);
        let bytes: u64 = areas.iter().map(|a| a.size).sum();
        let meta: u64 = areas.iter().map(|a| a.ready.meta_bytes).sum();
        let in_areas: u64 = areas.iter().map(|a| a.ready.total_ns).sum();
        pr_info!(
            "pool of {} area(s), {} MiB, ready in {} us ({} us in the areas, {} us for the rest), metadata {} KiB\n",
            areas.len(),
            bytes >> 20,
            ns / 1000,
            in_areas / 1000,
            ns.saturating_sub(in_areas) / 1000,
            meta >> 10
        );
    }
    Ok(pool)
}
