// SPDX-License-Identifier: GPL-2.0

//! A `VM_PFNMAP` mapping, set up by `f_op->mmap_prepare` and filled by a fault handler.
//!
//! A file's `mmap_prepare` gets a [`VmaDesc`], the description of a VMA that does not exist
//! yet (`struct vm_area_desc`). [`VmaDesc::set_pfnmap`] makes the VMA a shared
//! `VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP` mapping whose faults go to a
//! [`PfnMapHandler`], the way a driver's `mmap` would call `vm_flags_set()` and store
//! `vm_ops` and `vm_private_data`. The handler gets a [`PfnFault`] and fills the page table
//! with [`PfnFault::insert_pfn`] (a PTE), [`PfnFault::insert_pfn_pmd`] (a PMD leaf) or
//! [`PfnFault::insert_pfn_pud`] (a PUD leaf), and returns what they return.
//!
//! The memory behind such a mapping has no `struct page`: the handler names it by page frame
//! number ([`Pfn`]). As for `remap_pfn_range()` or `vmf_insert_pfn()` in C, the handler must
//! only insert frames of memory it owns for as long as the mapping can exist. Here the rule is
//! stricter: only frames that the VMA's file owns for as long as the file lives. The mapping
//! holds a reference to its file, and so does a user that keeps the frames after the mapping
//! may be gone (VFIO type1 mapping them into an IOMMU), which takes one through the VMA's
//! `pfnmap_hold` operation (`patches/`): the frames stay owned while a device can reach them.
//!
//! The types enforce half of that rule: a [`Pfn`] can only be had from
//! [`MemRemap::pfn`](super::memremap::MemRemap::pfn), a frame of a write-back mapping of memory
//! that was not System RAM when it was mapped, so a safe handler can never map memory of the
//! page allocator (kernel or other processes' pages). Which of its own frames a handler maps,
//! and for how long, is its business: in extmem the only handler is `devif::Allocation`, whose
//! invariant owns the frames it maps while any mapping holds its file.

use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::mm::virt::VmaRef;
use kernel::page::{PAGE_SHIFT, PAGE_SIZE};
use kernel::prelude::*;

/// A page frame number: the physical address shifted right by `PAGE_SHIFT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pfn(usize);

impl Pfn {
    /// Returns the frame that holds physical address `phys` (in bytes), or `None` if it does
    /// not fit the kernel's frame numbers.
    ///
    /// Private to the wrappers: code outside gets frames from
    /// [`MemRemap::pfn`](super::memremap::MemRemap::pfn) only, so a frame inserted into a user
    /// mapping is never memory of the page allocator.
    pub(super) fn from_phys(phys: u64) -> Option<Self> {
        usize::try_from(phys >> PAGE_SHIFT).ok().map(Self)
    }

    /// Returns whether the frame is the first of a naturally aligned block of `order`.
    pub(crate) fn is_aligned(self, order: Order) -> bool {
        order.pages().is_some_and(|n| self.0 & (n - 1) == 0)
    }

    fn raw(self) -> c_ulong {
        self.0
    }
}

/// The order of a page-table entry: it maps `PAGE_SIZE << order` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Order(u32);

impl Order {
    /// A PTE: one page.
    pub(crate) const PTE: Self = Self(0);
    /// A PMD leaf (2 MiB on x86-64).
    pub(crate) const PMD: Self = Self(bindings::PMD_SHIFT - bindings::PAGE_SHIFT);
    /// A PUD leaf (1 GiB on x86-64).
    pub(crate) const PUD: Self = Self(bindings::PUD_SHIFT - bindings::PAGE_SHIFT);

    /// Returns the number of pages of an entry of this order, or `None` if it overflows.
    pub(crate) fn pages(self) -> Option<usize> {
        1usize.checked_shl(self.0)
    }

    /// Returns the bytes an entry of this order maps, or `None` if it overflows.
    pub(crate) fn bytes(self) -> Option<usize> {
        PAGE_SIZE.checked_mul(self.pages()?)
    }
}

/// What a fault handler tells mm (`vm_fault_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultResult(bindings::vm_fault_t);

impl FaultResult {
    /// `VM_FAULT_FALLBACK`: mm should retry the fault with a smaller order.
    pub(crate) const FALLBACK: Self = Self(bindings::vm_fault_reason_VM_FAULT_FALLBACK);
    /// `VM_FAULT_SIGBUS`: the access lies outside the object; the task gets `SIGBUS`.
    pub(crate) const SIGBUS: Self = Self(bindings::vm_fault_reason_VM_FAULT_SIGBUS);
    /// `VM_FAULT_HWPOISON`: the page is poisoned; the task gets `SIGBUS` (`BUS_MCEERR_AR`)
    /// with the faulting address, and KVM tells its VMM the same.
    pub(crate) const HWPOISON: Self = Self(bindings::vm_fault_reason_VM_FAULT_HWPOISON);
    /// `VM_FAULT_NOPAGE`: the handler put the entry in the page table itself (what the
    /// `insert_pfn*` methods return on success).
    pub(crate) const NOPAGE: Self = Self(bindings::vm_fault_reason_VM_FAULT_NOPAGE);
}

/// The fault handler of a PFN-map VMA; `self` is the object [`VmaDesc::set_pfnmap`] was given.
pub(crate) trait PfnMapHandler: Sync {
    /// Handles a fault that wants an entry of `order` ([`Order::PTE`] for a plain fault).
    ///
    /// Returns what one of the `insert_*` methods of `fault` returned, or
    /// [`FaultResult::FALLBACK`] to have mm retry with a smaller order, or
    /// [`FaultResult::SIGBUS`] or [`FaultResult::HWPOISON`].
    ///
    /// Called in process context with the mmap lock or the VMA's lock held for reading.
    fn huge_fault(&self, fault: &PfnFault<'_>, order: Order) -> FaultResult;

    /// A VMA of `self` came into existence: the first mapping (`vm_ops->mapped`), or a copy
    /// made by a split, `fork()` or `mremap()` (`vm_ops->open`). Each is matched by one
    /// [`PfnMapHandler::vma_closed`].
    fn vma_opened(&self) {}

    /// A VMA of `self` is being removed (`vm_ops->close`).
    fn vma_closed(&self) {}

    /// A user of a VMA of `self` (VFIO type1, for a device) took a hold on its frames
    /// (`vm_ops->pfnmap_hold`). Each is matched by one [`PfnMapHandler::dma_released`].
    fn dma_held(&self) {}

    /// A hold [`PfnMapHandler::dma_held`] counted is gone.
    fn dma_released(&self) {}
}

/// The VMA operations of a PFN-map VMA whose faults go to `T`.
struct PfnMapVTable<T: PfnMapHandler>(PhantomData<T>);

impl<T: PfnMapHandler> PfnMapVTable<T> {
    const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        huge_fault: Some(Self::huge_fault),
        pfnmap_hold: Some(Self::pfnmap_hold),
        mapped: Some(Self::mapped),
        open: Some(Self::open),
        close: Some(Self::close),
        ..pin_init::zeroed()
    };

    /// `pfnmap_hold`: returns a new file that holds a reference to the VMA's file.
    ///
    /// A user that keeps the frames it finds in the VMA after the mapping may be gone (VFIO
    /// type1 maps them into an IOMMU) calls it and holds the file for as long as it uses them.
    /// A handler maps only frames its file owns for as long as the file lives (the rule of
    /// this module), so while the hold is kept the frames are neither freed nor handed to
    /// anyone else. The handler hears of each hold ([`PfnMapHandler::dma_held`]) and of its
    /// end ([`PfnMapHandler::dma_released`]), so that it can refuse what a device's access
    /// would break (`extmem_dma_hold()` in `devif/helpers.c` makes the file).
    ///
    /// # Safety
    ///
    /// Called by mm's users with a valid `vma` whose `vm_ops` is [`Self::VM_OPS`], holding the
    /// mmap lock.
    unsafe extern "C" fn pfnmap_hold(vma: *mut bindings::vm_area_struct) -> *mut bindings::file {
        // SAFETY: As in `huge_fault`: `vm_private_data` is a `&T` that outlives the VMA.
        let owner = unsafe { (*vma).vm_private_data };
        // SAFETY: As above.
        let handler = unsafe { &*owner.cast::<T>() };
        let mut made = false;
        // The VMA keeps its reference to `vm_file` (not NULL: only a file's `mmap_prepare`
        // installs `VM_OPS`) under the mmap lock; a hold takes its own, which keeps the
        // handler (owned by the file) alive until `dma_hold_released` has run.
        // SAFETY: `vm_file` is valid as said, `owner` is the handler, `made` is writable.
        let file = unsafe {
            bindings::extmem_dma_hold(
                (*vma).vm_file,
                owner,
                Some(Self::dma_hold_released),
                &mut made,
            )
        };
        // Counted while the VMA (and the mmap lock) still holds: before the VMA can close.
        if made {
            handler.dma_held();
        }
        file
    }

    /// The last reference to a hold [`Self::pfnmap_hold`] made is gone.
    ///
    /// # Safety
    ///
    /// Called by `extmem_dma_hold()`'s release with the `owner` `pfnmap_hold` gave it, a `&T`
    /// that the held file still keeps alive.
    unsafe extern "C" fn dma_hold_released(owner: *const c_void) {
        // SAFETY: The caller guarantees `owner` is a live `T`.
        let handler = unsafe { &*owner.cast::<T>() };
        handler.dma_released();
    }

    /// `mapped`: the VMA a `mmap()` made exists; tells the handler. Never fails (a failure
    /// would unmap the VMA and call `close` for a VMA `mapped` did not count).
    ///
    /// # Safety
    ///
    /// Called by mm once for a new VMA made from a descriptor that [`VmaDesc::set_pfnmap`]
    /// set up, with `vm_private_data` pointing to that VMA's private data.
    unsafe extern "C" fn mapped(
        _start: c_ulong,
        _end: c_ulong,
        _pgoff: c_ulong,
        _file: *const bindings::file,
        vm_private_data: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: mm passes a valid pointer to the VMA's private data, which
        // `VmaDesc::set_pfnmap::<T>` set to a `&T` that outlives the VMA.
        let handler = unsafe { &*(*vm_private_data).cast::<T>() };
        handler.vma_opened();
        0
    }

    /// `open`: a copy of a VMA of the handler exists (split, `fork()`, `mremap()`).
    ///
    /// # Safety
    ///
    /// Called by mm with a valid VMA whose `vm_ops` is [`Self::VM_OPS`].
    unsafe extern "C" fn open(vma: *mut bindings::vm_area_struct) {
        // SAFETY: As in `huge_fault`: `vm_private_data` is a `&T` that outlives the VMA, and
        // copies of a VMA copy it.
        let handler = unsafe { &*(*vma).vm_private_data.cast::<T>() };
        handler.vma_opened();
    }

    /// `close`: a VMA of the handler is being removed.
    ///
    /// # Safety
    ///
    /// As for [`Self::open`].
    unsafe extern "C" fn close(vma: *mut bindings::vm_area_struct) {
        // SAFETY: As in `open`.
        let handler = unsafe { &*(*vma).vm_private_data.cast::<T>() };
        handler.vma_closed();
    }

    /// `fault`: a PTE-sized [`Self::huge_fault`].
    ///
    /// # Safety
    ///
    /// As for [`Self::huge_fault`].
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: Same contract as `huge_fault`, for order 0.
        unsafe { Self::huge_fault(vmf, 0) }
    }

    /// `huge_fault`: calls the handler.
    ///
    /// # Safety
    ///
    /// Called by mm with a valid `vmf` for a VMA whose `vm_ops` is [`Self::VM_OPS`], holding
    /// the mmap lock or the VMA's lock for reading.
    unsafe extern "C" fn huge_fault(
        vmf: *mut bindings::vm_fault,
        order: c_uint,
    ) -> bindings::vm_fault_t {
        // SAFETY: mm passes a valid `vm_fault` and holds the lock the type's invariant needs
        // for the duration of this call; the VMA has `VM_PFNMAP` and is not a COW mapping,
        // because only `VmaDesc::set_pfnmap` installs `VM_OPS`, and it sets up exactly that.
        let fault = unsafe { PfnFault::from_raw(vmf) };
        // SAFETY: `VmaDesc::set_pfnmap::<T>` stored a `&T` as `vm_private_data` along with
        // `VM_OPS`, and the `T` outlives every VMA made from the descriptor (the invariant of
        // `VmaDesc`). Splitting a VMA copies both fields.
        let handler = unsafe { &*(*fault.vma().as_ptr()).vm_private_data.cast::<T>() };
        handler.huge_fault(&fault, Order(order)).0
    }
}

/// A page fault in a PFN-map VMA (`struct vm_fault`).
///
/// # Invariants
///
/// `vmf` is a valid `vm_fault` for `'a`, passed by mm to the fault handler of a VMA that has
/// `VM_PFNMAP` set and is not a COW mapping, and mm holds the mmap lock or the VMA's lock for
/// reading for `'a`.
pub(crate) struct PfnFault<'a> {
    vmf: NonNull<bindings::vm_fault>,
    _p: PhantomData<&'a bindings::vm_fault>,
}

impl<'a> PfnFault<'a> {
    /// Creates a [`PfnFault`] from mm's `vmf`.
    ///
    /// # Safety
    ///
    /// - `vmf` must be a valid `vm_fault` that mm passed to a fault handler, for `'a`;
    /// - its VMA must have `VM_PFNMAP` set and must not be a COW mapping;
    /// - the mmap lock or the VMA's lock must be held for reading for `'a`.
    unsafe fn from_raw(vmf: *mut bindings::vm_fault) -> Self {
        // INVARIANT: The caller guarantees the conditions.
        Self {
            // SAFETY: The caller guarantees `vmf` is valid, hence not NULL.
            vmf: unsafe { NonNull::new_unchecked(vmf) },
            _p: PhantomData,
        }
    }

    fn raw(&self) -> &bindings::vm_fault {
        // SAFETY: By the type invariant `vmf` is valid for `'a`; mm does not change the
        // fields read here while the handler runs.
        unsafe { self.vmf.as_ref() }
    }

    /// Returns the faulting VMA.
    pub(crate) fn vma(&self) -> &VmaRef {
        // SAFETY: By the type invariant the VMA is valid and its lock is held for reading for
        // `'a`, which outlives the returned reference.
        unsafe { VmaRef::from_raw(self.raw().__bindgen_anon_1.vma) }
    }

    /// Returns the faulting user address (not aligned).
    pub(crate) fn address(&self) -> usize {
        self.raw().__bindgen_anon_1.address
    }

    /// Returns whether the fault is a write access.
    pub(crate) fn is_write(&self) -> bool {
        self.raw().flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0
    }

    /// Returns the VMA's offset into its file, in pages (`vm_pgoff`).
    pub(crate) fn vma_pgoff(&self) -> usize {
        // SAFETY: By the type invariant the VMA is valid and its lock is held; `vm_pgoff`
        // does not change under a read lock.
        unsafe { (*self.vma().as_ptr()).vm_pgoff }
    }

    /// Removes every entry of the faulting VMA in the `size` bytes at user address `addr`
    /// (`zap_vma_range()`): to take back an entry this fault inserted that must not
    /// stay. Does nothing if the range is not wholly inside the VMA.
    pub(crate) fn zap(&self, addr: usize, size: usize) {
        self.vma().zap_vma_range(addr, size);
    }

    /// Test only (`CONFIG_EXTMEM_TEST_KNOBS`, debugfs `extmem/hold_fault`): holds the fault
    /// here while the knob asks for it, so that a test can have a memory failure land between
    /// the handler's poisoned check and its insert. Does nothing in other kernels.
    pub(crate) fn test_hold(&self) {
        #[cfg(CONFIG_EXTMEM_TEST_KNOBS)]
        // SAFETY: `extmem_test_hold_fault()` only reads and writes a knob and may sleep,
        // which a fault handler may.
        unsafe {
            bindings::extmem_test_hold_fault()
        };
    }

    /// Returns whether the `order`-aligned block of virtual space around the faulting address
    /// lies inside the VMA.
    fn block_in_vma(&self, order: Order) -> bool {
        let Some(size) = order.bytes() else {
            return false;
        };
        let addr = self.address() & !(size - 1);
        let vma = self.vma();
        addr >= vma.start() && addr.checked_add(size).is_some_and(|end| end <= vma.end())
    }

    /// Maps page `pfn` at user address `addr` with a PTE (`vmf_insert_pfn()`).
    ///
    /// Returns `VM_FAULT_NOPAGE` on success (also if another thread mapped it first),
    /// [`FaultResult::SIGBUS`] if `addr` is outside the VMA, `VM_FAULT_OOM` if no page table
    /// could be allocated.
    pub(crate) fn insert_pfn(&self, addr: usize, pfn: Pfn) -> FaultResult {
        // SAFETY: By the type invariant the VMA is a valid `VM_PFNMAP`, non-COW VMA and the
        // fault path holds the lock `vmf_insert_pfn()` needs; it checks `addr` itself.
        FaultResult(unsafe { bindings::vmf_insert_pfn(self.vma().as_ptr(), addr, pfn.raw()) })
    }

    /// Maps the 2 MiB at `pfn` with a PMD leaf at the PMD-aligned faulting address
    /// (`vmf_insert_pfn_pmd()`).
    ///
    /// Returns [`FaultResult::FALLBACK`] if that PMD is not wholly inside the VMA or `pfn` is
    /// not PMD-aligned.
    pub(crate) fn insert_pfn_pmd(&self, pfn: Pfn) -> FaultResult {
        if !self.block_in_vma(Order::PMD) || !pfn.is_aligned(Order::PMD) {
            return FaultResult::FALLBACK;
        }
        // SAFETY: By the type invariant `vmf` is a valid fault of a `VM_PFNMAP`, non-COW VMA
        // with the needed lock held; the PMD lies inside the VMA and `pfn` is aligned.
        FaultResult(unsafe {
            bindings::vmf_insert_pfn_pmd(self.vmf.as_ptr(), pfn.raw(), self.is_write())
        })
    }

    /// Maps the 1 GiB at `pfn` with a PUD leaf at the PUD-aligned faulting address
    /// (`vmf_insert_pfn_pud()`).
    ///
    /// Returns [`FaultResult::FALLBACK`] if that PUD is not wholly inside the VMA, `pfn` is
    /// not PUD-aligned or the CPU cannot map 1 GiB pages.
    pub(crate) fn insert_pfn_pud(&self, pfn: Pfn) -> FaultResult {
        if !self.block_in_vma(Order::PUD) || !pfn.is_aligned(Order::PUD) || !has_gbpages() {
            return FaultResult::FALLBACK;
        }
        // SAFETY: As for `insert_pfn_pmd`, for a PUD, on a CPU that maps 1 GiB pages.
        FaultResult(unsafe {
            bindings::vmf_insert_pfn_pud(self.vmf.as_ptr(), pfn.raw(), self.is_write())
        })
    }
}

/// Returns whether the CPU can map 1 GiB pages.
fn has_gbpages() -> bool {
    // SAFETY: `extmem_has_gbpages()` only reads the boot CPU's feature bits.
    unsafe { bindings::extmem_has_gbpages() }
}

/// A VMA being set up by `f_op->mmap_prepare` (`struct vm_area_desc`).
///
/// The VMA does not exist yet: mm creates it from the descriptor after `mmap_prepare` returns
/// 0, and drops the descriptor otherwise.
///
/// # Invariants
///
/// - `desc` is valid for reads and writes while the object exists, and is the descriptor mm
///   passed to a file's `mmap_prepare`, which is running;
/// - data that lives for `'a` lives as long as every VMA made from the descriptor (in
///   practice: `'a` is the lifetime of the file's private data, and each VMA holds the file).
pub(crate) struct VmaDesc<'a> {
    desc: NonNull<bindings::vm_area_desc>,
    // Invariant in `'a`: a descriptor must not pass for one with a shorter `'a`.
    _p: PhantomData<(&'a mut &'a (), &'a mut bindings::vm_area_desc)>,
}

impl<'a> VmaDesc<'a> {
    /// Creates a [`VmaDesc`] for mm's `desc`.
    ///
    /// # Safety
    ///
    /// - `desc` must be the descriptor mm passed to `mmap_prepare`, valid for reads and writes
    ///   until the object is dropped, which must happen before `mmap_prepare` returns;
    /// - data that lives for `'a` must live as long as every VMA made from `desc`.
    pub(crate) unsafe fn from_raw(desc: *mut bindings::vm_area_desc) -> Self {
        // INVARIANT: The caller guarantees the conditions.
        Self {
            // SAFETY: The caller guarantees `desc` is valid, hence not NULL.
            desc: unsafe { NonNull::new_unchecked(desc) },
            _p: PhantomData,
        }
    }

    fn raw(&self) -> &bindings::vm_area_desc {
        // SAFETY: By the type invariant `desc` is valid for reads.
        unsafe { self.desc.as_ref() }
    }

    /// Returns the first user address of the VMA.
    pub(crate) fn start(&self) -> usize {
        self.raw().start
    }

    /// Returns the user address just past the VMA.
    pub(crate) fn end(&self) -> usize {
        self.raw().end
    }

    /// Returns the VMA's length in pages.
    pub(crate) fn pages(&self) -> usize {
        (self.end() - self.start()) >> PAGE_SHIFT
    }

    /// Returns the VMA's offset into the file, in pages (`vm_pgoff`).
    pub(crate) fn pgoff(&self) -> usize {
        self.raw().pgoff
    }

    /// Makes the VMA a `VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP` mapping whose faults
    /// go to `handler`.
    ///
    /// Fails with `EINVAL` for a copy-on-write mapping (private and possibly writable):
    /// `VM_PFNMAP` memory has no `struct page` to copy.
    pub(crate) fn set_pfnmap<T: PfnMapHandler>(&mut self, handler: &'a T) -> Result {
        // SAFETY: By the type invariant `desc` is a valid descriptor; the helper only reads
        // its flags.
        if unsafe { bindings::extmem_vma_desc_is_cow(self.desc.as_ptr()) } {
            return Err(EINVAL);
        }
        // `vm_ops` and `vm_private_data` become the VMA's: `handler` lives as long as every
        // such VMA (the invariant on `'a`), which is what `PfnMapVTable::huge_fault` relies
        // on, and the flags make the VMA a non-COW `VM_PFNMAP` one, which `PfnFault` relies on.
        // SAFETY: By the type invariant `desc` is valid for writes and `mmap_prepare` is
        // running, so nothing else reads or writes it; what is stored is sound as said above.
        unsafe {
            let desc = self.desc.as_ptr();
            (*desc).vm_ops = &PfnMapVTable::<T>::VM_OPS;
            (*desc).private_data = core::ptr::from_ref(handler).cast_mut().cast();
            bindings::extmem_vma_desc_set_pfnmap(desc);
        }
        Ok(())
    }
}
