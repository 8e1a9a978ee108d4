// SPDX-License-Identifier: GPL-2.0

//! Blobs of memory preserved across kexec by the kexec handover (KHO).
//!
//! C header: [`include/linux/kexec_handover.h`](srctree/include/linux/kexec_handover.h)
//!
//! A kernel preserves a blob with `kho_alloc_preserve()` and publishes it as a named KHO
//! subtree; the next kernel finds it with `kho_retrieve_subtree()`, reads it in place and gives
//! it back to the page allocator with `kho_restore_free()`. [`Preserved`] is the first kernel's
//! side, [`Restored`] the next kernel's: each owns its blob and frees it when dropped.

use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;

/// Returns true if KHO is enabled (`kho=on`): what is preserved now reaches the next kernel.
pub(crate) fn enabled() -> bool {
    // SAFETY: `kho_is_enabled()` only reads a flag set by an early parameter.
    unsafe { bindings::kho_is_enabled() }
}

/// A zeroed blob allocated with `kho_alloc_preserve()` for the next kernel, optionally published
/// as a named KHO subtree; unpublished and freed with `kho_unpreserve_free()` on drop.
///
/// # Invariants
///
/// - `ptr` points to `len` bytes that `kho_alloc_preserve()` returned, owned by this object:
///   nothing else in this kernel reads or writes them.
/// - `published` is true if and only if `kho_add_subtree()` succeeded for the blob (and it has
///   not been removed since).
pub(crate) struct Preserved {
    ptr: NonNull<u8>,
    len: usize,
    published: bool,
}

// SAFETY: The blob is ordinary kernel memory, not tied to a task; it may be used and freed from
// any task.
unsafe impl Send for Preserved {}

// SAFETY: `&Preserved` gives no access to the bytes; writing needs `&mut Preserved`.
unsafe impl Sync for Preserved {}

impl Preserved {
    /// Allocates `len` zeroed bytes and marks them preserved across kexec.
    ///
    /// Fails with `EINVAL` for zero bytes, `E2BIG` above the largest page order, `ENOMEM`, or
    /// the error of KHO. May sleep.
    pub(crate) fn alloc(len: usize) -> Result<Self> {
        // SAFETY: `kho_alloc_preserve()` accepts any size and returns a valid pointer or an
        // error pointer.
        let ptr = from_err_ptr(unsafe { bindings::kho_alloc_preserve(len) })?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: `kho_alloc_preserve()` returned `len` bytes that only we know of; nothing
        // is published yet.
        Ok(Self {
            ptr,
            len,
            published: false,
        })
    }

    /// Publishes the blob as the KHO subtree `name`, which the next kernel finds with
    /// `kho_retrieve_subtree()`.
    ///
    /// Fails with `EBUSY` if it is already published, `EEXIST` if another subtree has that
    /// name, or the error of KHO.
    pub(crate) fn publish(&mut self, name: &CStr) -> Result {
        if self.published {
            return Err(EBUSY);
        }
        // SAFETY: `name` is a valid C string, which KHO copies; the blob is `len` bytes from
        // `kho_alloc_preserve()` and stays allocated until `drop()` removes the subtree.
        to_result(unsafe {
            bindings::kho_add_subtree(name.as_char_ptr(), self.ptr.as_ptr().cast(), self.len)
        })?;
        // INVARIANT: `kho_add_subtree()` succeeded.
        self.published = true;
        Ok(())
    }

    /// Returns the contents of the blob for writing.
    pub(crate) fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `len` bytes that only this object accesses (type invariant),
        // and the slice borrows `self` mutably, so it is the only access while it lives.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Preserved {
    fn drop(&mut self) {
        if self.published {
            // SAFETY: The blob is published as a subtree (type invariant); this removes it
            // before the memory is freed below.
            unsafe { bindings::kho_remove_subtree(self.ptr.as_ptr().cast()) };
        }
        // SAFETY: The blob came from `kho_alloc_preserve()`, is owned by `self` (type
        // invariant) and is freed once; no subtree points to it any more.
        unsafe { bindings::kho_unpreserve_free(self.ptr.as_ptr().cast()) };
    }
}

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
