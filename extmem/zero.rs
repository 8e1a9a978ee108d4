// SPDX-License-Identifier: GPL-2.0

//! The background zeroers' entry points for `extmem/zero.c`, and their figures for `sysfs.c`.
//!
//! The zeroing itself is [`crate::pool::Area::zero_step`]; the threads, their sleeping and
//! waking and the `extmem.prezero` parameter are C (`extmem/zero.c`), since 7.3 has no kthread
//! abstraction in Rust.

use crate::pool::{self, Pool};
use crate::wrappers::zeroer::{self, ZeroStatsC};
use kernel::prelude::*;

/// Starts the zeroers of the pool's areas.
pub(crate) fn start(pool: &Pool) {
    if let Ok(n) = u32::try_from(pool.areas().len()) {
        zeroer::start(n);
    }
}

/// Wakes area `idx`'s zeroer: it has dirty memory.
pub(crate) fn wake(idx: usize) {
    if let Ok(idx) = u32::try_from(idx) {
        zeroer::wake(idx);
    }
}

/// Maps area `idx` write-back ([`crate::pool::Area::map_now`]); see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_area_map(idx: u32) {
    if let Some(a) = pool::get().and_then(|p| p.areas().get(idx as usize)) {
        a.map_now();
    }
}

/// One step of area `idx`'s zeroer; see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_zero_step(idx: u32) -> bool {
    pool::get()
        .and_then(|p| p.areas().get(idx as usize))
        .is_some_and(|a| a.zero_step())
}

/// Returns true if area `idx` has dirty free memory; see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_zero_pending(idx: u32) -> bool {
    pool::get()
        .and_then(|p| p.areas().get(idx as usize))
        .is_some_and(|a| a.zero_pending())
}

/// Returns area `idx`'s zeroing figures for `sysfs.c`; see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_area_zero_stats(idx: u32) -> ZeroStatsC {
    let Some(area) = pool::get().and_then(|p| p.areas().get(idx as usize)) else {
        return ZeroStatsC {
            ready: false,
            clean_bytes: 0,
            dirty_bytes: 0,
            zeroed_bytes: 0,
            zeroing_ns: 0,
            sync_zeroed_bytes: 0,
            sync_zeroing_ns: 0,
        };
    };
    let z = area.zero_stats();
    ZeroStatsC {
        ready: true,
        clean_bytes: z.clean,
        dirty_bytes: z.dirty,
        zeroed_bytes: z.zeroed,
        zeroing_ns: z.zeroing_ns,
        sync_zeroed_bytes: z.sync_zeroed,
        sync_zeroing_ns: z.sync_zeroing_ns,
    }
}
