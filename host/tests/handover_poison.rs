// SPDX-License-Identifier: GPL-2.0

//! Host tests of the poison record handed over across kexec: round trip, overflow, and every
//! corruption rejected.

use extmem_core::handover_poison::{parse, write, Error, ENTRY_LEN, HEADER_LEN, OVERFLOW};

const UNIT: u64 = 4096;

#[test]
fn round_trip() {
    let units = [0x1_4000_3000u64, 0x4000_0000, 0x7fff_f000];
    let mut buf = [0u8; 256];
    let len = write(&mut buf, units.iter().copied()).unwrap();
    assert_eq!(len, HEADER_LEN + 3 * ENTRY_LEN);
    let r = parse(&buf[..len], UNIT).unwrap();
    assert!(!r.overflow());
    assert_eq!(r.units().collect::<Vec<_>>(), units);
    // An empty record is valid too.
    let len = write(&mut buf, core::iter::empty()).unwrap();
    assert_eq!(parse(&buf[..len], UNIT).unwrap().units().count(), 0);
}

#[test]
fn overflow_is_recorded() {
    let mut buf = [0u8; HEADER_LEN + 2 * ENTRY_LEN];
    let len = write(&mut buf, (1..=5u64).map(|i| i * UNIT)).unwrap();
    let r = parse(&buf[..len], UNIT).unwrap();
    assert!(r.overflow());
    assert_eq!(r.units().count(), 2);
    assert!(write(&mut [0u8; HEADER_LEN - 1], core::iter::empty()).is_err());
}

#[test]
fn corruption_is_rejected() {
    let mut buf = [0u8; 128];
    let len = write(&mut buf, [UNIT, 2 * UNIT].into_iter()).unwrap();
    // Every flipped byte of the used part: rejected, never accepted with other contents.
    for i in 0..len {
        let mut b = buf;
        b[i] ^= 0x5a;
        assert!(parse(&b[..len], UNIT).is_err(), "byte {i}");
    }
    assert_eq!(parse(&buf[..len - 1], UNIT).unwrap_err(), Error::Short);
    assert_eq!(
        parse(&buf[..HEADER_LEN - 1], UNIT).unwrap_err(),
        Error::Short
    );
    // Unknown flags and unaligned units, with a valid checksum.
    let len = write(&mut buf, [UNIT + 8].into_iter()).unwrap();
    assert_eq!(parse(&buf[..len], UNIT).unwrap_err(), Error::Field);
    let mut small = [0u8; HEADER_LEN];
    let len = write(&mut small, [UNIT].into_iter()).unwrap();
    assert!(parse(&small[..len], UNIT).unwrap().overflow());
    assert_eq!(OVERFLOW, 1);
}
