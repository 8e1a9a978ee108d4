// SPDX-License-Identifier: GPL-2.0

//! An owned `memremap()` mapping of physical memory that is not System RAM.
//!
//! C header: [`include/linux/io.h`](srctree/include/linux/io.h)
//!
//! The kernel reaches the memory only through the mapping's methods, which copy or zero a
//! byte range after checking it lies inside the mapping; no Rust reference into the memory is
//! ever created. Like [`kernel::io::Io`], the mapping is memory other agents (user mappings of
//! the same range, devices) may access at the same time: the methods take `&self`, and callers
//! decide who owns which range.

use core::ptr::NonNull;
use kernel::bindings;
use kernel::prelude::*;

/// A write-back `memremap()` mapping, unmapped on drop.
///
/// # Invariants
///
/// `ptr` is the start of a live `memremap()` mapping of `len` bytes that this object owns:
/// nothing else unmaps it.
pub(crate) struct MemRemap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: The mapping is not tied to the task that created it; it may be used and unmapped
// from any task.
unsafe impl Send for MemRemap {}

// SAFETY: All methods taking `&self` access the memory through raw pointers only (never
// through Rust references), within bounds checked against `len`.
unsafe impl Sync for MemRemap {}

impl MemRemap {
    /// Maps `len` bytes of physical memory at `phys` write-back (`MEMREMAP_WB`).
    ///
    /// For a range that is not System RAM this creates a new mapping and reserves the
    /// write-back memory type for the range with PAT. Fails with `ENOMEM` if the range cannot
    /// be mapped, `EINVAL` for an empty range. May sleep.
    pub(crate) fn write_back(phys: u64, len: usize) -> Result<Self> {
        if len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `memremap()` accepts any range and flags; it returns NULL when it cannot map
        // the range with the requested type.
        let ptr = unsafe { bindings::memremap(phys, len, bindings::MEMREMAP_WB as usize) };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: `memremap()` returned a new mapping of `len` bytes, which we own.
        Ok(Self { ptr, len })
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
    /// Fails with `ERANGE` if the range is not inside the mapping. May sleep.
    pub(crate) fn zero(&self, offset: usize, count: usize) -> Result {
        let ptr = self.range(offset, count)?;
        // SAFETY: `range()` checked that `count` bytes at `ptr` lie in the mapping, which is
        // live (type invariant); `extmem_clear()` only writes them.
        unsafe { bindings::extmem_clear(ptr.cast(), count) };
        Ok(())
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
