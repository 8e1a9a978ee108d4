// SPDX-License-Identifier: GPL-2.0

//! An anonymous-inode file whose private data is a typed, owned Rust object.
//!
//! [`AnonFile::create`] makes a file with `anon_inode_getfile()`, the way a dma-heap makes a
//! dma-buf: the file owns a [`ForeignOwnable`] (here usually a `KBox`), which is dropped when
//! the last reference to the file goes. The file's operations come from an [`AnonFileOps`]
//! implementation, through an [`AnonFileVTable`] `static` that the implementation names, so
//! that [`AnonFile::data`] can tell its files from any other file by their `f_op`.
//!
//! `mmap` goes through the `mmap_prepare` file operation, which 7.3 expects of new code: the
//! operation describes the VMA before it exists ([`VmaDesc`]) instead of editing a live one.

use super::pfnmap::VmaDesc;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::fs::File;
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kernel::types::ForeignOwnable;

/// The borrowed form of the private data of the files of `T`.
pub(crate) type Borrowed<'a, T> = <<T as FileOps>::Ptr as ForeignOwnable>::Borrowed<'a>;

/// The operations of a kind of file whose private data is a typed, owned Rust object: an
/// anonymous-inode file ([`AnonFileOps`]) or the node of a character device
/// ([`super::chrdev::DevNodeOps`]).
pub(crate) trait FileOps: Sized + 'static {
    /// The private data each file owns; dropped when the file is released.
    type Ptr: ForeignOwnable + Send + Sync + 'static;

    /// Handles `unlocked_ioctl` (and `compat_ioctl`, with the argument converted by
    /// `compat_ptr_ioctl()`).
    fn ioctl(_data: Borrowed<'_, Self>, _cmd: u32, _arg: usize) -> Result<isize> {
        Err(ENOTTY)
    }

    /// Handles `mmap_prepare`: checks the request and describes the VMA in `desc`.
    ///
    /// Data borrowed from `data` may be handed to `desc` (e.g. as the handler of
    /// [`VmaDesc::set_pfnmap`]): every VMA holds a reference to the file, so the file's private
    /// data outlives it.
    fn mmap_prepare<'a>(_data: Borrowed<'a, Self>, _desc: &mut VmaDesc<'a>) -> Result {
        Err(ENODEV)
    }
}

/// The operations of a kind of anonymous-inode file.
pub(crate) trait AnonFileOps: FileOps {
    /// The name of the files, as `/proc/<pid>/fd` shows them (`anon_inode:<name>`).
    const NAME: &'static CStr;

    /// Returns the operations table of these files, a `static` made by
    /// [`AnonFileVTable::new`].
    fn vtable() -> &'static AnonFileVTable<Self>;
}

/// The callbacks of the files of `T` that work on the private data alone: `release`, `ioctl`
/// and `mmap_prepare`, for [`AnonFileVTable`] and the character devices of
/// [`super::chrdev`].
pub(super) struct FileFns<T: FileOps>(PhantomData<T>);

impl<T: FileOps> FileFns<T> {
    /// Returns the private data of `file`.
    ///
    /// # Safety
    ///
    /// `file`'s `private_data` must have come from `T::Ptr::into_foreign` and be taken back
    /// only by [`Self::release`], and the caller must hold a reference to `file` for `'a`.
    pub(super) unsafe fn data<'a>(file: *mut bindings::file) -> Borrowed<'a, T> {
        // SAFETY: As the caller guarantees, `private_data` came from `into_foreign` and only
        // `release` takes it back, which cannot run while the caller holds a reference.
        unsafe { T::Ptr::borrow((*file).private_data) }
    }

    /// `release`: drops the private data.
    ///
    /// # Safety
    ///
    /// Called by the VFS once, when the last reference to `file` is dropped; its
    /// `private_data` came from `T::Ptr::into_foreign`.
    pub(super) unsafe extern "C" fn release(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `private_data` came from `into_foreign`; this is the last use of the file, so
        // no borrow of it is left and nothing else takes it back.
        drop(unsafe { T::Ptr::from_foreign((*file).private_data) });
        0
    }

    /// `unlocked_ioctl`.
    ///
    /// # Safety
    ///
    /// Called by the VFS with a file that it holds, whose `private_data` came from
    /// `T::Ptr::into_foreign`.
    pub(super) unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: The VFS holds the file for the call; its private data is a `T::Ptr`.
        let data = unsafe { Self::data(file) };
        match T::ioctl(data, cmd, arg) {
            Ok(ret) => ret,
            // `c_long` is at least as wide as `c_int`.
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// `mmap_prepare`.
    ///
    /// # Safety
    ///
    /// Called by mm with a valid descriptor of a new mapping of a file whose `private_data`
    /// came from `T::Ptr::into_foreign`.
    pub(super) unsafe extern "C" fn mmap_prepare(desc: *mut bindings::vm_area_desc) -> c_int {
        // SAFETY: mm passes a valid descriptor whose `file` is the file being mapped, which
        // mm holds for the call.
        let file = unsafe { (*desc).file };
        // SAFETY: mm holds `file`, whose private data is a `T::Ptr`, for the call.
        let data = unsafe { Self::data(file) };
        // The lifetime given to `vma_desc` is the one of the file's private data, which lives
        // until `release`. Every VMA made from `desc` holds a reference to its `vm_file` (which
        // this module never changes): the file itself, or, when a stacking file system calls
        // this hook through `compat_vma_mmap()`, its own file, which holds ours. So the data
        // outlives them all.
        // SAFETY: `desc` is the descriptor of this `mmap_prepare` call, `vma_desc` is dropped
        // before it returns, and the lifetime is sound as said above.
        let mut vma_desc = unsafe { VmaDesc::from_raw(desc) };
        match T::mmap_prepare(data, &mut vma_desc) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

/// The `file_operations` of the files of `T`.
///
/// Each [`AnonFileOps`] implementation owns one, as a `static`, so that its address identifies
/// the files of `T`.
///
/// # Invariants
///
/// The table holds this module's callbacks for `T` and is never written after it is built.
#[repr(transparent)]
pub(crate) struct AnonFileVTable<T: AnonFileOps>(bindings::file_operations, PhantomData<T>);

// SAFETY: The table is never written after it is built (type invariant); it holds only
// function pointers and NULLs, which any thread may read.
unsafe impl<T: AnonFileOps> Sync for AnonFileVTable<T> {}

impl<T: AnonFileOps> AnonFileVTable<T> {
    /// Builds the table.
    pub(crate) const fn new() -> Self {
        // INVARIANT: The callbacks are this module's, for `T`.
        Self(
            bindings::file_operations {
                release: Some(FileFns::<T>::release),
                mmap_prepare: Some(FileFns::<T>::mmap_prepare),
                unlocked_ioctl: Some(FileFns::<T>::ioctl),
                #[cfg(CONFIG_COMPAT)]
                compat_ioctl: bindings::compat_ptr_ioctl,
                ..pin_init::zeroed()
            },
            PhantomData,
        )
    }
}

/// Anonymous-inode files of `T`.
pub(crate) struct AnonFile<T: AnonFileOps>(PhantomData<T>);

impl<T: AnonFileOps> AnonFile<T> {
    /// Creates a new file (`anon_inode_getfile()`) that owns `data`, opened with `flags`
    /// (`O_RDWR`, ...).
    ///
    /// With `area`, the file maps the memory of that pool area and gets the area's address
    /// space, where a memory failure finds its mappings ([`super::mf`]).
    ///
    /// On failure `data` is dropped.
    pub(crate) fn create(data: T::Ptr, flags: u32, area: Option<usize>) -> Result<ARef<File>> {
        let flags = c_int::try_from(flags)?;
        let private = data.into_foreign();
        // SAFETY: The name is a valid C string and the table a `static` (both live forever);
        // `private` is owned by the file from now on, which gives it back in `release`.
        let file = unsafe {
            bindings::anon_inode_getfile(T::NAME.as_char_ptr(), &T::vtable().0, private, flags)
        };
        match from_err_ptr(file) {
            Ok(file) => {
                if let Some(area) = area {
                    // SAFETY: The file was just made; no descriptor and no mapping has it yet.
                    unsafe { super::mf::attach(file, area) };
                }
                // SAFETY: `anon_inode_getfile()` returned a new reference to a valid (so
                // non-NULL) file, which `ARef` takes over; `File` is a transparent wrapper of
                // `struct file`.
                Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) })
            }
            Err(e) => {
                // SAFETY: No file took `private`, which came from `into_foreign` above.
                drop(unsafe { T::Ptr::from_foreign(private) });
                Err(e)
            }
        }
    }

    /// Returns the private data of `file`, or `None` if it is not a file of `T`.
    pub(crate) fn data(file: &File) -> Option<Borrowed<'_, T>> {
        let raw = file.as_ptr();
        // SAFETY: `file` is a valid file for the duration of the borrow; `f_op` is set when
        // the file is made and not changed afterwards.
        let f_op = unsafe { (*raw).f_op };
        if !core::ptr::eq(f_op, &T::vtable().0) {
            return None;
        }
        // SAFETY: The file has the table of `T`, which only `AnonFile::<T>::create` installs
        // (with private data from `into_foreign` that only `release` takes back), and the
        // borrow of `file` keeps a reference to it for the returned lifetime.
        Some(unsafe { FileFns::<T>::data(raw) })
    }
}
