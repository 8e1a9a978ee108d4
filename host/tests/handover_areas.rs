// SPDX-License-Identifier: GPL-2.0

//! Host tests of the area record handed over across kexec: round trip, and every corruption
//! and every invalid layout rejected.

use extmem_core::handover_areas::{parse, write, Area, Error, ENTRY_LEN, HEADER_LEN, MAX_AREAS};

const G: u64 = 128 << 20;
const NODES: u32 = 4;

fn area(base: u64, size: u64, nid: u32) -> Area {
    Area { base, size, nid }
}

fn record(areas: &[Area]) -> ([u8; 512], usize) {
    let mut buf = [0u8; 512];
    let len = write(&mut buf, areas.iter().copied()).unwrap();
    (buf, len)
}

#[test]
fn round_trip() {
    let areas = [area(0x1_0000_0000, 2 << 30, 0), area(0x3_0000_0000, G, 1)];
    let (buf, len) = record(&areas);
    assert_eq!(len, HEADER_LEN + 2 * ENTRY_LEN);
    let r = parse(&buf[..len], G, NODES).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r.areas().collect::<Vec<_>>(), areas);
    // Trailing bytes past the record are ignored; an empty record is valid.
    assert_eq!(parse(&buf, G, NODES).unwrap().len(), 2);
    let (buf, len) = record(&[]);
    assert!(parse(&buf[..len], G, NODES).unwrap().is_empty());
    // The most areas there can be.
    let many: Vec<_> = (0..MAX_AREAS as u64).map(|i| area(i * G, G, 0)).collect();
    let (buf, len) = record(&many);
    assert_eq!(parse(&buf[..len], G, NODES).unwrap().len(), MAX_AREAS);
}

#[test]
fn corruption_is_rejected() {
    let (buf, len) = record(&[area(G, G, 0), area(4 * G, 2 * G, 1)]);
    // Every flipped byte of the used part: rejected, never accepted with other contents.
    for i in 0..len {
        let mut b = buf;
        b[i] ^= 0x5a;
        assert!(parse(&b[..len], G, NODES).is_err(), "byte {i}");
    }
    assert_eq!(parse(&buf[..len - 1], G, NODES).unwrap_err(), Error::Short);
    assert_eq!(
        parse(&buf[..HEADER_LEN - 1], G, NODES).unwrap_err(),
        Error::Short
    );
    let mut b = buf;
    b[0] = b'X';
    assert_eq!(parse(&b[..len], G, NODES).unwrap_err(), Error::Compatible);
}

/// Rewrites the checksum of the first `len` bytes after a change, so that validation, not the
/// checksum, must catch it.
fn resum(b: &mut [u8], len: usize) {
    b[24..32].fill(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in &b[..len] {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    b[24..32].copy_from_slice(&h.to_le_bytes());
}

#[test]
fn invalid_layouts_are_rejected() {
    let bad = |areas: &[Area]| {
        let (buf, len) = record(areas);
        parse(&buf[..len], G, NODES).unwrap_err()
    };
    assert_eq!(bad(&[area(G + 4096, G, 0)]), Error::Field);
    assert_eq!(bad(&[area(G, G + 4096, 0)]), Error::Field);
    assert_eq!(bad(&[area(G, 0, 0)]), Error::Field);
    assert_eq!(bad(&[area(G, G, NODES)]), Error::Field);
    // Ends at 2^64, or past it: wraps.
    assert_eq!(bad(&[area(0u64.wrapping_sub(G), G, 0)]), Error::Field);
    assert_eq!(bad(&[area(0u64.wrapping_sub(G), 2 * G, 0)]), Error::Field);
    assert_eq!(bad(&[area(G, 2 * G, 0), area(2 * G, G, 1)]), Error::Overlap);
    assert_eq!(bad(&[area(4 * G, G, 0), area(G, 8 * G, 1)]), Error::Overlap);
    assert_eq!(bad(&[area(G, G, 0), area(G, G, 0)]), Error::Overlap);
    // Adjacent is fine.
    let (buf, len) = record(&[area(G, G, 0), area(2 * G, G, 0)]);
    assert!(parse(&buf[..len], G, NODES).is_ok());
    // Flags and the reserved field, with a valid checksum.
    let (mut b, len) = record(&[area(G, G, 0)]);
    b[20] = 1;
    resum(&mut b, len);
    assert_eq!(parse(&b[..len], G, NODES).unwrap_err(), Error::Field);
    let (mut b, len) = record(&[area(G, G, 0)]);
    b[HEADER_LEN + 20] = 1;
    resum(&mut b, len);
    assert_eq!(parse(&b[..len], G, NODES).unwrap_err(), Error::Field);
    // A count above MAX_AREAS, and a granule that is not a power of two.
    let (mut b, _) = record(&[area(G, G, 0)]);
    b[16..20].copy_from_slice(&(MAX_AREAS as u32 + 1).to_le_bytes());
    resum(&mut b, HEADER_LEN + (MAX_AREAS + 1) * ENTRY_LEN);
    assert_eq!(parse(&b, G, NODES).unwrap_err(), Error::TooMany);
    let (b, len) = record(&[area(G, G, 0)]);
    assert_eq!(parse(&b[..len], 3 * G, NODES).unwrap_err(), Error::Field);
}

#[test]
fn write_refuses_what_cannot_be_read() {
    let many: Vec<_> = (0..=MAX_AREAS as u64).map(|i| area(i * G, G, 0)).collect();
    let mut buf = [0u8; 512];
    assert_eq!(
        write(&mut buf, many.into_iter()).unwrap_err(),
        Error::TooMany
    );
    let mut small = [0u8; HEADER_LEN + MAX_AREAS * ENTRY_LEN - 1];
    assert_eq!(
        write(&mut small, core::iter::empty()).unwrap_err(),
        Error::Short
    );
}
