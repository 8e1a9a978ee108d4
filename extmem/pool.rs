// SPDX-License-Identifier: GPL-2.0

//! The pool: the areas `boot.c` carved out, each with the allocator that owns it.
//!
//! The pool is built once at `device_initcall` from the boot records and never changes shape
//! afterwards: areas are neither added nor removed at run time. Each area's allocator state is
//! behind its own spinlock, which covers only the bitmap search and update.

use kernel::bindings;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::{SetOnce, SpinLock};

/// One carved-out area and its allocator.
pub(crate) struct Area {
    /// Physical base address in bytes.
    pub(crate) base: u64,
    /// Size in bytes.
    pub(crate) size: u64,
    /// NUMA node of the whole area.
    pub(crate) nid: i32,
    state: Pin<KBox<SpinLock<AreaState>>>,
}

/// The allocator's view of an area, in bytes.
struct AreaState {
    free: u64,
    largest_free: u64,
}

impl Area {
    /// Returns the free bytes and the largest free run in bytes.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.free, state.largest_free)
    }
}

/// All areas, in the order `boot.c` recorded them (the `areaN` order of sysfs).
pub(crate) struct Pool {
    areas: KVec<Area>,
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

/// Returns the boot record of area `idx`, if there is one.
pub(crate) fn boot_area(idx: u32) -> Option<bindings::extmem_area> {
    // SAFETY: `extmem_get_area()` accepts any index and returns NULL or a pointer to a record
    // that is `__ro_after_init`, so it stays valid and unchanged for the rest of the kernel's
    // life.
    let ptr = unsafe { bindings::extmem_get_area(idx) };
    // SAFETY: A non-NULL result points to a valid, never-written-again record (see above).
    unsafe { ptr.as_ref() }.copied()
}

/// Builds the pool from the boot records. Called once, from the module's init.
pub(crate) fn init() -> Result {
    // SAFETY: `extmem_nr_areas()` only reads a `__ro_after_init` counter.
    let n = unsafe { bindings::extmem_nr_areas() };
    let mut areas = KVec::with_capacity(n as usize, GFP_KERNEL)?;
    for idx in 0..n {
        let Some(rec) = boot_area(idx) else {
            break;
        };
        let state = KBox::pin_init(
            new_spinlock!(
                AreaState {
                    free: rec.size,
                    largest_free: rec.size,
                },
                "extmem_area"
            ),
            GFP_KERNEL,
        )?;
        areas.push(
            Area {
                base: rec.base,
                size: rec.size,
                nid: rec.nid,
                state,
            },
            GFP_KERNEL,
        )?;
    }
    if !POOL.populate(Pool { areas }) {
        return Err(EBUSY);
    }
    Ok(())
}

/// Reads the usage of area `idx` for `sysfs.c`; see `internal.h`.
///
/// # Safety
///
/// `free_bytes` and `largest_free` must be valid for writing a `u64`.
#[no_mangle]
pub(crate) unsafe extern "C" fn extmem_area_usage(
    idx: u32,
    free_bytes: *mut u64,
    largest_free: *mut u64,
) -> c_int {
    let Some(area) = get().and_then(|p| p.areas().get(idx as usize)) else {
        return ENODEV.to_errno();
    };
    let (free, largest) = area.usage();
    // SAFETY: The caller guarantees both pointers are valid for writes.
    unsafe {
        free_bytes.write(free);
        largest_free.write(largest);
    }
    0
}
