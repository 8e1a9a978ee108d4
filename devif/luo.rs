// SPDX-License-Identifier: GPL-2.0

//! The LUO file handler of allocation fds (compatible `"extmem-v1"`), registered by the
//! module's init when the pool has areas.
//!
//! An allocation fd preserved in a `/dev/liveupdate` session is identified by its physical
//! base address, which is also the `serialized_data` LUO hands to the next kernel (with
//! [`PRIVATE`] set for an allocation a guest_memfd made private). Preserving
//! records the allocation in the pool's `preserved` list and rewrites the handover state
//! ([`crate::kho::update`]) before it succeeds; `freeze`, during `reboot()`, refuses the kexec
//! if that state is stale and cannot be written. In the next kernel, retrieving returns a
//! new allocation fd for the same memory, with its contents; `finish` frees what was never
//! retrieved.

use crate::devif::{new_file, Allocation};
use crate::handover;
use crate::kho;
use crate::pool;
use crate::wrappers::luo::{FileHandler, Registration};
use core::sync::atomic::Ordering;
use kernel::fs::File;
use kernel::prelude::*;
use kernel::sync::aref::ARef;

/// Most allocations preserved at once; the handover buffer is sized for them.
pub(crate) const MAX_PRESERVED: usize = 2048;

/// `EXTMEM_LUO_PRIVATE`: set in a file's `serialized_data` (a page-aligned physical address)
/// when a guest_memfd made the allocation private; the next kernel's allocation is private
/// from the start, so that a guest's private memory is never mappable by the host.
const PRIVATE: u64 = 1;

fn label_str(label: &[u8]) -> &str {
    let end = label.iter().position(|&b| b == 0).unwrap_or(label.len());
    core::str::from_utf8(label.get(..end).unwrap_or(&[])).unwrap_or("?")
}

/// Copies a label; the kernel's `c_char` is `u8`.
fn label_bytes(label: &[c_char]) -> [u8; handover::LABEL_LEN] {
    let mut out = [0u8; handover::LABEL_LEN];
    for (o, &c) in out.iter_mut().zip(label) {
        *o = c;
    }
    out
}

/// Returns the allocation behind `file` if it is an allocation fd.
fn allocation(file: &File) -> Option<&Allocation> {
    Allocation::of(file)
}

/// Returns whether `alloc` is preserved for the next kernel.
pub(crate) fn is_preserved(alloc: &Allocation) -> bool {
    pool::get().is_some_and(|pool| pool.preserved.lock().iter().any(|x| x.phys == alloc.phys()))
}

/// The LUO file handler of allocation fds.
pub(crate) struct AllocationFd;

impl FileHandler for AllocationFd {
    /// `EXTMEM_LUO_COMPATIBLE` of `include/linux/kho/abi/extmem.h`: the format of the
    /// file's `serialized_data` (the physical address), not that of the handover.
    const COMPATIBLE: &'static CStr = c"extmem-v1";

    fn can_preserve(file: &File) -> bool {
        allocation(file).is_some()
    }

    /// Records the allocation for the next kernel; its identity is its physical address.
    fn preserve(file: &File) -> Result<u64> {
        let alloc = allocation(file).ok_or(EINVAL)?;
        let pool = pool::get().ok_or(ENODEV)?;
        if alloc.area.quarantined.is_some() {
            return Err(EIO);
        }
        if crate::gmem::has_holes(alloc) {
            pr_info!("preserve refused: a guest_memfd punched holes in the allocation\n");
            return Err(EBUSY);
        }
        let rec = handover::Alloc {
            phys: alloc.phys(),
            len: alloc.len,
            area: alloc.area.idx as u32,
            nid: alloc.area.nid as u32,
            label: label_bytes(&alloc.label),
        };
        // Preserved only once the handover state holds it.
        kho::update(pool, true, |preserved, _| {
            if preserved.iter().any(|x| x.phys == rec.phys) {
                return Err(EBUSY);
            }
            if preserved.len() >= MAX_PRESERVED {
                pr_err!("cannot preserve more than {} allocations\n", MAX_PRESERVED);
                return Err(ENOSPC);
            }
            preserved.push(rec, GFP_KERNEL)?;
            // `gmem::bind()` refuses a preserved allocation, so this stays true or false.
            let private = alloc.private.load(Ordering::SeqCst);
            Ok(rec.phys | if private { PRIVATE } else { 0 })
        })
    }

    /// Forgets the allocation.
    fn unpreserve(file: &File, _data: u64) {
        let (Some(alloc), Some(pool)) = (allocation(file), pool::get()) else {
            return;
        };
        let _ = kho::update(pool, false, |preserved, _| {
            if let Some(i) = preserved.iter().position(|x| x.phys == alloc.phys()) {
                let _ = preserved.remove(i);
            }
            Ok(())
        });
    }

    /// Refuses the kexec if the handover state is not current and cannot be written now.
    fn freeze(_data: u64) -> Result {
        kho::freeze(pool::get().ok_or(ENODEV)?)
    }

    /// Returns a new allocation fd for the preserved allocation at physical address `data`
    /// (private if `data` says so).
    fn retrieve(data: u64) -> Result<ARef<File>> {
        let private = data & PRIVATE != 0;
        let data = data & !PRIVATE;
        let pool = pool::get().ok_or(ENODEV)?;
        let mut incoming = pool.incoming.lock();
        let Some(x) = incoming.iter_mut().find(|x| x.phys == data) else {
            pr_err!("retrieve: no preserved allocation at {:#x}\n", data);
            return Err(ENOENT);
        };
        let area = pool.areas().get(x.area).ok_or(ENOENT)?;
        if area.quarantined.is_some() {
            pr_err!(
                "retrieve: allocation at {:#x} ({}) lies in quarantined area {}\n",
                data,
                label_str(&x.label),
                area.idx
            );
            return Err(EIO);
        }
        if x.done {
            return Err(ENOENT);
        }
        let mut label = [0; _];
        for (l, &b) in label.iter_mut().zip(&x.label) {
            *l = b;
        }
        // INVARIANT: the restored allocator holds the range for this entry alone, and `done`
        // hands that ownership to the new object.
        let alloc = Allocation::new(area, x.phys - area.base, x.len, label);
        // Before the file exists: nothing can map it in between.
        alloc.private.store(private, Ordering::SeqCst);
        x.done = true;
        new_file(KBox::new(alloc, GFP_KERNEL)?)
    }

    /// Frees a preserved allocation that was never retrieved.
    fn finish(data: u64, retrieved: bool) {
        if retrieved {
            return;
        }
        let data = data & !PRIVATE;
        let Some(pool) = pool::get() else {
            return;
        };
        let mut incoming = pool.incoming.lock();
        let Some(x) = incoming.iter_mut().find(|x| x.phys == data && !x.done) else {
            return;
        };
        x.done = true;
        if let Some(area) = pool.areas().get(x.area) {
            area.free(x.phys - area.base, x.len);
            pr_info!(
                "preserved allocation at {:#x} ({}, {} KiB) was not retrieved; freed\n",
                x.phys,
                label_str(&x.label),
                x.len >> 10
            );
        }
    }
}

/// Registers the file handler if the pool has areas; logs why it could not be registered,
/// unless live update is off.
pub(crate) fn register() -> Option<Pin<KBox<Registration<AllocationFd>>>> {
    match pool::get() {
        Some(pool) if !pool.areas().is_empty() => {}
        _ => return None,
    }
    match KBox::pin_init(Registration::register(), GFP_KERNEL) {
        Ok(reg) => Some(reg),
        Err(e) => {
            if e != EOPNOTSUPP {
                pr_err!("cannot register the LUO file handler ({})\n", e.to_errno());
            }
            None
        }
    }
}
