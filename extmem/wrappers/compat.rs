// SPDX-License-Identifier: GPL-2.0

//! Transitional: the raw-pointer entry point `devif/luo.rs` still calls.
//!
//! Remove this file once the LUO callbacks turn their `struct file *` into a `&File`
//! (`File::from_raw_file`) and call [`crate::devif::Allocation::of`].

use crate::devif::Allocation;
use kernel::bindings;
use kernel::fs::File;

/// Returns the allocation behind `file` if it is an allocation fd.
///
/// # Safety
///
/// `file` must be a valid file that the caller holds for the returned lifetime.
pub(crate) unsafe fn allocation_of<'a>(file: *mut bindings::file) -> Option<&'a Allocation> {
    // SAFETY: The caller guarantees that `file` is valid and held for `'a`. An `fdget_pos`
    // that skipped `f_pos_lock` can only be active on a thread whose file table is not
    // shared; LUO calls from the ioctl of `/dev/liveupdate` (or its own kexec and finish
    // paths), not from inside a read or write of this file.
    let file = unsafe { File::from_raw_file(file) };
    Allocation::of(file)
}
