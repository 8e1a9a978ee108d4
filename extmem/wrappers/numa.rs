// SPDX-License-Identifier: GPL-2.0

//! NUMA node numbers.

use kernel::bindings;

/// Returns `nr_node_ids`: one more than the highest possible node number.
#[cfg(CONFIG_NUMA)]
pub(crate) fn nr_node_ids() -> u32 {
    // SAFETY: `nr_node_ids` is set while the kernel boots, before any module or initcall
    // code that calls this runs, and never changes afterwards.
    unsafe { bindings::nr_node_ids }
}

/// Returns `nr_node_ids`, which is 1 without `CONFIG_NUMA`.
#[cfg(not(CONFIG_NUMA))]
pub(crate) fn nr_node_ids() -> u32 {
    1
}
