// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the allocator core at its edges: first and last unit, the whole pool, every
//! alignment up to 1 GiB of 4 KiB units, bad arguments, serialisation and its corruption.

#[path = "alloc_support.rs"]
mod support;

use extmem_core::bitalloc::{
    storage_words, AllocError, BitAlloc, Corruption, LEAF_UNITS, MAX_UNITS, STATE_HEADER_LEN,
};
use support::{new_alloc, Pair};

/// Pool sizes with one, two, three and four tree levels, odd and round.
const SIZES: &[u64] = &[
    1,
    2,
    63,
    64,
    65,
    1000,
    1023,
    1024,
    1025,
    16 * 1024,
    16 * 1024 + 1,
    100_000,
    262_144,
    262_144 + 777,
];

#[test]
fn storage_sizing() {
    assert_eq!(storage_words(0), None);
    assert_eq!(storage_words(MAX_UNITS + 1), None);
    assert!(storage_words(MAX_UNITS).is_some());
    assert_eq!(storage_words(1), Some(2));
    // Metadata is at most 1.15 * N / 8 bytes once the pool has a few leaves.
    for n in [
        4096u64,
        65_536,
        100_003,
        1 << 24,
        (1 << 24) + 1,
        1 << 28,
        (1 << 28) + 12_345,
        1 << 40,
        MAX_UNITS,
    ] {
        let bytes = storage_words(n).unwrap() as u128 * 8;
        assert!(
            bytes * 800 <= u128::from(n) * 115,
            "{n} units need {bytes} bytes, over 1.15 * N/8"
        );
    }
    let short = vec![0u64; storage_words(5000).unwrap() - 1];
    assert_eq!(
        BitAlloc::new(short, 5000).err(),
        Some(AllocError::BadStorage)
    );
    assert_eq!(
        BitAlloc::new(vec![0u64; 4], 0).err(),
        Some(AllocError::Zero)
    );
    assert_eq!(
        BitAlloc::new(vec![0u64; 4], MAX_UNITS + 1).err(),
        Some(AllocError::OutOfRange)
    );
    // A borrowed slice works as storage too, and larger storage is fine.
    let mut buf = [7u64; 64];
    let mut a = BitAlloc::new(&mut buf[..], 1000).unwrap();
    assert_eq!(a.alloc(10, 8).unwrap(), 0);
    assert_eq!(a.free_units(), 990);
}

#[test]
fn first_last_and_whole_pool() {
    for &n in SIZES {
        let mut a = new_alloc(n);
        assert_eq!(a.units(), n);
        assert_eq!(a.free_units(), n);
        assert_eq!(a.largest_free_run(), n);
        a.check().unwrap();
        // First and last unit.
        a.alloc_at(0, 1).unwrap();
        if n > 1 {
            a.alloc_at(n - 1, 1).unwrap();
            assert_eq!(a.largest_free_run(), n - 2);
        }
        assert_eq!(a.alloc_at(0, 1), Err(AllocError::Busy));
        assert_eq!(a.alloc_at(n - 1, 1), Err(AllocError::Busy));
        a.check().unwrap();
        a.free(0, 1).unwrap();
        if n > 1 {
            a.free(n - 1, 1).unwrap();
        }
        assert_eq!(a.free(0, 1), Err(AllocError::NotAllocated));
        // The whole pool, then nothing more.
        assert_eq!(a.alloc(n, 1).unwrap(), 0);
        assert_eq!(a.free_units(), 0);
        assert_eq!(a.largest_free_run(), 0);
        assert_eq!(a.alloc(1, 1), Err(AllocError::NoSpace));
        assert_eq!(a.allocated_runs().collect::<Vec<_>>(), vec![(0, n)]);
        a.check().unwrap();
        a.free(0, n).unwrap();
        assert_eq!(a.largest_free_run(), n);
        // One more than the pool.
        assert_eq!(a.alloc(n + 1, 1), Err(AllocError::NoSpace));
        assert_eq!(a.alloc_at(0, n + 1), Err(AllocError::OutOfRange));
        // Fill one unit at a time: first fit gives 0, 1, 2, ...
        let k = n.min(3000);
        for i in 0..k {
            assert_eq!(a.alloc(1, 1).unwrap(), i);
        }
        assert_eq!(a.free_units(), n - k);
        a.check().unwrap();
        // Free them in reverse, checking the longest run grows.
        for i in (0..k).rev() {
            a.free(i, 1).unwrap();
            assert_eq!(a.largest_free_run(), n - i, "n={n} i={i}");
        }
        a.check().unwrap();
        assert_eq!(a.allocated_runs().count(), 0);
    }
}

#[test]
fn bad_arguments() {
    let n = 5000;
    let mut a = new_alloc(n);
    assert_eq!(a.alloc(0, 1), Err(AllocError::Zero));
    assert_eq!(a.alloc(1, 0), Err(AllocError::BadAlign));
    assert_eq!(a.alloc(1, 3), Err(AllocError::BadAlign));
    assert_eq!(a.alloc(1, 96), Err(AllocError::BadAlign));
    assert_eq!(a.alloc(n + 1, 1), Err(AllocError::NoSpace));
    assert_eq!(a.alloc(u64::MAX, 1), Err(AllocError::NoSpace));
    assert_eq!(a.alloc_at(0, 0), Err(AllocError::Zero));
    assert_eq!(a.alloc_at(u64::MAX, 2), Err(AllocError::Overflow));
    assert_eq!(a.alloc_at(n, 1), Err(AllocError::OutOfRange));
    assert_eq!(a.alloc_at(n - 1, 2), Err(AllocError::OutOfRange));
    assert_eq!(a.free(0, 0), Err(AllocError::Zero));
    assert_eq!(a.free(1, u64::MAX), Err(AllocError::Overflow));
    assert_eq!(a.free(n, 1), Err(AllocError::OutOfRange));
    assert_eq!(a.free(0, 1), Err(AllocError::NotAllocated));
    a.alloc_at(100, 50).unwrap();
    // Partly allocated ranges: neither claimable nor freeable, and nothing changes.
    assert_eq!(a.alloc_at(90, 20), Err(AllocError::Busy));
    assert_eq!(a.free(90, 20), Err(AllocError::NotAllocated));
    assert_eq!(a.free(140, 20), Err(AllocError::NotAllocated));
    assert_eq!(a.free_units(), n - 50);
    a.check().unwrap();
    // Double free.
    a.free(100, 50).unwrap();
    assert_eq!(a.free(100, 50), Err(AllocError::NotAllocated));
    assert_eq!(a.free_units(), n);
    a.check().unwrap();
    // Every error has a reason.
    for e in [
        AllocError::Zero,
        AllocError::BadAlign,
        AllocError::OutOfRange,
        AllocError::Overflow,
        AllocError::NoSpace,
        AllocError::Busy,
        AllocError::NotAllocated,
        AllocError::BadStorage,
        AllocError::ShortBuffer,
        AllocError::Inconsistent,
        AllocError::Corrupt(Corruption::Checksum),
    ] {
        assert!(!e.as_str().is_empty());
        assert_eq!(format!("{e}"), e.as_str());
    }
}

#[test]
fn every_alignment_up_to_1g() {
    // 1 TiB of 4 KiB units would be big; 2^20 units (4 GiB) hold four 1 GiB-aligned starts.
    let n = (1u64 << 20) + 5;
    let mut a = new_alloc(n);
    // Unit 0 taken: every aligned request must skip to the next multiple of its alignment.
    a.alloc_at(0, 1).unwrap();
    for k in 0..=18u32 {
        let align = 1u64 << k;
        for count in [1, align, align + 1, 3 * align / 2 + 1] {
            let want = if align == 1 { 1 } else { align };
            if want + count > n {
                assert_eq!(a.alloc(count, align), Err(AllocError::NoSpace));
                continue;
            }
            let s = a.alloc(count, align).unwrap();
            assert_eq!(s, want, "count {count} align {align}");
            assert_eq!(s % align, 0);
            a.free(s, count).unwrap();
        }
    }
    // Alignment larger than the pool: only unit 0 (with offset: one other unit) qualifies.
    assert_eq!(a.alloc(1, 1 << 21), Err(AllocError::NoSpace));
    a.free(0, 1).unwrap();
    assert_eq!(a.alloc(8, 1 << 40).unwrap(), 0);
    assert_eq!(a.alloc_offset(1, 1 << 40, (1 << 40) - 9).unwrap(), 9);
    assert_eq!(a.alloc_offset(1, 1 << 40, 3), Err(AllocError::NoSpace));
    a.free(0, 8).unwrap();
    a.free(9, 1).unwrap();
    // Offsets: start + offset is aligned.
    for off in [1u64, 5, 511, 512, 513, 262_143] {
        let s = a.alloc_offset(512, 512, off).unwrap();
        assert_eq!((s + off) % 512, 0);
        assert_eq!(s, (512 - off % 512) % 512);
        a.free(s, 512).unwrap();
    }
    // Four 1 GiB blocks fit, a fifth does not; with one unit used in each, none does.
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(a.alloc(1 << 18, 1 << 18).unwrap());
    }
    assert_eq!(got, vec![0, 1 << 18, 2 << 18, 3 << 18]);
    assert_eq!(a.alloc(1 << 18, 1 << 18), Err(AllocError::NoSpace));
    for &s in &got {
        a.free(s, 1 << 18).unwrap();
        a.alloc_at(s + 12_345, 1).unwrap();
    }
    assert_eq!(a.alloc(1 << 18, 1 << 18), Err(AllocError::NoSpace));
    // The runs between the used units are one unit short of 1 GiB, even unaligned ...
    assert_eq!(a.largest_free_run(), (1 << 18) - 1);
    assert_eq!(a.alloc(1 << 18, 1), Err(AllocError::NoSpace));
    // ... and hold everything one unit shorter.
    assert_eq!(a.alloc((1 << 18) - 1, 1).unwrap(), 12_346);
    a.check().unwrap();
}

#[test]
fn aligned_fit_needs_aligned_room() {
    // A run longer than the request whose aligned part is too short: no false fit, and the
    // later aligned run is found.
    let n = 20_000;
    let mut a = new_alloc(n);
    a.alloc_at(0, 1).unwrap();
    a.alloc_at(600, 1).unwrap(); // free 1..600 holds 599 units but no aligned 512
    a.alloc_at(1030, 1).unwrap(); // free 601..1030: 429 units
    assert_eq!(a.alloc(512, 512).unwrap(), 1536);
    assert_eq!(a.alloc(599, 1).unwrap(), 1);
    a.check().unwrap();
}

#[test]
fn runs_across_leaves_and_nodes() {
    let n = 300_000;
    let mut a = new_alloc(n);
    // Leave free gaps that straddle leaf (1024) and node (16384) boundaries.
    a.alloc_at(0, 1000).unwrap();
    a.alloc_at(1030, 15_000).unwrap(); // free 1000..1030 (crosses 1024)
    a.alloc_at(16_400, 100_000).unwrap(); // free 16030..16400 (crosses 16384)
    assert_eq!(a.alloc(30, 1).unwrap(), 1000);
    assert_eq!(a.alloc(370, 1).unwrap(), 16_030);
    assert_eq!(a.alloc(200_000, 1), Err(AllocError::NoSpace));
    let big = n - 116_400;
    assert_eq!(a.largest_free_run(), big);
    assert_eq!(a.alloc(big, 1).unwrap(), 116_400);
    assert_eq!(a.free_units(), 0);
    a.check().unwrap();
}

#[test]
fn pending_leaf_is_exact() {
    // Operations inside one leaf defer the summaries; every query must still be exact.
    let mut a = new_alloc(50_000);
    let s = a.alloc(1, 1).unwrap();
    assert_eq!(a.largest_free_run(), 49_999);
    a.free(s, 1).unwrap();
    assert_eq!(a.largest_free_run(), 50_000);
    a.alloc_at(1024 * 20 + 5, 10).unwrap();
    assert_eq!(a.largest_free_run(), 50_000 - (1024 * 20 + 15));
    a.alloc_at(1024 * 20 + 100, 10).unwrap();
    assert_eq!(a.largest_free_run(), 50_000 - (1024 * 20 + 110));
    assert_eq!(
        a.allocated_runs().collect::<Vec<_>>(),
        vec![(1024 * 20 + 5, 10), (1024 * 20 + 100, 10)]
    );
    a.check().unwrap();
}

#[test]
fn serialisation_round_trip() {
    let n = 100_000u64;
    let mut a = new_alloc(n);
    let empty_len = a.serialized_len();
    assert_eq!(empty_len, STATE_HEADER_LEN);
    for (s, c) in [(0, 1), (5, 100), (1023, 2), (4096, 4096), (n - 1, 1)] {
        a.alloc_at(s, c).unwrap();
    }
    let len = a.serialized_len();
    assert_eq!(len, STATE_HEADER_LEN + 5 * 16);
    let mut buf = vec![0u8; len];
    assert_eq!(
        a.serialize(&mut buf[..len - 1]),
        Err(AllocError::ShortBuffer)
    );
    assert_eq!(a.serialize(&mut buf).unwrap(), len);
    let words = storage_words(n).unwrap();
    let mut b = BitAlloc::restore(vec![0u64; words], n, &buf).unwrap();
    assert_eq!(
        b.allocated_runs().collect::<Vec<_>>(),
        a.allocated_runs().collect::<Vec<_>>()
    );
    assert_eq!(b.free_units(), a.free_units());
    assert_eq!(b.largest_free_run(), a.largest_free_run());
    b.check().unwrap();
    // Wrong pool size.
    assert_eq!(
        BitAlloc::restore(vec![0u64; words], n - 1, &buf).err(),
        Some(AllocError::Corrupt(Corruption::Units))
    );
    // Every single-byte change, every truncation and an extension are detected.
    for i in 0..len {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = buf.clone();
            bad[i] ^= flip;
            let r = BitAlloc::restore(vec![0u64; words], n, &bad);
            assert!(
                matches!(r, Err(AllocError::Corrupt(_))),
                "byte {i} ^ {flip:#x} accepted"
            );
        }
    }
    for l in 0..len {
        assert!(BitAlloc::restore(vec![0u64; words], n, &buf[..l]).is_err());
    }
    let mut long = buf.clone();
    long.extend_from_slice(&[0; 16]);
    assert!(BitAlloc::restore(vec![0u64; words], n, &long).is_err());
    // Too little storage is reported as such, not as corruption.
    assert_eq!(
        BitAlloc::restore(vec![0u64; words - 1], n, &buf).err(),
        Some(AllocError::BadStorage)
    );
}

/// Builds a state by hand with a correct checksum, to test the semantic checks.
fn forge(units: u64, used: u64, runs: &[(u64, u64)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"EXMBMAP\0");
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&48u32.to_le_bytes());
    b.extend_from_slice(&units.to_le_bytes());
    b.extend_from_slice(&used.to_le_bytes());
    b.extend_from_slice(&(runs.len() as u64).to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    for (s, c) in runs {
        b.extend_from_slice(&s.to_le_bytes());
        b.extend_from_slice(&c.to_le_bytes());
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &x) in b.iter().enumerate() {
        if (40..48).contains(&i) {
            continue;
        }
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    b[40..48].copy_from_slice(&h.to_le_bytes());
    b
}

#[test]
fn restore_rejects_bad_runs() {
    let n = 10_000;
    let w = storage_words(n).unwrap();
    let ok = forge(n, 15, &[(0, 5), (10, 10)]);
    let mut a = BitAlloc::restore(vec![0; w], n, &ok).unwrap();
    a.check().unwrap();
    let runs = Corruption::Runs;
    for (used, r, want) in [
        (15, vec![(10u64, 10u64), (0, 5)], runs), // unsorted
        (15, vec![(0, 10), (5, 5)], runs),        // overlapping
        (15, vec![(0, 5), (5, 10)], runs),        // adjacent, not maximal
        (5, vec![(0, 5), (10, 0)], runs),         // empty run
        (5, vec![(n - 2, 5)], runs),              // past the end
        (2, vec![(u64::MAX - 1, 2)], runs),       // overflow
        (16, vec![(0, 5), (10, 10)], Corruption::Total),
    ] {
        let b = forge(n, used, &r);
        assert_eq!(
            BitAlloc::restore(vec![0; w], n, &b).err(),
            Some(AllocError::Corrupt(want)),
            "{r:?}"
        );
    }
    // A huge run count must not overflow the length computation.
    let mut b = forge(n, 0, &[]);
    b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        BitAlloc::restore(vec![0; w], n, &b).err(),
        Some(AllocError::Corrupt(Corruption::Length))
    );
}

#[test]
fn from_bitmap_matches_bits() {
    let n = 70_001u64;
    let mut bits = vec![0u64; n.div_ceil(64) as usize];
    for i in (0..n).filter(|i| i % 3 == 0 || (i / 5000) % 2 == 1) {
        bits[(i / 64) as usize] |= 1 << (i % 64);
    }
    let mut a = BitAlloc::from_bitmap(vec![0; storage_words(n).unwrap()], n, &bits).unwrap();
    a.check().unwrap();
    for i in 0..n {
        let want = i % 3 == 0 || (i / 5000) % 2 == 1;
        assert_eq!(a.is_allocated(i), want);
    }
    assert_eq!(a.largest_free_run(), 2);
    assert_eq!(a.alloc(3, 1), Err(AllocError::NoSpace));
    assert_eq!(a.alloc(2, 2).unwrap(), 4);
}

#[test]
fn finish_frees_all_and_takes_whole_pool() {
    for &n in SIZES {
        let mut p = Pair::new(n);
        let mut rng = support::Rng(n);
        for _ in 0..200 {
            let w = [rng.next(), rng.next(), rng.next(), rng.next()];
            let op = support::decode(n, w);
            p.apply(op)
                .unwrap_or_else(|e| panic!("n={n} op {op:?}: {e}"));
        }
        p.finish().unwrap();
    }
    assert_eq!(LEAF_UNITS, 1024);
}

/// Naturally aligned blocks (`count == align`, the 2 MiB and 1 GiB page case) follow `blk`
/// down the tree; on maps with holes of every size they must return the oracle's first fit,
/// for every block size from one unit to beyond a leaf and an inner node.
#[test]
fn natural_blocks_match_oracle() {
    for units in [5000u64, 70_001, 262_145] {
        for seed in 0..4u64 {
            let mut rng = support::Rng(seed * 7919 + units);
            let mut a = new_alloc(units);
            let mut o = support::Oracle::new(units);
            // Fixed claims of random sizes at random places, denser for higher seeds.
            for _ in 0..(20 + 200 * seed) {
                let start = rng.below(units);
                let log = rng.below(12);
                let count = (1 + rng.below(1 << log)).min(units - start);
                if o.range_all(start, count, false) {
                    a.alloc_at(start, count).unwrap();
                    o.set(start, count, true);
                }
            }
            for j in 0..=18u32 {
                let size = 1u64 << j;
                for off in [0, size, 3 * size] {
                    let want = o.first_fit(size, size, off);
                    let got = a.alloc_offset(size, size, off);
                    match (got, want) {
                        (Ok(s), Some(w)) if s == w => {
                            a.free(s, size).unwrap();
                        }
                        (Err(AllocError::NoSpace), None) => {}
                        _ => panic!("units {units} seed {seed} block {size} off {off}: {got:?}, oracle {want:?}"),
                    }
                }
            }
            a.check().unwrap();
        }
    }
}

/// The reject shortcut (cached bounds of the longest free run and the largest free aligned
/// block) must never refuse what fits: after one-leaf frees that leave a leaf pending, after
/// frees across leaves, and after fixed claims; `check()` verifies the bounds too.
#[test]
fn reject_bounds_follow_frees() {
    for units in [4096u64, 16 * 1024 + 1, 262_144 + 777] {
        let mut a = new_alloc(units);
        a.alloc_at(0, units).unwrap();
        // Full: everything is refused, in the shortcut or in the search.
        assert_eq!(a.alloc(1, 1), Err(AllocError::NoSpace));
        assert_eq!(a.alloc(512, 512), Err(AllocError::NoSpace));
        // A one-leaf free (the leaf stays pending) must make room at once.
        a.free(1024 + 512, 512).unwrap();
        assert_eq!(a.alloc(512, 512), Ok(1024 + 512));
        assert_eq!(a.alloc(512, 512), Err(AllocError::NoSpace));
        a.free(1024 + 512, 512).unwrap();
        assert_eq!(a.alloc(300, 1), Ok(1024 + 512));
        a.check().unwrap();
        // A free across leaves raises the bounds to the new root.
        a.free(2148, 1500).unwrap();
        assert_eq!(a.largest_free_run(), 1500);
        assert_eq!(a.alloc(1024, 512), Ok(2560));
        assert_eq!(a.alloc(1024, 512), Err(AllocError::NoSpace));
        assert_eq!(a.alloc(413, 1), Err(AllocError::NoSpace));
        assert_eq!(a.alloc(412, 1), Ok(2148));
        a.check().unwrap();
        // Freeing the rest, a claim of the whole pool fits.
        for (s, c) in a.allocated_runs().collect::<Vec<_>>() {
            a.free(s, c).unwrap();
        }
        a.check().unwrap();
        a.alloc_at(0, units).unwrap();
        a.check().unwrap();
    }
}

/// Frees and claims across whole leaves check those leaves through their summaries; one unit
/// of the wrong state anywhere, in a whole leaf or at either ragged end, must still be found
/// and must change nothing.
#[test]
fn large_free_and_claim_check_every_unit() {
    let units = 16 * 1024 + 1;
    let (s, e) = (1000u64, 9 * 1024 + 7);
    for hole in [
        s,
        s + 30,
        1024,
        2048 + 511,
        5 * 1024,
        9 * 1024 - 1,
        9 * 1024,
        e - 1,
    ] {
        let mut a = new_alloc(units);
        a.alloc_at(s, e - s).unwrap();
        a.free(hole, 1).unwrap();
        // Make another leaf pending, so that the large free has to settle it first.
        a.alloc(1, 1).unwrap();
        let before = a.free_units();
        assert_eq!(
            a.free(s, e - s),
            Err(AllocError::NotAllocated),
            "hole {hole}"
        );
        assert_eq!(a.free_units(), before);
        a.check().unwrap();
        // Fixed claims: a used unit anywhere in the range makes it busy.
        let mut b = new_alloc(units);
        b.alloc_at(hole, 1).unwrap();
        assert_eq!(b.alloc_at(s, e - s), Err(AllocError::Busy), "hole {hole}");
        b.check().unwrap();
        b.free(hole, 1).unwrap();
        b.alloc_at(s, e - s).unwrap();
        b.free(s, e - s).unwrap();
        assert_eq!(b.free_units(), units);
        b.check().unwrap();
    }
}

/// The block index (2 MiB and 1 GiB blocks of 4 KiB units) with general operations between
/// (the same sequence as the KUnit case `block_index_first_fit`).
#[test]
fn block_index_first_fit() {
    let mut a = new_alloc((4 << 18) + 5000);
    // Four 1 GiB nodes of 4 KiB units and a partial fifth: 2 MiB and 1 GiB blocks go
    // through the block index, whose stale summaries the other operations repair.
    let units: u64 = (4 << 18) + 5000;
    for k in 0..1024u64 {
        assert_eq!(a.alloc(512, 512), Ok(k * 512));
    }
    assert_eq!(a.free(3 * 512, 512), Ok(()));
    assert_eq!(a.free(700 * 512, 512), Ok(()));
    assert_eq!(a.free(3 * 512, 512), Err(AllocError::NotAllocated));
    assert_eq!(a.alloc(512, 512), Ok(3 * 512));
    assert_eq!(a.alloc(512, 512), Ok(700 * 512));
    assert_eq!(a.alloc(512, 512), Ok(1024 * 512));
    assert_eq!(a.alloc(1 << 18, 1 << 18), Ok(3 << 18));
    assert_eq!(a.alloc(1 << 18, 1 << 18), Err(AllocError::NoSpace));
    assert_eq!(a.free(3 << 18, 1 << 18), Ok(()));
    assert_eq!(a.alloc(1, 1), Ok((2 << 18) + 512));
    assert_eq!(a.free(0, 1 << 18), Ok(()));
    assert_eq!(a.alloc(1 << 18, 1 << 18), Ok(0));
    assert_eq!(a.largest_free_run(), (2 << 18) + 4487);
    assert_eq!(a.free_units(), units - (2 << 18) - 513);
    assert_eq!(a.check(), Ok(()));
}
