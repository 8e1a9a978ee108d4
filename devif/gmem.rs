// SPDX-License-Identifier: GPL-2.0

//! An allocation as the memory of a KVM guest_memfd (`GUEST_MEMFD_FLAG_EXTMEM`).
//!
//! `KVM_CREATE_GUEST_MEMFD` with `GUEST_MEMFD_FLAG_EXTMEM` names an allocation fd; guest_memfd
//! (`virt/kvm/guest_memfd.c`, patches/0013) holds a reference to its file for the life of the
//! guest_memfd's inode and calls the `extmem_gmem_*` entry points of `include/linux/extmem.h`
//! (in [`crate::wrappers::c_entry`]), which land here:
//!
//! - [`bind`]: the allocation becomes private for good. It must not be mapped, nor mapped for
//!   DMA by a device through a mapping that is gone (a VFIO hold) (`EBUSY`), and
//!   it can no longer be mapped or faulted in ([`Allocation::private`]); one guest_memfd at a
//!   time (`EBUSY`); the guest_memfd's size must be the allocation's length (`EINVAL`). Its
//!   contents are kept: that is how a guest's private memory survives a kexec.
//! - [`pfn`]: page `index` is the frame at `phys + index * PAGE_SIZE`, with no `struct page`;
//!   the order returned is the largest (up to 1 GiB) whose naturally aligned block of frames
//!   around it lies inside the allocation and has no hole and no poisoned unit, so KVM maps
//!   it with one entry. A poisoned page is `EHWPOISON`, which KVM passes to the VMM.
//! - [`punch_hole`]: the range is zeroed and given back to the area's allocator; sysfs shows
//!   it free. Its poisoned units are neither zeroed nor given back: they stay held for good.
//!   A hole touched again is taken back whole (but those units) if its frames are still free
//!   (zeroed), else the access fails with `ENOMEM`.
//! - [`attach`]: KVM's hook to drop the guest's mappings of a page; [`memory_failure`] calls
//!   it when a unit of the allocation is poisoned.
//! - [`unbind`]: the guest_memfd is gone; the allocation stays private. Its memory, minus the
//!   holes, is freed when its last file reference goes ([`free_around_holes`]).
//!
//! The lock of [`GmemState`] orders binding, holes and lookups; guest_memfd's invalidation
//! lock (held around punch_hole) keeps KVM from using a frame being punched.

use crate::devif::Allocation;
use crate::pool::UNIT;
use crate::wrappers::c_entry::GmemHook;
use core::sync::atomic::Ordering;
use kernel::fs::File;
use kernel::new_mutex;
use kernel::page::PAGE_SHIFT;
use kernel::prelude::*;
use kernel::sync::{Mutex, SetOnce};

/// `log2` of the largest block [`pfn`] reports (1 GiB in pages).
const MAX_ORDER: u32 = 30 - PAGE_SHIFT as u32;
/// `log2` of 2 MiB in pages.
const PMD_ORDER: u32 = 21 - PAGE_SHIFT as u32;

/// What a guest_memfd did to an allocation.
pub(crate) struct GmemState {
    /// A guest_memfd is bound now.
    bound: bool,
    /// The holes punched and not taken back: page ranges `[start, end)` of the allocation,
    /// sorted, disjoint and not adjacent.
    holes: KVec<(u64, u64)>,
}

/// A bound allocation, for memory failures: its physical range and, once the guest_memfd's
/// inode exists, KVM's function to drop the guest's mappings of part of it.
struct Bound {
    /// The allocation's address: what [`unbind`] finds the entry by.
    key: usize,
    phys: u64,
    len: u64,
    hook: Option<GmemHook>,
}

/// Every bound allocation. Locked after nothing of extmem's, and held while a hook runs (which
/// takes guest_memfd's invalidation lock), so [`unbind`] waits for a running hook.
static BOUND: SetOnce<Pin<KBox<Mutex<KVec<Bound>>>>> = SetOnce::new();

fn bound_list() -> Result<&'static Mutex<KVec<Bound>>> {
    if let Some(l) = BOUND.as_ref() {
        return Ok(&**l);
    }
    let l = KBox::pin_init(new_mutex!(KVec::new(), "extmem_gmem_bound"), GFP_KERNEL)?;
    // Another bind may have won the race; its list is the one kept.
    let _ = BOUND.populate(l);
    BOUND.as_ref().map(|l| &**l).ok_or(ENOMEM)
}

fn key(alloc: &Allocation) -> usize {
    core::ptr::from_ref(alloc) as usize
}

fn state(alloc: &Allocation) -> Result<&Mutex<GmemState>> {
    if let Some(s) = alloc.gmem.as_ref() {
        return Ok(&**s);
    }
    let s = KBox::pin_init(
        new_mutex!(
            GmemState {
                bound: false,
                holes: KVec::new(),
            },
            "extmem_gmem"
        ),
        GFP_KERNEL,
    )?;
    // Another bind may have won the race; its state is the one kept.
    let _ = alloc.gmem.populate(s);
    alloc.gmem.as_ref().map(|s| &**s).ok_or(ENOMEM)
}

fn allocation(file: &File) -> Result<&Allocation> {
    Allocation::of(file).ok_or(EINVAL)
}

/// Binds the allocation behind `file` to a new guest_memfd of `size` bytes.
pub(crate) fn bind(file: &File, size: u64) -> Result {
    let Some(alloc) = Allocation::of(file) else {
        pr_info!("guest_memfd: the fd is not an extmem allocation\n");
        return Err(EINVAL);
    };
    if size != alloc.len {
        pr_info!(
            "guest_memfd: size {:#x} is not the allocation's length {:#x}\n",
            size,
            alloc.len
        );
        return Err(EINVAL);
    }
    // Room for the allocation's entry before anything changes.
    let mut list = bound_list()?.lock();
    list.reserve(1, GFP_KERNEL)?;
    let mut s = state(alloc)?.lock();
    if s.bound {
        pr_info!("guest_memfd: the allocation already backs a guest_memfd\n");
        return Err(EBUSY);
    }
    if crate::luo::is_preserved(alloc) && !alloc.private.load(Ordering::SeqCst) {
        // The next kernel would get it as ordinary, mappable memory.
        pr_info!("guest_memfd: the allocation is preserved for kexec; bind before preserving\n");
        return Err(EBUSY);
    }
    // `private` first, then `vmas`: a VMA counted after this load faults SIGBUS. Then the
    // holds of devices: each was taken through a VMA (under its mmap lock, before the VMA was
    // closed), so one that exists now is seen here; a new one needs a VMA, which can no
    // longer be made or faulted in.
    let was_private = alloc.private.swap(true, Ordering::SeqCst);
    let vmas = alloc.vmas.load(Ordering::SeqCst);
    let holds = alloc.dma_holds.load(Ordering::SeqCst);
    if vmas != 0 || holds != 0 {
        alloc.private.store(was_private, Ordering::SeqCst);
        pr_info!(
            "guest_memfd: the allocation is mapped ({} VMAs, {} DMA holds of devices); unmap it first\n",
            vmas,
            holds
        );
        return Err(EBUSY);
    }
    list.push_within_capacity(Bound {
        key: key(alloc),
        phys: alloc.phys(),
        len: alloc.len,
        hook: None,
    })
    .map_err(|_| ENOMEM)?;
    s.bound = true;
    Ok(())
}

/// Keeps KVM's `hook` for the allocation behind `file`, bound a moment ago, until [`unbind`].
pub(crate) fn attach(file: &File, hook: GmemHook) {
    let Some(alloc) = Allocation::of(file) else {
        return;
    };
    let Some(list) = BOUND.as_ref() else {
        return;
    };
    let mut list = list.lock();
    match list.iter_mut().find(|b| b.key == key(alloc)) {
        Some(b) => b.hook = Some(hook),
        None => pr_err!("guest_memfd: attached to an allocation that is not bound\n"),
    }
}

/// The guest_memfd bound to the allocation behind `file` is gone.
pub(crate) fn unbind(file: &File) {
    let Some(alloc) = Allocation::of(file) else {
        return;
    };
    if let Some(list) = BOUND.as_ref() {
        // The hook goes with the entry, after any call of it has returned.
        list.lock().retain(|b| b.key != key(alloc));
    }
    if let Some(s) = alloc.gmem.as_ref() {
        s.lock().bound = false;
    }
}

/// A memory failure poisoned the unit at `phys`: has KVM drop the guest's mappings of its page
/// in the allocation bound to a guest_memfd that holds it, if any. [`pfn`] refuses the page
/// from now on, so the guest's next access exits to the VMM with `EHWPOISON`. May sleep.
pub(crate) fn memory_failure(phys: u64) {
    let Some(list) = BOUND.as_ref() else {
        return;
    };
    let list = list.lock();
    for b in list.iter() {
        if phys >= b.phys && phys - b.phys < b.len {
            if let Some(hook) = &b.hook {
                let page = (phys - b.phys) >> PAGE_SHIFT;
                hook.invalidate(page, page + 1);
            }
        }
    }
}

/// Returns the frame of page `index` of the allocation behind `file` and the order of the
/// largest hole-free, naturally aligned block of frames around it inside the allocation.
pub(crate) fn pfn(file: &File, index: u64) -> Result<(u64, u32)> {
    let alloc = allocation(file)?;
    let pages = alloc.pages();
    if index >= pages {
        return Err(EINVAL);
    }
    let mut s = alloc.gmem.as_ref().ok_or(EINVAL)?.lock();
    if let Some(i) = s.holes.iter().position(|&(a, b)| a <= index && index < b) {
        let (a, b) = s.holes[i];
        let (offset, len) = (alloc.offset + a * UNIT, (b - a) * UNIT);
        if alloc.area.reclaim_part(offset, len).is_err() {
            pr_info!(
                "guest_memfd: hole {:#x}+{:#x} was given away; cannot touch it again\n",
                a * UNIT,
                len
            );
            return Err(ENOMEM);
        }
        if let Err(e) = alloc.area.clear(offset, len) {
            // A fatal signal stopped the zeroing: the hole stays a hole.
            let _ = alloc.area.free_part(offset, len);
            return Err(e);
        }
        s.holes.remove(i).map_err(|_| EINVAL)?;
    }
    // The frame's write-back memory type is reserved before KVM maps it (an allocation the
    // previous kernel preserved has not waited for it in an allocation).
    alloc.area.mapping()?;
    // A poisoned unit is never mapped again (KVM tells the VMM `EHWPOISON` for its gfn), and
    // no block reported holds one, so KVM maps around it with smaller entries.
    let unit0 = alloc.offset / UNIT;
    if alloc.area.is_poisoned(unit0 + index, 1) {
        return Err(EHWPOISON);
    }
    let pfn = (alloc.phys() >> PAGE_SHIFT) + index;
    let order = [MAX_ORDER, PMD_ORDER]
        .into_iter()
        .find(|&order| {
            let n = 1u64 << order;
            let Some(first) = index.checked_sub(pfn & (n - 1)) else {
                return false;
            };
            let end = first + n;
            end <= pages
                && !s.holes.iter().any(|&(a, b)| a < end && first < b)
                && !alloc.area.is_poisoned(unit0 + first, n)
        })
        .unwrap_or(0);
    Ok((pfn, order))
}

/// Zeroes pages `[start, end)` of the allocation behind `file` and gives them back to the
/// area's allocator.
pub(crate) fn punch_hole(file: &File, start: u64, end: u64) -> Result {
    let alloc = allocation(file)?;
    if start >= end || end > alloc.pages() {
        return Err(EINVAL);
    }
    if crate::luo::is_preserved(alloc) {
        pr_info!("guest_memfd: punch hole refused: the allocation is preserved for kexec\n");
        return Err(EBUSY);
    }
    let mut s = alloc.gmem.as_ref().ok_or(EINVAL)?.lock();
    // The new entry is the only growth; reserve it before anything is freed.
    s.holes.reserve(1, GFP_KERNEL)?;
    let give_back = |a: u64, b: u64| {
        let (offset, len) = (alloc.offset + a * UNIT, (b - a) * UNIT);
        // A fatal signal may stop the zeroing; whoever takes the range next zeroes it again
        // (`EXTMEM_IOC_ALLOC`, or a guest_memfd touching its hole).
        let _ = alloc.area.clear(offset, len);
        if alloc.area.free_part(offset, len).is_err() {
            pr_err!(
                "guest_memfd: hole {:#x}+{:#x} was not allocated\n",
                offset,
                len
            );
        }
    };
    let mut at = start;
    for &(a, b) in s.holes.iter() {
        if b <= at {
            continue;
        }
        if a >= end {
            break;
        }
        if a > at {
            give_back(at, a);
        }
        at = at.max(b);
    }
    if at < end {
        give_back(at, end);
    }
    let (mut lo, mut hi) = (start, end);
    s.holes.retain(|&mut (a, b)| {
        let apart = b < start || a > end;
        if !apart {
            lo = lo.min(a);
            hi = hi.max(b);
        }
        apart
    });
    let pos = s
        .holes
        .iter()
        .position(|&(a, _)| a > lo)
        .unwrap_or(s.holes.len());
    s.holes
        .insert_within_capacity(pos, (lo, hi))
        .map_err(|_| ENOMEM)
}

/// Returns whether a guest_memfd punched holes in `alloc` that it has not taken back.
pub(crate) fn has_holes(alloc: &Allocation) -> bool {
    alloc
        .gmem
        .as_ref()
        .is_some_and(|s| !s.lock().holes.is_empty())
}

/// Frees what `alloc` still owns if it has holes and returns true; false if it has none (the
/// caller frees the whole range).
pub(crate) fn free_around_holes(alloc: &Allocation) -> bool {
    let Some(s) = alloc.gmem.as_ref() else {
        return false;
    };
    let s = s.lock();
    if s.holes.is_empty() {
        return false;
    }
    let free = |from: u64, to: u64| {
        let _ = alloc
            .area
            .free_part(alloc.offset + from * UNIT, (to - from) * UNIT);
    };
    let mut at = 0;
    for &(a, b) in s.holes.iter() {
        if a > at {
            free(at, a);
        }
        at = b;
    }
    if at < alloc.pages() {
        free(at, alloc.pages());
    }
    alloc.area.forget_allocation();
    true
}
