// SPDX-License-Identifier: GPL-2.0

//! Regions: named allocations that an operator creates and any process the mode allows opens
//! by path, the way a VMM opens a devdax device.
//!
//! `EXTMEM_IOC_REGION_CREATE` on `/dev/extmem` (`CAP_SYS_ADMIN`) takes a range from an area of
//! the requested node, zeroes it and makes the character device `/dev/extmem_region/<name>`
//! with the owner, group and mode asked for (the driver-core half is `devif/region.c`, reached
//! through [`crate::wrappers::chrdev`]). Opening the node gives a file that maps the region
//! `MAP_SHARED` through the very [`Allocation`] code of allocation fds (PUD / PMD / PTE
//! entries on fault) and answers `EXTMEM_IOC_INFO`. The memory stays, with its contents, until
//! `EXTMEM_IOC_REGION_DESTROY`, which is refused (`EBUSY`) while any file of the region is
//! open or mapped (a VFIO DMA mapping of the region holds its file too).
//!
//! A sticky region is also recorded in the pool's `sticky` list, which the kexec handover
//! writes ([`crate::kho`]); the next kernel finds it in `incoming_regions` and [`init`] makes
//! it again, same memory, name, owner and mode.
//!
//! Lock order: the region list, then the pool's `sticky` list.

use crate::devif::{extmem_ioc, ioctl_info, place, Allocation, NR_INFO};
use crate::handover::{self, NAME_LEN};
use crate::kho;
use crate::pool::{self, UNIT};
use crate::wrappers::anon_file::FileOps;
use crate::wrappers::cap::Capability;
use crate::wrappers::chrdev::{self, DevNode, DevNodeOps, DevNodeVTable, NodeInfo};
use crate::wrappers::numa::nr_node_ids;
use crate::wrappers::pfnmap::VmaDesc;
use crate::wrappers::uapi::{self, read_args, RegionArgs};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sizes::SizeConstants;
use kernel::sync::{Arc, Mutex, SetOnce, UniqueArc};

/// The alignment of a region created with alignment 0: 2 MiB, as devdax's default.
const DEFAULT_ALIGN: u64 = u64::SZ_2M;

/// A region: an allocation with a name, an owner and a mode.
///
/// # Invariants
///
/// - `name` is a valid region name (`handover::region_name` accepts it) and is the label of
///   `alloc`;
/// - `users` counts the [`RegionOpen`]s of the region;
/// - a sticky region is in the pool's `sticky` list (with this region's [`Region::record`])
///   while it is in the region list.
pub(crate) struct Region {
    /// The memory; its label is the region's name.
    alloc: Allocation,
    name: [u8; NAME_LEN],
    align: u64,
    uid: u32,
    gid: u32,
    mode: u32,
    sticky: bool,
    /// Open files of the region (a mapping holds its file).
    users: AtomicUsize,
    /// Set while `destroy` decides, and for good once the region is destroyed; an `open` that
    /// sees it fails.
    closing: AtomicBool,
}

impl Region {
    /// The record the kexec handover carries for this region.
    fn record(&self) -> handover::Region {
        handover::Region {
            phys: self.alloc.phys(),
            len: self.alloc.len,
            align: self.align,
            area: self.alloc.area.idx as u32,
            nid: self.alloc.area.nid as u32,
            uid: self.uid,
            gid: self.gid,
            mode: self.mode,
            name: self.name,
        }
    }

    fn node_info(&self) -> NodeInfo {
        NodeInfo {
            size: self.alloc.len,
            align: self.align,
            phys: self.alloc.phys(),
            nid: self.alloc.area.nid,
            uid: self.uid,
            gid: self.gid,
            mode: self.mode,
            sticky: self.sticky,
        }
    }
}

/// An open file of a region.
///
/// # Invariants
///
/// Counted in `region.users` for as long as it exists.
pub(crate) struct RegionOpen {
    region: Arc<Region>,
}

impl Drop for RegionOpen {
    fn drop(&mut self) {
        self.region.users.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The files of a region's device node.
pub(crate) struct RegionFile;

static REGION_FOPS: DevNodeVTable<RegionFile> = DevNodeVTable::new();

impl FileOps for RegionFile {
    type Ptr = KBox<RegionOpen>;

    fn ioctl(open: &RegionOpen, cmd: u32, arg: usize) -> Result<isize> {
        match extmem_ioc(cmd) {
            Some(NR_INFO) => ioctl_info(&open.region.alloc, arg).map(|()| 0),
            _ => Err(ENOTTY),
        }
    }

    fn mmap_prepare<'a>(open: &'a RegionOpen, desc: &mut VmaDesc<'a>) -> Result {
        open.region.alloc.mmap_prepare(desc)
    }
}

impl DevNodeOps for RegionFile {
    type Data = Region;

    fn area(region: &Arc<Region>) -> Option<usize> {
        Some(region.alloc.area.idx)
    }

    fn open(region: &Arc<Region>) -> Result<KBox<RegionOpen>> {
        region.users.fetch_add(1, Ordering::SeqCst);
        // INVARIANT: counted just above; on the error paths the count is given back.
        if region.closing.load(Ordering::SeqCst) {
            region.users.fetch_sub(1, Ordering::SeqCst);
            return Err(ENODEV);
        }
        KBox::new(
            RegionOpen {
                region: region.clone(),
            },
            GFP_KERNEL,
        )
        .map_err(|e| {
            region.users.fetch_sub(1, Ordering::SeqCst);
            e.into()
        })
    }

    fn size(open: &RegionOpen) -> u64 {
        open.region.alloc.len
    }

    fn vtable() -> &'static DevNodeVTable<Self> {
        &REGION_FOPS
    }
}

/// A region in the list, with its device.
struct Entry {
    // Dropped first: the device goes before the list's reference to the region.
    _node: DevNode<RegionFile>,
    region: Arc<Region>,
}

/// Every region, by name.
pub(crate) struct Regions {
    list: Pin<KBox<Mutex<KVec<Entry>>>>,
}

static REGIONS: SetOnce<Regions> = SetOnce::new();

fn regions() -> Result<&'static Regions> {
    REGIONS.as_ref().ok_or(ENODEV)
}

/// Copies a name from the UAPI; the kernel's `c_char` is `u8`.
fn name_bytes(name: &[c_char]) -> [u8; NAME_LEN] {
    let mut out = [0u8; NAME_LEN];
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    for (o, &c) in out.iter_mut().zip(name.iter().take(end)) {
        *o = c;
    }
    // A name without NUL stays invalid: its 32 bytes fill `out`, and `region_name` wants one.
    out
}

/// Makes the device of `region` and adds it to the list (locked as `list`); with `sticky`, also
/// to the pool's sticky list.
fn publish(list: &mut KVec<Entry>, region: Arc<Region>) -> Result {
    let pool = pool::get().ok_or(ENODEV)?;
    let name = CStr::from_bytes_until_nul(&region.name).map_err(|_| EINVAL)?;
    let node = DevNode::<RegionFile>::create(name, &region.node_info(), region.clone())?;
    list.push(
        Entry {
            _node: node,
            region: region.clone(),
        },
        GFP_KERNEL,
    )?;
    // INVARIANT: a sticky region enters the sticky list with the region list, or neither.
    if region.sticky {
        // The handover state is rewritten before the region counts as sticky.
        let rec = region.record();
        if let Err(e) = kho::update(pool, true, |_, sticky| Ok(sticky.push(rec, GFP_KERNEL)?)) {
            let _ = list.pop();
            return Err(e);
        }
    }
    Ok(())
}

/// Logs why a request was refused and returns `err`.
fn refuse(err: Error, name: &str, why: &str) -> Error {
    pr_info!("region {}: {}\n", name, why);
    err
}

/// `EXTMEM_IOC_REGION_CREATE`.
pub(crate) fn ioctl_create(arg: usize) -> Result<isize> {
    if !Capability::SYS_ADMIN.current_has() {
        pr_info!("region create: the caller does not have CAP_SYS_ADMIN\n");
        return Err(EPERM);
    }
    let (args, _) = read_args::<RegionArgs>(arg)?;
    let raw = name_bytes(&args.name);
    let Some(name) = handover::region_name(&raw) else {
        pr_info!("region create: the name is not 1 to 31 characters of [A-Za-z0-9._-] (not starting with '.')\n");
        return Err(EINVAL);
    };
    let align = match args.alignment {
        0 => DEFAULT_ALIGN,
        a => a,
    };
    let len = args.length;
    if args.reserved != [0; 2] || args.flags & !uapi::REGION_FLAGS != 0 {
        return Err(refuse(EINVAL, name, "unknown flags or reserved fields set"));
    }
    if !align.is_power_of_two() || !(UNIT..=u64::SZ_1G).contains(&align) {
        return Err(refuse(
            EINVAL,
            name,
            "alignment is not a power of two from 4 KiB to 1 GiB",
        ));
    }
    if len == 0 || !len.is_multiple_of(align) {
        return Err(refuse(
            EINVAL,
            name,
            "length is zero or not a multiple of the alignment",
        ));
    }
    if args.node < uapi::NODE_ANY || i64::from(args.node) >= i64::from(nr_node_ids()) {
        return Err(refuse(EINVAL, name, "no such node"));
    }
    if args.mode & !0o777 != 0 {
        return Err(refuse(EINVAL, name, "mode has bits other than 0777"));
    }
    let mode = if args.mode == 0 { 0o600 } else { args.mode };
    let Ok((uid, gid)) = chrdev::ids_from_user(args.uid, args.gid) else {
        return Err(refuse(EINVAL, name, "uid or gid has no mapping"));
    };
    let regions = regions()?;
    let mut list = regions.list.lock();
    if list.iter().any(|e| e.region.name == raw) {
        return Err(refuse(EEXIST, name, "the name is taken"));
    }
    if list.len() >= uapi::MAX_REGIONS {
        return Err(refuse(ENOSPC, name, "too many regions"));
    }
    let (area, offset) = match place(args.node, false, len, align) {
        Ok(placed) => placed,
        Err(e) if e == ENODEV => return Err(refuse(e, name, "the node has no extmem area")),
        Err(e) => {
            pr_info!(
                "region {}: no free {} MiB range aligned to {} KiB on node {}\n",
                name,
                len >> 20,
                align >> 10,
                args.node
            );
            return Err(e);
        }
    };
    // INVARIANT: `place()` allocated the range for this allocation alone.
    let alloc = Allocation::new(area, offset, len, raw);
    let region = Arc::new(
        Region {
            alloc,
            name: raw,
            align,
            uid,
            gid,
            mode,
            sticky: args.flags & uapi::REGION_STICKY != 0,
            users: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
        },
        GFP_KERNEL,
    )?;
    // On failure the last reference to `region` goes, and its memory with it.
    publish(&mut list, region).inspect_err(|e| {
        pr_info!(
            "region {}: cannot make its device ({})\n",
            name,
            e.to_errno()
        );
    })?;
    let sticky = if args.flags & uapi::REGION_STICKY != 0 {
        ", sticky"
    } else {
        ""
    };
    pr_info!(
        "region {}: {} MiB on node {} at alignment {} KiB, {:o} {}:{}{}\n",
        name,
        len >> 20,
        area.nid,
        align >> 10,
        mode,
        uid,
        gid,
        sticky
    );
    Ok(0)
}

/// `EXTMEM_IOC_REGION_DESTROY`.
pub(crate) fn ioctl_destroy(arg: usize) -> Result<isize> {
    if !Capability::SYS_ADMIN.current_has() {
        pr_info!("region destroy: the caller does not have CAP_SYS_ADMIN\n");
        return Err(EPERM);
    }
    let (args, _) = read_args::<RegionArgs>(arg)?;
    let raw = name_bytes(&args.name);
    let Some(name) = handover::region_name(&raw) else {
        pr_info!("region destroy: not a valid region name\n");
        return Err(EINVAL);
    };
    if args.flags != 0
        || args.length != 0
        || args.alignment != 0
        || args.node != 0
        || args.uid != 0
        || args.gid != 0
        || args.mode != 0
        || args.reserved != [0; 2]
    {
        return Err(refuse(EINVAL, name, "destroy takes only a name"));
    }
    let regions = regions()?;
    let mut list = regions.list.lock();
    let Some(i) = list.iter().position(|e| e.region.name == raw) else {
        return Err(refuse(ENOENT, name, "no such region"));
    };
    let region = list.get(i).map(|e| e.region.clone()).ok_or(ENOENT)?;
    region.closing.store(true, Ordering::SeqCst);
    if region.users.load(Ordering::SeqCst) != 0 {
        region.closing.store(false, Ordering::SeqCst);
        return Err(refuse(EBUSY, name, "still open or mapped"));
    }
    if region.sticky {
        if let Some(pool) = pool::get() {
            // Rewritten before the memory can be freed below.
            let _ = kho::update(pool, false, |_, sticky| {
                if let Some(j) = sticky.iter().position(|r| r.phys == region.alloc.phys()) {
                    let _ = sticky.remove(j);
                }
                Ok(())
            });
        }
    }
    let entry = list.remove(i)?;
    drop(list);
    // Removes the device; the memory is freed with the last reference to the region.
    drop(entry);
    pr_info!("region {}: destroyed\n", name);
    Ok(0)
}

/// Makes the region list and the regions the previous kernel handed over. Called once, from
/// the module's init, after the pool is built.
pub(crate) fn init() -> Result<&'static Regions> {
    let list = KBox::pin_init(new_mutex!(KVec::new(), "extmem_regions"), GFP_KERNEL)?;
    if !REGIONS.populate(Regions { list }) {
        return Err(EBUSY);
    }
    let regions = regions()?;
    let Some(pool) = pool::get() else {
        return Ok(regions);
    };
    let incoming = core::mem::take(&mut *pool.incoming_regions.lock());
    let mut list = regions.list.lock();
    for (r, idx) in incoming {
        let name = handover::region_name(&r.name).unwrap_or("?");
        let Some(area) = pool.areas().get(idx) else {
            continue;
        };
        // Never free memory the previous kernel handed over on an error: without the slot,
        // no `Allocation` is made and the restored allocator keeps holding the range.
        let Ok(slot) = UniqueArc::<Region>::new_uninit(GFP_KERNEL) else {
            pr_err!(
                "sticky region {}: out of memory; its {} MiB stay reserved\n",
                name,
                r.len >> 20
            );
            continue;
        };
        // INVARIANT: the restored allocator holds the range for this region alone (the
        // handover lists each range once).
        let alloc = Allocation::new(area, r.phys - area.base, r.len, r.name);
        let region: Arc<Region> = slot
            .write(Region {
                alloc,
                name: r.name,
                align: r.align,
                uid: r.uid,
                gid: r.gid,
                mode: r.mode,
                sticky: true,
                users: AtomicUsize::new(0),
                closing: AtomicBool::new(false),
            })
            .into();
        let keep = region.clone();
        match publish(&mut list, region) {
            Ok(()) => {
                drop(keep);
                pr_info!(
                    "sticky region {} made again from the previous kernel\n",
                    name
                );
            }
            Err(e) => {
                // Keep the memory held: the region is never dropped.
                core::mem::forget(keep);
                pr_err!(
                    "sticky region {}: cannot make its device ({}); its {} MiB stay reserved\n",
                    name,
                    e.to_errno(),
                    r.len >> 20
                );
            }
        }
    }
    Ok(regions)
}
