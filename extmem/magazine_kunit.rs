// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the per-CPU magazines ([`crate::magazine`]) in the kernel, with one kthread
//! bound to each CPU (`extmem/cpus.c`).
//!
//! The host crate runs the oracle and threaded tests of the same file; these cases run it
//! with the kernel's spinlock and real CPUs: no block is ever handed out twice, none is lost,
//! threads that only allocate get every block (no false full), and, at 1 to all online CPUs,
//! the throughput of 2 MiB alloc + free through the magazines and through the single lock,
//! printed as `BENCH` lines with the ratio to one CPU. The ratio is reported, not asserted:
//! under TCG the vCPUs share the host's cores.

#[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
#[kernel::macros::kunit_tests(extmem_magazine)]
mod tests {
    use crate::bitalloc::{storage_words, BitAlloc};
    use crate::magazine::{self, Blocks, Locked, Magazine};
    use crate::wrappers::cpus;
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use kernel::new_spinlock;
    use kernel::prelude::*;
    use kernel::sync::SpinLock;
    use kernel::time::{Instant, Monotonic};

    /// Units per block: 2 MiB of 4 KiB units.
    const B: u64 = 512;

    /// Blocks a thread holds at most at once.
    const HELD: usize = 64;

    struct Alloc {
        a: BitAlloc<KVVec<u64>>,
        /// Blocks given back that were not allocated.
        bad: u64,
    }

    impl Blocks for Alloc {
        fn take(&mut self) -> Option<u64> {
            self.a.alloc(B, B).ok()
        }
        fn give(&mut self, block: u64) {
            if self.a.free(block, B).is_err() {
                self.bad += 1;
            }
        }
    }

    /// The allocator behind the kernel's spinlock, as an area's.
    struct Pool(Pin<KBox<SpinLock<Alloc>>>);

    impl Locked for Pool {
        type Inner = Alloc;
        fn with<R>(&self, f: impl FnOnce(&mut Alloc) -> R) -> R {
            f(&mut self.0.lock())
        }
    }

    fn pool(units: u64) -> Result<Pool> {
        let words = storage_words(units).ok_or(EINVAL)?;
        let a =
            BitAlloc::new(KVVec::from_elem(0u64, words, GFP_KERNEL)?, units).map_err(|_| EINVAL)?;
        Ok(Pool(KBox::pin_init(
            new_spinlock!(Alloc { a, bad: 0 }, "extmem_magazine_test"),
            GFP_KERNEL,
        )?))
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Design {
        SingleLock,
        Magazine,
    }

    /// What the threads of one run share.
    struct Run {
        pool: Pool,
        mags: KVec<Magazine>,
        /// An owner flag per block when the run checks for double hand-outs.
        owned: KVec<AtomicBool>,
        design: Design,
        /// All threads on magazine 0 (as tasks preempted after they chose it).
        shared: bool,
        /// Allocations per round, then their frees.
        burst: usize,
        /// Random rounds of allocations and frees instead of bursts.
        random: bool,
        /// How long each thread runs, in ns.
        ns: u64,
        threads: u32,
        ready: AtomicU64,
        ops: AtomicU64,
        /// The sum of the threads' operations per second.
        rate: AtomicU64,
        doubles: AtomicU64,
        fails: AtomicU64,
    }

    impl Run {
        fn new(units: u64, threads: u32, design: Design, check: bool) -> Result<Self> {
            let mut mags = KVec::new();
            for _ in 0..threads {
                mags.push(Magazine::new(), GFP_KERNEL)?;
            }
            let mut owned = KVec::new();
            if check {
                for _ in 0..units / B {
                    owned.push(AtomicBool::new(false), GFP_KERNEL)?;
                }
            }
            Ok(Run {
                pool: pool(units)?,
                mags,
                owned,
                design,
                shared: false,
                burst: 1,
                random: false,
                ns: 100_000_000,
                threads,
                ready: AtomicU64::new(0),
                ops: AtomicU64::new(0),
                rate: AtomicU64::new(0),
                doubles: AtomicU64::new(0),
                fails: AtomicU64::new(0),
            })
        }

        fn alloc(&self, cpu: usize) -> Option<u64> {
            let b = match self.design {
                Design::SingleLock => self.pool.with(|a| a.take()),
                Design::Magazine => magazine::alloc(&self.mags, cpu, &self.pool),
            }?;
            if let Some(o) = self.owned.get((b / B) as usize) {
                if o.swap(true, Ordering::AcqRel) {
                    self.doubles.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(b)
        }

        fn free(&self, cpu: usize, b: u64) {
            if let Some(o) = self.owned.get((b / B) as usize) {
                o.store(false, Ordering::Release);
            }
            match self.design {
                Design::SingleLock => self.pool.with(|a| a.give(b)),
                Design::Magazine => magazine::free(&self.mags, cpu, b, &self.pool),
            }
        }

        /// Waits until all threads are here.
        fn barrier(&self, at: u64) {
            self.ready.fetch_add(1, Ordering::AcqRel);
            while self.ready.load(Ordering::Acquire) < at * u64::from(self.threads) {
                core::hint::spin_loop();
            }
        }

        /// Allocates a block into `held[*n]` and counts it, or counts the failure.
        fn alloc_into(&self, cpu: usize, held: &mut [u64; HELD], n: &mut usize) {
            match self.alloc(cpu) {
                Some(b) => {
                    held[*n] = b;
                    *n += 1;
                }
                None => {
                    self.fails.fetch_add(1, Ordering::Relaxed);
                }
            }
        }

        /// Returns the blocks free in the allocator or cached, once the threads are done.
        fn free_units(&self) -> (u64, u64) {
            let mut a = self.pool.0.lock();
            magazine::drain_all(&self.mags, &mut *a);
            (a.a.free_units(), a.bad)
        }
    }

    /// One thread of a run: rounds of allocations and frees for `r.ns`.
    fn work(r: &Run, i: u32) {
        let cpu = if r.shared { 0 } else { i as usize };
        let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (u64::from(i) + 1);
        let mut held = [0u64; HELD];
        let mut n = 0;
        let mut ops = 0u64;
        r.barrier(1);
        let start = Instant::<Monotonic>::now();
        // About 64 pairs between looks at the clock: under TCG a contended spinlock can
        // make one round take milliseconds.
        let rounds = if r.random {
            64
        } else {
            (64 / r.burst.max(1)).max(1)
        };
        loop {
            for _ in 0..rounds {
                if r.random {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if n == 0 || (rng % 8 < 5 && n < 24) {
                        r.alloc_into(cpu, &mut held, &mut n);
                    } else {
                        let k = (rng >> 8) as usize % n;
                        n -= 1;
                        held.swap(k, n);
                        r.free(cpu, held[n]);
                    }
                    ops += 1;
                    continue;
                }
                for _ in 0..r.burst.min(HELD) {
                    r.alloc_into(cpu, &mut held, &mut n);
                }
                while n > 0 {
                    n -= 1;
                    r.free(cpu, held[n]);
                    ops += 1;
                }
            }
            if u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX) >= r.ns {
                break;
            }
        }
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        while n > 0 {
            n -= 1;
            r.free(cpu, held[n]);
        }
        r.ops.fetch_add(ops, Ordering::Relaxed);
        r.rate.fetch_add(
            ops.saturating_mul(1_000_000_000) / ns.max(1),
            Ordering::Relaxed,
        );
    }

    /// Random allocations and frees on a pool of 40 blocks at all online CPUs, each on its
    /// own magazine and then all on one: no double hand-out, nothing lost.
    #[test]
    fn no_double_handout_nothing_lost() -> Result {
        let online = cpus::online();
        for shared in [false, true] {
            let units = 40 * B;
            let mut r = Run::new(units, online, Design::Magazine, true)?;
            r.shared = shared;
            r.random = true;
            r.ns = 50_000_000;
            assert_eq!(cpus::run(online, &r, work), online);
            assert_eq!(r.doubles.load(Ordering::Relaxed), 0);
            assert_eq!(r.free_units(), (units, 0));
            assert_eq!(r.pool.0.lock().a.check(), Ok(()));
            pr_info!(
                "magazine: {} CPUs on {} magazine(s), {} ops, {} refused (pool empty), no block handed out twice, none lost\n",
                online,
                if shared { 1 } else { online },
                r.ops.load(Ordering::Relaxed),
                r.fails.load(Ordering::Relaxed)
            );
        }
        Ok(())
    }

    /// Threads that only allocate get every block of the pool between them.
    #[test]
    fn no_false_full() -> Result {
        fn fill(r: &Run, i: u32) {
            let cpu = i as usize;
            let mut held = [0u64; HELD];
            let mut n = 0;
            r.barrier(1);
            while n < HELD {
                match r.alloc(cpu) {
                    Some(b) => {
                        held[n] = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            r.ops.fetch_add(n as u64, Ordering::AcqRel);
            r.barrier(2);
            for &b in &held[..n] {
                r.free(cpu, b);
            }
        }
        let online = cpus::online();
        let nblocks = 48u64.min(HELD as u64);
        for _ in 0..20 {
            let r = Run::new(nblocks * B, online, Design::Magazine, true)?;
            assert_eq!(cpus::run(online, &r, fill), online);
            assert_eq!(r.ops.load(Ordering::Relaxed), nblocks);
            assert_eq!(r.doubles.load(Ordering::Relaxed), 0);
            assert_eq!(r.free_units(), (nblocks * B, 0));
        }
        Ok(())
    }

    /// 2 MiB alloc + free (and bursts of 64) at 1 to all online CPUs, single lock and
    /// magazines, on a half-full 8 GiB pool: prints `BENCH` lines; checks that every block
    /// came back.
    #[test]
    fn throughput() -> Result {
        let online = cpus::online();
        let units: u64 = 1 << 21;
        for (op, burst) in [("2M alloc+free", 1usize), ("2M burst of 64", 64)] {
            for design in [Design::SingleLock, Design::Magazine] {
                let name = match design {
                    Design::Magazine => "magazine",
                    Design::SingleLock => "single-lock",
                };
                let mut one = 0u64;
                for n in 1..=online {
                    let mut r = Run::new(units, n, design, false)?;
                    r.burst = burst;
                    // Half full, every other block.
                    {
                        let mut a = r.pool.0.lock();
                        for b in 0..units / B / 2 {
                            let _ = a.a.alloc_at(2 * b * B, B);
                        }
                    }
                    let start = Instant::<Monotonic>::now();
                    assert_eq!(cpus::run(n, &r, work), n);
                    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    assert_eq!(r.free_units(), (units / 2, 0));
                    assert_eq!(r.fails.load(Ordering::Relaxed), 0);
                    // Each thread's own rate over its own time: the start and the joins
                    // are not the work's.
                    let per_s = r.rate.load(Ordering::Relaxed);
                    if n == 1 {
                        one = per_s.max(1);
                    }
                    let ratio = per_s.saturating_mul(100) / one;
                    pr_info!(
                        "BENCH {{\"workload\":\"threads-kthreads\",\"design\":\"{}\",\"pool\":\"8G/4K\",\"op\":\"{}\",\"threads\":{},\"ops_per_s\":{},\"ratio_to_1\":{}.{:02},\"cpus\":{},\"wall_ms\":{}}}\n",
                        name,
                        op,
                        n,
                        per_s,
                        ratio / 100,
                        ratio % 100,
                        online,
                        ns / 1_000_000
                    );
                }
            }
        }
        Ok(())
    }
}
