// SPDX-License-Identifier: GPL-2.0

//! Memory failure (hwpoison) on extmem pfns.
//!
//! Each area is registered with `register_pfn_address_space()` when the pool is built
//! ([`register`]); `extmem/poison.c` says how. When `memory_failure()` hits one of its pfns,
//! allocated or free, the processes that map it and asked for early kill get `SIGBUS`
//! (`BUS_MCEERR_AO`) with its address, and
//! [`extmem_area_pfn_failed`] poisons the unit in the pool ([`Area::poison`]): it is never
//! handed out again, the rest of its allocation and of the area keep working. `poison.c` then
//! takes the pfn out of every user mapping; the fault handler (`devif/devif.rs`) refuses to map
//! a poisoned unit again (`SIGBUS`, `BUS_MCEERR_AR`) and maps around it with smaller entries.
//!
//! The poisoned units cross kexec in a KHO record of their own ([`crate::handover_poison`]),
//! rewritten on every new poisoned unit rather than at reboot; the next kernel fences them
//! while it builds its pool ([`restore`]), before anything can allocate.

use crate::handover_poison as record;
use crate::pool::{Area, Poisoned, Pool, UNIT, UNIT_SHIFT};
use crate::wrappers::{kho_blob, mf};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Mutex, SetOnce};

/// Bytes of the outgoing record: room for 510 poisoned units.
const RECORD_SIZE: usize = 4096;

/// The record for the next kernel, if KHO is enabled.
static OUTGOING: SetOnce<Pin<KBox<Mutex<kho_blob::Preserved>>>> = SetOnce::new();

/// Fences the units the previous kernel's record lists, in the areas being built; quarantines
/// every area if the record is incomplete or damaged (the units it lost are unknown).
pub(crate) fn restore(areas: &mut [Area]) {
    let Some(blob) = mf::take_incoming() else {
        return;
    };
    let why = match record::parse(blob.as_bytes(), UNIT) {
        Ok(r) if !r.overflow() => {
            let mut n = 0;
            for phys in r.units() {
                match areas
                    .iter()
                    .find(|a| phys >= a.base && phys - a.base < a.size)
                {
                    Some(a) => match a.poison((phys - a.base) >> UNIT_SHIFT) {
                        Ok(_) => {
                            pr_info!(
                                "area {}: poisoned unit at {:#x} fenced (previous kernel)\n",
                                a.idx,
                                phys
                            );
                            n += 1;
                        }
                        Err(e) => pr_err!(
                            "area {}: cannot fence the poisoned unit at {:#x} ({})\n",
                            a.idx,
                            phys,
                            e.to_errno()
                        ),
                    },
                    None => pr_err!(
                        "poisoned unit at {:#x} (previous kernel) is in no area of this one\n",
                        phys
                    ),
                }
            }
            pr_info!("{} poisoned unit(s) of the previous kernel fenced\n", n);
            return;
        }
        Ok(_) => c"the previous kernel's poison record is incomplete",
        Err(e) => {
            pr_err!(
                "the previous kernel's poison record is rejected: {}\n",
                e.as_str()
            );
            c"the previous kernel's poison record is rejected"
        }
    };
    for a in areas.iter_mut() {
        pr_err!(
            "area {}: quarantined: {}\n",
            a.idx,
            why.to_str().unwrap_or("?")
        );
        a.quarantine(why);
    }
}

/// Rewrites the record for the next kernel from the pool's poisoned units.
fn write_outgoing(pool: &Pool) {
    let Some(out) = OUTGOING.as_ref() else {
        return;
    };
    // Held throughout, so that a rewrite never replaces a newer one.
    let mut blob = out.lock();
    let total: u64 = pool.areas().iter().map(|a| a.nr_poisoned()).sum();
    let mut units = KVec::new();
    // A unit poisoned after this count is written by the rewrite it causes.
    if usize::try_from(total)
        .ok()
        .and_then(|n| units.reserve(n, GFP_KERNEL).ok())
        .is_none()
    {
        pr_err!("cannot rewrite the poison record for the next kernel\n");
        return;
    }
    for a in pool.areas() {
        a.poisoned_phys(&mut units);
    }
    if record::write(blob.as_bytes_mut(), units.iter().copied()).is_err() {
        pr_err!("cannot write the poison record for the next kernel\n");
    }
}

/// Sets up the record for the next kernel, if KHO is enabled, and writes what is poisoned now.
fn outgoing(pool: &Pool) {
    if !kho_blob::enabled() || pool.areas().is_empty() {
        return;
    }
    let made = kho_blob::Preserved::alloc(RECORD_SIZE).and_then(|mut b| {
        // A valid (empty) record from the start; `write_outgoing` fills it.
        let _ = record::write(b.as_bytes_mut(), core::iter::empty());
        b.publish(c"extmem-poison")?;
        KBox::pin_init(new_mutex!(b, "extmem_poison_record"), GFP_KERNEL)
    });
    match made {
        Ok(m) => {
            if OUTGOING.populate(m) {
                write_outgoing(pool);
            }
        }
        Err(e) => pr_err!(
            "no poison record for the next kernel ({}); poisoned units are not fenced after kexec\n",
            e.to_errno()
        ),
    }
    if let Some(pool) = crate::pool::get() {
        write_outgoing(pool);
    }
}

/// Registers every area of `pool` for memory failures and sets up the record for the next
/// kernel; logs what it cannot.
pub(crate) fn register(pool: &Pool) {
    outgoing(pool);
    for area in pool.areas() {
        if let Err(e) = mf::register_area(area.idx, area.base, area.size) {
            pr_err!(
                "area {}: not registered for memory failures ({}); a poisoned unit is not fenced\n",
                area.idx,
                e.to_errno()
            );
        }
    }
}

/// Poisons the unit of area `idx` at page frame `pfn` after a memory failure, for
/// `extmem/poison.c`; see `internal.h`.
#[export]
pub(crate) extern "C" fn extmem_area_pfn_failed(idx: u32, pfn: c_ulong) {
    let Some(area) = crate::pool::get().and_then(|p| p.areas().get(idx as usize)) else {
        return;
    };
    let Ok(phys) = u64::try_from(pfn).map(|p| p << UNIT_SHIFT) else {
        return;
    };
    let unit = phys.wrapping_sub(area.base) >> UNIT_SHIFT;
    match area.poison(unit) {
        Ok(Poisoned::WasFree) => pr_err!(
            "area {}: memory failure at {:#x}: the free unit is fenced, never handed out\n",
            area.idx,
            phys
        ),
        Ok(Poisoned::InUse) => {
            pr_err!(
                "area {}: memory failure at {:#x}: the unit is in use; its mappings are zapped and it stays fenced when freed\n",
                area.idx,
                phys
            );
            // A guest_memfd's memory is mapped by KVM, not by a user mapping the C side zaps.
            crate::gmem::memory_failure(phys);
        }
        Ok(Poisoned::Again) => return,
        Err(e) => pr_err!(
            "area {}: memory failure at {:#x}: cannot record it ({}); a unit in use returns to the pool when freed\n",
            area.idx,
            phys,
            e.to_errno()
        ),
    }
    if let Some(pool) = crate::pool::get() {
        write_outgoing(pool);
    }
}
