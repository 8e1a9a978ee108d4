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
//! Lock order: an area's lock is a leaf lock; nothing else is taken under it.

use crate::bitalloc::{self, BitAlloc};
use crate::handover;
use crate::kho;
use crate::wrappers::carveout::{self, BootArea};
use crate::wrappers::memremap::MemRemap;
use kernel::prelude::*;
use kernel::sync::{Mutex, SetOnce, SpinLock};
use kernel::time::{Instant, Monotonic};
use kernel::{new_mutex, new_spinlock};

/// Bytes per allocation unit: one 4 KiB page.
pub(crate) const UNIT: u64 = 1 << UNIT_SHIFT;
/// `log2(UNIT)`.
pub(crate) const UNIT_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;

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
}

/// What an area's lock protects.
struct AreaState {
    alloc: BitAlloc<KVVec<u64>>,
    allocations: u64,
    failed: u64,
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
        }
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

    /// Frees `len` bytes at `offset` bytes into the area, as returned by [`Area::alloc`].
    pub(crate) fn free(&self, offset: u64, len: u64) {
        let mut state = self.state.lock();
        match state.alloc.free(offset >> UNIT_SHIFT, len >> UNIT_SHIFT) {
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

    /// Returns the allocator state of the area holding only the ranges `runs` yields, as
    /// [`BitAlloc::serialize`] writes it, in `out`; returns the bytes written.
    ///
    /// Sleeps (allocates the temporary bitmap).
    pub(crate) fn serialize_runs(
        &self,
        runs: impl Iterator<Item = (u64, u64)>,
        out: &mut [u8],
    ) -> Result<usize> {
        let units = self.size >> UNIT_SHIFT;
        let words = bitalloc::storage_words(units).ok_or(EINVAL)?;
        let mut tmp =
            BitAlloc::new(KVVec::from_elem(0u64, words, GFP_KERNEL)?, units).map_err(|_| EINVAL)?;
        for (offset, len) in runs {
            tmp.alloc_at(offset >> UNIT_SHIFT, len >> UNIT_SHIFT)
                .map_err(|_| EINVAL)?;
        }
        tmp.serialize(out).map_err(|_| ENOSPC)
    }

    /// Zeroes `len` bytes at `offset` bytes into the area through its kernel mapping.
    ///
    /// The caller must own the range (it allocated it and has not freed it); a range outside
    /// the area is left alone.
    pub(crate) fn clear(&self, offset: u64, len: u64) {
        let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
            return;
        };
        let _ = self.map.zero(offset, len);
    }

    /// Returns the write-back mapping of the whole area.
    pub(crate) fn mapping(&self) -> &MemRemap {
        &self.map
    }
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
    let units = rec.size >> UNIT_SHIFT;
    let words = bitalloc::storage_words(units).ok_or(EINVAL)?;
    let storage = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
    let (alloc, allocations, quarantined) = match restore {
        Some(r) => r.area_allocator(idx, storage, units)?,
        None => (BitAlloc::new(storage, units).map_err(|_| EINVAL)?, 0, None),
    };
    let size = usize::try_from(rec.size)?;
    // The range is not System RAM any more (`boot.c` released it), so this creates a new
    // mapping and reserves the WB memtype for it.
    let Ok(map) = MemRemap::write_back(rec.base, size) else {
        pr_err!("area {}: cannot map it write-back; not using it\n", idx);
        return Err(ENOMEM);
    };
    let state = KBox::pin_init(
        new_spinlock!(
            AreaState {
                alloc,
                allocations,
                failed: 0,
            },
            "extmem_area"
        ),
        GFP_KERNEL,
    )?;
    Ok(Area {
        idx,
        base: rec.base,
        size: rec.size,
        nid: rec.nid,
        map,
        quarantined,
        state,
    })
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
    if !areas.is_empty() {
        let us = start.elapsed().as_nanos() / 1000;
        let bytes: u64 = areas.iter().map(|a| a.size).sum();
        pr_info!(
            "pool of {} area(s), {} MiB, ready in {} us\n",
            areas.len(),
            bytes >> 20,
            us
        );
    }
    let outgoing = if areas.is_empty() {
        None
    } else {
        kho::outgoing()
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
    get().ok_or(EBUSY)
}
