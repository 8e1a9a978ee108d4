// SPDX-License-Identifier: GPL-2.0

//! The LUO file handler of allocation fds (compatible `"extmem-v1"`): its logic, called by the
//! C callbacks in `devif/luo.c`.
//!
//! An allocation fd preserved in a `/dev/liveupdate` session is identified by its physical
//! base address, which is also the `serialized_data` LUO hands to the next kernel. Preserving
//! records the allocation in the pool's `preserved` list, which the kexec reboot notifier
//! writes into the handover state ([`crate::kho`]). In the next kernel, retrieving returns a
//! new allocation fd for the same memory, with its contents; `finish` frees what was never
//! retrieved.

use crate::devif::{allocation_of, new_file, Allocation};
use crate::handover;
use crate::pool;
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::aref::ARef;

/// Most allocations preserved at once; the handover buffer is sized for them.
pub(crate) const MAX_PRESERVED: usize = 1024;

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

/// `can_preserve`: true for allocation fds.
///
/// # Safety
///
/// `file` must be a valid file the caller holds.
#[no_mangle]
pub(crate) unsafe extern "C" fn extmem_luo_can_preserve(file: *mut bindings::file) -> bool {
    // SAFETY: The caller guarantees `file` is valid and held.
    unsafe { allocation_of(file) }.is_some()
}

/// `preserve`: records the allocation for the next kernel and returns its identity.
///
/// # Safety
///
/// `file` must be a valid file the caller holds; `data` must be valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn extmem_luo_preserve(
    file: *mut bindings::file,
    data: *mut u64,
) -> c_int {
    // SAFETY: The caller guarantees `file` is valid and held.
    let Some(alloc) = (unsafe { allocation_of(file) }) else {
        return EINVAL.to_errno();
    };
    let Some(pool) = pool::get() else {
        return ENODEV.to_errno();
    };
    if alloc.area.quarantined.is_some() {
        return EIO.to_errno();
    }
    let mut preserved = pool.preserved.lock();
    if preserved.iter().any(|x| x.phys == alloc.phys()) {
        return EBUSY.to_errno();
    }
    if preserved.len() >= MAX_PRESERVED {
        pr_err!("cannot preserve more than {} allocations\n", MAX_PRESERVED);
        return ENOSPC.to_errno();
    }
    let rec = handover::Alloc {
        phys: alloc.phys(),
        len: alloc.len,
        area: alloc.area.idx as u32,
        nid: alloc.area.nid as u32,
        label: label_bytes(&alloc.label),
    };
    if preserved.push(rec, GFP_KERNEL).is_err() {
        return ENOMEM.to_errno();
    }
    // SAFETY: The caller guarantees `data` is valid for writes.
    unsafe { data.write(rec.phys) };
    0
}

/// `unpreserve`: forgets the allocation.
///
/// # Safety
///
/// `file` must be a valid file the caller holds.
#[no_mangle]
pub(crate) unsafe extern "C" fn extmem_luo_unpreserve(file: *mut bindings::file) {
    // SAFETY: The caller guarantees `file` is valid and held.
    let (Some(alloc), Some(pool)) = (unsafe { allocation_of(file) }, pool::get()) else {
        return;
    };
    let mut preserved = pool.preserved.lock();
    if let Some(i) = preserved.iter().position(|x| x.phys == alloc.phys()) {
        let _ = preserved.remove(i);
    }
}

/// `retrieve`: returns a new allocation fd for the preserved allocation `data`.
///
/// # Safety
///
/// `out` must be valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn extmem_luo_retrieve(
    data: u64,
    out: *mut *mut bindings::file,
) -> c_int {
    let Some(pool) = pool::get() else {
        return ENODEV.to_errno();
    };
    let mut incoming = pool.incoming.lock();
    let Some(x) = incoming.iter_mut().find(|x| x.phys == data) else {
        pr_err!("retrieve: no preserved allocation at {:#x}\n", data);
        return ENOENT.to_errno();
    };
    let Some(area) = pool.areas().get(x.area) else {
        return ENOENT.to_errno();
    };
    if area.quarantined.is_some() {
        pr_err!(
            "retrieve: allocation at {:#x} ({}) lies in quarantined area {}\n",
            data,
            label_str(&x.label),
            area.idx
        );
        return EIO.to_errno();
    }
    if x.done {
        return ENOENT.to_errno();
    }
    let mut label: [c_char; bindings::EXTMEM_LABEL_LEN as usize] = [0; _];
    for (l, &b) in label.iter_mut().zip(&x.label) {
        *l = b;
    }
    // INVARIANT: the restored allocator holds the range for this entry alone, and `done`
    // hands that ownership to the new object.
    let alloc = Allocation {
        area,
        offset: x.phys - area.base,
        len: x.len,
        label,
    };
    x.done = true;
    let file = match KBox::new(alloc, GFP_KERNEL)
        .map_err(Error::from)
        .and_then(new_file)
    {
        Ok(file) => file,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: The caller guarantees `out` is valid for writes; LUO takes over our reference.
    unsafe { out.write(ARef::into_raw(file).as_ptr().cast()) };
    0
}

/// `finish`: frees a preserved allocation that was never retrieved.
#[no_mangle]
pub(crate) extern "C" fn extmem_luo_finish(data: u64) {
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
