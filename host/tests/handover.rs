// SPDX-License-Identifier: GPL-2.0

//! Host tests of the kexec handover format: round trip, and every corruption rejected.

use extmem_core::bitalloc::{storage_words, BitAlloc};
use extmem_core::handover::{
    self, Alloc, Area, Error, Limits, Region, COMPATIBLE, COMPATIBLE_V1, HEADER_LEN, HEADER_LEN_V1,
};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const LIMITS: Limits = Limits {
    granule: 128 * MIB,
    max_nodes: 4,
};

fn label(s: &str) -> [u8; 32] {
    let mut l = [0u8; 32];
    l[..s.len()].copy_from_slice(s.as_bytes());
    l
}

fn name(s: &str) -> [u8; 32] {
    label(s)
}

/// Two sticky regions in area 1, beside its allocations.
fn sample_regions() -> Vec<Region> {
    vec![
        Region {
            phys: (5 << 30) + 64 * MIB,
            len: 64 * MIB,
            align: 2 * MIB,
            area: 1,
            nid: 1,
            uid: 1000,
            gid: 1000,
            mode: 0o660,
            name: name("vm0"),
        },
        Region {
            phys: (5 << 30) + 128 * MIB,
            len: 4 * MIB,
            align: 4096,
            area: 1,
            nid: 1,
            uid: 0,
            gid: 0,
            mode: 0o600,
            name: name("guest-1.mem_b"),
        },
    ]
}

fn sample() -> (Vec<Area>, Vec<Alloc>) {
    let areas = vec![
        Area {
            base: 1 << 30,
            size: 1 << 30,
            nid: 0,
            unit_shift: 12,
            state_off: 0,
            state_len: 0,
        },
        Area {
            base: 5 << 30,
            size: 256 * MIB,
            nid: 1,
            unit_shift: 12,
            state_off: 0,
            state_len: 0,
        },
    ];
    let allocs = vec![
        Alloc {
            phys: 1 << 30,
            len: 1 << 30,
            area: 0,
            nid: 0,
            label: label("guest-a"),
        },
        Alloc {
            phys: (5 << 30) + 2 * MIB,
            len: 2 * MIB,
            area: 1,
            nid: 1,
            label: label("guest-b"),
        },
        Alloc {
            phys: (5 << 30) + 8 * MIB,
            len: 4096,
            area: 1,
            nid: 1,
            label: label(""),
        },
    ];
    (areas, allocs)
}

/// Writes the sample with real allocator states holding exactly the allocations and regions.
fn write_sample() -> Vec<u8> {
    let (areas, allocs) = sample();
    write_with(&areas, &allocs, &sample_regions())
}

fn write_with(areas: &[Area], allocs: &[Alloc], regions: &[Region]) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 16];
    let n = handover::write(&mut out, areas, allocs, regions, |i, buf| {
        let a = areas[i];
        let units = a.size >> 12;
        let mut b = BitAlloc::new(vec![0u64; storage_words(units).unwrap()], units).unwrap();
        for x in allocs.iter().filter(|x| x.area as usize == i) {
            b.alloc_at((x.phys - a.base) >> 12, x.len >> 12).unwrap();
        }
        for r in regions.iter().filter(|r| r.area as usize == i) {
            b.alloc_at((r.phys - a.base) >> 12, r.len >> 12).unwrap();
        }
        b.serialize(buf).map_err(|_| Error::NoRoom)
    })
    .unwrap();
    out.truncate(n);
    out
}

#[test]
fn round_trip() {
    let blob = write_sample();
    let h = handover::parse(&blob, &LIMITS).unwrap();
    let (areas, allocs) = sample();
    assert_eq!(h.nr_areas(), 2);
    assert_eq!(h.nr_allocs(), 3);
    for (i, a) in areas.iter().enumerate() {
        let got = h.area(i).unwrap();
        assert_eq!((got.base, got.size, got.nid), (a.base, a.size, a.nid));
        let units = a.size >> 12;
        let b = BitAlloc::restore(
            vec![0u64; storage_words(units).unwrap()],
            units,
            h.area_state(i).unwrap(),
        )
        .unwrap();
        let used: u64 = allocs
            .iter()
            .filter(|x| x.area as usize == i)
            .map(|x| x.len >> 12)
            .sum::<u64>()
            + sample_regions()
                .iter()
                .filter(|r| r.area as usize == i)
                .map(|r| r.len >> 12)
                .sum::<u64>();
        assert_eq!(b.used_units(), used);
    }
    for (i, x) in allocs.iter().enumerate() {
        assert_eq!(h.alloc(i).unwrap(), *x);
    }
    for (i, r) in sample_regions().iter().enumerate() {
        assert_eq!(h.region(i).unwrap(), *r);
    }
    assert_eq!(h.nr_regions(), 2);
    assert!(h.area(2).is_none() && h.alloc(3).is_none() && h.region(2).is_none());
}

#[test]
fn every_byte_flip_is_caught() {
    let blob = write_sample();
    let h = handover::parse(&blob, &LIMITS).unwrap();
    let tables_end = h.area(0).unwrap().state_off as usize;
    for i in 0..blob.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = blob.clone();
            bad[i] ^= flip;
            match handover::parse(&bad, &LIMITS) {
                Err(_) => assert!(i < tables_end || i >= blob.len(), "byte {i}"),
                Ok(h) => {
                    // Only the allocator states lie outside the checksum; they carry their own.
                    assert!(i >= tables_end, "flip at {i} accepted");
                    let ok = (0..h.nr_areas()).all(|a| {
                        let area = h.area(a).unwrap();
                        let units = area.size >> 12;
                        BitAlloc::restore(
                            vec![0u64; storage_words(units).unwrap()],
                            units,
                            h.area_state(a).unwrap(),
                        )
                        .is_ok()
                    });
                    assert!(!ok, "state flip at {i} restored");
                }
            }
        }
    }
}

#[test]
fn truncations_and_bad_limits_are_rejected() {
    let blob = write_sample();
    for n in 0..blob.len() {
        assert!(handover::parse(&blob[..n], &LIMITS).is_err(), "length {n}");
    }
    let tight = Limits {
        granule: 2 << 30,
        max_nodes: 4,
    };
    assert_eq!(handover::parse(&blob, &tight).unwrap_err(), Error::Area);
    let one_node = Limits {
        granule: 128 * MIB,
        max_nodes: 1,
    };
    assert_eq!(handover::parse(&blob, &one_node).unwrap_err(), Error::Area);
    assert!(blob.starts_with(COMPATIBLE.as_bytes()));
    assert!(blob.len() > HEADER_LEN);
}

#[test]
fn forged_records_with_valid_checksums_are_rejected() {
    // Rewrite a table field and fix the checksum: the structural checks must still refuse.
    let (areas, mut allocs) = sample();
    let write = |areas: &[Area], allocs: &[Alloc]| {
        let mut out = vec![0u8; 1 << 16];
        let n = handover::write(&mut out, areas, allocs, &[], |_, _| Ok(0)).unwrap();
        out.truncate(n);
        out
    };
    assert!(handover::parse(&write(&areas, &allocs), &LIMITS).is_ok());
    allocs[1].phys = allocs[0].phys; // overlaps
    assert_eq!(
        handover::parse(&write(&areas, &allocs), &LIMITS).unwrap_err(),
        Error::Alloc
    );
    let (mut areas2, allocs2) = sample();
    areas2[1].base = areas2[0].base; // overlapping areas
    assert_eq!(
        handover::parse(&write(&areas2, &allocs2), &LIMITS).unwrap_err(),
        Error::Area
    );
    let (areas3, mut allocs3) = sample();
    allocs3[2].label = [b'x'; 32]; // no NUL
    assert_eq!(
        handover::parse(&write(&areas3, &allocs3), &LIMITS).unwrap_err(),
        Error::Alloc
    );
    let (areas4, mut allocs4) = sample();
    allocs4[2].nid = 0; // node differs from its area
    assert_eq!(
        handover::parse(&write(&areas4, &allocs4), &LIMITS).unwrap_err(),
        Error::Alloc
    );
}

#[test]
fn no_room_is_an_error_not_a_panic() {
    let (areas, allocs) = sample();
    for n in [0usize, 10, 63, 64, 200, 500] {
        let mut out = vec![0u8; n];
        assert!(
            handover::write(&mut out, &areas, &allocs, &sample_regions(), |_, _| Ok(0)).is_err()
        );
    }
}

/// A change to a region record.
type Forge = fn(&mut Region);

/// Writes the sample with regions, then changes region `i` with `f` and fixes the checksum.
fn forged_region(i: usize, f: impl Fn(&mut Region)) -> Result<(), Error> {
    let (areas, allocs) = sample();
    let mut regions = sample_regions();
    f(&mut regions[i]);
    let mut out = vec![0u8; 1 << 16];
    let n = handover::write(&mut out, &areas, &allocs, &regions, |_, _| Ok(0)).unwrap();
    handover::parse(&out[..n], &LIMITS).map(|_| ())
}

#[test]
fn forged_regions_with_valid_checksums_are_rejected() {
    assert_eq!(forged_region(0, |_| {}), Ok(()));
    let bad: [(&str, Forge); 14] = [
        ("empty", |r| r.len = 0),
        ("align not a power of two", |r| r.align = 3 * MIB),
        ("align below the unit", |r| r.align = 2048),
        ("align above 1 GiB", |r| r.align = 2 << 30),
        ("phys not aligned", |r| r.phys += 4096),
        ("len not a multiple of align", |r| r.len += 4096),
        ("outside its area", |r| r.phys = 1 << 30),
        ("node differs", |r| r.nid = 0),
        ("no such area", |r| r.area = 7),
        ("mode bits", |r| r.mode = 0o4755),
        ("overlaps an allocation", |r| r.phys = (5 << 30) + 2 * MIB),
        ("overlaps the other region", |r| {
            r.phys = (5 << 30) + 128 * MIB
        }),
        ("repeated name", |r| r.name = name("guest-1.mem_b")),
        ("slash in name", |r| r.name = name("a/b")),
    ];
    for (what, f) in bad {
        assert_eq!(forged_region(0, f), Err(Error::Region), "{what}");
    }
    for n in ["", ".hidden", "sp ace", "\u{e9}t\u{e9}"] {
        assert_eq!(
            forged_region(1, |r| r.name = name(n)),
            Err(Error::Region),
            "{n:?}"
        );
    }
    assert_eq!(
        forged_region(1, |r| r.name = [b'x'; 32]),
        Err(Error::Region)
    );
}

#[test]
fn region_names() {
    assert_eq!(handover::region_name(b"vm0\0"), Some("vm0"));
    assert_eq!(handover::region_name(&name("a.b_c-D9")), Some("a.b_c-D9"));
    assert_eq!(
        handover::region_name(&name(&"x".repeat(31))).map(str::len),
        Some(31)
    );
    for bad in [
        &b"\0"[..],
        b"a/b\0",
        b".x\0",
        b"x",
        b"a\0b",
        &[b'x'; 32],
        &[0u8; 33],
    ] {
        assert_eq!(handover::region_name(bad), None, "{bad:?}");
    }
}

#[test]
fn v1_states_are_still_read() {
    // An extmem-v1 state: 64-byte header with flags at 28, no region table.
    let v2 = write_with(&sample().0, &sample().1, &[]);
    let h2 = handover::parse(&v2, &LIMITS).unwrap();
    let shift = HEADER_LEN - HEADER_LEN_V1;
    let mut v1 = Vec::new();
    let mut compat = [0u8; 16];
    compat[..COMPATIBLE_V1.len()].copy_from_slice(COMPATIBLE_V1.as_bytes());
    v1.extend_from_slice(&compat);
    v1.extend_from_slice(&v2[16..HEADER_LEN_V1]);
    v1.extend_from_slice(&v2[HEADER_LEN..]);
    let put =
        |b: &mut Vec<u8>, off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    v1[16..20].copy_from_slice(&(HEADER_LEN_V1 as u32).to_le_bytes());
    let total = u64::from_le_bytes(v2[32..40].try_into().unwrap()) - shift as u64;
    put(&mut v1, 32, total);
    put(&mut v1, 40, HEADER_LEN_V1 as u64);
    let allocs_off = u64::from_le_bytes(v2[48..56].try_into().unwrap()) - shift as u64;
    put(&mut v1, 48, allocs_off);
    for i in 0..h2.nr_areas() {
        let off = HEADER_LEN_V1 + i * 48 + 24;
        let state_off = u64::from_le_bytes(v1[off..off + 8].try_into().unwrap()) - shift as u64;
        put(&mut v1, off, state_off);
    }
    let tables_end = allocs_off as usize + h2.nr_allocs() * 64;
    put(&mut v1, 56, 0);
    let mut sum: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &v1[..tables_end] {
        sum ^= u64::from(b);
        sum = sum.wrapping_mul(0x0000_0100_0000_01b3);
    }
    put(&mut v1, 56, sum);
    let h1 = handover::parse(&v1, &LIMITS).unwrap();
    assert_eq!(h1.nr_regions(), 0);
    assert_eq!(h1.nr_allocs(), 3);
    for i in 0..3 {
        assert_eq!(h1.alloc(i), h2.alloc(i));
        assert_eq!(h1.area_state(i), h2.area_state(i));
    }
    // A v1 header with a non-zero flags word is refused.
    let mut bad = v1.clone();
    bad[28] = 1;
    assert!(handover::parse(&bad, &LIMITS).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random changes to a valid state with regions: parse never panics, and whatever it
    /// accepts keeps its promises (regions inside their areas, names valid and unique).
    #[test]
    fn mutated_states_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut blob = write_sample();
        for (at, v) in edits {
            let i = at % blob.len();
            blob[i] = v;
        }
        if let Ok(h) = handover::parse(&blob, &LIMITS) {
            for i in 0..h.nr_regions() {
                let r = h.region(i).unwrap();
                let a = h.area(r.area as usize).unwrap();
                prop_assert!(r.phys >= a.base && r.phys + r.len <= a.base + a.size);
                prop_assert!(handover::region_name(&r.name).is_some());
            }
        }
    }

    /// Arbitrary bytes with either compatible string in front are rejected without a panic.
    #[test]
    fn random_bytes_never_panic(v2 in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut blob = vec![0u8; 16];
        let c = if v2 { COMPATIBLE } else { COMPATIBLE_V1 };
        blob[..c.len()].copy_from_slice(c.as_bytes());
        blob.extend_from_slice(&body);
        let _ = handover::parse(&blob, &LIMITS);
    }
}
