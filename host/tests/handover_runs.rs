// SPDX-License-Identifier: GPL-2.0

//! Host tests of the handover's size-independent paths: an area's allocator state written
//! from its run list (`handover::write_area_state`) is byte for byte what an allocator of the
//! whole pool serialises, and the overlap checks of `handover::parse` on sorted tables (one
//! pass) give the same verdicts as the pairwise checks on unsorted ones.

use extmem_core::bitalloc::{storage_words, BitAlloc};
use extmem_core::handover::{self, Alloc, Area, Error, Limits, Region, ALLOC_LEN, REGION_LEN};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const LIMITS: Limits = Limits {
    granule: 128 * MIB,
    max_nodes: 4,
};

/// What `BitAlloc::serialize` writes for a pool of `units` holding `runs`.
fn reference(units: u64, runs: &[(u64, u64)]) -> Vec<u8> {
    let mut b = BitAlloc::new(vec![0u64; storage_words(units).unwrap()], units).unwrap();
    for &(s, c) in runs {
        b.alloc_at(s, c).unwrap();
    }
    let mut out = vec![0u8; b.serialized_len()];
    let n = b.serialize(&mut out).unwrap();
    out.truncate(n);
    out
}

fn from_runs(units: u64, runs: &[(u64, u64)]) -> Result<Vec<u8>, Error> {
    let mut v = runs.to_vec();
    let mut out = vec![0u8; 48 + 16 * runs.len()];
    let n = handover::write_area_state(units, &mut v, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// Disjoint runs from a list of (gap, length) pairs, cut into adjacent pieces where `cut`
/// says, in the order `perm` shuffles them to.
fn runs_of(units: u64, parts: &[(u64, u64, u64)], perm: u64) -> Vec<(u64, u64)> {
    let mut runs = Vec::new();
    let mut at = 0;
    for &(gap, len, cut) in parts {
        let start = at + gap;
        if start + len > units {
            break;
        }
        // One run, or two adjacent pieces of it: the writer must join them.
        let c = cut % len;
        if c == 0 {
            runs.push((start, len));
        } else {
            runs.push((start, c));
            runs.push((start + c, len - c));
        }
        at = start + len;
    }
    let n = runs.len();
    if n > 1 {
        for i in 0..n {
            let j = (perm.wrapping_mul(i as u64 + 7) % n as u64) as usize;
            runs.swap(i, j);
        }
    }
    runs
}

#[test]
fn state_from_runs_matches_the_allocator() {
    assert_eq!(from_runs(1, &[]).unwrap(), reference(1, &[]));
    assert_eq!(
        from_runs(100, &[(0, 100)]).unwrap(),
        reference(100, &[(0, 100)])
    );
    assert_eq!(
        from_runs(4096, &[(10, 5), (0, 10), (100, 1)]).unwrap(),
        reference(4096, &[(0, 15), (100, 1)])
    );
    // A 1000 GiB pool of 4 KiB units: the run list, not the pool, sets the cost.
    let units = 1000 << 18;
    let runs: Vec<(u64, u64)> = (0..1000).map(|i| (i * 251 * 512, 512)).collect();
    let state = from_runs(units, &runs).unwrap();
    assert_eq!(state.len(), 48 + 16 * 1000);
    let b = BitAlloc::restore(vec![0u64; storage_words(units).unwrap()], units, &state).unwrap();
    assert_eq!(b.used_units(), 1000 * 512);
}

#[test]
fn bad_runs_are_refused() {
    assert_eq!(from_runs(100, &[(0, 0)]), Err(Error::Alloc));
    assert_eq!(from_runs(100, &[(90, 11)]), Err(Error::Alloc));
    assert_eq!(from_runs(100, &[(u64::MAX, 2)]), Err(Error::Alloc));
    assert_eq!(from_runs(100, &[(10, 5), (14, 2)]), Err(Error::Alloc));
    assert_eq!(from_runs(100, &[(10, 5), (10, 5)]), Err(Error::Alloc));
    let mut runs = [(0, 1), (5, 1)];
    for n in 0..80 {
        let mut out = vec![0u8; n];
        assert_eq!(
            handover::write_area_state(100, &mut runs, &mut out),
            Err(Error::NoRoom),
            "{n}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any disjoint run list, in any order and cut into adjacent pieces, gives the allocator's
    /// own serialisation.
    #[test]
    fn state_from_runs_equals_serialize(
        units in 1u64..6000,
        parts in proptest::collection::vec((0u64..300, 1u64..400, any::<u64>()), 0..30),
        perm in any::<u64>(),
    ) {
        let runs = runs_of(units, &parts, perm);
        prop_assert_eq!(from_runs(units, &runs).unwrap(), reference(units, &runs));
    }
}

fn label(s: &str) -> [u8; 32] {
    let mut l = [0u8; 32];
    l[..s.len()].copy_from_slice(s.as_bytes());
    l
}

const AREA: Area = Area {
    base: 1 << 30,
    size: 1 << 30,
    nid: 0,
    unit_shift: 12,
    state_off: 0,
    state_len: 0,
};

fn alloc(phys: u64, len: u64) -> Alloc {
    Alloc {
        phys: AREA.base + phys,
        len,
        area: 0,
        nid: 0,
        label: label("x"),
    }
}

fn region(phys: u64, len: u64, i: usize) -> Region {
    Region {
        phys: AREA.base + phys,
        len,
        align: 4096,
        area: 0,
        nid: 0,
        uid: 0,
        gid: 0,
        mode: 0o600,
        name: label(&format!("r{i}")),
    }
}

fn write(allocs: &[Alloc], regions: &[Region]) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 20];
    let n = handover::write(&mut out, &[AREA], allocs, regions, |_, _| Ok(0)).unwrap();
    out.truncate(n);
    out
}

fn u64_at(b: &[u8], off: usize) -> usize {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap()) as usize
}

/// Reverses the allocation and region tables of a blob and fixes its checksum: what a writer
/// that does not sort could have written.
fn unsorted(mut blob: Vec<u8>) -> Vec<u8> {
    let nr_allocs = u32::from_le_bytes(blob[24..28].try_into().unwrap()) as usize;
    let nr_regions = u32::from_le_bytes(blob[28..32].try_into().unwrap()) as usize;
    let (allocs_off, regions_off) = (u64_at(&blob, 48), u64_at(&blob, 64));
    let recs = |b: &[u8], off: usize, n: usize, len: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| b[off + i * len..off + (i + 1) * len].to_vec())
            .collect()
    };
    let a = recs(&blob, allocs_off, nr_allocs, ALLOC_LEN);
    let r = recs(&blob, regions_off, nr_regions, REGION_LEN);
    for (i, rec) in a.iter().rev().enumerate() {
        blob[allocs_off + i * ALLOC_LEN..][..ALLOC_LEN].copy_from_slice(rec);
    }
    for (i, rec) in r.iter().rev().enumerate() {
        blob[regions_off + i * REGION_LEN..][..REGION_LEN].copy_from_slice(rec);
    }
    let tables_end = regions_off + nr_regions * REGION_LEN;
    blob[56..64].fill(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &blob[..tables_end] {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    blob[56..64].copy_from_slice(&h.to_le_bytes());
    blob
}

/// The verdict the pairwise definition gives.
fn oracle(allocs: &[Alloc], regions: &[Region]) -> Result<(), Error> {
    let overlap = |a: (u64, u64), b: (u64, u64)| a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
    for (i, x) in allocs.iter().enumerate() {
        if allocs[..i]
            .iter()
            .any(|y| overlap((x.phys, x.len), (y.phys, y.len)))
        {
            return Err(Error::Alloc);
        }
    }
    for (i, r) in regions.iter().enumerate() {
        if allocs
            .iter()
            .any(|x| overlap((r.phys, r.len), (x.phys, x.len)))
            || regions[..i]
                .iter()
                .any(|q| overlap((r.phys, r.len), (q.phys, q.len)))
        {
            return Err(Error::Region);
        }
    }
    Ok(())
}

#[test]
fn written_tables_are_sorted() {
    let allocs = [
        alloc(8 * MIB, 4096),
        alloc(0, 2 * MIB),
        alloc(4 * MIB, 4096),
    ];
    let regions = [region(64 * MIB, MIB, 0), region(16 * MIB, MIB, 1)];
    let blob = write(&allocs, &regions);
    let h = handover::parse(&blob, &LIMITS).unwrap();
    let phys: Vec<u64> = (0..3)
        .map(|i| h.alloc(i).unwrap().phys - AREA.base)
        .collect();
    assert_eq!(phys, [0, 4 * MIB, 8 * MIB]);
    assert_eq!(h.region(0).unwrap(), regions[1]);
    assert_eq!(h.region(1).unwrap(), regions[0]);
    // The same blob with its tables reversed is still accepted (the pairwise path).
    let reversed = unsorted(blob.clone());
    let h = handover::parse(&reversed, &LIMITS).unwrap();
    assert_eq!(h.alloc(0).unwrap().phys - AREA.base, 8 * MIB);
}

#[test]
fn a_thousand_allocations_parse() {
    let allocs: Vec<Alloc> = (0..1000)
        .rev()
        .map(|i| alloc(i * 2 * MIB / 4, 4096))
        .collect();
    let blob = write(&allocs, &[]);
    let h = handover::parse(&blob, &LIMITS).unwrap();
    assert_eq!(h.nr_allocs(), 1000);
    // One overlapping pair among a thousand is found.
    let mut bad = allocs.clone();
    bad[500].phys = bad[501].phys;
    assert_eq!(
        handover::parse(&write(&bad, &[]), &LIMITS).unwrap_err(),
        Error::Alloc
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Random allocations and regions (overlapping or not): the one-pass checks on the sorted
    /// tables and the pairwise checks on the same tables unsorted agree with the oracle.
    #[test]
    fn overlap_checks_agree_with_the_oracle(
        a in proptest::collection::vec((0u64..64, 1u64..6), 0..12),
        r in proptest::collection::vec((0u64..64, 1u64..6), 0..6),
    ) {
        let unit = 4096;
        let allocs: Vec<Alloc> = a.iter().map(|&(p, l)| alloc(p * unit, l * unit)).collect();
        let regions: Vec<Region> =
            r.iter().enumerate().map(|(i, &(p, l))| region(p * unit, l * unit, i)).collect();
        let want = oracle(&allocs, &regions);
        let blob = write(&allocs, &regions);
        prop_assert_eq!(handover::parse(&blob, &LIMITS).map(|_| ()), want);
        prop_assert_eq!(handover::parse(&unsorted(blob), &LIMITS).map(|_| ()), want);
    }
}
