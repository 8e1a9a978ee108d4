// SPDX-License-Identifier: GPL-2.0

//! `/dev/extmem` and allocation file descriptors.
//!
//! `EXTMEM_IOC_ALLOC` on `/dev/extmem` takes a range from the pool, zeroes it and returns a new
//! file descriptor that *is* the allocation, the way a dma-heap returns a dma-buf: the range is
//! freed when the file is released, which happens once the last descriptor is closed and the
//! last mapping is gone (every VMA holds a reference to its file).
//!
//! `mmap` of an allocation fd gives a `VM_PFNMAP` mapping of any page-aligned part of it. Pages
//! are inserted on fault: a PUD (1 GiB) entry when the faulting 1 GiB of virtual space lies in
//! the VMA and maps a 1 GiB-aligned physical range, else a PMD (2 MiB) entry under the same
//! rule, else a PTE. The memory has no `struct page`; PAT sees the write-back memtype that
//! [`crate::pool`] reserved with `memremap()`.
//!
//! Rust in 7.3 has no abstraction for `VM_PFNMAP`, fault handlers or anonymous-inode files, so
//! this file uses `bindings::` directly; every such call is in this file or in
//! `devif/helpers.c`. The userspace ABI is `include/uapi/linux/extmem.h`.

use crate::pool::{self, Area, UNIT};
use core::mem::size_of;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::fs::file::FileDescriptorReservation;
use kernel::fs::File;
use kernel::ioctl::{_IOC_DIR, _IOC_NR, _IOC_TYPE};
use kernel::miscdevice::{MiscDevice, MiscDeviceRegistration};
use kernel::mm::virt::VmaRef;
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kernel::uaccess::{UserPtr, UserSlice};

const SZ_1G: u64 = 1 << 30;
const PAGE_SIZE: usize = 1 << bindings::PAGE_SHIFT;
const PMD_ORDER: u32 = bindings::PMD_SHIFT - bindings::PAGE_SHIFT;
const PUD_ORDER: u32 = bindings::PUD_SHIFT - bindings::PAGE_SHIFT;
const IOC_READ_WRITE: u32 = 3;

const NR_ALLOC: u32 = 0x00;
const NR_AREA_INFO: u32 = 0x01;
const NR_HUGETLB: u32 = 0x02;
const NR_INFO: u32 = 0x10;

/// Returns the command number of an extmem ioctl, or `None` for anything else.
///
/// The size bits are not compared: argument structures grow, and their own `size` field says
/// which version the caller has.
fn extmem_ioc(cmd: u32) -> Option<u32> {
    (_IOC_TYPE(cmd) == bindings::EXTMEM_IOCTL_TYPE && _IOC_DIR(cmd) == IOC_READ_WRITE)
        .then(|| _IOC_NR(cmd))
}

pub(crate) fn capable_sys_admin() -> bool {
    crate::wrappers::cap::Capability::SYS_ADMIN.current_has()
}

/// An argument structure of the extmem UAPI.
///
/// # Safety
///
/// The type must be a C structure of integers and arrays of integers only, so that any bytes
/// are a valid value of it.
pub(crate) unsafe trait UapiArgs: Copy {
    /// The size of the first published version of the structure.
    const SIZE_VER0: usize;
}

// SAFETY: Integers and a `char` array only.
unsafe impl UapiArgs for bindings::extmem_alloc_args {
    const SIZE_VER0: usize = bindings::EXTMEM_ALLOC_ARGS_SIZE_VER0 as usize;
}
// SAFETY: Integers only.
unsafe impl UapiArgs for bindings::extmem_area_info {
    const SIZE_VER0: usize = bindings::EXTMEM_AREA_INFO_SIZE_VER0 as usize;
}
// SAFETY: Integers and a `char` array only.
unsafe impl UapiArgs for bindings::extmem_info {
    const SIZE_VER0: usize = bindings::EXTMEM_INFO_SIZE_VER0 as usize;
}

/// Reads an argument structure the way `copy_struct_from_user()` does.
///
/// Returns the structure (zero beyond what the caller passed) and the caller's size. A size
/// below the first version is `EINVAL`; bytes past what this kernel knows must be zero
/// (`E2BIG` otherwise), and sizes over a page are `E2BIG`.
pub(crate) fn read_args<T: UapiArgs>(arg: usize) -> Result<(T, usize)> {
    let mut size = [0u8; 4];
    UserSlice::new(UserPtr::from_addr(arg), size.len())
        .reader()
        .read_slice(&mut size)?;
    let size = usize::try_from(u32::from_ne_bytes(size))?;
    if size < T::SIZE_VER0 {
        return Err(EINVAL);
    }
    if size > PAGE_SIZE {
        return Err(E2BIG);
    }
    let known = size_of::<T>();
    if size > known {
        let tail = arg.checked_add(known).ok_or(EFAULT)?;
        // SAFETY: `check_zeroed_user()` validates the user range itself.
        match unsafe { bindings::check_zeroed_user(tail as *const c_void, size - known) } {
            1 => {}
            0 => return Err(E2BIG),
            _ => return Err(EFAULT),
        }
    }
    let mut buf = [0u8; 256];
    let n = size.min(known);
    let dst = buf.get_mut(..n).ok_or(EINVAL)?;
    UserSlice::new(UserPtr::from_addr(arg), n)
        .reader()
        .read_slice(dst)?;
    const { assert!(size_of::<T>() <= 256) };
    // SAFETY: `buf` holds at least `size_of::<T>()` initialised bytes and `T: UapiArgs` is
    // valid for any bytes; `read_unaligned` copes with the byte array's alignment.
    let value = unsafe { core::ptr::read_unaligned(buf.as_ptr().cast::<T>()) };
    Ok((value, size))
}

/// Writes back at most `size` bytes (the caller's version) of an argument structure.
pub(crate) fn write_args<T: UapiArgs>(arg: usize, value: &T, size: usize) -> Result {
    // SAFETY: `T: UapiArgs` is plain old data; viewing it as bytes reads no padding, since
    // the UAPI structures have none.
    let bytes = unsafe {
        core::slice::from_raw_parts(core::ptr::from_ref(value).cast::<u8>(), size_of::<T>())
    };
    let n = size.min(bytes.len());
    UserSlice::new(UserPtr::from_addr(arg), n)
        .writer()
        .write_slice(bytes.get(..n).ok_or(EINVAL)?)
}

fn label_ok(label: &[c_char]) -> bool {
    label.contains(&0)
}

/// One allocation: `len` bytes at `offset` into `area`.
///
/// # Invariants
///
/// The range is allocated in `area`'s allocator and owned by this object alone; it is freed
/// when the object is dropped.
pub(crate) struct Allocation {
    pub(crate) area: &'static Area,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) label: [c_char; bindings::EXTMEM_LABEL_LEN as usize],
}

impl Allocation {
    /// Returns the physical base address.
    pub(crate) fn phys(&self) -> u64 {
        self.area.base + self.offset
    }

    fn pages(&self) -> u64 {
        self.len / UNIT
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.area.free(self.offset, self.len);
    }
}

/// Takes `len` bytes aligned to `align` from an area of `node` (any node for
/// `EXTMEM_NODE_ANY`), spilling to other nodes only with `fallback`.
fn place(node: i32, fallback: bool, len: u64, align: u64) -> Result<(&'static Area, u64)> {
    let pool = pool::get().ok_or(ENODEV)?;
    let any = node == bindings::EXTMEM_NODE_ANY;
    let mut node_has_area = false;
    for area in pool.areas().iter().filter(|a| any || a.nid == node) {
        node_has_area = true;
        if let Ok(offset) = area.alloc(len, align) {
            return Ok((area, offset));
        }
    }
    if !any && fallback {
        for area in pool.areas().iter().filter(|a| a.nid != node) {
            if let Ok(offset) = area.alloc(len, align) {
                return Ok((area, offset));
            }
        }
    }
    if !node_has_area && !fallback {
        return Err(ENODEV);
    }
    Err(ENOMEM)
}

fn ioctl_alloc(arg: usize) -> Result<isize> {
    if !capable_sys_admin() {
        return Err(EPERM);
    }
    let (mut args, size) = read_args::<bindings::extmem_alloc_args>(arg)?;
    let len = args.length;
    let align = if args.alignment == 0 {
        UNIT
    } else {
        args.alignment
    };
    // SAFETY: `nr_node_ids` is set during boot and only read afterwards.
    let nr_nodes = i64::from(unsafe { bindings::nr_node_ids });
    if args.reserved != [0; 2]
        || args.flags & !bindings::EXTMEM_ALLOC_FLAGS != 0
        || len == 0
        || len % UNIT != 0
        || !align.is_power_of_two()
        || !(UNIT..=SZ_1G).contains(&align)
        || args.node < bindings::EXTMEM_NODE_ANY
        || i64::from(args.node) >= nr_nodes
        || !label_ok(&args.label)
    {
        return Err(EINVAL);
    }
    let fallback = args.flags & bindings::EXTMEM_ALLOC_FALLBACK != 0;
    let (area, offset) = place(args.node, fallback, len, align)?;
    // INVARIANT: `place()` allocated the range for this object alone.
    let allocation = Allocation {
        area,
        offset,
        len,
        label: args.label,
    };
    area.clear(offset, len);
    let file = new_file(KBox::new(allocation, GFP_KERNEL)?)?;
    let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let fd = reservation.reserved_fd();
    args.fd = i32::try_from(fd)?;
    // On failure the `ARef` drop releases the file (and the allocation with it) and the
    // reservation drop gives the descriptor back.
    write_args(arg, &args, size)?;
    reservation.fd_install(file);
    Ok(isize::try_from(fd)?)
}

/// Returns a new file that owns `allocation` (an allocation fd without a descriptor).
pub(crate) fn new_file(allocation: KBox<Allocation>) -> Result<ARef<File>> {
    let private = KBox::into_raw(allocation);
    // SAFETY: The name is a valid C string, `ALLOC_FOPS` lives forever and `private` is a
    // valid `Allocation` that the file owns from now on (its `release` frees it).
    let file = unsafe {
        bindings::anon_inode_getfile(
            c"[extmem]".as_char_ptr(),
            &ALLOC_FOPS.0,
            private.cast(),
            bindings::O_RDWR as i32,
        )
    };
    let file = match from_err_ptr(file) {
        Ok(file) => file,
        Err(e) => {
            // SAFETY: No file took ownership of `private`; it came from `KBox::into_raw`.
            drop(unsafe { KBox::from_raw(private) });
            return Err(e);
        }
    };
    // SAFETY: `anon_inode_getfile()` returned a new reference to a valid file, which `ARef`
    // takes over; `File` is a transparent wrapper of `struct file`.
    Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) })
}

/// Returns the allocation behind `file` if it is an allocation fd.
///
/// # Safety
///
/// `file` must be a valid file that the caller holds for the returned lifetime.
pub(crate) unsafe fn allocation_of<'a>(file: *mut bindings::file) -> Option<&'a Allocation> {
    // SAFETY: The caller guarantees `file` is valid.
    if unsafe { (*file).f_op } != &ALLOC_FOPS.0 {
        return None;
    }
    // SAFETY: It is an allocation fd, held by the caller.
    Some(unsafe { allocation(file) })
}

fn ioctl_area_info(arg: usize) -> Result<isize> {
    let (mut info, size) = read_args::<bindings::extmem_area_info>(arg)?;
    if info.reserved0 != 0 || info.reserved != [0; 2] {
        return Err(EINVAL);
    }
    let pool = pool::get().ok_or(ENODEV)?;
    let area = pool
        .areas()
        .get(usize::try_from(info.index)?)
        .ok_or(ENOENT)?;
    let usage = area.usage();
    info.node = area.nid;
    info.base = area.base;
    info.total = area.size;
    info.free = usage.free;
    info.largest_free = usage.largest_free;
    write_args(arg, &info, size)?;
    Ok(0)
}

/// The `/dev/extmem` misc device.
pub(crate) struct ExtmemDev;

#[vtable]
impl MiscDevice for ExtmemDev {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<()> {
        if !capable_sys_admin() {
            return Err(EPERM);
        }
        Ok(())
    }

    fn ioctl(_device: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match extmem_ioc(cmd) {
            Some(NR_ALLOC) => ioctl_alloc(arg),
            Some(NR_AREA_INFO) => ioctl_area_info(arg),
            Some(NR_HUGETLB) => crate::hugetlb_conv::ioctl_hugetlb(arg),
            _ => Err(ENOTTY),
        }
    }
}

/// Makes a C operations table usable as a `static`.
#[repr(transparent)]
struct AssertSync<T>(T);
// SAFETY: The tables are never written after initialisation; they only hold function pointers
// and NULLs.
unsafe impl<T> Sync for AssertSync<T> {}

static ALLOC_FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    release: Some(alloc_release),
    mmap: Some(alloc_mmap),
    unlocked_ioctl: Some(alloc_ioctl),
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: bindings::compat_ptr_ioctl,
    ..pin_init::zeroed()
});

static ALLOC_VM_OPS: AssertSync<bindings::vm_operations_struct> =
    AssertSync(bindings::vm_operations_struct {
        fault: Some(alloc_fault),
        huge_fault: Some(alloc_huge_fault),
        ..pin_init::zeroed()
    });

/// Returns the allocation behind an allocation fd.
///
/// # Safety
///
/// `file` must be a live file created by [`ioctl_alloc`].
unsafe fn allocation<'a>(file: *mut bindings::file) -> &'a Allocation {
    // SAFETY: Files with `ALLOC_FOPS` carry a valid `Allocation` in `private_data` until
    // `release`, and the caller holds the file.
    unsafe { &*(*file).private_data.cast::<Allocation>() }
}

/// `release` of an allocation fd: frees the allocation.
///
/// # Safety
///
/// Called by the VFS once, when the last reference to `file`, a file made by [`ioctl_alloc`],
/// is dropped.
unsafe extern "C" fn alloc_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `release` is the last use of the file; `private_data` came from `KBox::into_raw`
    // in `ioctl_alloc` and nothing else frees it.
    drop(unsafe { KBox::from_raw((*file).private_data.cast::<Allocation>()) });
    0
}

/// `unlocked_ioctl` of an allocation fd.
///
/// # Safety
///
/// Called by the VFS with a file made by [`ioctl_alloc`] that it holds.
unsafe extern "C" fn alloc_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: The VFS calls `unlocked_ioctl` with a file it holds.
    let alloc = unsafe { allocation(file) };
    let result = match extmem_ioc(cmd) {
        Some(NR_INFO) => ioctl_info(alloc, arg),
        _ => Err(ENOTTY),
    };
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}

fn ioctl_info(alloc: &Allocation, arg: usize) -> Result {
    let (mut info, size) = read_args::<bindings::extmem_info>(arg)?;
    if info.reserved != [0; 2] {
        return Err(EINVAL);
    }
    info.node = alloc.area.nid;
    info.length = alloc.len;
    info.phys = if capable_sys_admin() { alloc.phys() } else { 0 };
    info.label = alloc.label;
    write_args(arg, &info, size)
}

/// `mmap` of an allocation fd: checks the request and sets the VMA up for faults.
///
/// # Safety
///
/// Called by the VFS with a file made by [`ioctl_alloc`] that it holds and a new VMA, under
/// the mmap write lock.
unsafe extern "C" fn alloc_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: The VFS calls `mmap` with a file it holds.
    let alloc = unsafe { allocation(file) };
    // SAFETY: `mmap` runs with the mmap lock held for writing on a VMA being set up.
    let vma_ref = unsafe { VmaRef::from_raw(vma) };
    if vma_ref.flags() & bindings::VM_SHARED == 0 {
        return EINVAL.to_errno();
    }
    let pages = ((vma_ref.end() - vma_ref.start()) >> bindings::PAGE_SHIFT) as u64;
    // SAFETY: As above, the VMA is ours to read and set up.
    let pgoff = unsafe { (*vma).vm_pgoff } as u64;
    match pgoff.checked_add(pages) {
        Some(end) if end <= alloc.pages() => {}
        _ => return EINVAL.to_errno(),
    }
    // SAFETY: The VMA is being set up under the mmap write lock, so nothing else reads these
    // fields yet. `vm_private_data` stays valid while the VMA exists because the VMA holds a
    // reference to the file that owns the allocation.
    unsafe {
        (*vma).vm_ops = &ALLOC_VM_OPS.0;
        (*vma).vm_private_data = (*file).private_data;
        bindings::extmem_vma_set_pfnmap(vma);
    }
    0
}

/// `fault` of an allocation mapping: a PTE-sized [`alloc_huge_fault`].
///
/// # Safety
///
/// As for [`alloc_huge_fault`].
unsafe extern "C" fn alloc_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: Same contract as `huge_fault`, for order 0.
    unsafe { alloc_huge_fault(vmf, 0) }
}

/// `huge_fault` of an allocation mapping: inserts the entry of `order` that covers the
/// faulting address, or falls back to a smaller order.
///
/// # Safety
///
/// Called by mm with a valid `vmf` for a VMA that [`alloc_mmap`] set up, holding the mmap or
/// VMA lock.
unsafe extern "C" fn alloc_huge_fault(
    vmf: *mut bindings::vm_fault,
    order: c_uint,
) -> bindings::vm_fault_t {
    const FALLBACK: bindings::vm_fault_t = bindings::vm_fault_reason_VM_FAULT_FALLBACK;
    const SIGBUS: bindings::vm_fault_t = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    // SAFETY: mm calls the fault handlers with a valid `vm_fault` whose VMA is one that
    // `alloc_mmap` set up, with the mmap or VMA lock held.
    let (vma, address, write) = unsafe {
        (
            (*vmf).__bindgen_anon_1.vma,
            (*vmf).__bindgen_anon_1.address,
            (*vmf).flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0,
        )
    };
    // SAFETY: As above.
    let vma_ref = unsafe { VmaRef::from_raw(vma) };
    // SAFETY: `alloc_mmap` stored the allocation, which lives as long as the VMA's file.
    let alloc = unsafe { &*(*vma).vm_private_data.cast::<Allocation>() };
    // SAFETY: As above.
    let vm_pgoff = unsafe { (*vma).vm_pgoff };

    let size = PAGE_SIZE << order;
    let addr = address & !(size - 1);
    if order != 0 && (addr < vma_ref.start() || addr + size > vma_ref.end()) {
        return FALLBACK;
    }
    let pgoff = ((addr - vma_ref.start()) >> bindings::PAGE_SHIFT) as u64 + vm_pgoff as u64;
    let nr = 1u64 << order;
    if pgoff + nr > alloc.pages() {
        return SIGBUS;
    }
    let pfn = (alloc.phys() >> bindings::PAGE_SHIFT) + pgoff;
    if pfn & (nr - 1) != 0 {
        return FALLBACK;
    }
    let Ok(pfn) = usize::try_from(pfn) else {
        return SIGBUS;
    };
    // SAFETY: `extmem_has_gbpages()` only reads the boot CPU's feature bits.
    let gbpages = unsafe { bindings::extmem_has_gbpages() };
    match order {
        // SAFETY: The VMA is VM_PFNMAP and not COW (shared), the address lies in it and the
        // pfn is memory this allocation owns; the fault path holds the locks the call needs.
        0 => unsafe { bindings::vmf_insert_pfn(vma, addr, pfn) },
        // SAFETY: As above, and the whole 2 MiB lies in the VMA and the allocation.
        PMD_ORDER => unsafe { bindings::vmf_insert_pfn_pmd(vmf, pfn, write) },
        // SAFETY: As above, for 1 GiB, on a CPU that can map 1 GiB pages.
        PUD_ORDER if gbpages => unsafe { bindings::vmf_insert_pfn_pud(vmf, pfn, write) },
        _ => FALLBACK,
    }
}
