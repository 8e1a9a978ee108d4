// SPDX-License-Identifier: GPL-2.0

//! The Rust side of the HugeTLB conversion: ranges from the pool, and `EXTMEM_IOC_HUGETLB`.
//!
//! The conversion itself (memory hotplug, building folios, the HugeTLB pool) is C, in
//! `hugetlb_conv/conv.c`, because it calls core-mm internals that have no Rust abstraction. It
//! takes the ranges it hot-plugs from the node's areas through [`extmem_conv_alloc`] and gives
//! them back through [`extmem_conv_free`], so a converted range is simply an allocation of its
//! area: `/dev/extmem` cannot allocate it, and the area's free bytes drop while it is
//! converted.

use crate::devif::capable_sys_admin;
use crate::pool::{self, UNIT};
use crate::wrappers::hugetlb_conv::{self, HugetlbArgs};
use crate::wrappers::uapi::{read_args, write_args};
use kernel::prelude::*;

/// Allocates `len` bytes aligned to `align` bytes (both multiples of the page size, `align` a
/// power of two) from an area of node `nid` for `conv.c`.
///
/// Returns the physical address, `-ENODEV` if the node has no area, `-ENOMEM` if no area has
/// such a free range, or `-EINVAL` for a bad length or alignment. See `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_conv_alloc(nid: c_int, len: u64, align: u64) -> i64 {
    if len == 0 || len % UNIT != 0 || !align.is_power_of_two() || align < UNIT {
        return EINVAL.to_errno().into();
    }
    let Some(pool) = pool::get() else {
        return ENODEV.to_errno().into();
    };
    let mut has_area = false;
    for area in pool.areas().iter().filter(|a| a.nid == nid) {
        has_area = true;
        if let Ok(offset) = area.alloc(len, align) {
            // Physical addresses are far below `i64::MAX`; should one not be, it cannot be
            // returned.
            let Ok(phys) = i64::try_from(area.base + offset) else {
                area.free(offset, len);
                return ERANGE.to_errno().into();
            };
            return phys;
        }
    }
    if has_area {
        ENOMEM.to_errno().into()
    } else {
        ENODEV.to_errno().into()
    }
}

/// Frees `len` bytes at physical address `phys`, a range [`extmem_conv_alloc`] returned.
#[export]
pub(crate) extern "C" fn extmem_conv_free(phys: u64, len: u64) {
    let area = pool::get().and_then(|pool| {
        pool.areas()
            .iter()
            .find(|a| phys >= a.base && phys - a.base < a.size)
    });
    match area {
        Some(area) => area.free(phys - area.base, len),
        None => pr_err!("freeing {:#x}+{:#x}: not in any area\n", phys, len),
    }
}

/// `EXTMEM_IOC_HUGETLB`: sets or reports how many HugeTLB pages of a size extmem backs on a
/// node.
pub(crate) fn ioctl_hugetlb(arg: usize) -> Result<isize> {
    if !capable_sys_admin() {
        return Err(EPERM);
    }
    let (mut args, size) = read_args::<HugetlbArgs>(arg)?;
    if args.flags != 0 || args.reserved0 != 0 || args.reserved != [0; 2] {
        return Err(EINVAL);
    }
    // `EXTMEM_HUGETLB_QUERY` is `~0ULL`.
    let (err, count) = if args.target == u64::MAX {
        hugetlb_conv::count(args.node, args.page_size)
    } else {
        hugetlb_conv::set(args.node, args.page_size, args.target)
    };
    if err.is_ok() || err == Err(EBUSY) {
        args.count = count;
        write_args(arg, &args, size)?;
    }
    err.map(|()| 0)
}
