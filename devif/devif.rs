// SPDX-License-Identifier: GPL-2.0

//! `/dev/extmem` and allocation file descriptors.
//!
//! `EXTMEM_IOC_ALLOC` on `/dev/extmem` takes a range from the pool, zeroes it and returns a new
//! file descriptor that *is* the allocation, the way a dma-heap returns a dma-buf: the range is
//! freed when the file is released, which happens once the last descriptor is closed and the
//! last mapping is gone (every VMA holds a reference to its file), and the last VFIO DMA mapping
//! of it too (VFIO type1 holds the file through the VMA's `pfnmap_hold`, see
//! [`crate::wrappers::pfnmap`]).
//!
//! `mmap` of an allocation fd gives a `VM_PFNMAP` mapping of any page-aligned part of it. Pages
//! are inserted on fault: a PUD (1 GiB) entry when the faulting 1 GiB of virtual space lies in
//! the VMA and maps a 1 GiB-aligned physical range, else a PMD (2 MiB) entry under the same
//! rule, else a PTE. The memory has no `struct page`; PAT sees the write-back memtype that
//! [`crate::pool`] reserved with `memremap()`.
//!
//! Regions (`region.rs`) are allocations with a name and a device node; their files map
//! through the same [`Allocation::mmap_prepare`] and fault handler.
//!
//! The raw calls (anonymous-inode files, `VM_PFNMAP` faults, the UAPI structures) are in the
//! safe wrappers of [`crate::wrappers`]; this file is safe Rust only. The userspace ABI is
//! `include/uapi/linux/extmem.h`.

use crate::gmem::GmemState;
use crate::pool::{self, Area, UNIT};
use crate::wrappers::anon_file::{AnonFile, AnonFileOps, AnonFileVTable, FileOps};
use crate::wrappers::cap::Capability;
use crate::wrappers::numa::nr_node_ids;
use crate::wrappers::pfnmap::{FaultResult, Order, PfnFault, PfnMapHandler, VmaDesc};
use crate::wrappers::uapi::{self, read_args, write_args, AllocArgs, AreaInfo, Info};
use core::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use kernel::fs::file::{flags, FileDescriptorReservation};
use kernel::fs::File;
use kernel::ioctl::{_IOC_DIR, _IOC_NR, _IOC_TYPE};
use kernel::miscdevice::{MiscDevice, MiscDeviceRegistration};
use kernel::page::{PAGE_SHIFT, PAGE_SIZE};
use kernel::prelude::*;
use kernel::sizes::SizeConstants;
use kernel::sync::aref::ARef;
use kernel::sync::{Mutex, SetOnce};

const IOC_READ_WRITE: u32 = kernel::uapi::_IOC_READ | kernel::uapi::_IOC_WRITE;

const NR_ALLOC: u32 = 0x00;
const NR_AREA_INFO: u32 = 0x01;
const NR_HUGETLB: u32 = 0x02;
const NR_REGION_CREATE: u32 = 0x03;
const NR_REGION_DESTROY: u32 = 0x04;
pub(crate) const NR_INFO: u32 = 0x10;

/// Returns the command number of an extmem ioctl, or `None` for anything else.
///
/// The size bits are not compared: argument structures grow, and their own `size` field says
/// which version the caller has.
pub(crate) fn extmem_ioc(cmd: u32) -> Option<u32> {
    (_IOC_TYPE(cmd) == uapi::IOCTL_TYPE && _IOC_DIR(cmd) == IOC_READ_WRITE).then(|| _IOC_NR(cmd))
}

/// Returns true if the current task has `CAP_SYS_ADMIN`.
pub(crate) fn capable_sys_admin() -> bool {
    Capability::SYS_ADMIN.current_has()
}

fn label_ok(label: &[c_char]) -> bool {
    label.contains(&0)
}

/// One allocation: `len` bytes at `offset` into `area`.
///
/// # Invariants
///
/// The range is allocated in `area`'s allocator and owned by this object alone, except the
/// holes a guest_memfd punched (`gmem`'s list), which are free in the allocator; what is
/// owned is freed when the object is dropped. While `private` is set no new page-table entry
/// of the range is made for userspace, and `vmas` counts the VMAs that map it.
pub(crate) struct Allocation {
    pub(crate) area: &'static Area,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) label: [c_char; uapi::LABEL_LEN],
    /// The guest_memfd state, made when a guest_memfd first binds the allocation.
    pub(crate) gmem: SetOnce<Pin<KBox<Mutex<GmemState>>>>,
    /// Set for good when a guest_memfd binds the allocation: no more `mmap`, no faults.
    pub(crate) private: AtomicBool,
    /// VMAs that map the allocation.
    pub(crate) vmas: AtomicUsize,
    /// Holds on its frames by a device's DMA mapping (VFIO type1, through `pfnmap_hold`),
    /// which outlive the VMAs they were taken through.
    pub(crate) dma_holds: AtomicUsize,
}

impl Allocation {
    /// Returns the object for `len` bytes at `offset` into `area`, which the caller has
    /// allocated for it alone.
    pub(crate) fn new(
        area: &'static Area,
        offset: u64,
        len: u64,
        label: [c_char; uapi::LABEL_LEN],
    ) -> Self {
        // INVARIANT: the caller hands over the range; no hole, nothing mapped, not private.
        Self {
            area,
            offset,
            len,
            label,
            gmem: SetOnce::new(),
            private: AtomicBool::new(false),
            vmas: AtomicUsize::new(0),
            dma_holds: AtomicUsize::new(0),
        }
    }

    /// Returns the physical base address.
    pub(crate) fn phys(&self) -> u64 {
        self.area.base + self.offset
    }

    pub(crate) fn pages(&self) -> u64 {
        self.len / UNIT
    }

    /// Returns the allocation behind `file` if it is an allocation fd.
    pub(crate) fn of(file: &File) -> Option<&Allocation> {
        AnonFile::<AllocFile>::data(file)
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        if !crate::gmem::free_around_holes(self) {
            self.area.free(self.offset, self.len);
        }
    }
}

/// Takes `len` bytes aligned to `align`, zeroed, from an area of `node` (any node for
/// `EXTMEM_NODE_ANY`), spilling to other nodes only with `fallback`. A fatal signal while it
/// zeroes ends it with `EINTR` (the range freed).
pub(crate) fn place(
    node: i32,
    fallback: bool,
    len: u64,
    align: u64,
) -> Result<(&'static Area, u64)> {
    let pool = pool::get().ok_or(ENODEV)?;
    let any = node == uapi::NODE_ANY;
    let mut node_has_area = false;
    for area in pool.areas().iter().filter(|a| any || a.nid == node) {
        node_has_area = true;
        match area.alloc_zeroed(len, align) {
            Ok(offset) => return Ok((area, offset)),
            Err(e) if e == EINTR => return Err(e),
            Err(_) => {}
        }
    }
    if !any && fallback {
        for area in pool.areas().iter().filter(|a| a.nid != node) {
            match area.alloc_zeroed(len, align) {
                Ok(offset) => return Ok((area, offset)),
                Err(e) if e == EINTR => return Err(e),
                Err(_) => {}
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
    let (mut args, size) = read_args::<AllocArgs>(arg)?;
    let len = args.length;
    let align = if args.alignment == 0 {
        UNIT
    } else {
        args.alignment
    };
    let nr_nodes = i64::from(nr_node_ids());
    if args.reserved != [0; 2]
        || args.flags & !uapi::ALLOC_FLAGS != 0
        || len == 0
        || len % UNIT != 0
        || !align.is_power_of_two()
        || !(UNIT..=u64::SZ_1G).contains(&align)
        || args.node < uapi::NODE_ANY
        || i64::from(args.node) >= nr_nodes
        || !label_ok(&args.label)
    {
        return Err(EINVAL);
    }
    let fallback = args.flags & uapi::ALLOC_FALLBACK != 0;
    let (area, offset) = place(args.node, fallback, len, align)?;
    // INVARIANT: `place()` allocated the range for this object alone.
    let allocation = Allocation::new(area, offset, len, args.label);
    let file = new_file(KBox::new(allocation, GFP_KERNEL)?)?;
    let reservation = FileDescriptorReservation::get_unused_fd_flags(flags::O_CLOEXEC)?;
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
    let area = allocation.area.idx;
    AnonFile::<AllocFile>::create(allocation, flags::O_RDWR, Some(area))
}

fn ioctl_area_info(arg: usize) -> Result<isize> {
    let (mut info, size) = read_args::<AreaInfo>(arg)?;
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
    // Physical addresses only for CAP_SYS_ADMIN, as for `EXTMEM_IOC_INFO` (the device can be
    // passed to a process without it).
    info.base = if capable_sys_admin() { area.base } else { 0 };
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
            Some(NR_REGION_CREATE) => crate::region::ioctl_create(arg),
            Some(NR_REGION_DESTROY) => crate::region::ioctl_destroy(arg),
            _ => Err(ENOTTY),
        }
    }
}

/// Allocation fds: anonymous-inode files that own an [`Allocation`].
struct AllocFile;

static ALLOC_FOPS: AnonFileVTable<AllocFile> = AnonFileVTable::new();

impl AnonFileOps for AllocFile {
    const NAME: &'static CStr = c"[extmem]";

    fn vtable() -> &'static AnonFileVTable<Self> {
        &ALLOC_FOPS
    }
}

impl FileOps for AllocFile {
    type Ptr = KBox<Allocation>;

    fn ioctl(alloc: &Allocation, cmd: u32, arg: usize) -> Result<isize> {
        match extmem_ioc(cmd) {
            Some(NR_INFO) => ioctl_info(alloc, arg).map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    fn mmap_prepare<'a>(alloc: &'a Allocation, desc: &mut VmaDesc<'a>) -> Result {
        alloc.mmap_prepare(desc)
    }
}

impl Allocation {
    /// Checks a request to map (part of) the allocation and makes the VMA a PFN map whose
    /// faults the allocation handles: the `mmap` of allocation fds and of regions.
    ///
    /// `mmap_prepare` rather than `mmap` (and so no `VmaNew`): the VMA is described before it
    /// exists, and `VmaDesc::set_pfnmap` sets the flags `VmaNew::set_io` and friends would.
    ///
    /// A shared mapping is what a VMM makes. `MAP_PRIVATE` is copy-on-write (mm always sets
    /// `VM_MAYWRITE` for it) and `VmaDesc::set_pfnmap` refuses it: there is no `struct page`
    /// to copy. `MAP_SHARED` of a file opened read-only (a region's node), which mm makes
    /// without `VM_SHARED` and `VM_MAYWRITE`, can never be written and is accepted.
    pub(crate) fn mmap_prepare<'a>(&'a self, desc: &mut VmaDesc<'a>) -> Result {
        let pages = u64::try_from(desc.pages())?;
        let pgoff = u64::try_from(desc.pgoff())?;
        match pgoff.checked_add(pages) {
            Some(end) if end <= self.pages() => {}
            _ => return Err(EINVAL),
        }
        if self.private.load(Ordering::SeqCst) {
            pr_info!("mmap refused: the allocation backs a guest_memfd\n");
            return Err(EBUSY);
        }
        desc.set_pfnmap(self)
    }
}

/// `EXTMEM_IOC_INFO` on an allocation fd or a region's file.
pub(crate) fn ioctl_info(alloc: &Allocation, arg: usize) -> Result {
    let (mut info, size) = read_args::<Info>(arg)?;
    if info.reserved != [0; 2] {
        return Err(EINVAL);
    }
    info.node = alloc.area.nid;
    info.length = alloc.len;
    info.phys = if capable_sys_admin() { alloc.phys() } else { 0 };
    info.label = alloc.label;
    write_args(arg, &info, size)
}

impl PfnMapHandler for Allocation {
    /// Inserts the entry of `order` that covers the faulting address, or falls back to a
    /// smaller order.
    fn vma_opened(&self) {
        self.vmas.fetch_add(1, Ordering::SeqCst);
    }

    fn vma_closed(&self) {
        self.vmas.fetch_sub(1, Ordering::SeqCst);
    }

    fn dma_held(&self) {
        self.dma_holds.fetch_add(1, Ordering::SeqCst);
    }

    fn dma_released(&self) {
        self.dma_holds.fetch_sub(1, Ordering::SeqCst);
    }

    fn huge_fault(&self, fault: &PfnFault<'_>, order: Order) -> FaultResult {
        // A VMA made while a guest_memfd was binding the allocation: `bind()` set `private`
        // before it looked at `vmas`, and this VMA was counted before it could fault.
        if self.private.load(Ordering::SeqCst) {
            return FaultResult::SIGBUS;
        }
        let (Some(size), Some(nr)) = (order.bytes(), order.pages()) else {
            return FaultResult::FALLBACK;
        };
        let vma = fault.vma();
        let addr = fault.address() & !(size - 1);
        if order != Order::PTE && (addr < vma.start() || addr + size > vma.end()) {
            return FaultResult::FALLBACK;
        }
        let Ok(pgoff) = u64::try_from(((addr - vma.start()) >> PAGE_SHIFT) + fault.vma_pgoff())
        else {
            return FaultResult::SIGBUS;
        };
        let Ok(nr) = u64::try_from(nr) else {
            return FaultResult::SIGBUS;
        };
        if pgoff + nr > self.pages() {
            return FaultResult::SIGBUS;
        }
        // A poisoned unit is never mapped again: SIGBUS for its page, smaller entries around it
        // (checked again once the entry is in, below).
        if self
            .area
            .is_poisoned((self.offset >> PAGE_SHIFT) + pgoff, nr)
        {
            return if order == Order::PTE {
                FaultResult::HWPOISON
            } else {
                FaultResult::FALLBACK
            };
        }
        // The frame comes from the area's own mapping, which proves it is extmem and that
        // its write-back memory type is reserved (waiting for it if it is being made).
        let Some(pfn) = usize::try_from((self.offset >> PAGE_SHIFT) + pgoff)
            .ok()
            .and_then(|page| page.checked_mul(PAGE_SIZE))
            .and_then(|byte| self.area.mapping().ok()?.pfn(byte))
        else {
            return FaultResult::SIGBUS;
        };
        if !pfn.is_aligned(order) {
            return FaultResult::FALLBACK;
        }
        fault.test_hold();
        let done = match order {
            Order::PTE => fault.insert_pfn(addr, pfn),
            Order::PMD => fault.insert_pfn_pmd(pfn),
            Order::PUD => fault.insert_pfn_pud(pfn),
            _ => FaultResult::FALLBACK,
        };
        // A memory failure between the check above and the insert may have zapped the
        // area's mappings before this entry existed. `Area::poison()` sets the unit's filter
        // bit, then a full fence, then zaps; here the entry is in the page table, then a full
        // fence, then the bit is read again: either the zap finds the entry or this sees the
        // bit. On a hit the entry is taken back here, and the fault goes on as if it had seen
        // the unit poisoned at first (a PTE's gets SIGBUS, a larger one falls back).
        if done == FaultResult::NOPAGE {
            fence(Ordering::SeqCst);
            if self
                .area
                .is_poisoned((self.offset >> PAGE_SHIFT) + pgoff, nr)
            {
                fault.zap(addr, size);
                return if order == Order::PTE {
                    FaultResult::HWPOISON
                } else {
                    FaultResult::FALLBACK
                };
            }
        }
        done
    }
}
