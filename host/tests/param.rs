// SPDX-License-Identifier: GPL-2.0

//! Host tests of the `extmem=` parser: every rejection reason, and properties over random input.

use extmem_core::param::{parse, Entry, Reject, Rules, MAX_ENTRIES};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const RULES: Rules = Rules {
    max_nodes: 64,
    granule: 128 * MIB,
};

fn results(s: &str) -> Vec<Result<Entry, Reject>> {
    parse(s, &RULES).outcomes().map(|o| o.result).collect()
}

fn one(s: &str) -> Result<Entry, Reject> {
    let r = results(s);
    assert_eq!(r.len(), 1, "{s:?}");
    r[0]
}

fn dynamic(node: u32, size: u64) -> Result<Entry, Reject> {
    Ok(Entry {
        node,
        size,
        phys: None,
    })
}

#[test]
fn accepts_the_documented_forms() {
    assert_eq!(
        results("0:1G,2:4G"),
        vec![dynamic(0, GIB), dynamic(2, 4 * GIB)]
    );
    assert_eq!(one("1:256M"), dynamic(1, 256 * MIB));
    assert_eq!(one("1:256m"), dynamic(1, 256 * MIB));
    assert_eq!(one("0:262144K"), dynamic(0, 256 * MIB));
    assert_eq!(one("0:268435456"), dynamic(0, 256 * MIB));
    assert_eq!(one("0:0x10000000"), dynamic(0, 256 * MIB));
    assert_eq!(one("3:1T"), dynamic(3, 1 << 40));
    assert_eq!(one("00:0128M"), dynamic(0, 128 * MIB));
    assert_eq!(
        one("1:512M@0x40000000"),
        Ok(Entry {
            node: 1,
            size: 512 * MIB,
            phys: Some(GIB)
        })
    );
    assert_eq!(
        one("1:512M@4G"),
        Ok(Entry {
            node: 1,
            size: 512 * MIB,
            phys: Some(4 * GIB)
        })
    );
}

#[test]
fn empty_string_has_no_entries() {
    assert!(results("").is_empty());
}

#[test]
fn every_rejection_reason() {
    let cases: &[(&str, Reject)] = &[
        ("0:1G,,1:1G", Reject::Empty),
        ("1G", Reject::MissingColon),
        (":1G", Reject::BadNode),
        ("x:1G", Reject::BadNode),
        ("-1:1G", Reject::BadNode),
        ("64:1G", Reject::NodeOutOfRange),
        ("99999999999:1G", Reject::NodeOutOfRange),
        ("0:", Reject::BadSize),
        ("0:G", Reject::BadSize),
        ("0:0x", Reject::BadSize),
        ("0:0", Reject::ZeroSize),
        ("0:0G", Reject::ZeroSize),
        ("0:1Q", Reject::TrailingGarbage),
        ("0:1GB", Reject::TrailingGarbage),
        ("0:1G ", Reject::TrailingGarbage),
        ("0:1G@1Gx", Reject::TrailingGarbage),
        ("0:100M", Reject::SizeUnaligned),
        ("0:4097", Reject::SizeUnaligned),
        ("0:1G@", Reject::BadPhys),
        ("0:1G@@1G", Reject::BadPhys),
        ("0:1G@0x1000", Reject::PhysUnaligned),
        ("0:99999999999999999999", Reject::Overflow),
        ("0:16777216T", Reject::Overflow),
        ("0:0x10000000000000000", Reject::Overflow),
        ("0:1G@0xffffffffc0000000", Reject::Overflow),
    ];
    for (s, want) in cases {
        let got = results(s);
        assert!(
            got.contains(&Err(*want)),
            "{s:?}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn overlapping_fixed_ranges_reject_the_later_one() {
    let r = results("0:1G@1G,1:512M@1536M,0:256M@2G");
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(Reject::Overlap(0)));
    assert!(r[2].is_ok(), "touching is not overlapping");
    // A rejected entry does not block later ones.
    let r = results("0:1G@1G,0:1G@1G,0:1G@1536M");
    assert_eq!(r[1], Err(Reject::Overlap(0)));
    assert_eq!(r[2], Err(Reject::Overlap(0)));
}

#[test]
fn too_many_entries() {
    let s = vec!["0:128M"; MAX_ENTRIES + 3].join(",");
    let p = parse(&s, &RULES);
    assert_eq!(p.accepted().count(), MAX_ENTRIES);
    let (extra, text) = p.too_many();
    assert_eq!(extra, 3);
    assert_eq!(text, "0:128M,0:128M,0:128M");
}

#[test]
fn bad_entries_do_not_affect_good_ones() {
    let r = results("7:256M,0:0,0:1Q,1:256M,0:128M@1G,0:128M@1G,1:64T");
    assert_eq!(r.len(), 7);
    assert_eq!(r[3], dynamic(1, 256 * MIB));
    assert!(r[4].is_ok());
    assert_eq!(r[5], Err(Reject::Overlap(4)));
    assert!(
        r[6].is_ok(),
        "a size larger than the node is memblock's to refuse"
    );
    assert!(
        r[0].is_ok(),
        "node 7 < max_nodes: online check is the glue's job"
    );
}

#[test]
fn display_round_trips_known_values() {
    let e = Entry {
        node: 2,
        size: 1536 * MIB,
        phys: Some(3 * GIB),
    };
    assert_eq!(e.to_string(), "2:1536M@0xc0000000");
    assert_eq!(Entry { phys: None, ..e }.to_string(), "2:1536M");
    assert_eq!(one(&e.to_string()), Ok(e));
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (0u32..64, 1u64..(1 << 17), prop::option::of(0u64..(1 << 20))).prop_map(
        |(node, granules, phys)| Entry {
            node,
            size: granules * RULES.granule,
            phys: phys.map(|p| p * RULES.granule),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&bytes);
        let p = parse(&s, &RULES);
        prop_assert!(p.outcomes().count() <= MAX_ENTRIES);
    }

    #[test]
    fn arbitrary_syntax_like_strings_never_panic(s in "[0-9xXkKmMgGtT:@,]{0,64}") {
        let p = parse(&s, &RULES);
        for e in p.accepted() {
            prop_assert!(e.size > 0 && e.size % RULES.granule == 0);
            prop_assert!(e.node < RULES.max_nodes);
        }
    }

    #[test]
    fn accepted_strings_round_trip(entries in prop::collection::vec(entry_strategy(), 1..MAX_ENTRIES)) {
        let s = entries.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",");
        let first: Vec<Entry> = parse(&s, &RULES).accepted().collect();
        let formatted = first.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",");
        let second: Vec<Entry> = parse(&formatted, &RULES).accepted().collect();
        prop_assert_eq!(&first, &second);
        // Every generated entry is accepted unless it overlaps an earlier fixed range.
        for (i, o) in parse(&s, &RULES).outcomes().enumerate() {
            match o.result {
                Ok(e) => prop_assert_eq!(e, entries[i]),
                Err(Reject::Overlap(j)) => prop_assert!(j < i),
                Err(r) => prop_assert!(false, "{} rejected: {:?}", entries[i], r),
            }
        }
    }
}
