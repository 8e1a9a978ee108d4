// SPDX-License-Identifier: GPL-2.0

//! The entry points extmem's C calls with raw pointers (declared in `extmem/internal.h`), and
//! the C structures of that interface.
//!
//! Each turns the pointers into slices under the contract `internal.h` states and calls the
//! safe Rust that does the work: the `extmem=` parser ([`crate::boot`]) and the handed-over
//! state ([`crate::kho`]). Entry points without pointers are `#[export]`ed next to their logic.

use crate::param::Rules;
use kernel::bindings;
use kernel::fs::File;
use kernel::prelude::*;

/// What `sysfs.c` shows of an area's allocator.
pub(crate) type AreaStats = bindings::extmem_area_stats;

/// What `sysfs.c` shows of how an area became ready.
pub(crate) type AreaReady = bindings::extmem_area_ready;

/// What `sysfs.c` shows of the kexec handover.
pub(crate) type HandoverStats = bindings::extmem_handover_stats;

/// An area to carve, as `boot.c` takes it: an accepted `extmem=` entry or an area of the
/// handed-over state.
pub(crate) type Request = bindings::extmem_request;

/// Parses an `extmem=` string for `boot.c`; see `internal.h` and [`crate::boot::parse_into`].
///
/// # Safety
///
/// - `s` must point to `len` readable bytes.
/// - `out` must point to `max` writable `struct extmem_request`s that nothing else accesses
///   during the call.
#[export]
pub(crate) unsafe extern "C" fn extmem_parse_param(
    s: *const c_char,
    len: usize,
    max_nodes: u32,
    granule: u64,
    out: *mut bindings::extmem_request,
    max: u32,
) -> u32 {
    // SAFETY: The caller guarantees that `s` points to `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(s.cast::<u8>(), len) };
    let Ok(max) = usize::try_from(max) else {
        return 0;
    };
    // SAFETY: The caller guarantees that `out` points to `max` writable requests that only
    // this call accesses.
    let out = unsafe { core::slice::from_raw_parts_mut(out, max) };
    crate::boot::parse_into(bytes, &Rules { max_nodes, granule }, out, true)
}

/// Validates the handed-over state for `boot.c` and returns its areas; see `internal.h` and
/// [`crate::kho::handover_areas`].
///
/// # Safety
///
/// - `blob` must point to `len` readable bytes.
/// - `out` must point to `max` writable `struct extmem_request`s that nothing else accesses
///   during the call.
#[export]
pub(crate) unsafe extern "C" fn extmem_handover_areas(
    blob: *const c_void,
    len: usize,
    max_nodes: u32,
    granule: u64,
    out: *mut bindings::extmem_request,
    max: u32,
) -> c_int {
    // SAFETY: The caller guarantees `blob` points to `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(blob.cast::<u8>(), len) };
    // SAFETY: The caller guarantees `out` points to `max` writable requests for us alone.
    let out = unsafe { core::slice::from_raw_parts_mut(out, max as usize) };
    crate::kho::handover_areas(bytes, max_nodes, granule, out)
}

/// Validates the previous kernel's area record for `boot.c` when it rejected the state, and
/// returns its areas; see `internal.h` and [`crate::kho::recorded_areas`].
///
/// # Safety
///
/// - `blob` must point to `len` readable bytes.
/// - `out` must point to `max` writable `struct extmem_request`s that nothing else accesses
///   during the call.
#[export]
pub(crate) unsafe extern "C" fn extmem_handover_area_record(
    blob: *const c_void,
    len: usize,
    max_nodes: u32,
    granule: u64,
    out: *mut bindings::extmem_request,
    max: u32,
) -> c_int {
    // SAFETY: The caller guarantees `blob` points to `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(blob.cast::<u8>(), len) };
    // SAFETY: The caller guarantees `out` points to `max` writable requests for us alone.
    let out = unsafe { core::slice::from_raw_parts_mut(out, max as usize) };
    crate::kho::recorded_areas(bytes, max_nodes, granule, out)
}

/// Stores the physical range of the allocation behind a VMA of extmem in `phys` and `len`,
/// for `extmem/poison.c`'s `pfn_to_vma_pgoff()`; see `internal.h`.
///
/// # Safety
///
/// - `allocation` must be the `vm_private_data` of a VMA that
///   [`super::pfnmap::VmaDesc::set_pfnmap`] set up for an [`crate::devif::Allocation`], and the
///   VMA must stay linked (which keeps its file, and so the allocation, alive) for the call.
/// - `phys` and `len` must be valid for writes.
#[export]
pub(crate) unsafe extern "C" fn extmem_vma_allocation_range(
    allocation: *const c_void,
    phys: *mut u64,
    len: *mut u64,
) {
    // SAFETY: The caller guarantees `allocation` is a live `Allocation`.
    let alloc = unsafe { &*allocation.cast::<crate::devif::Allocation>() };
    // SAFETY: The caller guarantees both are valid for writes.
    unsafe {
        *phys = alloc.phys();
        *len = alloc.len;
    }
}

/// Binds the allocation fd `file` to a new guest_memfd of `size` bytes; see
/// `include/linux/extmem.h` and [`crate::gmem::bind`].
///
/// # Safety
///
/// `file` must be a valid file that the caller holds for the duration of the call.
#[export]
pub(crate) unsafe extern "C" fn extmem_gmem_bind(file: *mut bindings::file, size: u64) -> c_int {
    // SAFETY: The caller holds `file` for the call; its position is not used.
    let file = unsafe { File::from_raw_file(file) };
    match crate::gmem::bind(file, size) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// KVM's function for a memory failure in a guest_memfd's memory, with the guest_memfd's
/// inode, as `extmem_gmem_attach()` names them.
///
/// # Invariants
///
/// `inode` is a valid guest_memfd inode and `error` may be called with it from process context
/// until `extmem_gmem_unbind()` is called for the allocation it was attached to. The only
/// holder, [`crate::gmem`], drops it in that call, under the lock every call of
/// [`GmemHook::invalidate`] holds.
pub(crate) struct GmemHook {
    inode: core::ptr::NonNull<bindings::inode>,
    error: GmemErrorFn,
}

/// `void (*error)(struct inode *inode, pgoff_t start, pgoff_t end)` of `extmem_gmem_attach()`.
type GmemErrorFn =
    unsafe extern "C" fn(*mut bindings::inode, kernel::ffi::c_ulong, kernel::ffi::c_ulong);

// SAFETY: A pointer and a function; KVM allows the call from any task (process context).
unsafe impl Send for GmemHook {}

impl GmemHook {
    /// Has KVM drop every mapping the guest has of pages `[start, end)` of the allocation.
    /// May sleep.
    pub(crate) fn invalidate(&self, start: u64, end: u64) {
        let (Ok(start), Ok(end)) = (
            kernel::ffi::c_ulong::try_from(start),
            kernel::ffi::c_ulong::try_from(end),
        ) else {
            return;
        };
        // SAFETY: By the type invariant the inode is valid and `error` may be called with it
        // (the allocation has not been unbound: the holder would have dropped `self`).
        unsafe { (self.error)(self.inode.as_ptr(), start, end) }
    }
}

/// Names the guest_memfd inode bound to `file` and KVM's function for a memory failure in
/// it; see `include/linux/extmem.h` and [`crate::gmem::attach`].
///
/// # Safety
///
/// As for [`extmem_gmem_bind`]; `file` must have been bound by [`extmem_gmem_bind`], `inode`
/// must be the guest_memfd's inode and `error` callable with it from process context until
/// [`extmem_gmem_unbind`] is called for `file`.
#[export]
pub(crate) unsafe extern "C" fn extmem_gmem_attach(
    file: *mut bindings::file,
    inode: *mut bindings::inode,
    error: Option<GmemErrorFn>,
) {
    // SAFETY: As in `extmem_gmem_bind`.
    let file = unsafe { File::from_raw_file(file) };
    let (Some(inode), Some(error)) = (core::ptr::NonNull::new(inode), error) else {
        pr_err!("guest_memfd: attached without an inode or a function\n");
        return;
    };
    // INVARIANT: The caller guarantees both stay usable until the unbind.
    crate::gmem::attach(file, GmemHook { inode, error });
}

/// The guest_memfd bound to `file` is gone; see [`crate::gmem::unbind`].
///
/// # Safety
///
/// As for [`extmem_gmem_bind`].
#[export]
pub(crate) unsafe extern "C" fn extmem_gmem_unbind(file: *mut bindings::file) {
    // SAFETY: As in `extmem_gmem_bind`.
    crate::gmem::unbind(unsafe { File::from_raw_file(file) });
}

/// Stores the frame of page `index` of `file` in `*pfn` and the order of the largest block
/// KVM may map around it in `*order`; see [`crate::gmem::pfn`].
///
/// # Safety
///
/// As for [`extmem_gmem_bind`]; `pfn` and `order` must be valid for writes.
#[export]
pub(crate) unsafe extern "C" fn extmem_gmem_pfn(
    file: *mut bindings::file,
    index: u64,
    pfn: *mut u64,
    order: *mut c_int,
) -> c_int {
    // SAFETY: As in `extmem_gmem_bind`.
    let file = unsafe { File::from_raw_file(file) };
    match crate::gmem::pfn(file, index) {
        Ok((frame, max)) => {
            // SAFETY: The caller guarantees both are valid for writes.
            unsafe {
                *pfn = frame;
                *order = c_int::try_from(max).unwrap_or(0);
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Zeroes pages `[start, end)` of `file` and gives them back; see
/// [`crate::gmem::punch_hole`].
///
/// # Safety
///
/// As for [`extmem_gmem_bind`].
#[export]
pub(crate) unsafe extern "C" fn extmem_gmem_punch_hole(
    file: *mut bindings::file,
    start: u64,
    end: u64,
) -> c_int {
    // SAFETY: As in `extmem_gmem_bind`.
    let file = unsafe { File::from_raw_file(file) };
    match crate::gmem::punch_hole(file, start, end) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
