// SPDX-License-Identifier: GPL-2.0

//! The previous kernel's areas, alone: the record the next kernel falls back on when it
//! rejects the state of [`crate::handover`] as a whole.
//!
//! DOC: extmem KHO area record, compatible `"extmem-areas-v1"`.
//!
//! A record of its own, published as the KHO subtree `"extmem-areas"`, written once when the
//! pool is built (the areas never change during a kernel's life) and never touched again, so
//! that whatever damages the pool state, rewritten on every preserve, leaves it alone. A next
//! kernel that rejects the pool state carves every area this record lists at its address and
//! quarantines it, rather than give memory that may hold preserved guest memory to its page
//! allocator. A change to the layout needs a new compatible string. Little-endian, offsets
//! from the start of the blob:
//!
//! ```text
//! header (32 bytes)
//!   0  compatible  [u8; 16]   "extmem-areas-v1", NUL-padded
//!  16  count       u32        areas that follow, at most MAX_AREAS
//!  20  flags       u32        zero
//!  24  checksum    u64        FNV-1a 64 of the header (this field as 0) and the entries
//! entry (24 bytes each)
//!   0  base        u64        physical base address, granule-aligned
//!   8  size        u64        bytes, a non-zero multiple of the granule
//!  16  nid         u32        NUMA node
//!  20  reserved    u32        zero
//! ```
//!
//! The areas do not overlap and none wraps the address space.
//!
//! Pure core: no `unsafe`, no allocation, no kernel imports.

#![forbid(unsafe_code)]

use crate::handover_poison::{checksum, u32_at, u64_at};

/// The KHO subtree name.
pub const KHO_NODE: &str = "extmem-areas";
/// The compatible string of the format [`write`] writes.
pub const COMPATIBLE: &str = "extmem-areas-v1";
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 32;
/// Size of one entry in bytes.
pub const ENTRY_LEN: usize = 24;
/// Most areas a record lists (`EXTMEM_MAX_AREAS`).
pub const MAX_AREAS: usize = crate::handover::MAX_AREAS;

/// Why a record was rejected, or could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The blob is shorter than its header or its entries (or, writing, `out` is too small).
    Short,
    /// The compatible string is not [`COMPATIBLE`].
    Compatible,
    /// More than [`MAX_AREAS`] areas.
    TooMany,
    /// Non-zero flags or reserved field, a node out of range, an empty or unaligned area, or
    /// one that wraps.
    Field,
    /// Two areas overlap.
    Overlap,
    /// The checksum does not match.
    Checksum,
}

impl Error {
    /// Returns a short reason for log lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Short => "record shorter than it says",
            Error::Compatible => "not an extmem-areas-v1 record",
            Error::TooMany => "too many areas",
            Error::Field => "a bad field (flags, node, alignment, size)",
            Error::Overlap => "areas overlap",
            Error::Checksum => "checksum mismatch",
        }
    }
}

/// One area of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// Physical base address in bytes.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// NUMA node.
    pub nid: u32,
}

fn padded() -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..COMPATIBLE.len()].copy_from_slice(COMPATIBLE.as_bytes());
    p
}

fn entry(b: &[u8]) -> Option<(Area, u32)> {
    Some((
        Area {
            base: u64_at(b, 0)?,
            size: u64_at(b, 8)?,
            nid: u32_at(b, 16)?,
        },
        u32_at(b, 20)?,
    ))
}

/// A validated record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    entries: &'a [u8],
}

impl<'a> Record<'a> {
    /// Returns the number of areas.
    pub fn len(&self) -> usize {
        self.entries.len() / ENTRY_LEN
    }

    /// Returns true if the record lists no area.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the areas, in the order of the previous kernel's pool.
    pub fn areas(&self) -> impl Iterator<Item = Area> + 'a {
        self.entries
            .chunks_exact(ENTRY_LEN)
            .filter_map(|c| entry(c).map(|(a, _)| a))
    }
}

/// Validates a record whose areas must be aligned to `granule` bytes (a power of two) and on
/// nodes below `max_nodes`.
pub fn parse(blob: &[u8], granule: u64, max_nodes: u32) -> Result<Record<'_>, Error> {
    let header = blob.get(..HEADER_LEN).ok_or(Error::Short)?;
    if header.get(..16) != Some(&padded()[..]) {
        return Err(Error::Compatible);
    }
    let count = u32_at(header, 16).ok_or(Error::Short)? as usize;
    if count > MAX_AREAS {
        return Err(Error::TooMany);
    }
    let end = HEADER_LEN + count * ENTRY_LEN;
    let used = blob.get(..end).ok_or(Error::Short)?;
    if checksum(used) != u64_at(header, 24).ok_or(Error::Short)? {
        return Err(Error::Checksum);
    }
    if u32_at(header, 20) != Some(0) || !granule.is_power_of_two() {
        return Err(Error::Field);
    }
    let entries = used.get(HEADER_LEN..).ok_or(Error::Short)?;
    let mask = granule - 1;
    for (i, c) in entries.chunks_exact(ENTRY_LEN).enumerate() {
        let (a, reserved) = entry(c).ok_or(Error::Short)?;
        if reserved != 0
            || a.nid >= max_nodes
            || a.size == 0
            || (a.base | a.size) & mask != 0
            || a.base.checked_add(a.size).is_none()
        {
            return Err(Error::Field);
        }
        let overlaps = entries
            .chunks_exact(ENTRY_LEN)
            .take(i)
            .filter_map(|o| entry(o).map(|(o, _)| o))
            .any(|o| a.base < o.base + o.size && o.base < a.base + a.size);
        if overlaps {
            return Err(Error::Overlap);
        }
    }
    Ok(Record { entries })
}

/// Writes a record of `areas` into `out`; returns the bytes used.
///
/// Fails with [`Error::TooMany`] for more than [`MAX_AREAS`] areas and [`Error::Short`] if
/// `out` cannot hold [`MAX_AREAS`] of them. Does not validate the areas: the pool's are valid by construction,
/// and [`parse`] checks them in the next kernel.
pub fn write(out: &mut [u8], areas: impl Iterator<Item = Area>) -> Result<usize, Error> {
    let out = out
        .get_mut(..HEADER_LEN + MAX_AREAS * ENTRY_LEN)
        .ok_or(Error::Short)?;
    let mut count = 0usize;
    for a in areas {
        let off = HEADER_LEN + count * ENTRY_LEN;
        let e = out.get_mut(off..off + ENTRY_LEN).ok_or(Error::TooMany)?;
        e[0..8].copy_from_slice(&a.base.to_le_bytes());
        e[8..16].copy_from_slice(&a.size.to_le_bytes());
        e[16..20].copy_from_slice(&a.nid.to_le_bytes());
        e[20..24].fill(0);
        count += 1;
    }
    let end = HEADER_LEN + count * ENTRY_LEN;
    out[..16].copy_from_slice(&padded());
    out[16..20].copy_from_slice(&(count as u32).to_le_bytes());
    out[20..32].fill(0);
    let sum = checksum(&out[..end]);
    out[24..32].copy_from_slice(&sum.to_le_bytes());
    Ok(end)
}
