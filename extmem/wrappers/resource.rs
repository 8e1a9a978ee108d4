// SPDX-License-Identifier: GPL-2.0

//! Questions about the physical address space the resource tree answers.

use kernel::bindings;
use kernel::page::PAGE_SHIFT;

/// Returns true if the page at physical address `phys` is "System RAM" in the resource tree
/// (`/proc/iomem`), as `page_is_ram()` decides.
///
/// extmem releases the "System RAM" resource of each area it carves out, so no byte of an area
/// may answer true here once the pool is up.
#[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
pub(crate) fn page_is_ram(phys: u64) -> bool {
    let Ok(pfn) = usize::try_from(phys >> PAGE_SHIFT) else {
        return false;
    };
    // SAFETY: `page_is_ram()` takes the resource lock and only reads the resource tree; any pfn
    // is a valid argument.
    unsafe { bindings::page_is_ram(pfn) != 0 }
}
