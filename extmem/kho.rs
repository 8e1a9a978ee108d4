// SPDX-License-Identifier: GPL-2.0

//! Kernel glue of the kexec handover (KHO): what extmem reads from the previous kernel and
//! writes for the next one. The format is [`crate::handover`].
//!
//! Incoming, in three steps:
//!
//! 1. `boot.c`, first thing in `mm_core_init_early()`, finds the `"extmem"` KHO subtree and
//!    calls `extmem_handover_areas()` ([`handover_areas`]), which validates the blob and
//!    returns its areas; they are carved at exactly the same physical addresses, whatever
//!    `extmem=` says.
//! 2. At `device_initcall`, [`Restore`] rebuilds each area's allocator from its serialised
//!    state. An area whose state fails validation, or does not hold exactly the preserved
//!    allocations and sticky regions the blob lists, is quarantined: all of it stays
//!    allocated, none of it is ever handed out, sysfs says why.
//! 3. The preserved allocations wait in the pool's `incoming` list until the LUO file handler
//!    (`devif/luo.rs`) retrieves them or the session finishes without them, which frees them.
//!    The sticky regions wait in `incoming_regions` until `devif/region.rs` makes their devices
//!    again, at the module's init. The blob itself ([`kho_blob::Restored`]) is freed once the
//!    pool is built.
//!
//! If `boot.c` rejects the state as a whole, it falls back on the area record
//! ([`crate::handover_areas`], subtree `"extmem-areas"`, written once when the pool is built):
//! it carves the areas listed there and the pool quarantines every one of them.
//!
//! Outgoing: when the pool is built, [`outgoing`] publishes the area record and preserves a
//! buffer and publishes it as the subtree, and the state in it is kept current from then on:
//! every change to the allocations preserved in LUO sessions or to the sticky regions goes
//! through [`update`], which rewrites it (allocating nothing) before the change counts. The LUO file handler's `freeze`, during
//! `reboot(LINUX_REBOOT_CMD_KEXEC)`, calls [`freeze`], which refuses the kexec if the state is
//! stale and cannot be written; the reboot notifier (`devif/luo.c`) only logs what is handed
//! over ([`extmem_handover_write`]).
//!
//! The entry points C calls with pointers are in [`crate::wrappers::c_entry`].

use crate::bitalloc::BitAlloc;
use crate::handover::{self, Handover, Limits};
use crate::pool::{self, Area, Meta, UNIT_SHIFT};
use crate::wrappers::c_entry::Request;
use crate::wrappers::carveout;
use crate::wrappers::kho_blob;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::time::{Instant, Monotonic};

/// Allocations of one handover that a LUO session can retrieve.
pub(crate) struct Incoming {
    /// Physical base address: the allocation's identity in the LUO session.
    pub(crate) phys: u64,
    /// Length in bytes.
    pub(crate) len: u64,
    /// Index of its area in the pool.
    pub(crate) area: usize,
    /// Label given at allocation.
    pub(crate) label: [u8; handover::LABEL_LEN],
    /// Retrieved, or freed by `finish`: the entry no longer owns the range.
    pub(crate) done: bool,
}

/// A sticky region of the previous kernel and the pool index of its area.
pub(crate) type IncomingRegion = (handover::Region, usize);

fn limits() -> Limits {
    Limits {
        granule: carveout::GRANULE,
        max_nodes: carveout::MAX_NODES,
    }
}

fn label_str(label: &[u8]) -> &str {
    let end = label.iter().position(|&b| b == 0).unwrap_or(label.len());
    core::str::from_utf8(label.get(..end).unwrap_or(&[])).unwrap_or("?")
}

/// Validates the handed-over state `bytes` for `boot.c` (through `extmem_handover_areas()`,
/// [`crate::wrappers::c_entry`]) and stores its areas in `out`.
///
/// Returns the number of areas stored, or `-EINVAL` after logging why the state is rejected.
pub(crate) fn handover_areas(
    bytes: &[u8],
    max_nodes: u32,
    granule: u64,
    out: &mut [Request],
) -> c_int {
    let h = match handover::parse(bytes, &Limits { granule, max_nodes }) {
        Ok(h) => h,
        Err(e) => {
            pr_err!(
                "the previous kernel's state is rejected ({}); its allocations cannot be located\n",
                e.as_str()
            );
            return EINVAL.to_errno();
        }
    };
    let mut n = 0;
    for (i, slot) in out.iter_mut().enumerate().take(h.nr_areas()) {
        let Some(a) = h.area(i) else {
            break;
        };
        *slot = Request {
            size: a.size,
            phys: a.base,
            nid: a.nid,
            index: i as u32,
            fixed: true,
            handover: true,
        };
        n += 1;
    }
    n
}

/// Validates the previous kernel's area record `bytes` (the `"extmem-areas"` subtree,
/// [`crate::handover_areas`]) for `boot.c`, after it rejected the state, and stores its areas
/// in `out` (through `extmem_handover_area_record()`, [`crate::wrappers::c_entry`]).
///
/// Returns the number of areas stored, or `-EINVAL` after logging why the record is rejected.
pub(crate) fn recorded_areas(
    bytes: &[u8],
    max_nodes: u32,
    granule: u64,
    out: &mut [Request],
) -> c_int {
    let rec = match crate::handover_areas::parse(bytes, granule, max_nodes) {
        Ok(r) if r.len() <= out.len() => r,
        Ok(_) => {
            pr_crit!("the previous kernel's area record lists too many areas\n");
            return EINVAL.to_errno();
        }
        Err(e) => {
            pr_crit!(
                "the previous kernel's area record is rejected too ({})\n",
                e.as_str()
            );
            return EINVAL.to_errno();
        }
    };
    let mut n = 0;
    for (i, (slot, a)) in out.iter_mut().zip(rec.areas()).enumerate() {
        *slot = Request {
            size: a.size,
            phys: a.base,
            nid: a.nid,
            index: i as u32,
            fixed: true,
            handover: true,
        };
        n += 1;
    }
    n
}

/// A restored area: its allocator, the number of preserved allocations it holds, and why it is
/// quarantined, if it is.
pub(crate) type Restored = (pool::Alloc, u64, Option<&'static CStr>);

/// Returns the allocator of area `idx` (`units` units) quarantined for `reason`, built in
/// `storage`: every unit held, so that nothing of the area is ever handed out.
pub(crate) fn quarantine(
    idx: usize,
    storage: Meta,
    units: u64,
    reason: &'static CStr,
) -> Result<Restored> {
    let mut b = BitAlloc::new(storage, units).map_err(|_| EINVAL)?;
    b.alloc_at(0, units).map_err(|_| EINVAL)?;
    pr_err!(
        "area {}: quarantined, its {} MiB stay reserved and are never handed out\n",
        idx,
        (units << UNIT_SHIFT) >> 20
    );
    Ok((b, 0, Some(reason)))
}

/// The handed-over state while the pool is being built.
pub(crate) struct Restore<'a> {
    h: Handover<'a>,
    start: Instant<Monotonic>,
}

impl<'a> Restore<'a> {
    /// Starts restoring from `blob`, the handed-over state `boot.c` carved the areas from
    /// ([`carveout::take_handover_state`]).
    pub(crate) fn begin(blob: &'a kho_blob::Restored) -> Option<Self> {
        let start = Instant::<Monotonic>::now();
        // `boot.c` already validated it; this cannot fail unless memory changed under us.
        let h = handover::parse(blob.as_bytes(), &limits()).ok()?;
        Some(Restore { h, start })
    }
}

impl Restore<'_> {
    fn handover_index(idx: usize) -> Option<usize> {
        carveout::handover_index(idx)
    }

    /// Rebuilds the allocator of pool area `idx` (`units` units) in `storage`.
    ///
    /// Returns the allocator, the number of preserved allocations it holds, and the reason the
    /// area is quarantined, if it is.
    pub(crate) fn area_allocator(&self, idx: usize, storage: Meta, units: u64) -> Result<Restored> {
        let Some(ho) = Self::handover_index(idx) else {
            return Ok((BitAlloc::new(storage, units).map_err(|_| EINVAL)?, 0, None));
        };
        if let Some(reason) = carveout::handover_mismatch(idx) {
            return quarantine(idx, storage, units, reason);
        }
        let base = self.h.area(ho).map_or(0, |a| a.base);
        // What the area must hold: its preserved allocations and sticky regions, as runs of
        // units, sorted and joined where they touch.
        let allocs = (0..self.h.nr_allocs())
            .filter_map(|i| self.h.alloc(i))
            .filter(|x| x.area as usize == ho)
            .map(|x| (x.phys, x.len));
        let regions = (0..self.h.nr_regions())
            .filter_map(|i| self.h.region(i))
            .filter(|r| r.area as usize == ho)
            .map(|r| (r.phys, r.len));
        let mut want = KVec::new();
        for (phys, len) in Iterator::chain(allocs, regions) {
            want.push(((phys - base) >> UNIT_SHIFT, len >> UNIT_SHIFT), GFP_KERNEL)?;
        }
        let count = want.len() as u64;
        want.sort_unstable();
        let state = self.h.area_state(ho);
        let reason = match state.map(|s| BitAlloc::restore(storage, units, s)) {
            // The state's runs are maximal and sorted (`restore` checked them): they must be
            // the preserved ranges exactly, in O(n log n) whatever the area's size.
            Some(Ok(b)) if same_runs(&want, state.unwrap_or(&[])) => {
                return Ok((b, count, None));
            }
            Some(Ok(_)) => {
                pr_err!(
                    "area {}: handed-over allocator state does not hold exactly the preserved allocations and regions\n",
                    idx
                );
                c"state does not match the preserved allocations"
            }
            Some(Err(e)) => {
                pr_err!(
                    "area {}: handed-over allocator state rejected: {}\n",
                    idx,
                    e.as_str()
                );
                c"handed-over allocator state rejected"
            }
            None => c"handed-over allocator state missing",
        };
        // `restore` consumed the storage: the quarantined allocator gets the heap's.
        let words = crate::bitalloc::storage_words(units).ok_or(EINVAL)?;
        quarantine(
            idx,
            Meta::Heap(KVVec::from_elem(0u64, words, GFP_KERNEL)?),
            units,
            reason,
        )
    }

    /// Returns the preserved allocations of the areas that were restored.
    pub(crate) fn incoming(&self, areas: &[Area]) -> Result<KVec<Incoming>> {
        let mut list = KVec::new();
        for x in (0..self.h.nr_allocs()).filter_map(|i| self.h.alloc(i)) {
            let Some(area) = areas
                .iter()
                .find(|a| Self::handover_index(a.idx) == Some(x.area as usize))
            else {
                pr_err!(
                    "preserved allocation at {:#x} ({}): its area was not carved; dropped\n",
                    x.phys,
                    label_str(&x.label)
                );
                continue;
            };
            list.push(
                Incoming {
                    phys: x.phys,
                    len: x.len,
                    area: area.idx,
                    label: x.label,
                    // An allocation in a quarantined area cannot be handed out.
                    done: area.quarantined.is_some(),
                },
                GFP_KERNEL,
            )?;
        }
        Ok(list)
    }

    /// Returns the sticky regions of the areas that were restored, each with the pool index
    /// of its area. A region in a quarantined area is not made again: its memory stays held
    /// with the rest of the area.
    pub(crate) fn regions(&self, areas: &[Area]) -> Result<KVec<IncomingRegion>> {
        let mut list = KVec::new();
        for r in (0..self.h.nr_regions()).filter_map(|i| self.h.region(i)) {
            let name = handover::region_name(&r.name).unwrap_or("?");
            let Some(area) = areas
                .iter()
                .find(|a| Self::handover_index(a.idx) == Some(r.area as usize))
            else {
                pr_err!(
                    "sticky region {} at {:#x}: its area was not carved; dropped\n",
                    name,
                    r.phys
                );
                continue;
            };
            if area.quarantined.is_some() {
                pr_err!(
                    "sticky region {} lies in quarantined area {}; not made again, its memory stays reserved\n",
                    name,
                    area.idx
                );
                continue;
            }
            list.push((r, area.idx), GFP_KERNEL)?;
        }
        Ok(list)
    }

    /// Logs what was restored; the caller frees the blob afterwards.
    pub(crate) fn finish(self, areas: &[Area], incoming: &[Incoming], regions: &[IncomingRegion]) {
        let ns = self.start.elapsed().as_nanos();
        let bytes: u64 = incoming.iter().filter(|x| !x.done).map(|x| x.len).sum();
        let quarantined = areas.iter().filter(|a| a.quarantined.is_some()).count();
        pr_info!(
            "restored {} area(s) from the previous kernel, {} preserved allocation(s) of {} MiB waiting for retrieval, {} sticky region(s) of {} MiB, {} quarantined, in {} us\n",
            areas.len() - quarantined,
            incoming.iter().filter(|x| !x.done).count(),
            bytes >> 20,
            regions.len(),
            regions.iter().map(|(r, _)| r.len).sum::<u64>() >> 20,
            quarantined,
            ns / 1000
        );
    }
}

/// Returns true if the runs of the allocator state `state` (sorted and maximal) are exactly
/// the ranges `want` (sorted, `(start, count)` in units) joined where they touch.
fn same_runs(want: &[(u64, u64)], state: &[u8]) -> bool {
    let mut got = handover::area_state_runs(state);
    let mut i = 0;
    while i < want.len() {
        let Some(&(start, mut count)) = want.get(i) else {
            return false;
        };
        i += 1;
        while let Some(&(s, c)) = want.get(i) {
            if s != start.saturating_add(count) {
                break;
            }
            count = count.saturating_add(c);
            i += 1;
        }
        if got.next() != Some((start, count)) {
            return false;
        }
    }
    got.next().is_none()
}

/// Bytes of the outgoing buffer: room for the areas, [`crate::luo::MAX_PRESERVED`]
/// allocations and the allocator states.
const OUTGOING_SIZE: usize = kernel::sizes::SZ_256K;

// The largest state fits: the tables, and per area a state header and a run per allocation
// and region (plus one for a quarantined area).
const _: () = {
    use crate::bitalloc::{STATE_HEADER_LEN, STATE_RUN_LEN};
    use crate::luo::MAX_PRESERVED;
    use crate::wrappers::uapi::MAX_REGIONS;
    let tables = handover::HEADER_LEN
        + handover::MAX_AREAS * handover::AREA_LEN
        + MAX_PRESERVED * handover::ALLOC_LEN
        + MAX_REGIONS * handover::REGION_LEN;
    let states = handover::MAX_AREAS * (STATE_HEADER_LEN + STATE_RUN_LEN)
        + (MAX_PRESERVED + MAX_REGIONS) * STATE_RUN_LEN;
    assert!(tables + states <= OUTGOING_SIZE);
};

/// The state for the next kernel, kept current: every change to what is handed over rewrites
/// it before the change is committed ([`update`]), so a kexec never has to write it.
pub(crate) struct OutgoingState {
    /// The preserved buffer, published as the `"extmem"` KHO subtree.
    blob: kho_blob::Preserved,
    /// Room for the runs of an area's state (every preserved allocation and sticky region,
    /// and one more), allocated when the pool is built: writing allocates nothing.
    runs: KVec<(u64, u64)>,
    /// False after a rewrite failed: the buffer is older than the lists (it holds more than
    /// they do, see [`update`]), and the next kexec is refused until a rewrite succeeds.
    current: bool,
    /// Bytes used by the last state written.
    len: usize,
    /// The area record (`"extmem-areas"`), written once, kept published for the next kernel.
    _areas: Option<kho_blob::Preserved>,
}

/// The state for the next kernel, locked. Lock order: before the pool's `preserved`.
pub(crate) type Outgoing = Pin<KBox<Mutex<OutgoingState>>>;

/// Preserves the buffer for the next kernel and publishes it as the `"extmem"` KHO subtree, if
/// KHO is enabled; logs why allocations will not survive a kexec if that fails.
pub(crate) fn outgoing(areas: &[Area]) -> Option<Outgoing> {
    if !kho_blob::enabled() {
        return None;
    }
    let max_runs = crate::luo::MAX_PRESERVED + crate::wrappers::uapi::MAX_REGIONS + 1;
    let runs = KVec::with_capacity(max_runs, GFP_KERNEL);
    let blob = runs
        .map_err(Error::from)
        .and_then(|runs| Ok((kho_blob::Preserved::alloc(OUTGOING_SIZE)?, runs)));
    let (mut blob, runs) = match blob {
        Ok(b) => b,
        Err(e) => {
            pr_err!(
                "no handover buffer ({}); allocations will not survive kexec\n",
                e.to_errno()
            );
            return None;
        }
    };
    // `EXTMEM_KHO_NODE_NAME` of `include/linux/kho/abi/extmem.h`.
    if let Err(e) = blob.publish(c"extmem") {
        pr_err!("cannot publish the handover state ({})\n", e.to_errno());
        return None;
    }
    let state = OutgoingState {
        blob,
        runs,
        current: false,
        len: 0,
        _areas: area_record(areas),
    };
    KBox::pin_init(new_mutex!(state, "extmem_outgoing"), GFP_KERNEL).ok()
}

/// Bytes of the area record: a page, far more than [`crate::handover_areas::MAX_AREAS`] need.
const AREA_RECORD_SIZE: usize = 4096;

/// Writes the area record and publishes it as the `"extmem-areas"` KHO subtree (see
/// [`crate::handover_areas`]); logs what it means if that fails.
fn area_record(areas: &[Area]) -> Option<kho_blob::Preserved> {
    let list = areas.iter().map(|a| crate::handover_areas::Area {
        base: a.base,
        size: a.size,
        nid: a.nid as u32,
    });
    let made = kho_blob::Preserved::alloc(AREA_RECORD_SIZE).and_then(|mut b| {
        crate::handover_areas::write(b.as_bytes_mut(), list).map_err(|_| EINVAL)?;
        // `EXTMEM_KHO_AREAS_NODE` of `include/linux/kho/abi/extmem.h`.
        b.publish(c"extmem-areas")?;
        Ok(b)
    });
    match made {
        Ok(b) => Some(b),
        Err(e) => {
            pr_err!(
                "no area record for the next kernel ({}); if it rejects the state, the areas' memory may reach its page allocator\n",
                e.to_errno()
            );
            None
        }
    }
}

/// The test-only knobs of `devif/luo.c` (`CONFIG_EXTMEM_TEST_KNOBS`).
fn knobs() -> u32 {
    // SAFETY: `extmem_handover_test_knobs()` only reads three flags.
    unsafe { kernel::bindings::extmem_handover_test_knobs() }
}

/// Writes the areas, `preserved` and `sticky` into `st`'s buffer, without allocating.
///
/// With the test knobs (`knobs`) `EXTMEM_KNOB_CORRUPT`, damages area 0's allocator state
/// afterwards, with `EXTMEM_KNOB_CORRUPT_HEADER` the header's checksum.
fn write(
    pool: &pool::Pool,
    st: &mut OutgoingState,
    preserved: &[handover::Alloc],
    sticky: &[handover::Region],
    knobs: u32,
) -> core::result::Result<usize, handover::Error> {
    let empty = handover::Area {
        base: 0,
        size: 0,
        nid: 0,
        unit_shift: 0,
        state_off: 0,
        state_len: 0,
    };
    let mut recs = [empty; handover::MAX_AREAS];
    let n = pool.areas().len();
    for (rec, a) in recs.iter_mut().zip(pool.areas()) {
        *rec = handover::Area {
            base: a.base,
            size: a.size,
            nid: a.nid as u32,
            unit_shift: UNIT_SHIFT,
            state_off: 0,
            state_len: 0,
        };
    }
    let areas = recs.get(..n).ok_or(handover::Error::NoRoom)?;
    let OutgoingState {
        blob, runs, len, ..
    } = st;
    let out = blob.as_bytes_mut();
    let used = handover::write(out, areas, preserved, sticky, |i, buf| {
        let Some(a) = pool.areas().get(i) else {
            return Err(handover::Error::NoRoom);
        };
        let units = a.size >> UNIT_SHIFT;
        runs.clear();
        if a.quarantined.is_some() {
            // Keep a quarantined area quarantined in the next kernel too.
            runs.push_within_capacity((0, units))
                .map_err(|_| handover::Error::NoRoom)?;
        } else {
            let allocs = preserved
                .iter()
                .filter(|x| x.area as usize == i)
                .map(|x| (x.phys, x.len));
            let regions = sticky
                .iter()
                .filter(|r| r.area as usize == i)
                .map(|r| (r.phys, r.len));
            for (phys, len) in Iterator::chain(allocs, regions) {
                let run = ((phys - a.base) >> UNIT_SHIFT, len >> UNIT_SHIFT);
                runs.push_within_capacity(run)
                    .map_err(|_| handover::Error::NoRoom)?;
            }
        }
        // From the run list: O(n log n) for n runs, whatever the area's size.
        handover::write_area_state(units, runs, buf)
    })?;
    if knobs & kernel::bindings::EXTMEM_KNOB_CORRUPT_HEADER != 0 {
        // The checksum field, header bytes 56..64 (`crate::handover`).
        if let Some(b) = out.get_mut(56) {
            *b ^= 0x5a;
            pr_warn!("test knob: damaged the checksum of the handed-over state's header\n");
        }
    }
    if knobs & kernel::bindings::EXTMEM_KNOB_CORRUPT != 0 {
        if let Some(byte) = handover::parse(out, &limits())
            .ok()
            .and_then(|h| h.area(0))
            .and_then(|a| usize::try_from(a.state_off + 20).ok())
        {
            if let Some(b) = out.get_mut(byte) {
                *b ^= 0x5a;
                pr_warn!("test knob: damaged the handed-over allocator state of area 0\n");
            }
        }
    }
    *len = used;
    Ok(used)
}

/// Applies `change` to the lists of what is handed over (preserved allocations, sticky
/// regions) and rewrites the state for the next kernel, all under the locks (the outgoing
/// state, then `preserved`, then `sticky`).
///
/// With `adds`, `change` only appends: if the state cannot be rewritten, the appended entries
/// are dropped again, the error is logged and `ENOSPC` returned, so that nothing is ever
/// preserved without being in the state. Otherwise `change` only removes: a failed rewrite
/// leaves the older state, which holds more memory than the lists (never less), and marks it
/// stale, which refuses the next kexec ([`freeze`]) until a rewrite succeeds.
pub(crate) fn update<T>(
    pool: &pool::Pool,
    adds: bool,
    change: impl FnOnce(&mut KVec<handover::Alloc>, &mut KVec<handover::Region>) -> Result<T>,
) -> Result<T> {
    let mut st = pool.outgoing.as_ref().map(|o| o.lock());
    let mut preserved = pool.preserved.lock();
    let mut sticky = pool.sticky.lock();
    let (np, ns) = (preserved.len(), sticky.len());
    let v = change(&mut preserved, &mut sticky)?;
    let Some(st) = st.as_deref_mut() else {
        return Ok(v);
    };
    match write(pool, st, &preserved, &sticky, 0) {
        Ok(_) => {
            st.current = true;
            Ok(v)
        }
        Err(e) if adds => {
            preserved.truncate(np);
            sticky.truncate(ns);
            pr_err!(
                "cannot write the handover state: {}; not preserved\n",
                e.as_str()
            );
            Err(ENOSPC)
        }
        Err(e) => {
            st.current = false;
            pr_err!(
                "cannot write the handover state: {}; it holds more than is preserved now, and a kexec is refused until it can be written\n",
                e.as_str()
            );
            Ok(v)
        }
    }
}

/// Writes the state for the next kernel as the lists are now (at pool build, so that the
/// areas and their quarantine are handed over even if nothing is ever preserved).
pub(crate) fn rewrite(pool: &pool::Pool) {
    let _ = update(pool, false, |_, _| Ok(()));
}

/// The last check before a kexec, from the LUO file handler's `freeze` (`devif/luo.rs`): fails
/// with a log line, which makes LUO refuse the kexec, if the state for the next kernel is not
/// current and cannot be written now. Allocates nothing.
pub(crate) fn freeze(pool: &pool::Pool) -> Result {
    let Some(outgoing) = &pool.outgoing else {
        pr_err!("kexec refused: no handover buffer, preserved allocations cannot reach the next kernel\n");
        return Err(ENODEV);
    };
    let knobs = knobs();
    let mut st = outgoing.lock();
    let preserved = pool.preserved.lock();
    let sticky = pool.sticky.lock();
    let corrupt = knobs
        & (kernel::bindings::EXTMEM_KNOB_CORRUPT | kernel::bindings::EXTMEM_KNOB_CORRUPT_HEADER)
        != 0;
    let fail = knobs & kernel::bindings::EXTMEM_KNOB_FAIL != 0;
    let result = if fail {
        Err(handover::Error::NoRoom)
    } else if !st.current || corrupt {
        write(pool, &mut st, &preserved, &sticky, knobs)
    } else {
        Ok(0)
    };
    match result {
        Ok(_) => {
            st.current = true;
            Ok(())
        }
        Err(e) => {
            st.current = false;
            pr_err!(
                "kexec refused: cannot write the handover state for the next kernel: {}{}\n",
                e.as_str(),
                if fail {
                    " (test knob fail_handover)"
                } else {
                    ""
                }
            );
            Err(ENOSPC)
        }
    }
}

/// For `devif/luo.c`'s reboot notifier when a kexec is under way: logs what is handed over,
/// and rewrites the state if it is stale (a kexec without preserved allocations has no
/// `freeze` to refuse it; the older state then holds more than the lists, never less).
/// Returns the bytes of state, or a negative errno (`-ENODEV` without a buffer).
#[export]
pub(crate) extern "C" fn extmem_handover_write() -> c_long {
    let Some(pool) = pool::get() else {
        return ENODEV.to_errno() as c_long;
    };
    let Some(outgoing) = &pool.outgoing else {
        return ENODEV.to_errno() as c_long;
    };
    let mut st = outgoing.lock();
    let preserved = pool.preserved.lock();
    let sticky = pool.sticky.lock();
    if !st.current {
        match write(pool, &mut st, &preserved, &sticky, 0) {
            Ok(_) => st.current = true,
            Err(e) => pr_err!(
                "cannot write the handover state: {}; the next kernel gets the previous one, which holds more than is preserved now\n",
                e.as_str()
            ),
        }
    }
    pr_info!(
        "handing over {} area(s), {} preserved allocation(s) and {} sticky region(s) ({} bytes of state)\n",
        pool.areas().len(),
        preserved.len(),
        sticky.len(),
        st.len
    );
    st.len as c_long
}
