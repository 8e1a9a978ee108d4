// SPDX-License-Identifier: GPL-2.0

//! A character device of the class `extmem_region`, with its own devtmpfs node, whose files
//! hold typed Rust private data.
//!
//! The driver-core half is C (`devif/region.c`: the class, the device type with its
//! `devnode()`, the cdev, the sysfs attributes). A [`DevNode`] owns one such device and, through
//! it, one [`Arc`] of the data its files are opened from: each `open` of the node hands a new
//! [`FileOps::Ptr`] made from that data to the file ([`DevNodeOps::open`]), and from then on the
//! file works as an anonymous-inode file of [`super::anon_file`] does (same `release`, `ioctl`
//! and `mmap_prepare`). Dropping the [`DevNode`] removes the device and its node; the device
//! drops its [`Arc`] when nothing holds the device any more (an `open` under way holds it).

use super::anon_file::{Borrowed, FileFns, FileOps};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::ForeignOwnable;

/// What `/sys/class/extmem_region/<name>/` shows of a device, and the owner, group and mode of
/// its node (`struct extmem_region_node`).
pub(crate) type NodeInfo = bindings::extmem_region_node;

/// The operations of the files of a kind of device node.
pub(crate) trait DevNodeOps: FileOps {
    /// What the device holds and each `open` makes a file's private data from.
    type Data: Send + Sync + 'static;

    /// Returns the private data of a new file of the node, or the error `open()` fails with.
    fn open(data: &Arc<Self::Data>) -> Result<Self::Ptr>;

    /// Returns the size in bytes that `lseek(SEEK_END)` seeks to.
    fn size(data: Borrowed<'_, Self>) -> u64;

    /// Returns the pool area whose memory the files map, if any: they then get its address
    /// space, where a memory failure finds their mappings ([`super::mf`]).
    fn area(_data: &Arc<Self::Data>) -> Option<usize> {
        None
    }

    /// Returns the operations table of the nodes, a `static` made by [`DevNodeVTable::new`].
    fn vtable() -> &'static DevNodeVTable<Self>;
}

/// The `file_operations` of the nodes of `T`.
///
/// # Invariants
///
/// The table holds this module's callbacks for `T` and is never written after it is built.
#[repr(transparent)]
pub(crate) struct DevNodeVTable<T: DevNodeOps>(bindings::file_operations, PhantomData<T>);

// SAFETY: The table is never written after it is built (type invariant); it holds only
// function pointers and NULLs, which any thread may read.
unsafe impl<T: DevNodeOps> Sync for DevNodeVTable<T> {}

impl<T: DevNodeOps> DevNodeVTable<T> {
    /// Builds the table.
    pub(crate) const fn new() -> Self {
        // INVARIANT: The callbacks are this module's and `FileFns`', for `T`.
        Self(
            bindings::file_operations {
                open: Some(Self::open),
                llseek: Some(Self::llseek),
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

    /// `open`: gives the file its private data, made from the device's.
    ///
    /// # Safety
    ///
    /// Called by `chrdev_open()` with the inode of a node of a device that [`DevNode::<T>`]
    /// created (whose cdev it holds a reference to for the call) and the new file.
    unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The inode is a node of one of our devices, which the VFS keeps alive (it
        // holds the cdev, which holds the device) for the call.
        let raw = unsafe { bindings::extmem_region_dev_data(inode) };
        // SAFETY: The device's data came from `Arc::<T::Data>::into_foreign` in
        // `DevNode::create` and is given back only when the device is freed, which cannot
        // happen while the VFS holds it.
        let data: Arc<T::Data> = unsafe { Arc::<T::Data>::borrow(raw) }.into();
        match T::open(&data) {
            Ok(ptr) => {
                // SAFETY: `file` is the file being opened, which nothing else uses yet; its
                // `private_data` is ours, taken back by `FileFns::release`.
                unsafe { (*file).private_data = ptr.into_foreign() };
                if let Some(area) = T::area(&data) {
                    // SAFETY: The file is being opened: no descriptor and no mapping has it.
                    unsafe { super::mf::attach(file, area) };
                }
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// `llseek`: a file of [`DevNodeOps::size`] bytes.
    ///
    /// # Safety
    ///
    /// Called by the VFS with an open file of a node of `T`, which it holds.
    unsafe extern "C" fn llseek(
        file: *mut bindings::file,
        offset: bindings::loff_t,
        whence: c_int,
    ) -> bindings::loff_t {
        // SAFETY: The file is open, so `open` set its private data from `into_foreign`, and
        // the VFS holds it for the call.
        let data = unsafe { FileFns::<T>::data(file) };
        let size = bindings::loff_t::try_from(T::size(data)).unwrap_or(bindings::loff_t::MAX);
        // SAFETY: `fixed_size_llseek()` only updates `f_pos` of the file the VFS holds.
        unsafe { bindings::fixed_size_llseek(file, offset, whence, size) }
    }
}

/// Maps `uid` and `gid` of the current task's user namespace to the initial one, for
/// [`NodeInfo`]; `EINVAL` if either has no mapping there.
pub(crate) fn ids_from_user(uid: u32, gid: u32) -> Result<(u32, u32)> {
    let (mut kuid, mut kgid) = (0u32, 0u32);
    // SAFETY: The helper reads the current task's credentials and writes the two integers.
    kernel::error::to_result(unsafe {
        bindings::extmem_region_ids(uid, gid, &mut kuid, &mut kgid)
    })?;
    Ok((kuid, kgid))
}

/// A character device of the class `extmem_region` and its node, whose files are of `T`.
///
/// # Invariants
///
/// `rd` was returned by `extmem_region_dev_add()` with `T`'s table and an
/// `Arc<T::Data>`, and has not been deleted; this object alone deletes it.
pub(crate) struct DevNode<T: DevNodeOps> {
    rd: NonNull<bindings::extmem_region_dev>,
    _p: PhantomData<T>,
}

// SAFETY: The object is a handle to a device that only its `Drop` deletes, which any thread in
// process context may do.
unsafe impl<T: DevNodeOps> Send for DevNode<T> {}
// SAFETY: No method reads or writes through a shared reference.
unsafe impl<T: DevNodeOps> Sync for DevNode<T> {}

impl<T: DevNodeOps> DevNode<T> {
    /// Creates the device `name` with the node `extmem_region/<name>` (owner, group, mode and
    /// attributes from `info`), whose files `T::open` makes from `data`.
    ///
    /// Fails with `EEXIST` if the name is taken, `ENOSPC` if no minor number is left.
    pub(crate) fn create(name: &CStr, info: &NodeInfo, data: Arc<T::Data>) -> Result<Self> {
        let data = data.into_foreign();
        // SAFETY: `name` and `info` are valid for the call (the C side copies them), the table
        // is a `static`, and the device owns `data` from now on: it gives it back through
        // `drop_data` when it is freed, also when the call fails.
        let rd = unsafe {
            bindings::extmem_region_dev_add(
                name.as_char_ptr(),
                info,
                &T::vtable().0,
                data,
                Some(Self::drop_data),
            )
        };
        let rd = from_err_ptr(rd)?;
        // INVARIANT: `rd` is the device just made with `T`'s table and data.
        Ok(Self {
            rd: NonNull::new(rd).ok_or(ENOMEM)?,
            _p: PhantomData,
        })
    }

    /// Drops the data of a device that is being freed.
    ///
    /// # Safety
    ///
    /// Called once by `devif/region.c`, with the pointer [`Self::create`] gave it.
    unsafe extern "C" fn drop_data(data: *mut c_void) {
        // SAFETY: `data` came from `Arc::into_foreign` in `create`, and this is its only
        // release.
        drop(unsafe { Arc::<T::Data>::from_foreign(data) });
    }
}

impl<T: DevNodeOps> Drop for DevNode<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the device exists and only this object deletes it.
        unsafe { bindings::extmem_region_dev_del(self.rd.as_ptr()) };
    }
}
