// SPDX-License-Identifier: GPL-2.0

//! Blobs of memory preserved across kexec by the kexec handover (KHO).
//!
//! C header: [`include/linux/kexec_handover.h`](srctree/include/linux/kexec_handover.h)
//!
//! A kernel preserves a blob with `kho_alloc_preserve()` and publishes it as a named KHO
//! subtree; the next kernel finds it with `kho_retrieve_subtree()`, reads it in place and gives
//! it back to the page allocator with `kho_restore_free()`. [`Restored`] is the next kernel's
//! side: it owns such a blob and frees it when dropped.

use core::ptr::NonNull;
use kernel::bindings;

/// A blob the previous kernel preserved with `kho_alloc_preserve()`, read in place in this one
/// and freed with `kho_restore_free()` on drop.
///
/// # Invariants
///
/// `ptr` points to `len` bytes of a blob that the previous kernel allocated with
/// `kho_alloc_preserve()` and KHO restored in this kernel (so it is mapped and reserved). The
/// object owns it: nothing else frees or writes it while the object lives.
pub(crate) struct Restored {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: The blob is ordinary kernel memory, not tied to a task; it may be read and freed
// from any task.
unsafe impl Send for Restored {}

// SAFETY: `&Restored` only gives shared, read-only access to the bytes.
unsafe impl Sync for Restored {}

impl Restored {
    /// Takes ownership of a restored blob.
    ///
    /// # Safety
    ///
    /// `ptr` must point to the start of `len` bytes that the previous kernel allocated with
    /// `kho_alloc_preserve()` and that are restored and mapped in this kernel. The caller hands
    /// them over: nothing else may free or write them afterwards.
    pub(crate) unsafe fn from_raw(ptr: NonNull<u8>, len: usize) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self { ptr, len }
    }

    /// Returns the contents of the blob.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` mapped bytes that nothing writes while `self` lives
        // (type invariant); the slice borrows `self`, so it cannot outlive the blob.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        // SAFETY: The blob came from `kho_alloc_preserve()` in the previous kernel and is owned
        // by `self` (type invariant), so it is freed once, and no borrow of it outlives `self`.
        unsafe { bindings::kho_restore_free(self.ptr.as_ptr().cast()) };
    }
}
