// SPDX-License-Identifier: GPL-2.0

//! The `/dev/extmem` ioctls extmemctl issues, with the structures of
//! `include/uapi/linux/extmem.h`.

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

/// The control device.
pub(crate) const DEV: &str = "/dev/extmem";
const IOCTL_TYPE: u64 = 0xBB;
/// `EXTMEM_NODE_ANY`.
pub(crate) const NODE_ANY: i32 = -1;
/// `EXTMEM_REGION_STICKY`.
pub(crate) const REGION_STICKY: u32 = 1;
/// `EXTMEM_REGION_NAME_LEN`.
pub(crate) const NAME_LEN: usize = 32;
/// `EXTMEM_HUGETLB_QUERY`.
pub(crate) const HUGETLB_QUERY: u64 = u64::MAX;

/// `struct extmem_region_args`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RegionArgs {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) length: u64,
    pub(crate) alignment: u64,
    pub(crate) node: i32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mode: u32,
    pub(crate) name: [u8; NAME_LEN],
    pub(crate) reserved: [u64; 2],
}

/// `struct extmem_hugetlb_args`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HugetlbArgs {
    pub(crate) size: u32,
    pub(crate) flags: u32,
    pub(crate) node: i32,
    pub(crate) reserved0: u32,
    pub(crate) page_size: u64,
    pub(crate) target: u64,
    pub(crate) count: u64,
    pub(crate) reserved: [u64; 2],
}

/// `_IOWR(EXTMEM_IOCTL_TYPE, nr, T)`.
const fn iowr<T>(nr: u64) -> u64 {
    (3 << 30) | ((size_of::<T>() as u64) << 16) | (IOCTL_TYPE << 8) | nr
}

const IOC_HUGETLB: u64 = iowr::<HugetlbArgs>(0x02);
const IOC_REGION_CREATE: u64 = iowr::<RegionArgs>(0x03);
const IOC_REGION_DESTROY: u64 = iowr::<RegionArgs>(0x04);

/// An open `/dev/extmem`.
pub(crate) struct Dev(File);

impl Dev {
    /// Opens the control device (the kernel asks for `CAP_SYS_ADMIN`).
    pub(crate) fn open() -> io::Result<Self> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEV)
            .map(Self)
    }

    fn ioctl<T>(&self, request: u64, arg: &mut T) -> io::Result<()> {
        // SAFETY: `arg` is a live, exclusively borrowed `#[repr(C)]` structure of the size
        // encoded in `request`, which the kernel reads and writes back within that size.
        let rc = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                request as libc::Ioctl,
                std::ptr::from_mut(arg),
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// `EXTMEM_IOC_REGION_CREATE`.
    pub(crate) fn create_region(&self, mut args: RegionArgs) -> io::Result<()> {
        args.size = size_of::<RegionArgs>() as u32;
        self.ioctl(IOC_REGION_CREATE, &mut args)
    }

    /// `EXTMEM_IOC_REGION_DESTROY` of the region `name`.
    pub(crate) fn destroy_region(&self, name: [u8; NAME_LEN]) -> io::Result<()> {
        let mut args = RegionArgs {
            size: size_of::<RegionArgs>() as u32,
            name,
            ..RegionArgs::default()
        };
        self.ioctl(IOC_REGION_DESTROY, &mut args)
    }

    /// `EXTMEM_IOC_HUGETLB`: sets (or with [`HUGETLB_QUERY`] reads) how many HugeTLB pages of
    /// `page_size` on `node` extmem backs; returns the count after the call, also on `EBUSY`.
    pub(crate) fn hugetlb(&self, node: i32, page_size: u64, target: u64) -> (u64, io::Result<()>) {
        let mut args = HugetlbArgs {
            size: size_of::<HugetlbArgs>() as u32,
            node,
            page_size,
            target,
            ..HugetlbArgs::default()
        };
        let r = self.ioctl(IOC_HUGETLB, &mut args);
        (args.count, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_uapi_header() {
        // EXTMEM_REGION_ARGS_SIZE_VER0, EXTMEM_HUGETLB_ARGS_SIZE_VER0.
        assert_eq!(size_of::<RegionArgs>(), 88);
        assert_eq!(size_of::<HugetlbArgs>(), 56);
        assert_eq!(IOC_REGION_CREATE, 0xc058_bb03);
        assert_eq!(IOC_HUGETLB, 0xc038_bb02);
    }
}
