// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the per-CPU magazines wired into the pool (`extmem/pool.rs`,
//! `extmem/magpool.rs`): the real `Area::alloc_zeroed`, `Area::alloc` and `Area::free` from
//! kthreads bound to every online CPU (`extmem/cpus.c`), with the area's background zeroer
//! running.
//!
//! Every block handed out as zeroed reads zero through the area's mapping, though every block
//! freed was scribbled all over first (no dirty byte is ever handed out, under the zeroer's
//! races: it steals dirty blocks out of the magazines while the threads pop them); no block is
//! handed out twice; threads that only allocate get every block a single-lock pass got (no
//! false full); and the throughput at 1 to all online CPUs, magazines against the single lock
//! (`Area::set_magazines`), is printed as `BENCH` lines (reported, not asserted: under TCG the
//! vCPUs share the host's cores).

#[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
#[kernel::macros::kunit_tests(extmem_magpool)]
mod tests {
    use crate::pool::{self, Area, BLOCK_BYTES};
    use crate::wrappers::cpus;
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use kernel::prelude::*;
    use kernel::time::{delay::fsleep, Delta, Instant, Monotonic};

    /// Blocks a thread holds at most at once.
    const HELD: usize = 24;

    /// An area with room for the tests: not quarantined, mapped, at least 64 MiB free.
    fn area() -> Option<&'static Area> {
        pool::get()?
            .areas()
            .iter()
            .find(|a| a.quarantined.is_none() && !a.map_failed() && a.usage().free >= 64 << 20)
    }

    /// What the threads of one run share.
    struct Run {
        a: &'static Area,
        /// An owner flag per block of the area.
        owned: KVec<AtomicBool>,
        /// Scribble and check every byte (else alloc and free only: the benchmark).
        check: bool,
        zeroed: bool,
        ns: u64,
        threads: u32,
        ready: AtomicU64,
        ops: AtomicU64,
        rate: AtomicU64,
        doubles: AtomicU64,
        dirty: AtomicU64,
        fails: AtomicU64,
        errors: AtomicU64,
    }

    impl Run {
        fn new(a: &'static Area, threads: u32, check: bool) -> Result<Self> {
            let mut owned = KVec::new();
            for _ in 0..a.size.div_ceil(BLOCK_BYTES) {
                owned.push(AtomicBool::new(false), GFP_KERNEL)?;
            }
            Ok(Run {
                a,
                owned,
                check,
                zeroed: true,
                ns: 100_000_000,
                threads,
                ready: AtomicU64::new(0),
                ops: AtomicU64::new(0),
                rate: AtomicU64::new(0),
                doubles: AtomicU64::new(0),
                dirty: AtomicU64::new(0),
                fails: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            })
        }

        fn barrier(&self, at: u64) {
            self.ready.fetch_add(1, Ordering::AcqRel);
            while self.ready.load(Ordering::Acquire) < at * u64::from(self.threads) {
                core::hint::spin_loop();
            }
        }

        /// Allocates a 2 MiB block; with `check`, verifies it reads zero and scribbles it.
        fn alloc(&self) -> Option<u64> {
            let got = if self.zeroed {
                self.a.alloc_zeroed(BLOCK_BYTES, BLOCK_BYTES)
            } else {
                self.a.alloc(BLOCK_BYTES, BLOCK_BYTES)
            };
            let Ok(off) = got else {
                self.fails.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            if let Some(o) = self.owned.get((off / BLOCK_BYTES) as usize) {
                if o.swap(true, Ordering::AcqRel) {
                    self.doubles.fetch_add(1, Ordering::Relaxed);
                }
            }
            if self.check && !self.zero_then_scribble(off) {
                self.dirty.fetch_add(1, Ordering::Relaxed);
            }
            Some(off)
        }

        /// Returns true if the block at `off` reads zero; writes a pattern over all of it.
        fn zero_then_scribble(&self, off: u64) -> bool {
            let Ok(map) = self.a.mapping() else {
                self.errors.fetch_add(1, Ordering::Relaxed);
                return true;
            };
            let Ok(at) = usize::try_from(off) else {
                return true;
            };
            let mut buf = [0u8; 512];
            let mut clean = true;
            let pattern = [0xa5u8; 512];
            for i in (0..BLOCK_BYTES as usize).step_by(buf.len()) {
                if map.read(at + i, &mut buf).is_err() {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                clean &= buf.iter().all(|&b| b == 0);
                let _ = map.write(at + i, &pattern);
            }
            clean
        }

        fn free(&self, off: u64) {
            if let Some(o) = self.owned.get((off / BLOCK_BYTES) as usize) {
                o.store(false, Ordering::Release);
            }
            self.a.free(off, BLOCK_BYTES);
        }
    }

    /// One thread: pseudo-random allocations and frees (at most [`HELD`] held) for `r.ns`,
    /// each freed block allocated again at once a third of the time.
    fn work(r: &Run, i: u32) {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (u64::from(i) + 1);
        let mut held = [0u64; HELD];
        let mut n = 0;
        let mut ops = 0u64;
        r.barrier(1);
        let start = Instant::<Monotonic>::now();
        loop {
            for _ in 0..16 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if n == 0 || (rng % 8 < 5 && n < HELD) {
                    if let Some(b) = r.alloc() {
                        held[n] = b;
                        n += 1;
                    }
                } else {
                    let k = (rng >> 8) as usize % n;
                    n -= 1;
                    held.swap(k, n);
                    r.free(held[n]);
                    // Free and immediately reallocate: the same block, dirty, or another.
                    if rng.is_multiple_of(3) {
                        if let Some(b) = r.alloc() {
                            held[n] = b;
                            n += 1;
                        }
                    }
                }
                ops += 1;
            }
            if u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX) >= r.ns {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            r.free(held[n]);
        }
        r.ops.fetch_add(ops, Ordering::Relaxed);
    }

    /// Reading the area's figures (sysfs `free_bytes`, `largest_free_run`, AREA_INFO) leaves
    /// the blocks cached in the magazines where they are, and reads what a drain would leave:
    /// the same free bytes, largest free run and allocations.
    #[test]
    fn usage_reads_without_draining() -> Result {
        let Some(a) = area() else {
            return Ok(());
        };
        let mut kept = false;
        // The zeroer may steal every cached block between the free and the read: try again.
        for _ in 0..10 {
            let mut held = [0u64; 8];
            let mut n = 0;
            for h in held.iter_mut() {
                let Ok(off) = a.alloc(BLOCK_BYTES, BLOCK_BYTES) else {
                    break;
                };
                *h = off;
                n += 1;
            }
            for &off in &held[..n] {
                a.free(off, BLOCK_BYTES);
            }
            let seen = a.usage();
            kept = a.cached_blocks().0 > 0;
            a.set_magazines(false);
            let drained = a.usage();
            a.set_magazines(true);
            assert_eq!(seen.free, drained.free);
            assert_eq!(seen.largest_free, drained.largest_free);
            assert_eq!(seen.allocations, drained.allocations);
            if kept {
                break;
            }
        }
        assert!(kept);
        Ok(())
    }

    /// All online CPUs allocate zeroed 2 MiB blocks through the real pool path, check that
    /// every byte reads zero, scribble them and free them (a third reallocated at once), while
    /// the zeroer steals dirty blocks from the magazines: no dirty byte, no double hand-out,
    /// and the area's free memory is whole again afterwards.
    #[test]
    fn all_cpus_zeroed_blocks_read_zero() -> Result {
        let Some(a) = area() else {
            return Ok(());
        };
        let online = cpus::online();
        let before = a.usage();
        let mut r = Run::new(a, online, true)?;
        r.ns = 300_000_000;
        assert_eq!(cpus::run(online, &r, work), online);
        assert_eq!(r.dirty.load(Ordering::Relaxed), 0);
        assert_eq!(r.doubles.load(Ordering::Relaxed), 0);
        assert_eq!(r.errors.load(Ordering::Relaxed), 0);
        let (cached, cached_dirty) = a.cached_blocks();
        let z = a.zero_stats();
        let after = a.usage();
        assert_eq!(after.free, before.free);
        assert_eq!(after.allocations, before.allocations);
        assert_eq!(z.clean + z.dirty, after.free);
        pr_info!(
            "magpool: {} CPUs, {} ops, {} refused, every zeroed block read zero; {} blocks cached ({} dirty) at the end, zeroer {} MiB, sync {} MiB\n",
            online,
            r.ops.load(Ordering::Relaxed),
            r.fails.load(Ordering::Relaxed),
            cached,
            cached_dirty,
            z.zeroed >> 20,
            z.sync_zeroed >> 20
        );
        Ok(())
    }

    /// One thread frees a scribbled block and reallocates at once, 100 times: the block comes
    /// back from the magazine dirty (zeroed synchronously), or from the allocator after the
    /// zeroer took it (a refill skips its chunk in flight): zero each time.
    #[test]
    fn free_and_realloc_at_once_reads_zero() -> Result {
        let Some(a) = area() else {
            return Ok(());
        };
        let r = Run::new(a, 1, true)?;
        for _ in 0..100 {
            let Some(b) = r.alloc() else {
                continue;
            };
            r.free(b);
            if let Some(b) = r.alloc() {
                r.free(b);
            }
        }
        assert_eq!(r.dirty.load(Ordering::Relaxed), 0);
        assert_eq!(r.doubles.load(Ordering::Relaxed), 0);
        assert_eq!(r.fails.load(Ordering::Relaxed), 0);
        Ok(())
    }

    /// Threads that only allocate (through the magazines, at all online CPUs) get as many
    /// blocks as one thread got with the single lock: no false full.
    #[test]
    fn no_false_full() -> Result {
        let Some(a) = area() else {
            return Ok(());
        };
        fn fill(r: &Run, _i: u32) {
            r.barrier(1);
            while r.alloc().is_some() {
                r.ops.fetch_add(1, Ordering::Relaxed);
            }
            r.barrier(2);
        }
        fn free_all(r: &Run) {
            // Blocks are aligned in physical address: offsets in the area share this phase.
            let phase = (BLOCK_BYTES - r.a.base % BLOCK_BYTES) % BLOCK_BYTES;
            for (i, o) in r.owned.iter().enumerate() {
                if o.load(Ordering::Acquire) {
                    r.free(i as u64 * BLOCK_BYTES + phase);
                }
            }
        }
        let online = cpus::online();
        a.set_magazines(false);
        let mut one = Run::new(a, 1, false)?;
        one.zeroed = false;
        assert_eq!(cpus::run(1, &one, fill), 1);
        let want = one.ops.load(Ordering::Relaxed);
        free_all(&one);
        a.set_magazines(true);
        for _ in 0..3 {
            let mut r = Run::new(a, online, false)?;
            r.zeroed = false;
            assert_eq!(cpus::run(online, &r, fill), online);
            assert_eq!(r.doubles.load(Ordering::Relaxed), 0);
            assert_eq!(r.ops.load(Ordering::Relaxed), want);
            free_all(&r);
        }
        Ok(())
    }

    /// 2 MiB `Area::alloc` + `Area::free` at 1 to all online CPUs through the real pool,
    /// single lock (magazines off) and magazines: prints `BENCH` lines.
    #[test]
    fn throughput() -> Result {
        let Some(a) = area() else {
            return Ok(());
        };
        fn pairs(r: &Run, _i: u32) {
            r.barrier(1);
            let start = Instant::<Monotonic>::now();
            let mut ops = 0u64;
            loop {
                for _ in 0..64 {
                    if let Ok(off) = r.a.alloc(BLOCK_BYTES, BLOCK_BYTES) {
                        r.a.free(off, BLOCK_BYTES);
                        ops += 1;
                    } else {
                        r.fails.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX) >= r.ns {
                    break;
                }
            }
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            r.ops.fetch_add(ops, Ordering::Relaxed);
            r.rate.fetch_add(
                ops.saturating_mul(1_000_000_000) / ns.max(1),
                Ordering::Relaxed,
            );
        }
        let online = cpus::online();
        let free = a.usage().free;
        for (name, on) in [("single-lock", false), ("magazine", true)] {
            a.set_magazines(on);
            let mut one = 0u64;
            for n in 1..=online {
                // Best of two runs, each started once the zeroer has cleaned what the previous
                // test freed (for at most 1 s): it shares the vCPUs with the threads.
                let mut per_s = 0;
                for _ in 0..2 {
                    let t0 = Instant::<Monotonic>::now();
                    while a.zero_stats().dirty != 0 && t0.elapsed().as_millis() < 1000 {
                        fsleep(Delta::from_millis(5));
                    }
                    let r = Run::new(a, n, false)?;
                    assert_eq!(cpus::run(n, &r, pairs), n);
                    assert_eq!(r.fails.load(Ordering::Relaxed), 0);
                    per_s = per_s.max(r.rate.load(Ordering::Relaxed));
                }
                if n == 1 {
                    one = per_s.max(1);
                }
                let ratio = per_s.saturating_mul(100) / one;
                pr_info!(
                    "BENCH {{\"workload\":\"threads-pool\",\"design\":\"{}\",\"area_mib\":{},\"op\":\"2M alloc+free\",\"threads\":{},\"ops_per_s\":{},\"ratio_to_1\":{}.{:02},\"cpus\":{}}}\n",
                    name,
                    a.size >> 20,
                    n,
                    per_s,
                    ratio / 100,
                    ratio % 100,
                    online
                );
            }
        }
        a.set_magazines(true);
        assert_eq!(a.usage().free, free);
        Ok(())
    }
}
