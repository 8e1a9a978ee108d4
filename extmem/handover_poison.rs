// SPDX-License-Identifier: GPL-2.0

//! The poisoned units extmem hands to the next kernel across kexec: format, writer, validator.
//!
//! DOC: extmem KHO poison record, compatible `"extmem-hwp-v1"`.
//!
//! A record of its own, apart from the pool state of [`crate::handover`], published as the KHO
//! subtree `"extmem-poison"`: it is rewritten whenever a unit is poisoned (not at reboot), and
//! the next kernel fences every unit it lists in whichever area holds it, whatever else it
//! restores. A change to the layout needs a new compatible string. Little-endian, offsets from
//! the start of the blob:
//!
//! ```text
//! header (32 bytes)
//!   0  compatible  [u8; 16]   "extmem-hwp-v1", NUL-padded
//!  16  count       u32        entries that follow
//!  20  flags       u32        bit 0 (OVERFLOW): more units were poisoned than the record holds
//!  24  checksum    u64        FNV-1a 64 of the header (this field as 0) and the entries
//! entry (8 bytes each)
//!   0  phys        u64        physical address of a poisoned unit, unit-aligned
//! ```
//!
//! With OVERFLOW set the list is incomplete: the next kernel cannot know which other units are
//! poisoned and quarantines every area (`crate::poison`).
//!
//! Pure core: no `unsafe`, no allocation, no kernel imports.

#![forbid(unsafe_code)]

/// The KHO subtree name.
pub const KHO_NODE: &str = "extmem-poison";
/// The compatible string of the format [`write`] writes.
pub const COMPATIBLE: &str = "extmem-hwp-v1";
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 32;
/// Size of one entry in bytes.
pub const ENTRY_LEN: usize = 8;
/// `flags`: the list is incomplete.
pub const OVERFLOW: u32 = 1;

/// Why a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The blob is shorter than its header or its entries.
    Short,
    /// The compatible string is not [`COMPATIBLE`].
    Compatible,
    /// Unknown flags, or an address not aligned to the unit.
    Field,
    /// The checksum does not match.
    Checksum,
}

impl Error {
    /// Returns a short reason for log lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Error::Short => "record shorter than it says",
            Error::Compatible => "not an extmem-hwp-v1 record",
            Error::Field => "unknown flags or an unaligned address",
            Error::Checksum => "checksum mismatch",
        }
    }
}

/// Reads the little-endian `u32` at `off`; also for [`crate::handover_areas`].
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads the little-endian `u64` at `off`; also for [`crate::handover_areas`].
pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// FNV-1a 64 of `b` with bytes 24..32 (the checksum field of this record and of
/// [`crate::handover_areas`]) read as zero.
pub(crate) fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &byte) in b.iter().enumerate() {
        let byte = if (24..32).contains(&i) { 0 } else { byte };
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn padded() -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..COMPATIBLE.len()].copy_from_slice(COMPATIBLE.as_bytes());
    p
}

/// A validated record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    entries: &'a [u8],
    flags: u32,
}

impl<'a> Record<'a> {
    /// Returns true if more units were poisoned than the record lists.
    pub fn overflow(&self) -> bool {
        self.flags & OVERFLOW != 0
    }

    /// Returns the physical addresses of the poisoned units.
    pub fn units(&self) -> impl Iterator<Item = u64> + 'a {
        self.entries
            .chunks_exact(ENTRY_LEN)
            .filter_map(|c| u64_at(c, 0))
    }
}

/// Validates a record whose addresses must be multiples of `unit` bytes (a power of two).
pub fn parse(blob: &[u8], unit: u64) -> Result<Record<'_>, Error> {
    let header = blob.get(..HEADER_LEN).ok_or(Error::Short)?;
    if header.get(..16) != Some(&padded()[..]) {
        return Err(Error::Compatible);
    }
    let count = u32_at(header, 16).ok_or(Error::Short)? as usize;
    let flags = u32_at(header, 20).ok_or(Error::Short)?;
    let end = count
        .checked_mul(ENTRY_LEN)
        .and_then(|n| n.checked_add(HEADER_LEN))
        .ok_or(Error::Short)?;
    let used = blob.get(..end).ok_or(Error::Short)?;
    if checksum(used) != u64_at(header, 24).ok_or(Error::Short)? {
        return Err(Error::Checksum);
    }
    let entries = used.get(HEADER_LEN..).ok_or(Error::Short)?;
    let rec = Record { entries, flags };
    if flags & !OVERFLOW != 0 || unit == 0 || rec.units().any(|p| p & (unit - 1) != 0) {
        return Err(Error::Field);
    }
    Ok(rec)
}

/// Writes a record of `units` (physical addresses) into `out`; returns the bytes used.
///
/// Units that do not fit are left out and the record says so ([`OVERFLOW`]). Fails with
/// [`Error::Short`] only if `out` cannot hold the header.
pub fn write(out: &mut [u8], units: impl Iterator<Item = u64>) -> Result<usize, Error> {
    if out.len() < HEADER_LEN {
        return Err(Error::Short);
    }
    let room = ((out.len() - HEADER_LEN) / ENTRY_LEN).min(u32::MAX as usize);
    let mut count = 0usize;
    let mut flags = 0u32;
    for phys in units {
        if count == room {
            flags |= OVERFLOW;
            break;
        }
        let off = HEADER_LEN + count * ENTRY_LEN;
        out[off..off + ENTRY_LEN].copy_from_slice(&phys.to_le_bytes());
        count += 1;
    }
    let end = HEADER_LEN + count * ENTRY_LEN;
    out[..16].copy_from_slice(&padded());
    out[16..20].copy_from_slice(&(count as u32).to_le_bytes());
    out[20..24].copy_from_slice(&flags.to_le_bytes());
    out[24..32].fill(0);
    let sum = checksum(&out[..end]);
    out[24..32].copy_from_slice(&sum.to_le_bytes());
    Ok(end)
}
