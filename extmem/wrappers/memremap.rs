// SPDX-License-Identifier: GPL-2.0

//! An owned write-back mapping of physical memory that is not System RAM, made with
//! `ioremap_encrypted()` (so that it has the memory-encryption attribute user and KVM mappings
//! of the same frames have) and released with `memunmap()`.
//!
//! C header: [`include/linux/io.h`](srctree/include/linux/io.h)
//!
//! The kernel reaches the memory only through the mapping's methods, which copy or zero a
//! byte range after checking it lies inside the mapping; no Rust reference into the memory is
//! ever created. Like [`kernel::io::Io`], the mapping is memory other agents (user mappings of
//! the same range, devices) may access at the same time: the methods take `&self`, and callers
//! decide who owns which range.

use super::pfnmap::Pfn;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

/// A write-back `memremap()` mapping, unmapped on drop.
///
/// # Invariants
///
/// `ptr` is the start of a live `memremap()` mapping of `len` bytes at physical address `phys`
/// that this object owns: nothing else unmaps it. When it was made, no byte of the range was
/// System RAM (memory of the page allocator), so the frames of the range are not the kernel's
/// own memory; [`MemRemap::pfn`] relies on that.
pub(crate) struct MemRemap {
    ptr: NonNull<u8>,
    phys: u64,
    len: usize,
}

// SAFETY: The mapping is not tied to the task that created it; it may be used and unmapped
// from any task.
unsafe impl Send for MemRemap {}

// SAFETY: All methods taking `&self` access the memory through raw pointers only (never
// through Rust references), within bounds checked against `len`.
unsafe impl Sync for MemRemap {}

impl MemRemap {
    /// Maps `len` bytes of physical memory at `phys` write-back, with the memory-encryption
    /// attribute user mappings and KVM give the same frames (see `extmem_map_wb()`).
    ///
    /// Creates a new mapping and reserves the write-back memory type for the range with PAT.
    /// Fails with `EINVAL` for an empty range or one that holds any busy System RAM (that
    /// memory belongs to the page allocator), `ENOMEM` if the range cannot be mapped. May
    /// sleep.
    pub(crate) fn write_back(phys: u64, len: usize) -> Result<Self> {
        if len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `extmem_range_has_ram()` only reads the resource tree under its lock; any
        // range is a valid argument.
        if unsafe { bindings::extmem_range_has_ram(phys, len) } {
            return Err(EINVAL);
        }
        // SAFETY: `extmem_map_wb()` (`ioremap_encrypted()`) accepts any range; it returns NULL
        // when it cannot map the range write-back.
        let ptr = unsafe { bindings::extmem_map_wb(phys, len) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: `extmem_map_wb()` returned a new mapping of `len` bytes at `phys`, which
        // we own (`memunmap()` unmaps it), and the range was checked above to hold no System
        // RAM.
        Ok(Self { ptr, phys, len })
    }

    /// Returns the page frame of byte `offset` of the mapping, or `None` if `offset` is not in
    /// the mapping.
    ///
    /// This is the only way to get a [`Pfn`] to insert into a user mapping: a frame of memory
    /// that is not System RAM and whose write-back memory type this mapping holds.
    pub(crate) fn pfn(&self, offset: usize) -> Option<Pfn> {
        if offset >= self.len {
            return None;
        }
        let offset = u64::try_from(offset).ok()?;
        Pfn::from_phys(self.phys.checked_add(offset)?)
    }

    /// Returns the length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Returns a pointer to `count` bytes at `offset`, or `ERANGE` if they do not all lie in the
    /// mapping.
    fn range(&self, offset: usize, count: usize) -> Result<*mut u8> {
        match offset.checked_add(count) {
            Some(end) if end <= self.len => {
                // The sum is in bounds of the mapping, so the pointer is too.
                Ok(self.ptr.as_ptr().wrapping_add(offset))
            }
            _ => Err(ERANGE),
        }
    }

    /// Zeroes `count` bytes at `offset`, rescheduling between 2 MiB chunks.
    ///
    /// Fails with `ERANGE` if the range is not inside the mapping, `EINTR` (with part of it
    /// zeroed) if the task gets a fatal signal. May sleep.
    pub(crate) fn zero(&self, offset: usize, count: usize) -> Result {
        let ptr = self.range(offset, count)?;
        // SAFETY: `range()` checked that `count` bytes at `ptr` lie in the mapping, which is
        // live (type invariant); `extmem_clear()` only writes them.
        to_result(unsafe { bindings::extmem_clear(ptr.cast(), count) })
    }

    /// Zeroes `count` bytes at `offset`, rescheduling between 2 MiB chunks, whatever signals
    /// the task has (for the background zeroer and for ranges that must be clean before they
    /// are freed).
    ///
    /// Fails with `ERANGE` if the range is not inside the mapping. May sleep.
    pub(crate) fn zero_all(&self, offset: usize, count: usize) -> Result {
        let ptr = self.range(offset, count)?;
        // SAFETY: `range()` checked that `count` bytes at `ptr` lie in the mapping, which is
        // live (type invariant); `extmem_zero_range()` only writes them.
        unsafe { bindings::extmem_zero_range(ptr.cast(), count) };
        Ok(())
    }

    /// Zeroes `count` bytes at `offset` without sleeping or looking at signals, for a caller
    /// that holds a spinlock (a drain of the per-CPU magazines when the dirty set is full).
    ///
    /// Fails with `ERANGE` if the range is not inside the mapping.
    pub(crate) fn zero_atomic(&self, offset: usize, count: usize) -> Result {
        let ptr = self.range(offset, count)?;
        // SAFETY: `range()` checked that `count` bytes at `ptr` lie in the mapping, which is
        // live (type invariant), and no Rust reference points into the mapping.
        unsafe { core::ptr::write_bytes(ptr, 0, count) };
        Ok(())
    }

    /// Returns the memory-encryption bits (`_PAGE_ENC`) of the kernel page-table entry that
    /// maps the start of the mapping.
    #[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
    pub(crate) fn encryption_bits(&self) -> u64 {
        // SAFETY: `extmem_kernel_map_enc()` only reads the kernel page table at an address of
        // a live mapping (type invariant).
        unsafe { bindings::extmem_kernel_map_enc(self.ptr.as_ptr().cast()) }
    }

    /// Copies `src` into the mapping at `offset`.
    ///
    /// Fails with `ERANGE` if the range is not inside the mapping.
    pub(crate) fn write(&self, offset: usize, src: &[u8]) -> Result {
        let ptr = self.range(offset, src.len())?;
        // SAFETY: `range()` checked that `src.len()` bytes at `ptr` lie in the mapping, which is
        // live (type invariant), and no Rust reference points into the mapping, so it cannot
        // overlap `src`.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), ptr, src.len()) };
        Ok(())
    }

    /// Copies bytes at `offset` of the mapping into `dst`.
    ///
    /// Fails with `ERANGE` if the range is not inside the mapping.
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) -> Result {
        let ptr = self.range(offset, dst.len())?;
        // SAFETY: As in `write()`, with `dst` as the destination.
        unsafe { core::ptr::copy_nonoverlapping(ptr, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }
}

impl Drop for MemRemap {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a live mapping that we own (type invariant) and is unmapped once.
        unsafe { bindings::memunmap(self.ptr.as_ptr().cast()) };
    }
}

/// Returns the memory-encryption bits (`_PAGE_ENC`) of the protection a shared read-write user
/// mapping gets (`vm_get_page_prot()`), which extmem's allocation mappings use.
#[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
pub(crate) fn user_encryption_bits() -> u64 {
    // SAFETY: `extmem_user_prot_enc()` only computes a protection value.
    unsafe { bindings::extmem_user_prot_enc() }
}
