// SPDX-License-Identifier: GPL-2.0

//! The C half of the HugeTLB conversion (`hugetlb_conv/conv.c`) and its UAPI argument
//! structure, for `hugetlb_conv/glue.rs`.
//!
//! C declarations: `extmem/internal.h`, `include/uapi/linux/extmem.h`.

use crate::wrappers::uapi::UapiArgs;
use kernel::bindings;
use kernel::prelude::*;

/// The argument of `EXTMEM_IOC_HUGETLB`.
pub(crate) type HugetlbArgs = bindings::extmem_hugetlb_args;

// SAFETY: Integers only.
unsafe impl UapiArgs for HugetlbArgs {
    const SIZE_VER0: usize = bindings::EXTMEM_HUGETLB_ARGS_SIZE_VER0 as usize;
}

/// Returns how many HugeTLB pages of `page_size` bytes on node `nid` extmem backs.
///
/// The count is valid when the result is `Ok`.
pub(crate) fn count(nid: i32, page_size: u64) -> (Result, u64) {
    let mut count = 0u64;
    // SAFETY: `count` is a valid `u64` to write to; the function accepts any node and size.
    let rc = unsafe { bindings::extmem_hugetlb_count(nid, page_size, &mut count) };
    (kernel::error::to_result(rc), count)
}

/// Makes extmem back `target` HugeTLB pages of `page_size` bytes on node `nid`.
///
/// Returns the result and the count after the call, which is valid when the result is `Ok` or
/// `EBUSY` (pages in use stayed). May sleep.
pub(crate) fn set(nid: i32, page_size: u64, target: u64) -> (Result, u64) {
    let mut count = 0u64;
    // SAFETY: `count` is a valid `u64` to write to; the function accepts any node, size and
    // target, and may sleep, which our callers may.
    let rc = unsafe { bindings::extmem_hugetlb_set(nid, page_size, target, &mut count) };
    (kernel::error::to_result(rc), count)
}
