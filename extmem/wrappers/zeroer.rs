// SPDX-License-Identifier: GPL-2.0

//! The background zeroer threads of `extmem/zero.c`: started once, woken after a free.

use kernel::bindings;

/// What `sysfs.c` shows of an area's zeroing.
pub(crate) type ZeroStatsC = bindings::extmem_zero_stats;

/// Starts one zeroer kthread for each of the `n` areas, on the area's node. May sleep.
pub(crate) fn start(n: u32) {
    // SAFETY: `extmem_zeroers_start()` takes any count; it reads the boot records of areas
    // `0..n`, which exist for every `n` up to `extmem_nr_areas()` (the caller's pool size).
    unsafe { bindings::extmem_zeroers_start(n) }
}

/// Wakes area `idx`'s zeroer; a no-op before [`start`], for an index without one, or with
/// `extmem.prezero=0`. Callable in any context that may wake a task.
pub(crate) fn wake(idx: u32) {
    // SAFETY: `extmem_zeroer_wake()` checks `idx` against the zeroers it started.
    unsafe { bindings::extmem_zeroer_wake(idx) }
}

/// Returns true if the test-only knob `extmem.test_fail_map` (`CONFIG_EXTMEM_TEST_KNOBS`)
/// names area `idx`: making its write-back mapping is to fail. Always false without the knob.
pub(crate) fn test_fail_map(idx: usize) -> bool {
    let Ok(idx) = u32::try_from(idx) else {
        return false;
    };
    // SAFETY: `extmem_test_fail_map()` accepts any index and only reads an `int` parameter.
    unsafe { bindings::extmem_test_fail_map(idx) }
}
