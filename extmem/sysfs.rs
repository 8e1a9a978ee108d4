// SPDX-License-Identifier: GPL-2.0

//! What `sysfs.c` reads of the pool: the usage figures and the quarantine reason of an area,
//! and the kexec handover figures.

use crate::pool;
use crate::wrappers::c_entry::{AreaReady, AreaStats, HandoverStats};
use kernel::prelude::*;

/// Returns why area `idx` is quarantined (its handed-over state was rejected, or it could not
/// be mapped write-back), or NULL; for `sysfs.c`, see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_area_quarantined(idx: u32) -> *const c_char {
    pool::get()
        .and_then(|p| p.areas().get(idx as usize))
        .and_then(|a| {
            a.quarantined
                .or_else(|| a.map_failed().then_some(c"cannot be mapped write-back"))
        })
        .map_or(core::ptr::null(), |why| why.as_char_ptr())
}

/// Returns the usage of area `idx` for `sysfs.c`, with `ready` false before the pool is up; see
/// `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_area_usage(idx: u32) -> AreaStats {
    let Some(area) = pool::get().and_then(|p| p.areas().get(idx as usize)) else {
        return AreaStats {
            ready: false,
            free_bytes: 0,
            largest_free: 0,
            bytes_in_use: 0,
            allocations: 0,
            failed_requests: 0,
            poisoned: 0,
        };
    };
    let u = area.usage();
    AreaStats {
        ready: true,
        free_bytes: u.free,
        largest_free: u.largest_free,
        bytes_in_use: area.size - u.free,
        allocations: u.allocations,
        failed_requests: u.failed,
        poisoned: u.poisoned,
    }
}

/// Returns how area `idx` became ready for `sysfs.c`, with `ready` false before the pool is
/// up; see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_area_readiness(idx: u32) -> AreaReady {
    let Some(area) = pool::get().and_then(|p| p.areas().get(idx as usize)) else {
        return AreaReady {
            ready: false,
            ready_us: 0,
            metadata_bytes: 0,
            mapped: false,
            map_us: 0,
        };
    };
    let map_ns = area.map_ns();
    AreaReady {
        ready: true,
        ready_us: area.ready.total_ns / 1000,
        metadata_bytes: area.ready.meta_bytes,
        mapped: map_ns.is_some(),
        map_us: map_ns.unwrap_or(0) / 1000,
    }
}

/// Returns the kexec handover figures for `sysfs.c`; see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_handover_stats() -> HandoverStats {
    let Some(pool) = pool::get() else {
        return HandoverStats {
            enabled: false,
            preserved_allocations: 0,
            sticky_regions: 0,
            incoming_allocations: 0,
        };
    };
    HandoverStats {
        enabled: pool.outgoing.is_some(),
        preserved_allocations: pool.preserved.lock().len() as u64,
        sticky_regions: pool.sticky.lock().len() as u64,
        incoming_allocations: pool.incoming.lock().iter().filter(|x| !x.done).count() as u64,
    }
}
