// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the allocator core ([`crate::bitalloc`]), run inside the kernel.
//!
//! The host crate runs the exhaustive unit, property and fuzz tests of the same file; these
//! cases check that it behaves the same when built for the kernel: `core` only, the kernel's
//! integer overflow checks, and `KVVec` storage as the pool uses it.

#[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
#[kernel::macros::kunit_tests(extmem_alloc)]
mod tests {
    use crate::bitalloc::storage_words;
    use crate::bitalloc::AllocError;
    use crate::bitalloc::BitAlloc;
    use crate::bitalloc::Corruption;
    use kernel::prelude::*;

    /// A pool of `units` units over `KVVec` storage, all free.
    fn pool(units: u64) -> Result<BitAlloc<KVVec<u64>>> {
        let words = storage_words(units).ok_or(EINVAL)?;
        let storage = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        BitAlloc::new(storage, units).map_err(|_| EINVAL)
    }

    #[test]
    fn first_fit_and_alignment() -> Result {
        // Two tree levels and a partial last word.
        let mut a = pool(20_000 + 5)?;
        assert_eq!(a.largest_free_run(), 20_005);
        assert_eq!(a.alloc(1, 1), Ok(0));
        assert_eq!(a.alloc(1, 1), Ok(1));
        assert_eq!(a.alloc(512, 512), Ok(512));
        assert_eq!(a.alloc(3, 4), Ok(4));
        assert_eq!(a.alloc_offset(8, 8, 3), Ok(13));
        assert_eq!(a.free_units(), 20_005 - 525);
        assert_eq!(a.free(512, 512), Ok(()));
        assert_eq!(a.alloc(1024, 1024), Ok(1024));
        assert_eq!(a.check(), Ok(()));
        Ok(())
    }

    /// The block index (2 MiB and 1 GiB blocks of 4 KiB units) with general operations
    /// between; the host's `alloc_unit.rs` runs the same sequence.
    #[test]
    fn block_index_first_fit() -> Result {
        let mut a = pool((4 << 18) + 5000)?;
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
        Ok(())
    }

    #[test]
    fn whole_pool_and_edges() -> Result {
        let units = 300_001;
        let mut a = pool(units)?;
        assert_eq!(a.alloc_at(units - 1, 1), Ok(()));
        assert_eq!(a.alloc_at(0, 1), Ok(()));
        assert_eq!(a.largest_free_run(), units - 2);
        assert_eq!(a.alloc(units - 1, 1), Err(AllocError::NoSpace));
        assert_eq!(a.free(0, 1), Ok(()));
        assert_eq!(a.free(units - 1, 1), Ok(()));
        assert_eq!(a.alloc(units, 1), Ok(0));
        assert_eq!(a.free_units(), 0);
        assert_eq!(a.largest_free_run(), 0);
        assert_eq!(a.free(0, units), Ok(()));
        // A 1 GiB-aligned run of 4 KiB units.
        assert_eq!(a.alloc(1 << 18, 1 << 18), Ok(0));
        assert_eq!(a.alloc(1 << 18, 1 << 18), Err(AllocError::NoSpace));
        assert_eq!(a.check(), Ok(()));
        Ok(())
    }

    #[test]
    fn bad_requests_change_nothing() -> Result {
        let mut a = pool(4096)?;
        assert_eq!(a.alloc_at(100, 10), Ok(()));
        assert_eq!(a.alloc(0, 1), Err(AllocError::Zero));
        assert_eq!(a.alloc(1, 3), Err(AllocError::BadAlign));
        assert_eq!(a.alloc(4097, 1), Err(AllocError::NoSpace));
        assert_eq!(a.alloc_at(u64::MAX, 2), Err(AllocError::Overflow));
        assert_eq!(a.alloc_at(4095, 2), Err(AllocError::OutOfRange));
        assert_eq!(a.alloc_at(105, 10), Err(AllocError::Busy));
        assert_eq!(a.free(0, 1), Err(AllocError::NotAllocated));
        assert_eq!(a.free(105, 10), Err(AllocError::NotAllocated));
        assert_eq!(a.free(1, u64::MAX), Err(AllocError::Overflow));
        assert_eq!(a.free(100, 10), Ok(()));
        assert_eq!(a.free(100, 10), Err(AllocError::NotAllocated));
        assert_eq!(a.free_units(), 4096);
        assert_eq!(a.check(), Ok(()));
        Ok(())
    }

    #[test]
    fn handover_round_trip() -> Result {
        let units = 50_000;
        let mut a = pool(units)?;
        assert_eq!(a.alloc_at(7, 1000), Ok(()));
        assert_eq!(a.alloc_at(40_000, 3), Ok(()));
        let len = a.serialized_len();
        let mut buf = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
        assert_eq!(a.serialize(&mut buf), Ok(len));

        let words = storage_words(units).ok_or(EINVAL)?;
        let storage = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        let b = BitAlloc::restore(storage, units, &buf).map_err(|_| EINVAL)?;
        assert_eq!(b.free_units(), a.free_units());
        assert_eq!(b.largest_free_run(), a.largest_free_run());
        let mut runs = b.allocated_runs();
        assert_eq!(runs.next(), Some((7, 1000)));
        assert_eq!(runs.next(), Some((40_000, 3)));
        assert_eq!(runs.next(), None);

        // A flipped byte in the runs is caught by the checksum.
        if let Some(x) = buf.get_mut(len - 1) {
            *x ^= 1;
        }
        let storage = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
        assert_eq!(
            BitAlloc::restore(storage, units, &buf).err(),
            Some(AllocError::Corrupt(Corruption::Checksum))
        );
        Ok(())
    }

    #[test]
    fn lazy_storage_stays_untouched() -> Result {
        // 4 GiB of 4 KiB units over storage that is never zeroed: new() and a restore of a
        // few runs write a few hundred words, not the 16 Ki-word bitmap.
        const SENTINEL: u64 = 0xdead_beef_0bad_f00d;
        let units = 1u64 << 20;
        let words = storage_words(units).ok_or(EINVAL)?;
        let storage = KVVec::from_elem(SENTINEL, words, GFP_KERNEL)?;
        let runs = [(5u64, 3u64), (4096, 1 << 18), (900_001, 12_345)];
        let mut a = BitAlloc::from_runs(storage, units, runs).map_err(|_| EINVAL)?;
        assert_eq!(a.free_units(), units - 3 - (1 << 18) - 12_345);
        assert_eq!(a.alloc(1 << 18, 1 << 18), Ok(1 << 19));
        assert_eq!(a.free(1 << 19, 1 << 18), Ok(()));
        assert_eq!(a.check(), Ok(()));
        let mut it = a.allocated_runs();
        assert_eq!(it.next(), Some((5, 3)));
        assert_eq!(it.next(), Some((4096, 1 << 18)));
        assert_eq!(it.next(), Some((900_001, 12_345)));
        assert_eq!(it.next(), None);
        let storage = a.into_storage();
        let touched = storage.iter().filter(|&&w| w != SENTINEL).count();
        assert!(touched < 1000);
        Ok(())
    }
}
