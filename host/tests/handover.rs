// SPDX-License-Identifier: GPL-2.0

//! Host tests of the kexec handover format: round trip, and every corruption rejected.

use extmem_core::bitalloc::{storage_words, BitAlloc};
use extmem_core::handover::{self, Alloc, Area, Error, Limits, COMPATIBLE, HEADER_LEN};

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

/// Writes the sample with real allocator states holding exactly the allocations.
fn write_sample() -> Vec<u8> {
    let (areas, allocs) = sample();
    let mut out = vec![0u8; 1 << 16];
    let n = handover::write(&mut out, &areas, &allocs, |i, buf| {
        let a = areas[i];
        let units = a.size >> 12;
        let mut b = BitAlloc::new(vec![0u64; storage_words(units).unwrap()], units).unwrap();
        for x in allocs.iter().filter(|x| x.area as usize == i) {
            b.alloc_at((x.phys - a.base) >> 12, x.len >> 12).unwrap();
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
            .sum();
        assert_eq!(b.used_units(), used);
    }
    for (i, x) in allocs.iter().enumerate() {
        assert_eq!(h.alloc(i).unwrap(), *x);
    }
    assert!(h.area(2).is_none() && h.alloc(3).is_none());
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
        let n = handover::write(&mut out, areas, allocs, |_, _| Ok(0)).unwrap();
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
    for n in [0usize, 10, 63, 64, 200] {
        let mut out = vec![0u8; n];
        assert!(handover::write(&mut out, &areas, &allocs, |_, _| Ok(0)).is_err());
    }
}
