// SPDX-License-Identifier: GPL-2.0

//! Bit tricks on one 64-bit bitmap word (or one group of 16 children): free windows,
//! longest runs and naturally aligned free blocks.

/// Returns the bits `p` of `z` such that bits `p..p + k` are all set (`1 <= k <= 64`).
#[inline]
pub(super) fn windows(z: u64, k: u32) -> u64 {
    let mut m = z;
    let mut have = 1;
    while have < k && m != 0 {
        let sh = if have < k - have { have } else { k - have };
        m &= m >> sh;
        have += sh;
    }
    m
}

/// Returns the larger of `best` and the longest run of set bits in `z`.
#[inline]
pub(super) fn longest_run_above(z: u64, best: u64) -> u64 {
    if best >= 64 {
        return best;
    }
    let mut m = windows(z, (best + 1) as u32);
    let mut run = best;
    while m != 0 {
        run += 1;
        m &= m >> 1;
    }
    run
}

/// Returns `k + 1` for the largest free block of `2^k` units aligned to `2^k` inside a word
/// whose free units are the set bits of `z` (0 if none; a full word gives 7).
#[inline]
pub(super) fn word_blk(z: u64) -> u64 {
    if z == u64::MAX {
        return 7;
    }
    let mut m = z;
    let mut blk = 0;
    for (sh, pairs) in [
        (1, 0x5555_5555_5555_5555u64),
        (2, 0x1111_1111_1111_1111),
        (4, 0x0101_0101_0101_0101),
        (8, 0x0001_0001_0001_0001),
        (16, 0x0000_0001_0000_0001),
    ] {
        if m == 0 {
            return blk;
        }
        blk += 1;
        m &= (m >> sh) & pairs;
    }
    if m == 0 {
        blk
    } else {
        blk + 1
    }
}

/// Returns `k + 1` for the largest aligned group of `2^j` entirely free children (their
/// bits set in `full`, at most 16 children of `2^log` units each), `k = log + j`; 0 if none.
#[inline]
pub(super) fn group_blk(full: u32, log: u64) -> u64 {
    if full == 0 {
        return 0;
    }
    let mut m = full;
    let mut blk = log + 1;
    for (sh, pairs) in [(1, 0x5555u32), (2, 0x1111), (4, 0x0101), (8, 0x0001)] {
        m &= (m >> sh) & pairs;
        if m == 0 {
            return blk;
        }
        blk += 1;
    }
    blk
}

/// Returns the bit positions `p` of a word whose first unit is a multiple of 64 such that
/// `p + offset` is a multiple of `align` (a power of two, at most 64).
#[inline]
pub(super) fn word_pattern(align: u64, offset: u64) -> u64 {
    // One bit every `align` bits, for align 1, 2, 4, ..., 64.
    const PATS: [u64; 7] = [
        u64::MAX,
        0x5555_5555_5555_5555,
        0x1111_1111_1111_1111,
        0x0101_0101_0101_0101,
        0x0001_0001_0001_0001,
        0x0000_0001_0000_0001,
        1,
    ];
    let mask = align.wrapping_sub(1) & 63;
    let pat = PATS
        .get(align.trailing_zeros() as usize)
        .copied()
        .unwrap_or(0);
    pat << (align.wrapping_sub(offset & mask) & mask)
}
