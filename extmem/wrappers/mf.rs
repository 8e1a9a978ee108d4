// SPDX-License-Identifier: GPL-2.0

//! Memory failure on extmem pfns: the registration of an area with
//! `register_pfn_address_space()`, the address space its files share, and the previous
//! kernel's poison record.
//!
//! C half: `extmem/poison.c`, which also says how a failure reaches the pool
//! (`crate::poison`).

use super::kho_blob;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

/// Registers area `idx`, `size` bytes at physical `base`, so that `memory_failure()` on any of
/// its pfns reaches extmem and finds the processes that map it.
///
/// Fails with `EOPNOTSUPP` without `CONFIG_MEMORY_FAILURE`, `EBUSY` if another driver
/// registered an overlapping range, `EINVAL` for an index past `EXTMEM_MAX_AREAS` or an area
/// registered before, `ENOMEM`.
pub(crate) fn register_area(idx: usize, base: u64, size: u64) -> Result {
    let idx = u32::try_from(idx)?;
    // SAFETY: `extmem_mf_register()` checks its arguments and only reads them.
    to_result(unsafe { bindings::extmem_mf_register(idx, base, size) })
}

/// Gives `file`, which the caller has just made and nobody else can reach yet, the address
/// space of area `idx` (nothing if the area is not registered).
///
/// # Safety
///
/// `file` must be a valid file that is not installed in any descriptor table nor mapped, so
/// that nothing reads its `f_mapping` while it changes.
pub(super) unsafe fn attach(file: *mut bindings::file, idx: usize) {
    let Ok(idx) = u32::try_from(idx) else {
        return;
    };
    // SAFETY: The caller guarantees `file` is valid and not yet used by anyone else.
    unsafe { bindings::extmem_mf_attach(file, idx) };
}

/// Set once the previous kernel's poison record has been taken by [`take_incoming`].
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Returns the poison record the previous kernel handed over, once; `None` on later calls or
/// if there is none.
pub(crate) fn take_incoming() -> Option<kho_blob::Restored> {
    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    let mut len = 0usize;
    // SAFETY: `extmem_mf_incoming()` only looks the subtree up and writes `len`.
    let ptr = unsafe { bindings::extmem_mf_incoming(&mut len) };
    let ptr = NonNull::new(ptr.cast_mut().cast::<u8>())?;
    // SAFETY: KHO restored the subtree's blob, which the previous kernel allocated with
    // `kho_alloc_preserve()` (`crate::poison`), mapped at `ptr` for `len` bytes; `TAKEN` makes
    // this the only owner.
    Some(unsafe { kho_blob::Restored::from_raw(ptr, len) })
}
