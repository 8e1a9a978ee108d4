// SPDX-License-Identifier: GPL-2.0

//! The records the boot carve-out (`extmem/boot.c`) keeps: the areas it took out of memblock
//! and the state the previous kernel handed over, if any.
//!
//! C declarations: `include/linux/extmem.h` and `extmem/internal.h`. Everything here is
//! written once during early boot (`__ro_after_init`) and only read afterwards.

use super::kho_blob;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::bindings;
use kernel::prelude::*;

/// Sizes and fixed addresses of areas are multiples of this many bytes: a memory section.
pub(crate) const GRANULE: u64 = 1 << bindings::SECTION_SIZE_BITS;

/// Node ids are below this.
pub(crate) const MAX_NODES: u32 = bindings::MAX_NUMNODES;

/// One carved-out area, as `boot.c` recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BootArea {
    /// Physical base address in bytes.
    pub(crate) base: u64,
    /// Size in bytes.
    pub(crate) size: u64,
    /// NUMA node of the whole area.
    pub(crate) nid: i32,
}

/// Returns how many areas `boot.c` carved out.
pub(crate) fn nr_areas() -> u32 {
    // SAFETY: `extmem_nr_areas()` only reads a `__ro_after_init` counter.
    unsafe { bindings::extmem_nr_areas() }
}

/// Returns the record of area `idx`, if there is one.
pub(crate) fn area(idx: u32) -> Option<BootArea> {
    // SAFETY: `extmem_get_area()` accepts any index and returns NULL or a pointer to a record
    // that is `__ro_after_init`, so it stays valid and unchanged for the rest of the kernel's
    // life.
    let ptr = unsafe { bindings::extmem_get_area(idx) };
    // SAFETY: A non-NULL result points to a valid, never-written-again record (see above).
    let rec = unsafe { ptr.as_ref() }?;
    Some(BootArea {
        base: rec.base,
        size: rec.size,
        nid: rec.nid,
    })
}

/// Takes the storage `boot.c` reserved in memblock for the allocator of area `idx`: the
/// words it holds are not initialised (whatever the memory held). Only the first call for an
/// area returns it; `None` if `boot.c` had no room for it.
pub(crate) fn take_area_meta(idx: usize) -> Option<&'static mut [u64]> {
    let idx = u32::try_from(idx).ok()?;
    let mut words = 0usize;
    // SAFETY: `extmem_area_meta()` accepts any index and writes `words`, a valid `usize`.
    let ptr = unsafe { bindings::extmem_area_meta(idx, &mut words) };
    let ptr = NonNull::new(ptr)?;
    // `boot.c` reserved `words` `u64`s at `ptr` in memblock: direct-mapped, aligned to a cache
    // line and never freed. The exchange in `extmem_area_meta()` returns the pointer once. The
    // memory is not initialised, and the allocator gives no meaning to a word it has not
    // written (`BitAlloc::new` and `restore` accept storage holding anything).
    // SAFETY: `ptr` is valid for `words` `u64`s for the kernel's life and this is its only
    // reference (above); every bit pattern is a valid `u64`.
    let meta = unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), words) };
    Some(meta)
}

/// Returns the index in the handed-over state of area `idx`, or `None` if the area does not
/// come from it.
pub(crate) fn handover_index(idx: usize) -> Option<usize> {
    let idx = u32::try_from(idx).ok()?;
    // SAFETY: `extmem_area_handover_index()` accepts any index and only reads
    // `__ro_after_init` data.
    let ho = unsafe { bindings::extmem_area_handover_index(idx) };
    usize::try_from(ho).ok()
}

/// Returns why handed-over area `idx` must be quarantined because this kernel's layout differs
/// from the previous one's (`boot.c` carved it all the same), or `None`.
pub(crate) fn handover_mismatch(idx: usize) -> Option<&'static CStr> {
    let idx = u32::try_from(idx).ok()?;
    // SAFETY: `extmem_area_handover_mismatch()` accepts any index and returns NULL or a string
    // literal of `boot.c`.
    let reason = unsafe { bindings::extmem_area_handover_mismatch(idx) };
    if reason.is_null() {
        return None;
    }
    // SAFETY: A non-NULL result is a NUL-terminated string literal, which lives for ever.
    Some(unsafe { CStr::from_char_ptr(reason) })
}

/// Set once the handed-over state has been taken by [`take_handover_state`].
static HANDOVER_TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the state the previous kernel handed over, which `boot.c` validated and carved the
/// areas from, if there is one.
///
/// The blob has one owner: only the first call returns it, later ones return `None`.
pub(crate) fn take_handover_state() -> Option<kho_blob::Restored> {
    let mut len = 0usize;
    // SAFETY: `extmem_handover_state()` only reads `__ro_after_init` data and writes `len`,
    // a valid `usize`.
    let blob = unsafe { bindings::extmem_handover_state(&mut len) };
    let ptr = NonNull::new(blob.cast_mut().cast::<u8>())?;
    if HANDOVER_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: `boot.c` found the blob as the `"extmem"` KHO subtree, which the previous kernel
    // allocated with `kho_alloc_preserve()` (`devif/luo.c`); KHO restored it and it is in the
    // direct map. `HANDOVER_TAKEN` makes this the only owner, and `boot.c` never touches it
    // after early boot.
    Some(unsafe { kho_blob::Restored::from_raw(ptr, len) })
}
