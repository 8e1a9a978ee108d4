// SPDX-License-Identifier: GPL-2.0

//! The serialised allocator state that a kexec handover carries: its format, the writer and
//! the validating reader.

use core::ops::DerefMut;

use super::allocator::range_end;
use super::{AllocError, BitAlloc, Corruption};

/// Magic bytes at the start of a serialised allocator state.
pub const STATE_MAGIC: [u8; 8] = *b"EXMBMAP\0";
/// Version of the serialised state format that [`BitAlloc::serialize`] writes.
pub const STATE_VERSION: u32 = 1;
/// Size in bytes of the fixed header of the serialised state.
pub const STATE_HEADER_LEN: usize = 48;
/// Size in bytes of one allocated run record in the serialised state.
pub const STATE_RUN_LEN: usize = 16;
const HEADER_LEN_U32: u32 = 48;

/// FNV-1a over a byte slice, continuing from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

fn get_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Some(u32::from_le_bytes(a))
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), AllocError> {
    let end = at.checked_add(bytes.len()).ok_or(AllocError::ShortBuffer)?;
    out.get_mut(at..end)
        .ok_or(AllocError::ShortBuffer)?
        .copy_from_slice(bytes);
    Ok(())
}

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Returns the size in bytes of the serialised state; takes time linear in the bitmap.
    pub fn serialized_len(&self) -> usize {
        let runs = self.allocated_runs().count();
        runs.saturating_mul(STATE_RUN_LEN)
            .saturating_add(STATE_HEADER_LEN)
    }

    /// Writes the state to `out` for a kexec handover; returns the number of bytes written.
    ///
    /// The format (version 1, all integers little-endian) is a 48-byte header followed by one
    /// 16-byte record per maximal allocated run:
    ///
    /// | offset | size | field                                                     |
    /// |--------|------|-----------------------------------------------------------|
    /// | 0      | 8    | magic [`STATE_MAGIC`], `"EXMBMAP\0"`                      |
    /// | 8      | 4    | version, [`STATE_VERSION`]                                |
    /// | 12     | 4    | header length, [`STATE_HEADER_LEN`]                       |
    /// | 16     | 8    | pool size in units                                        |
    /// | 24     | 8    | allocated units                                           |
    /// | 32     | 8    | number of runs `n`                                        |
    /// | 40     | 8    | checksum: 64-bit FNV-1a over bytes 0..40 and 48..48 + 16n |
    /// | 48     | 16n  | runs: start (u64) then count (u64)                        |
    ///
    /// Runs are maximal: increasing, non-empty, inside the pool, and separated by at least one
    /// free unit. A typical pool with a few hundred allocations needs a few KiB.
    ///
    /// Fails with [`AllocError::ShortBuffer`] if `out` is shorter than
    /// [`BitAlloc::serialized_len`]; the contents of `out` are then unspecified.
    pub fn serialize(&self, out: &mut [u8]) -> Result<usize, AllocError> {
        let mut at = STATE_HEADER_LEN;
        let mut runs = 0u64;
        for (start, count) in self.allocated_runs() {
            put(out, at, &start.to_le_bytes())?;
            put(out, at + 8, &count.to_le_bytes())?;
            at += STATE_RUN_LEN;
            runs += 1;
        }
        put(out, 0, &STATE_MAGIC)?;
        put(out, 8, &STATE_VERSION.to_le_bytes())?;
        put(out, 12, &HEADER_LEN_U32.to_le_bytes())?;
        put(out, 16, &self.units.to_le_bytes())?;
        put(out, 24, &self.used_units().to_le_bytes())?;
        put(out, 32, &runs.to_le_bytes())?;
        let h = match (out.get(..40), out.get(STATE_HEADER_LEN..at)) {
            (Some(hdr), Some(body)) => fnv1a(fnv1a(FNV_OFFSET, hdr), body),
            _ => return Err(AllocError::ShortBuffer),
        };
        put(out, 40, &h.to_le_bytes())?;
        Ok(at)
    }

    /// Rebuilds an allocator from a state written by [`BitAlloc::serialize`].
    ///
    /// `storage` and `units` are as for [`BitAlloc::new`]; `units` must equal the pool size
    /// recorded in the state. Every field is validated (magic, version, lengths, unit count,
    /// checksum, runs in range, sorted and disjoint, allocated total) before the state is
    /// trusted; a bad state gives [`AllocError::Corrupt`]. Like [`BitAlloc::from_runs`], the
    /// storage is not read and need not be zeroed, and the time is O(runs x log units), not
    /// linear in the pool.
    pub fn restore(storage: S, units: u64, bytes: &[u8]) -> Result<Self, AllocError> {
        let bad = |c| AllocError::Corrupt(c);
        if bytes.len() < STATE_HEADER_LEN {
            return Err(bad(Corruption::Length));
        }
        if bytes.get(..8) != Some(&STATE_MAGIC[..]) {
            return Err(bad(Corruption::Magic));
        }
        if get_u32(bytes, 8) != Some(STATE_VERSION) {
            return Err(bad(Corruption::Version));
        }
        if get_u32(bytes, 12) != Some(HEADER_LEN_U32) {
            return Err(bad(Corruption::Header));
        }
        let nruns = get_u64(bytes, 32).ok_or(bad(Corruption::Length))?;
        let body = usize::try_from(nruns)
            .ok()
            .and_then(|n| n.checked_mul(STATE_RUN_LEN))
            .and_then(|n| n.checked_add(STATE_HEADER_LEN));
        if body != Some(bytes.len()) {
            return Err(bad(Corruption::Length));
        }
        let (hdr, runs) = bytes.split_at(STATE_HEADER_LEN);
        let hdr_sum = hdr.get(..40).ok_or(bad(Corruption::Length))?;
        let sum = fnv1a(fnv1a(FNV_OFFSET, hdr_sum), runs);
        if get_u64(bytes, 40) != Some(sum) {
            return Err(bad(Corruption::Checksum));
        }
        if get_u64(bytes, 16) != Some(units) {
            return Err(bad(Corruption::Units));
        }
        let used = get_u64(bytes, 24).ok_or(bad(Corruption::Length))?;
        let mut total = 0u64;
        let mut prev_end: Option<u64> = None;
        for rec in runs.chunks_exact(STATE_RUN_LEN) {
            let start = get_u64(rec, 0).ok_or(bad(Corruption::Length))?;
            let count = get_u64(rec, 8).ok_or(bad(Corruption::Length))?;
            let end = range_end(start, count, units).map_err(|_| bad(Corruption::Runs))?;
            if let Some(p) = prev_end {
                if start <= p {
                    return Err(bad(Corruption::Runs));
                }
            }
            prev_end = Some(end);
            total += count;
        }
        if total != used {
            return Err(bad(Corruption::Total));
        }
        // The runs are validated (sorted, disjoint, inside the pool): claiming them cannot fail.
        Self::from_runs(
            storage,
            units,
            runs.chunks_exact(STATE_RUN_LEN)
                .filter_map(|rec| Some((get_u64(rec, 0)?, get_u64(rec, 8)?))),
        )
    }
}
