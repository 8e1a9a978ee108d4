// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of extmem's kernel glue: the parser entry point `boot.c` uses, and the pool
//! built from the boot records.

#[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
#[kernel::macros::kunit_tests(extmem_glue)]
mod tests {
    use crate::boot::parse_into;
    use crate::param::Rules;
    use crate::pool;
    use crate::wrappers::c_entry::Request;
    use crate::wrappers::memremap;
    use crate::wrappers::resource::page_is_ram;
    use kernel::prelude::*;

    const MIB: u64 = 1 << 20;
    const RULES: Rules = Rules {
        max_nodes: 4,
        granule: 128 * MIB,
    };

    fn empty() -> Request {
        Request {
            size: 0,
            phys: 0,
            nid: 0,
            index: 0,
            fixed: false,
            handover: false,
        }
    }

    #[test]
    fn parse_keeps_good_entries_and_their_index() {
        let mut out = [empty(); 4];
        let n = parse_into(
            b"0:256M,9:128M,1:1Q,1:128M@0x40000000",
            &RULES,
            &mut out,
            false,
        );
        assert_eq!(n, 2);
        assert_eq!(out[0].size, 256 * MIB);
        assert_eq!(out[0].nid, 0);
        assert!(!out[0].fixed);
        assert_eq!(out[1].index, 3);
        assert_eq!(out[1].nid, 1);
        assert!(out[1].fixed);
        assert_eq!(out[1].phys, 0x4000_0000);
    }

    #[test]
    fn parse_never_overflows_the_callers_array() {
        let mut out = [empty(); 1];
        assert_eq!(
            parse_into(b"0:128M,0:128M,0:128M", &RULES, &mut out, false),
            1
        );
        assert_eq!(parse_into(b"\xff0:128M", &RULES, &mut out, false), 0);
    }

    #[test]
    fn areas_are_granule_aligned_disjoint_and_not_ram() -> Result {
        let pool = pool::get().ok_or(ENODEV)?;
        let areas = pool.areas();
        for (i, a) in areas.iter().enumerate() {
            assert!(a.size > 0);
            assert_eq!(a.base % (128 * MIB), 0);
            assert_eq!(a.size % (128 * MIB), 0);
            for b in &areas[i + 1..] {
                assert!(a.base + a.size <= b.base || b.base + b.size <= a.base);
            }
            assert!(!page_is_ram(a.base));
            assert!(!page_is_ram(a.base + a.size - 1));
        }
        Ok(())
    }

    #[test]
    fn pool_matches_boot_records_and_is_all_free() -> Result {
        let pool = pool::get().ok_or(ENODEV)?;
        for (i, a) in pool.areas().iter().enumerate() {
            let rec = crate::wrappers::carveout::area(u32::try_from(i)?).ok_or(ENOENT)?;
            assert_eq!(rec.base, a.base);
            assert_eq!(rec.size, a.size);
            assert_eq!(rec.nid, a.nid);
            let usage = a.usage();
            // After a kexec handover, preserved allocations and quarantined areas are held.
            if usage.allocations == 0 && a.quarantined.is_none() {
                assert_eq!(usage.free, a.size);
                assert_eq!(usage.largest_free, a.size);
            }
            assert!(usage.free <= a.size);
        }
        Ok(())
    }

    #[test]
    fn pool_alloc_free_restores_the_area() -> Result {
        let pool = pool::get().ok_or(ENODEV)?;
        // An area with room (after a kexec handover some may be full or quarantined).
        let Some(a) = pool
            .areas()
            .iter()
            .find(|a| a.quarantined.is_none() && a.usage().largest_free >= 8 * MIB)
        else {
            return Ok(());
        };
        let before = a.usage();
        let unaligned = a.alloc(pool::UNIT, pool::UNIT)?;
        let aligned = a.alloc(2 * MIB, 2 * MIB)?;
        assert_eq!((a.base + aligned) % (2 * MIB), 0);
        assert!(aligned + 2 * MIB <= a.size);
        assert_eq!(a.usage().free, before.free - 2 * MIB - pool::UNIT);
        assert_eq!(a.usage().allocations, before.allocations + 2);
        assert!(a.alloc(a.size + pool::UNIT, pool::UNIT).is_err());
        a.free(aligned, 2 * MIB);
        a.free(unaligned, pool::UNIT);
        let after = a.usage();
        assert_eq!(after.free, before.free);
        assert_eq!(after.largest_free, before.largest_free);
        assert_eq!(after.allocations, before.allocations);
        assert_eq!(after.failed, before.failed + 1);
        Ok(())
    }

    #[test]
    fn area_mapping_copies_and_zeroes_in_bounds() -> Result {
        let pool = pool::get().ok_or(ENODEV)?;
        let Some(a) = pool
            .areas()
            .iter()
            .find(|a| a.quarantined.is_none() && a.usage().largest_free >= pool::UNIT)
        else {
            return Ok(());
        };
        let map = a.mapping()?;
        assert_eq!(u64::try_from(map.len())?, a.size);
        // The zeros written through the kernel mapping are the zeros users and KVM read: the
        // mapping has the memory-encryption attribute of a shared user mapping (both 0 on a
        // host that does not encrypt memory, `_PAGE_ENC` on an AMD SME host).
        assert_eq!(map.encryption_bits(), memremap::user_encryption_bits());
        let offset = a.alloc(pool::UNIT, pool::UNIT)?;
        let at = usize::try_from(offset)?;
        let pattern = [0xa5u8; 64];
        let mut back = [0u8; 64];
        map.write(at + 8, &pattern)?;
        map.read(at + 8, &mut back)?;
        assert_eq!(back, pattern);
        a.clear(offset, pool::UNIT)?;
        map.read(at + 8, &mut back)?;
        assert_eq!(back, [0u8; 64]);
        // Ranges that end past the mapping, or whose end overflows, are refused.
        assert_eq!(map.read(map.len() - 8, &mut back), Err(ERANGE));
        assert_eq!(map.write(usize::MAX, &pattern), Err(ERANGE));
        assert_eq!(map.zero(map.len(), 1), Err(ERANGE));
        a.free(offset, pool::UNIT);
        Ok(())
    }

    #[test]
    fn freed_memory_is_zero_when_allocated_again() -> Result {
        let pool = pool::get().ok_or(ENODEV)?;
        let len = 64 * pool::UNIT;
        let Some(a) = pool
            .areas()
            .iter()
            .find(|a| a.quarantined.is_none() && a.usage().largest_free >= len)
        else {
            return Ok(());
        };
        let map = a.mapping()?;
        let pattern = [0x5au8; 64];
        let mut back = [0xffu8; 64];
        // Dirty every unit of a range, free it and take it again at once, before the zeroer
        // can have cleaned it all: every unit reads zero.
        for _ in 0..8 {
            let offset = a.alloc(len, pool::UNIT)?;
            let at = usize::try_from(offset)?;
            for u in 0..64 {
                map.write(at + u * pool::UNIT as usize, &pattern)?;
            }
            a.free(offset, len);
            let again = a.alloc_zeroed(len, pool::UNIT)?;
            let at = usize::try_from(again)?;
            for u in 0..64 {
                map.read(at + u * pool::UNIT as usize, &mut back)?;
                assert_eq!(back, [0u8; 64]);
            }
            a.free(again, len);
        }
        let z = a.zero_stats();
        assert_eq!(z.clean + z.dirty, a.usage().free);
        Ok(())
    }
}
