// SPDX-License-Identifier: GPL-2.0

//! The extmem UAPI (`include/uapi/linux/extmem.h`) and its versioned argument structures.
//!
//! The structures and constants are the ones bindgen generated from the header, re-exported
//! here so that the ioctl code never names `bindings::`. [`read_args`] and [`write_args`] copy
//! an argument structure from and to userspace the way `copy_struct_from_user()` and its
//! users do: the caller's `size` field says which version of the structure it has, bytes this
//! kernel does not know must be zero, and at most the caller's size is written back.

use core::mem::size_of;
use kernel::bindings;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::transmute::{AsBytes, FromBytes};
use kernel::uaccess::{UserPtr, UserSlice};

pub(crate) use bindings::extmem_alloc_args as AllocArgs;
pub(crate) use bindings::extmem_area_info as AreaInfo;
pub(crate) use bindings::extmem_info as Info;
pub(crate) use bindings::extmem_region_args as RegionArgs;

/// The ioctl type (`_IOC_TYPE`) of every extmem ioctl.
pub(crate) const IOCTL_TYPE: u32 = bindings::EXTMEM_IOCTL_TYPE;
/// `EXTMEM_NODE_ANY`: the node value for "any node".
pub(crate) const NODE_ANY: i32 = bindings::EXTMEM_NODE_ANY;
/// `EXTMEM_ALLOC_FALLBACK`: a node-bound allocation may spill to other nodes.
pub(crate) const ALLOC_FALLBACK: u32 = bindings::EXTMEM_ALLOC_FALLBACK;
/// `EXTMEM_ALLOC_FLAGS`: every flag `EXTMEM_IOC_ALLOC` knows.
pub(crate) const ALLOC_FLAGS: u32 = bindings::EXTMEM_ALLOC_FLAGS;
/// `EXTMEM_REGION_STICKY`: the region survives kexec.
pub(crate) const REGION_STICKY: u32 = bindings::EXTMEM_REGION_STICKY;
/// `EXTMEM_REGION_FLAGS`: every flag `EXTMEM_IOC_REGION_CREATE` knows.
pub(crate) const REGION_FLAGS: u32 = bindings::EXTMEM_REGION_FLAGS;
/// `EXTMEM_MAX_REGIONS`: most regions at once.
pub(crate) const MAX_REGIONS: usize = bindings::EXTMEM_MAX_REGIONS as usize;
/// `EXTMEM_LABEL_LEN`: bytes of an allocation's label, NUL included.
pub(crate) const LABEL_LEN: usize = bindings::EXTMEM_LABEL_LEN as usize;

/// An argument structure of the extmem UAPI.
///
/// # Safety
///
/// The type must be a `#[repr(C)]` structure of integers and arrays of integers without
/// padding, so that any bytes are a valid value of it and every byte of a value is
/// initialised (what [`FromBytes`] and [`AsBytes`] ask for).
pub(crate) unsafe trait UapiArgs: Copy {
    /// The size of the first published version of the structure, in bytes.
    const SIZE_VER0: usize;
}

// SAFETY: Integers and a `char` array, without padding (the header lays the fields out in
// order of decreasing alignment).
unsafe impl UapiArgs for AllocArgs {
    const SIZE_VER0: usize = bindings::EXTMEM_ALLOC_ARGS_SIZE_VER0 as usize;
}

// SAFETY: Integers only, without padding.
unsafe impl UapiArgs for AreaInfo {
    const SIZE_VER0: usize = bindings::EXTMEM_AREA_INFO_SIZE_VER0 as usize;
}

// SAFETY: Integers and a `char` array, without padding (the header lays the fields out in
// order of decreasing alignment).
unsafe impl UapiArgs for RegionArgs {
    const SIZE_VER0: usize = bindings::EXTMEM_REGION_ARGS_SIZE_VER0 as usize;
}

// SAFETY: Integers and a `char` array, without padding.
unsafe impl UapiArgs for Info {
    const SIZE_VER0: usize = bindings::EXTMEM_INFO_SIZE_VER0 as usize;
}

/// A UAPI argument structure seen as the plain old data it is.
///
/// The bindgen types live in another crate, so the byte-view traits are implemented on this
/// transparent wrapper instead.
#[repr(transparent)]
#[derive(Clone, Copy)]
struct Pod<T>(T);

// SAFETY: `Pod<T>` is a transparent wrapper of `T`, and `T: UapiArgs` is valid for any bytes.
unsafe impl<T: UapiArgs> FromBytes for Pod<T> {}

// SAFETY: `Pod<T>` is a transparent wrapper of `T`, and `T: UapiArgs` has no padding, so all
// of its bytes are initialised.
unsafe impl<T: UapiArgs> AsBytes for Pod<T> {}

/// The largest argument structure [`read_args`] handles, in bytes.
const MAX_ARGS_SIZE: usize = 256;

/// Returns whether the `len` bytes of user memory at `ptr` are all zero.
///
/// Fails with `EFAULT` if the memory cannot be read before a non-zero byte is found.
fn user_is_zeroed(ptr: UserPtr, len: usize) -> Result<bool> {
    // SAFETY: `check_zeroed_user()` checks the user range itself (`access_ok()`) and reads it
    // with fault handling; it may sleep, and every caller here is an ioctl.
    match unsafe { bindings::check_zeroed_user(ptr.as_const_ptr(), len) } {
        1 => Ok(true),
        0 => Ok(false),
        _ => Err(EFAULT),
    }
}

/// Reads an argument structure the way `copy_struct_from_user()` does.
///
/// Returns the structure (zero beyond what the caller passed) and the caller's size in bytes.
/// A size below the first version is `EINVAL`; bytes past what this kernel knows must be zero
/// (`E2BIG` otherwise), and sizes over a page are `E2BIG`.
pub(crate) fn read_args<T: UapiArgs>(arg: usize) -> Result<(T, usize)> {
    const { assert!(size_of::<T>() <= MAX_ARGS_SIZE) };
    let size = UserSlice::new(UserPtr::from_addr(arg), size_of::<u32>())
        .reader()
        .read::<u32>()?;
    let size = usize::try_from(size)?;
    if size < T::SIZE_VER0 {
        return Err(EINVAL);
    }
    if size > PAGE_SIZE {
        return Err(E2BIG);
    }
    let known = size_of::<T>();
    if size > known {
        let tail = arg.checked_add(known).ok_or(EFAULT)?;
        if !user_is_zeroed(UserPtr::from_addr(tail), size - known)? {
            return Err(E2BIG);
        }
    }
    let mut buf = [0u8; MAX_ARGS_SIZE];
    let n = size.min(known);
    let dst = buf.get_mut(..n).ok_or(EINVAL)?;
    UserSlice::new(UserPtr::from_addr(arg), n)
        .reader()
        .read_slice(dst)?;
    let value = buf
        .get(..known)
        .and_then(Pod::<T>::from_bytes_copy)
        .ok_or(EINVAL)?;
    Ok((value.0, size))
}

/// Writes back at most `size` bytes (the caller's version) of an argument structure.
pub(crate) fn write_args<T: UapiArgs>(arg: usize, value: &T, size: usize) -> Result {
    let value = Pod(*value);
    let bytes = value.as_bytes();
    let n = size.min(bytes.len());
    UserSlice::new(UserPtr::from_addr(arg), n)
        .writer()
        .write_slice(bytes.get(..n).ok_or(EINVAL)?)
}
