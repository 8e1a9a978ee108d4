// SPDX-License-Identifier: GPL-2.0

//! The pool state extmem hands to the next kernel across kexec: format, writer and validator.
//!
//! DOC: extmem KHO handover, compatible `"extmem-v2"` (`"extmem-v1"` is still read).
//!
//! This interface is a contract between the kernel that kexecs and the kernel it starts; a
//! change to it needs a new compatible string. The state is one physically contiguous blob,
//! preserved with `kho_alloc_preserve()` and published as the KHO subtree `"extmem"`. All
//! fields are little-endian and fixed-width; offsets are from the start of the blob:
//!
//! ```text
//! header (80 bytes; 64 in extmem-v1)
//!   0  compatible  [u8; 16]   "extmem-v2", NUL-padded
//!  16  header_len  u32        80 (extmem-v1: 64)
//!  20  nr_areas    u32        at most MAX_AREAS
//!  24  nr_allocs   u32        preserved allocations
//!  28  nr_regions  u32        sticky regions (extmem-v1: flags, 0)
//!  32  total_len   u64        bytes used, header included
//!  40  areas_off   u64        offset of the area table
//!  48  allocs_off  u64        offset of the allocation table
//!  56  checksum    u64        FNV-1a 64 of the header (this field as 0) and all tables
//!  64  regions_off u64        offset of the region table (extmem-v2 only)
//!  72  flags       u32        0 (extmem-v2 only)
//!  76  reserved    u32        0 (extmem-v2 only)
//! area record (48 bytes each)
//!   0  base        u64        physical base address
//!   8  size        u64        bytes
//!  16  nid         u32        NUMA node
//!  20  unit_shift  u32        log2 of the allocation unit (12)
//!  24  state_off   u64        offset of the area's allocator state (BitAlloc format)
//!  32  state_len   u64        its length
//!  40  reserved    u64        0
//! allocation record (64 bytes each)
//!   0  phys        u64        physical base address, the allocation's identity
//!   8  len         u64        bytes
//!  16  area        u32        index into the area table
//!  20  nid         u32        NUMA node
//!  24  label       [u8; 32]   NUL-terminated
//!  56  reserved    u64        0
//! region record (96 bytes each; extmem-v2 only)
//!   0  phys        u64        physical base address
//!   8  len         u64        bytes, a multiple of align
//!  16  align       u64        physical alignment: a power of two, unit to 1 GiB
//!  24  area        u32        index into the area table
//!  28  nid         u32        NUMA node (that of the area)
//!  32  uid         u32        owner of the device node (initial user namespace)
//!  36  gid         u32        group of the device node
//!  40  mode        u32        permission bits of the device node, at most 0o777
//!  44  flags       u32        0
//!  48  name        [u8; 32]   region_name() accepts it, NUL-padded
//!  80  reserved    [u64; 2]   0
//! ```
//!
//! The tables follow each other: areas at `header_len`, allocations right after them, regions
//! right after the allocations; the allocator states come after the last table. A sticky
//! region is held in its area's allocator state like a preserved allocation, and must not
//! overlap any allocation or other region; region names are unique.
//!
//! Each area's allocator state is the serialised [`crate::bitalloc::BitAlloc`] of that area
//! holding exactly the preserved allocations and sticky regions (which carries its own version
//! and checksum), so memory that was allocated but not preserved is free in the next kernel.
//!
//! [`parse`] checks every field and length before anything is trusted; a blob it accepts
//! describes disjoint, granule-aligned areas and disjoint allocations and regions inside them. Whether an
//! area's allocator state is sound is decided when it is restored (`BitAlloc::restore`), so one
//! damaged area can be quarantined while the others carry on.
//!
//! Pure core: no `unsafe`, no allocation, no kernel imports.

#![forbid(unsafe_code)]

/// The KHO subtree name.
pub const KHO_NODE: &str = "extmem";
/// The compatible string of the format [`write`] writes.
pub const COMPATIBLE: &str = "extmem-v2";
/// The compatible string of the first format (no regions), which [`parse`] still reads.
pub const COMPATIBLE_V1: &str = "extmem-v1";
/// Most areas a handover describes.
pub const MAX_AREAS: usize = 16;
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 80;
/// Size of the header of an `"extmem-v1"` state in bytes.
pub const HEADER_LEN_V1: usize = 64;
/// Size of one region record in bytes.
pub const REGION_LEN: usize = 96;
/// Length of a region name, NUL included.
pub const NAME_LEN: usize = 32;
/// Largest region alignment in bytes (1 GiB).
pub const MAX_REGION_ALIGN: u64 = 1 << 30;
/// Size of one area record in bytes.
pub const AREA_LEN: usize = 48;
/// Size of one allocation record in bytes.
pub const ALLOC_LEN: usize = 64;
/// Length of an allocation label, NUL included.
pub const LABEL_LEN: usize = 32;

/// Why a handover blob was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The blob is shorter than its header or than `total_len`.
    Short,
    /// The compatible string is not [`COMPATIBLE`].
    Compatible,
    /// A header field (length, count, flags, offset) is out of range.
    Header,
    /// The checksum does not match.
    Checksum,
    /// An area record is malformed, unaligned or overlaps another.
    Area,
    /// An allocation record is malformed, outside its area or overlaps another.
    Alloc,
    /// A region record is malformed, outside its area, overlaps an allocation or another
    /// region, or repeats a name.
    Region,
    /// The output buffer is too small for the state being written.
    NoRoom,
}

impl Error {
    /// Returns a short reason for log lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Short => "state shorter than its header says",
            Error::Compatible => "not an extmem-v1 state",
            Error::Header => "header field out of range",
            Error::Checksum => "checksum mismatch",
            Error::Area => "area record invalid or overlapping",
            Error::Alloc => "allocation record invalid or overlapping",
            Error::Region => "region record invalid, overlapping or a repeated name",
            Error::NoRoom => "state does not fit in the handover buffer",
        }
    }
}

/// An area as the handover describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// Physical base address in bytes.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// NUMA node.
    pub nid: u32,
    /// log2 of the allocation unit in bytes.
    pub unit_shift: u32,
    /// Offset of the allocator state in the blob.
    pub state_off: u64,
    /// Length of the allocator state in bytes.
    pub state_len: u64,
}

/// A preserved allocation as the handover describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alloc {
    /// Physical base address in bytes.
    pub phys: u64,
    /// Length in bytes.
    pub len: u64,
    /// Index of its area.
    pub area: u32,
    /// NUMA node.
    pub nid: u32,
    /// Label, NUL-terminated.
    pub label: [u8; LABEL_LEN],
}

/// A sticky region as the handover describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Physical base address in bytes.
    pub phys: u64,
    /// Length in bytes.
    pub len: u64,
    /// Physical alignment in bytes.
    pub align: u64,
    /// Index of its area.
    pub area: u32,
    /// NUMA node.
    pub nid: u32,
    /// Owner of the device node, in the initial user namespace.
    pub uid: u32,
    /// Group of the device node, in the initial user namespace.
    pub gid: u32,
    /// Permission bits of the device node.
    pub mode: u32,
    /// Name, NUL-padded.
    pub name: [u8; NAME_LEN],
}

/// Returns the name in `name` (NUL-padded, [`NAME_LEN`] bytes at most) if it is a valid
/// region name: 1 to `NAME_LEN - 1` bytes of `[A-Za-z0-9._-]`, not starting with `.`, then
/// only NUL bytes.
pub fn region_name(name: &[u8]) -> Option<&str> {
    if name.len() > NAME_LEN {
        return None;
    }
    let end = name.iter().position(|&b| b == 0)?;
    let (head, tail) = name.split_at(end);
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if head.is_empty() || head.first() == Some(&b'.') || !head.iter().all(ok) {
        return None;
    }
    if tail.iter().any(|&b| b != 0) {
        return None;
    }
    core::str::from_utf8(head).ok()
}

/// A validated handover blob.
#[derive(Clone, Copy, Debug)]
pub struct Handover<'a> {
    blob: &'a [u8],
    nr_areas: usize,
    nr_allocs: usize,
    nr_regions: usize,
    areas_off: usize,
    allocs_off: usize,
    regions_off: usize,
}

/// What the validator knows that the blob does not.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Areas and their sizes must be multiples of this many bytes.
    pub granule: u64,
    /// Node ids must be below this.
    pub max_nodes: u32,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

fn put_u32(b: &mut [u8], off: usize, v: u32) -> Option<()> {
    b.get_mut(off..off.checked_add(4)?)?
        .copy_from_slice(&v.to_le_bytes());
    Some(())
}

fn put_u64(b: &mut [u8], off: usize, v: u64) -> Option<()> {
    b.get_mut(off..off.checked_add(8)?)?
        .copy_from_slice(&v.to_le_bytes());
    Some(())
}

/// FNV-1a 64 over `parts`, with the checksum field (header bytes 56..64) read as zero.
fn checksum(blob: &[u8], tables_end: usize) -> Option<u64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &byte) in blob.get(..tables_end)?.iter().enumerate() {
        let byte = if (56..64).contains(&i) { 0 } else { byte };
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Some(h)
}

fn to_usize(v: u64) -> Result<usize, Error> {
    usize::try_from(v).map_err(|_| Error::Header)
}

/// Validates a handover blob (`"extmem-v2"` or `"extmem-v1"`). Nothing in it is trusted
/// before this returns `Ok`.
pub fn parse<'a>(blob: &'a [u8], limits: &Limits) -> Result<Handover<'a>, Error> {
    let first = blob.get(..HEADER_LEN_V1).ok_or(Error::Short)?;
    let compat = |c: &str| {
        let mut padded = [0u8; 16];
        padded[..c.len()].copy_from_slice(c.as_bytes());
        first.get(..16) == Some(&padded[..])
    };
    let v2 = if compat(COMPATIBLE) {
        true
    } else if compat(COMPATIBLE_V1) {
        false
    } else {
        return Err(Error::Compatible);
    };
    let header_len = if v2 { HEADER_LEN } else { HEADER_LEN_V1 };
    let header = blob.get(..header_len).ok_or(Error::Short)?;
    let field32 = |off| u32_at(header, off).ok_or(Error::Short);
    let field64 = |off| u64_at(header, off).ok_or(Error::Short);
    if field32(16)? as usize != header_len {
        return Err(Error::Header);
    }
    let nr_areas = field32(20)? as usize;
    let nr_allocs = field32(24)? as usize;
    // extmem-v1 has flags (0) where extmem-v2 counts its regions.
    let nr_regions = if v2 { field32(28)? as usize } else { 0 };
    let flags_ok = if v2 {
        field32(72)? == 0 && field32(76)? == 0
    } else {
        field32(28)? == 0
    };
    if !flags_ok {
        return Err(Error::Header);
    }
    let total = to_usize(field64(32)?)?;
    let areas_off = to_usize(field64(40)?)?;
    let allocs_off = to_usize(field64(48)?)?;
    if nr_areas > MAX_AREAS || total < header_len {
        return Err(Error::Header);
    }
    if total > blob.len() {
        return Err(Error::Short);
    }
    let areas_end = nr_areas
        .checked_mul(AREA_LEN)
        .and_then(|n| n.checked_add(areas_off))
        .ok_or(Error::Header)?;
    let allocs_end = nr_allocs
        .checked_mul(ALLOC_LEN)
        .and_then(|n| n.checked_add(allocs_off))
        .ok_or(Error::Header)?;
    let regions_off = if v2 {
        to_usize(field64(64)?)?
    } else {
        allocs_end
    };
    let regions_end = nr_regions
        .checked_mul(REGION_LEN)
        .and_then(|n| n.checked_add(regions_off))
        .ok_or(Error::Header)?;
    if areas_off != header_len
        || allocs_off != areas_end
        || regions_off != allocs_end
        || regions_end > total
    {
        return Err(Error::Header);
    }
    if checksum(blob, regions_end) != Some(field64(56)?) {
        return Err(Error::Checksum);
    }
    let h = Handover {
        blob: blob.get(..total).ok_or(Error::Short)?,
        nr_areas,
        nr_allocs,
        nr_regions,
        areas_off,
        allocs_off,
        regions_off,
    };
    h.check(limits, regions_end)?;
    Ok(h)
}

impl<'a> Handover<'a> {
    /// Returns the number of areas.
    pub fn nr_areas(&self) -> usize {
        self.nr_areas
    }

    /// Returns the number of preserved allocations.
    pub fn nr_allocs(&self) -> usize {
        self.nr_allocs
    }

    /// Returns area `i`, or `None` past the last.
    pub fn area(&self, i: usize) -> Option<Area> {
        if i >= self.nr_areas {
            return None;
        }
        let off = self.areas_off.checked_add(i.checked_mul(AREA_LEN)?)?;
        let b = self.blob;
        Some(Area {
            base: u64_at(b, off)?,
            size: u64_at(b, off + 8)?,
            nid: u32_at(b, off + 16)?,
            unit_shift: u32_at(b, off + 20)?,
            state_off: u64_at(b, off + 24)?,
            state_len: u64_at(b, off + 32)?,
        })
    }

    /// Returns the number of sticky regions.
    pub fn nr_regions(&self) -> usize {
        self.nr_regions
    }

    /// Returns sticky region `i`, or `None` past the last.
    pub fn region(&self, i: usize) -> Option<Region> {
        if i >= self.nr_regions {
            return None;
        }
        let off = self.regions_off.checked_add(i.checked_mul(REGION_LEN)?)?;
        let b = self.blob;
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(b.get(off + 48..off + 48 + NAME_LEN)?);
        Some(Region {
            phys: u64_at(b, off)?,
            len: u64_at(b, off + 8)?,
            align: u64_at(b, off + 16)?,
            area: u32_at(b, off + 24)?,
            nid: u32_at(b, off + 28)?,
            uid: u32_at(b, off + 32)?,
            gid: u32_at(b, off + 36)?,
            mode: u32_at(b, off + 40)?,
            name,
        })
    }

    /// Returns the allocator state of area `i` (`BitAlloc` serialisation), or `None`.
    pub fn area_state(&self, i: usize) -> Option<&'a [u8]> {
        let a = self.area(i)?;
        let start = usize::try_from(a.state_off).ok()?;
        let end = start.checked_add(usize::try_from(a.state_len).ok()?)?;
        self.blob.get(start..end)
    }

    /// Returns preserved allocation `i`, or `None` past the last.
    pub fn alloc(&self, i: usize) -> Option<Alloc> {
        if i >= self.nr_allocs {
            return None;
        }
        let off = self.allocs_off.checked_add(i.checked_mul(ALLOC_LEN)?)?;
        let b = self.blob;
        let mut label = [0u8; LABEL_LEN];
        label.copy_from_slice(b.get(off + 24..off + 24 + LABEL_LEN)?);
        Some(Alloc {
            phys: u64_at(b, off)?,
            len: u64_at(b, off + 8)?,
            area: u32_at(b, off + 16)?,
            nid: u32_at(b, off + 20)?,
            label,
        })
    }

    fn check(&self, limits: &Limits, tables_end: usize) -> Result<(), Error> {
        let g = limits.granule;
        for i in 0..self.nr_areas {
            let a = self.area(i).ok_or(Error::Area)?;
            let end = a.base.checked_add(a.size).ok_or(Error::Area)?;
            let state_end = a.state_off.checked_add(a.state_len).ok_or(Error::Area)?;
            let reserved = u64_at(self.blob, self.areas_off + i * AREA_LEN + 40);
            if g == 0
                || a.size == 0
                || !a.base.is_multiple_of(g)
                || !a.size.is_multiple_of(g)
                || a.nid >= limits.max_nodes
                || a.unit_shift != 12
                || a.state_off < tables_end as u64
                || state_end > self.blob.len() as u64
                || reserved != Some(0)
            {
                return Err(Error::Area);
            }
            for j in 0..i {
                let b = self.area(j).ok_or(Error::Area)?;
                if a.base < b.base + b.size && b.base < end {
                    return Err(Error::Area);
                }
            }
        }
        for i in 0..self.nr_allocs {
            let x = self.alloc(i).ok_or(Error::Alloc)?;
            let area = self.area(x.area as usize).ok_or(Error::Alloc)?;
            let end = x.phys.checked_add(x.len).ok_or(Error::Alloc)?;
            let unit = 1u64 << area.unit_shift;
            let reserved = u64_at(self.blob, self.allocs_off + i * ALLOC_LEN + 56);
            if x.len == 0
                || !x.phys.is_multiple_of(unit)
                || !x.len.is_multiple_of(unit)
                || x.phys < area.base
                || end > area.base + area.size
                || x.nid != area.nid
                || !x.label.contains(&0)
                || reserved != Some(0)
            {
                return Err(Error::Alloc);
            }
        }
        // Disjoint allocations: one pass over a table sorted by address (what [`write`]
        // writes), pairwise for a table another writer left unsorted.
        let allocs_sorted = self.sorted(self.nr_allocs, |i| self.alloc(i).map(|x| (x.phys, x.len)));
        if !allocs_sorted {
            for i in 0..self.nr_allocs {
                let x = self.alloc(i).ok_or(Error::Alloc)?;
                for j in 0..i {
                    let y = self.alloc(j).ok_or(Error::Alloc)?;
                    if x.phys < y.phys + y.len && y.phys < x.phys + x.len {
                        return Err(Error::Alloc);
                    }
                }
            }
        }
        for i in 0..self.nr_regions {
            self.check_region(i)?;
        }
        let regions_sorted =
            self.sorted(self.nr_regions, |i| self.region(i).map(|r| (r.phys, r.len)));
        if regions_sorted && allocs_sorted {
            self.regions_clear_of_allocs()?;
        } else {
            for i in 0..self.nr_regions {
                self.region_overlaps_quadratic(i)?;
            }
        }
        Ok(())
    }

    /// Returns true if the `n` ranges `get` returns (inside their areas, so without overflow)
    /// are in increasing address order and disjoint; false if any is out of order, or if two
    /// overlap (the caller then checks pairwise, which finds the overlap).
    fn sorted(&self, n: usize, get: impl Fn(usize) -> Option<(u64, u64)>) -> bool {
        let mut prev_end = 0;
        for i in 0..n {
            let Some((phys, len)) = get(i) else {
                return false;
            };
            if phys < prev_end {
                return false;
            }
            prev_end = phys + len;
        }
        true
    }

    /// Checks that no region overlaps an allocation, both tables sorted and each disjoint:
    /// one merge of the two, O(allocations + regions).
    fn regions_clear_of_allocs(&self) -> Result<(), Error> {
        let mut j = 0;
        for i in 0..self.nr_regions {
            let r = self.region(i).ok_or(Error::Region)?;
            let end = r.phys + r.len;
            // Skip the allocations that end at or before the region starts.
            while let Some(x) = self.alloc(j) {
                if x.phys + x.len > r.phys {
                    break;
                }
                j += 1;
            }
            // The first one left starts inside the region, or the region is clear.
            if self.alloc(j).is_some_and(|x| x.phys < end) {
                return Err(Error::Region);
            }
        }
        Ok(())
    }

    /// Checks region `i` against every allocation and every earlier region, for tables
    /// another writer left unsorted.
    fn region_overlaps_quadratic(&self, i: usize) -> Result<(), Error> {
        let r = self.region(i).ok_or(Error::Region)?;
        let end = r.phys + r.len;
        for j in 0..self.nr_allocs {
            let x = self.alloc(j).ok_or(Error::Region)?;
            if x.phys < end && r.phys < x.phys + x.len {
                return Err(Error::Region);
            }
        }
        for j in 0..i {
            let q = self.region(j).ok_or(Error::Region)?;
            if q.phys < end && r.phys < q.phys + q.len {
                return Err(Error::Region);
            }
        }
        Ok(())
    }

    fn check_region(&self, i: usize) -> Result<(), Error> {
        let r = self.region(i).ok_or(Error::Region)?;
        let area = self.area(r.area as usize).ok_or(Error::Region)?;
        let end = r.phys.checked_add(r.len).ok_or(Error::Region)?;
        let unit = 1u64 << area.unit_shift;
        let off = self.regions_off + i * REGION_LEN;
        let flags = u32_at(self.blob, off + 44);
        let reserved = (u64_at(self.blob, off + 80), u64_at(self.blob, off + 88));
        if r.len == 0
            || !r.align.is_power_of_two()
            || r.align < unit
            || r.align > MAX_REGION_ALIGN
            || !r.phys.is_multiple_of(r.align)
            || !r.len.is_multiple_of(r.align)
            || r.phys < area.base
            || end > area.base + area.size
            || r.nid != area.nid
            || r.mode & !0o777 != 0
            || flags != Some(0)
            || reserved != (Some(0), Some(0))
            || region_name(&r.name).is_none()
        {
            return Err(Error::Region);
        }
        // Names are unique (at most a few hundred regions); overlaps are checked by
        // [`Handover::check`].
        for j in 0..i {
            let q = self.region(j).ok_or(Error::Region)?;
            if q.name == r.name {
                return Err(Error::Region);
            }
        }
        Ok(())
    }
}

/// Writes a handover blob (`"extmem-v2"`) into `out`; returns the bytes used.
///
/// `state` is called once per area with the area index and the buffer for its allocator state,
/// and returns the bytes it wrote.
pub fn write<F>(
    out: &mut [u8],
    areas: &[Area],
    allocs: &[Alloc],
    regions: &[Region],
    mut state: F,
) -> Result<usize, Error>
where
    F: FnMut(usize, &mut [u8]) -> Result<usize, Error>,
{
    if areas.len() > MAX_AREAS {
        return Err(Error::NoRoom);
    }
    let areas_off = HEADER_LEN;
    let allocs_off = areas_off + areas.len() * AREA_LEN;
    let regions_off = allocs
        .len()
        .checked_mul(ALLOC_LEN)
        .and_then(|n| n.checked_add(allocs_off))
        .ok_or(Error::NoRoom)?;
    let tables_end = regions
        .len()
        .checked_mul(REGION_LEN)
        .and_then(|n| n.checked_add(regions_off))
        .ok_or(Error::NoRoom)?;
    if tables_end > out.len() {
        return Err(Error::NoRoom);
    }
    out.get_mut(..tables_end).ok_or(Error::NoRoom)?.fill(0);
    let mut pos = tables_end;
    for (i, a) in areas.iter().enumerate() {
        let buf = out.get_mut(pos..).ok_or(Error::NoRoom)?;
        let len = state(i, buf)?;
        let off = areas_off + i * AREA_LEN;
        let w = |b: &mut [u8]| -> Option<()> {
            put_u64(b, off, a.base)?;
            put_u64(b, off + 8, a.size)?;
            put_u32(b, off + 16, a.nid)?;
            put_u32(b, off + 20, a.unit_shift)?;
            put_u64(b, off + 24, pos as u64)?;
            put_u64(b, off + 32, len as u64)
        };
        w(out).ok_or(Error::NoRoom)?;
        pos = pos.checked_add(len).ok_or(Error::NoRoom)?;
    }
    for (i, x) in allocs.iter().enumerate() {
        let off = allocs_off + i * ALLOC_LEN;
        let w = |b: &mut [u8]| -> Option<()> {
            put_u64(b, off, x.phys)?;
            put_u64(b, off + 8, x.len)?;
            put_u32(b, off + 16, x.area)?;
            put_u32(b, off + 20, x.nid)?;
            b.get_mut(off + 24..off + 24 + LABEL_LEN)?
                .copy_from_slice(&x.label);
            Some(())
        };
        w(out).ok_or(Error::NoRoom)?;
    }
    for (i, r) in regions.iter().enumerate() {
        let off = regions_off + i * REGION_LEN;
        let w = |b: &mut [u8]| -> Option<()> {
            put_u64(b, off, r.phys)?;
            put_u64(b, off + 8, r.len)?;
            put_u64(b, off + 16, r.align)?;
            put_u32(b, off + 24, r.area)?;
            put_u32(b, off + 28, r.nid)?;
            put_u32(b, off + 32, r.uid)?;
            put_u32(b, off + 36, r.gid)?;
            put_u32(b, off + 40, r.mode)?;
            b.get_mut(off + 48..off + 48 + NAME_LEN)?
                .copy_from_slice(&r.name);
            Some(())
        };
        w(out).ok_or(Error::NoRoom)?;
    }
    // Sorted by address, so that [`parse`] checks them for overlaps in one pass.
    if let Some(t) = out.get_mut(allocs_off..regions_off) {
        sort_records(t, ALLOC_LEN);
    }
    if let Some(t) = out.get_mut(regions_off..tables_end) {
        sort_records(t, REGION_LEN);
    }
    let header = |b: &mut [u8]| -> Option<()> {
        b.get_mut(..COMPATIBLE.len())?
            .copy_from_slice(COMPATIBLE.as_bytes());
        put_u32(b, 16, HEADER_LEN as u32)?;
        put_u32(b, 20, areas.len() as u32)?;
        put_u32(b, 24, u32::try_from(allocs.len()).ok()?)?;
        put_u32(b, 28, u32::try_from(regions.len()).ok()?)?;
        put_u64(b, 32, pos as u64)?;
        put_u64(b, 40, areas_off as u64)?;
        put_u64(b, 48, allocs_off as u64)?;
        put_u64(b, 64, regions_off as u64)?;
        let sum = checksum(b, tables_end)?;
        put_u64(b, 56, sum)
    };
    header(out).ok_or(Error::NoRoom)?;
    Ok(pos)
}

/// The physical address in the first 8 bytes of record `i` of `table`.
fn record_key(table: &[u8], len: usize, i: usize) -> u64 {
    u64_at(table, i * len).unwrap_or(u64::MAX)
}

/// Swaps records `i` and `j` (`i < j`) of `len` bytes in `table`.
fn swap_records(table: &mut [u8], len: usize, i: usize, j: usize) {
    let (head, tail) = table.split_at_mut(j * len);
    if let (Some(a), Some(b)) = (head.get_mut(i * len..(i + 1) * len), tail.get_mut(..len)) {
        a.swap_with_slice(b);
    }
}

/// Sorts the records of `len` bytes in `table` by the physical address each starts with: a
/// heapsort in place, O(n log n), no allocation; O(n) if they are sorted already.
fn sort_records(table: &mut [u8], len: usize) {
    let n = table.len() / len;
    // Already sorted (records appended in address order): one pass.
    if (1..n).all(|i| record_key(table, len, i - 1) <= record_key(table, len, i)) {
        return;
    }
    let sift = |t: &mut [u8], mut root: usize, end: usize| {
        while 2 * root + 1 < end {
            let mut child = 2 * root + 1;
            if child + 1 < end && record_key(t, len, child) < record_key(t, len, child + 1) {
                child += 1;
            }
            if record_key(t, len, root) >= record_key(t, len, child) {
                return;
            }
            swap_records(t, len, root, child);
            root = child;
        }
    };
    for start in (0..n / 2).rev() {
        sift(table, start, n);
    }
    for end in (1..n).rev() {
        swap_records(table, len, 0, end);
        sift(table, 0, end);
    }
}

/// Writes a `BitAlloc` state (format [`crate::bitalloc::STATE_VERSION`], see
/// `BitAlloc::serialize`) for a pool of `units` units whose allocated units are exactly
/// `runs`, `(start, count)` in units, into `out`; returns the bytes written.
///
/// This is what an allocator holding only those ranges would serialise, byte for byte, built
/// from the list instead of from an allocator of the pool's size: `runs` is sorted in place
/// and adjacent runs are joined, so it takes O(n log n) for n runs whatever the pool's size,
/// and allocates nothing. Fails with [`Error::Alloc`] for an empty run, one past `units` or
/// two that overlap, and with [`Error::NoRoom`] if `out` is too short.
pub fn write_area_state(
    units: u64,
    runs: &mut [(u64, u64)],
    out: &mut [u8],
) -> Result<usize, Error> {
    use crate::bitalloc::{STATE_HEADER_LEN, STATE_MAGIC, STATE_RUN_LEN, STATE_VERSION};
    runs.sort_unstable();
    let mut at = STATE_HEADER_LEN;
    let mut nruns = 0u64;
    let mut used = 0u64;
    // The run being built, written when the next one does not touch it.
    let mut cur: Option<(u64, u64)> = None;
    let mut emit = |out: &mut [u8], at: &mut usize, (start, end): (u64, u64)| -> Option<()> {
        put_u64(out, *at, start)?;
        put_u64(out, *at + 8, end - start)?;
        *at += STATE_RUN_LEN;
        nruns += 1;
        Some(())
    };
    for &(start, count) in runs.iter() {
        let end = start.checked_add(count).ok_or(Error::Alloc)?;
        if count == 0 || end > units {
            return Err(Error::Alloc);
        }
        used += count;
        cur = match cur {
            Some((_, e)) if start < e => return Err(Error::Alloc),
            Some((s, e)) if start == e => Some((s, end)),
            Some(prev) => {
                emit(out, &mut at, prev).ok_or(Error::NoRoom)?;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some(prev) = cur {
        emit(out, &mut at, prev).ok_or(Error::NoRoom)?;
    }
    let header = |b: &mut [u8]| -> Option<()> {
        b.get_mut(..8)?.copy_from_slice(&STATE_MAGIC);
        put_u32(b, 8, STATE_VERSION)?;
        put_u32(b, 12, u32::try_from(STATE_HEADER_LEN).ok()?)?;
        put_u64(b, 16, units)?;
        put_u64(b, 24, used)?;
        put_u64(b, 32, nruns)?;
        let h = fnv1a(
            fnv1a(FNV_OFFSET, b.get(..40)?),
            b.get(STATE_HEADER_LEN..at)?,
        );
        put_u64(b, 40, h)
    };
    header(out).ok_or(Error::NoRoom)?;
    Ok(at)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64 over `bytes`, continuing from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Returns the allocated runs, `(start, count)` in units, of a `BitAlloc` state that
/// `BitAlloc::restore` accepted, in order; nothing for a state too short for its header.
pub fn area_state_runs(state: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    use crate::bitalloc::{STATE_HEADER_LEN, STATE_RUN_LEN};
    state
        .get(STATE_HEADER_LEN..)
        .unwrap_or(&[])
        .chunks_exact(STATE_RUN_LEN)
        .filter_map(|r| Some((u64_at(r, 0)?, u64_at(r, 8)?)))
}
