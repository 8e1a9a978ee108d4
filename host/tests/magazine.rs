// SPDX-License-Identifier: GPL-2.0

//! Tests of the per-CPU magazines (`extmem/magazine.rs`) in front of a real `BitAlloc`
//! behind a mutex, as the kernel puts them in front of an area's allocator.
//!
//! - `oracle`: random single-threaded sequences of allocations and frees on several
//!   magazines, each step compared with a model of the rules (refill takes the lowest free
//!   blocks, pop the magazine's lowest, a freed block stays only below the ceiling, a spill
//!   gives back the highest, drain and retry before failing): the block handed out, every
//!   magazine's contents and ceiling, and the allocator's free blocks.
//! - `threads_*`: real threads as CPUs, more threads than magazines (as tasks preempted or
//!   migrated after they chose their CPU's magazine): no block is ever handed out twice, none
//!   is lost, and threads that only allocate get every block before any of them fails (no
//!   false full).
//! - `lock_*`: the lock is taken once per refill or spill, not per operation.
//!
//! With `--features broken-magazine` the threaded tests must fail (scripts/host-test.sh).

use extmem_core::bitalloc::{storage_words, BitAlloc};
use extmem_core::magazine::{self, Blocks, Locked, Magazine, BATCH, SLOTS};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};

/// Units per block: 2 MiB of 4 KiB units.
const B: u64 = 512;

struct Alloc(BitAlloc<Vec<u64>>);

impl Blocks for Alloc {
    fn take(&mut self) -> Option<u64> {
        self.0.alloc(B, B).ok()
    }
    fn give(&mut self, block: u64) {
        // A block given back twice (or never taken) fails here.
        self.0
            .free(block, B)
            .expect("block given back was allocated");
    }
}

/// The allocator behind a mutex, counting lock acquisitions.
struct Pool {
    a: Mutex<Alloc>,
    locks: AtomicU64,
}

impl Locked for Pool {
    type Inner = Alloc;
    fn with<R>(&self, f: impl FnOnce(&mut Alloc) -> R) -> R {
        self.locks.fetch_add(1, Ordering::Relaxed);
        f(&mut self.a.lock().unwrap())
    }
}

fn pool(units: u64) -> Pool {
    let a = BitAlloc::new(vec![0u64; storage_words(units).unwrap()], units).unwrap();
    Pool {
        a: Mutex::new(Alloc(a)),
        locks: AtomicU64::new(0),
    }
}

fn mags(n: usize) -> Vec<Magazine> {
    (0..n).map(|_| Magazine::new()).collect()
}

/// The rules of `extmem/magazine.rs`, on plain sets.
struct Model {
    free: BTreeSet<u64>,
    mags: Vec<(BTreeSet<u64>, u64)>,
}

impl Model {
    fn alloc(&mut self, cpu: usize) -> Option<u64> {
        let (m, ceiling) = &mut self.mags[cpu];
        if let Some(b) = m.pop_first() {
            return Some(b);
        }
        if let Some(first) = self.free.pop_first() {
            let mut high = first;
            for _ in 1..BATCH {
                let Some(b) = self.free.pop_first() else {
                    break;
                };
                m.insert(b);
                high = b;
            }
            *ceiling = high;
            return Some(first);
        }
        for (m, _) in &mut self.mags {
            self.free.append(m);
        }
        self.free.pop_first()
    }

    fn free(&mut self, cpu: usize, b: u64) {
        let (m, ceiling) = &mut self.mags[cpu];
        if b >= *ceiling {
            self.free.insert(b);
        } else if m.len() < SLOTS {
            m.insert(b);
        } else {
            for _ in 0..BATCH {
                let h = m.pop_last().unwrap();
                self.free.insert(h);
            }
            m.insert(b);
        }
    }
}

/// Checks the real state against the model.
fn same(p: &Pool, mags: &[Magazine], model: &Model, blocks: &[u64]) {
    for (i, m) in mags.iter().enumerate() {
        let mut got = BTreeSet::new();
        m.for_each(|b| {
            assert!(got.insert(b), "block {b} twice in magazine {i}");
        });
        assert_eq!(got, model.mags[i].0, "magazine {i}");
        assert_eq!(m.ceiling(), model.mags[i].1, "ceiling of magazine {i}");
    }
    let a = p.a.lock().unwrap();
    for &b in blocks {
        let free = !a.0.is_allocated(b) && !a.0.is_allocated(b + B - 1);
        assert_eq!(
            free,
            model.free.contains(&b),
            "block {b} free in the allocator"
        );
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize),
    Free(usize, usize),
}

fn op(cpus: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..cpus).prop_map(Op::Alloc),
        2 => (0..cpus, any::<usize>()).prop_map(|(c, i)| Op::Free(c, i)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random sequences against the model, on a pool of 40 blocks with some blocks made
    /// unusable by a 4 KiB allocation inside them.
    #[test]
    fn oracle(holes in proptest::collection::vec(0u64..40, 0..6),
              ops in proptest::collection::vec(op(3), 1..300)) {
        let units = 40 * B + 100;
        let p = pool(units);
        for &h in &holes {
            let _ = p.a.lock().unwrap().0.alloc_at(h * B + 7, 1);
        }
        // The usable blocks (a hole makes a block unusable; the allocator's 2 MiB search skips it).
        let blocks: Vec<u64> = (0..40).filter(|i| !holes.contains(i)).map(|i| i * B).collect();
        let mut model = Model {
            free: blocks.iter().copied().collect(),
            mags: vec![(BTreeSet::new(), 0); 3],
        };
        let total = model.free.len();
        let ms = mags(3);
        let mut held: Vec<u64> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(c) => {
                    let got = magazine::alloc(&ms, c, &p);
                    let want = model.alloc(c);
                    prop_assert_eq!(got, want);
                    match got {
                        Some(b) => {
                            prop_assert!(!held.contains(&b), "block {} handed out twice", b);
                            held.push(b);
                        }
                        // No false full: every usable block is held.
                        None => prop_assert_eq!(held.len(), total),
                    }
                }
                Op::Free(c, i) => {
                    if held.is_empty() {
                        continue;
                    }
                    let b = held.swap_remove(i % held.len());
                    magazine::free(&ms, c, b, &p);
                    model.free(c, b);
                }
            }
            same(&p, &ms, &model, &blocks);
            // Nothing lost: free + cached + held.
            prop_assert_eq!(
                model.free.len() + magazine::cached(&ms) as usize + held.len(),
                total
            );
        }
        // Everything back: the pool is whole again.
        for b in held {
            magazine::free(&ms, 0, b, &p);
        }
        let mut a = p.a.lock().unwrap();
        magazine::drain_all(&ms, &mut *a);
        prop_assert_eq!(a.0.free_units(), units - holes.iter().collect::<BTreeSet<_>>().len() as u64);
        prop_assert_eq!(a.0.check(), Ok(()));
    }
}

/// A small deterministic generator per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `threads` threads on `nmags` magazines (thread `t` uses `t % nmags`) doing random
/// allocations and frees on a pool of `nblocks` blocks, with an owner flag per block: an
/// allocation of a block someone holds is a double hand-out. Then everything is freed and
/// drained and the pool must be whole.
fn stress(threads: usize, nmags: usize, nblocks: u64, ops: usize) {
    let units = nblocks * B;
    let p = pool(units);
    let ms = mags(nmags);
    let owned: Vec<AtomicBool> = (0..nblocks).map(|_| AtomicBool::new(false)).collect();
    let fails = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (p, ms, owned, fails) = (&p, &ms, &owned, &fails);
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                let mut held = Vec::new();
                let cpu = t % nmags;
                for _ in 0..ops {
                    let r = rng.next();
                    if held.is_empty() || (r % 8 < 5 && held.len() < 24) {
                        match magazine::alloc(ms, cpu, p) {
                            Some(b) => {
                                assert_eq!(b % B, 0, "unaligned block {b}");
                                assert!(
                                    !owned[(b / B) as usize].swap(true, Ordering::AcqRel),
                                    "block {b} handed out twice"
                                );
                                held.push(b);
                            }
                            None => {
                                fails.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    } else {
                        let b = held.swap_remove((r >> 8) as usize % held.len());
                        owned[(b / B) as usize].store(false, Ordering::Release);
                        magazine::free(ms, cpu, b, p);
                    }
                }
                for b in held {
                    owned[(b / B) as usize].store(false, Ordering::Release);
                    magazine::free(ms, cpu, b, p);
                }
            });
        }
    });
    let mut a = p.a.lock().unwrap();
    magazine::drain_all(&ms, &mut *a);
    assert_eq!(a.0.free_units(), units, "blocks lost");
    assert_eq!(a.0.check(), Ok(()));
}

#[test]
fn threads_no_double_handout_shared_magazines() {
    // 4 tasks on 2 magazines: pops race pops; a pool small enough that drains are frequent.
    for _ in 0..4 {
        stress(4, 2, 64, 200_000);
    }
}

#[test]
fn threads_no_double_handout_one_magazine() {
    // 4 tasks on one magazine, which holds most of what they use: pops race pops all the time.
    // For 1.5 s at least (a race needs two threads on the same slot in the same nanoseconds).
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_millis(1500) {
        stress(4, 1, 256, 300_000);
    }
}

#[test]
fn threads_no_double_handout_own_magazines() {
    // One magazine each; 40 blocks for up to 4 * 24 held: allocations fail, drains race pops.
    stress(4, 4, 40, 200_000);
}

/// Threads that only allocate get every block between them before any fails, round after
/// round (each round frees everything into the magazines first).
#[test]
fn threads_no_false_full() {
    let nblocks = 200u64;
    let p = pool(nblocks * B);
    let threads = 4;
    let ms = mags(threads);
    let got = AtomicU64::new(0);
    let bar = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (p, ms, got, bar) = (&p, &ms, &got, &bar);
            s.spawn(move || {
                for round in 0..200 {
                    let mut held = Vec::new();
                    while let Some(b) = magazine::alloc(ms, t, p) {
                        held.push(b);
                    }
                    got.fetch_add(held.len() as u64, Ordering::AcqRel);
                    bar.wait();
                    assert_eq!(
                        got.load(Ordering::Acquire),
                        nblocks,
                        "round {round}: a request failed with blocks free"
                    );
                    bar.wait();
                    if t == 0 {
                        got.store(0, Ordering::Release);
                    }
                    for b in held {
                        magazine::free(ms, t, b, p);
                    }
                    bar.wait();
                }
            });
        }
    });
}

/// Alloc + free on one magazine takes the lock once (the first refill).
#[test]
fn lock_once_for_alloc_free_loop() {
    let p = pool(1000 * B);
    let ms = mags(1);
    for _ in 0..10_000 {
        let b = magazine::alloc(&ms, 0, &p).unwrap();
        assert_eq!(b, 0, "first fit");
        magazine::free(&ms, 0, b, &p);
    }
    assert_eq!(p.locks.load(Ordering::Relaxed), 1);
}

/// A burst of allocations then frees takes the lock about once per batch.
#[test]
fn lock_per_batch_in_bursts() {
    let p = pool(1000 * B);
    let ms = mags(1);
    let held: Vec<u64> = (0..800)
        .map(|_| magazine::alloc(&ms, 0, &p).unwrap())
        .collect();
    // First fit: the lowest 800 blocks, in order.
    assert!(held.iter().enumerate().all(|(i, &b)| b == i as u64 * B));
    let after_alloc = p.locks.load(Ordering::Relaxed);
    assert_eq!(after_alloc, 800 / BATCH as u64);
    for &b in held.iter().rev() {
        magazine::free(&ms, 0, b, &p);
    }
    // Frees from the top are above the ceiling: each goes straight back (they keep high
    // memory free); frees from the bottom are below it.
    let p2 = pool(1000 * B);
    let ms2 = mags(1);
    let held: Vec<u64> = (0..800)
        .map(|_| magazine::alloc(&ms2, 0, &p2).unwrap())
        .collect();
    let before = p2.locks.load(Ordering::Relaxed);
    // The last refill's ceiling is 799 * B: every lower block stays or spills in batches.
    for &b in held.iter().take(799) {
        magazine::free(&ms2, 0, b, &p2);
    }
    let spills = p2.locks.load(Ordering::Relaxed) - before;
    assert!(
        spills <= 799 / BATCH as u64 + 1,
        "{spills} lock acquisitions for 799 frees"
    );
    assert!(magazine::cached(&ms2) as usize <= SLOTS);
}

/// A drain from another thread empties a magazine: the blocks are free in the allocator.
#[test]
fn drain_gives_everything_back() {
    let p = pool(64 * B);
    let ms = mags(2);
    let b = magazine::alloc(&ms, 0, &p).unwrap();
    assert_eq!(magazine::cached(&ms), BATCH as u64 - 1);
    let n = std::thread::scope(|s| {
        s.spawn(|| {
            let mut a = p.a.lock().unwrap();
            magazine::drain_all(&ms, &mut *a)
        })
        .join()
        .unwrap()
    });
    assert_eq!(n, BATCH - 1);
    assert_eq!(magazine::cached(&ms), 0);
    assert_eq!(p.a.lock().unwrap().0.free_units(), 63 * B);
    magazine::free(&ms, 0, b, &p);
}

/// The allocator handing out slot values (`magazine::value`): clean when taken.
struct Values(BitAlloc<Vec<u64>>);

impl Blocks for Values {
    fn take(&mut self) -> Option<u64> {
        self.0.alloc(B, B).ok().map(|b| magazine::value(b, false))
    }
    fn give(&mut self, v: u64) {
        self.0
            .free(magazine::block_of(v), B)
            .expect("block given back was allocated");
    }
}

struct ValuePool(Mutex<Values>);

impl Locked for ValuePool {
    type Inner = Values;
    fn with<R>(&self, f: impl FnOnce(&mut Values) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }
}

/// Values order as their blocks, and carry the dirty bit.
#[test]
fn values_order_as_blocks() {
    for b in [0u64, 1, 512, 1 << 40] {
        for d in [false, true] {
            let v = magazine::value(b, d);
            assert_eq!(magazine::block_of(v), b);
            assert_eq!(magazine::is_dirty(v), d);
            assert_ne!(v, magazine::EMPTY);
            assert!(magazine::value(b, true) < magazine::value(b + 1, false));
        }
    }
    let m = Magazine::new();
    let p = ValuePool(Mutex::new(Values(
        BitAlloc::new(vec![0u64; storage_words(64 * B).unwrap()], 64 * B).unwrap(),
    )));
    // A refill: clean values; frees put dirty ones; take_dirty takes the lowest dirty only.
    let first = magazine::alloc(std::slice::from_ref(&m), 0, &p).unwrap();
    assert!(!magazine::is_dirty(first));
    assert_eq!(m.counts(), (BATCH as u64 - 1, 0));
    assert_eq!(m.take_dirty(), None);
    let second = m.pop().unwrap();
    magazine::free(
        std::slice::from_ref(&m),
        0,
        magazine::value(magazine::block_of(second), true),
        &p,
    );
    assert_eq!(m.counts(), (BATCH as u64 - 1, 1));
    assert_eq!(
        magazine::take_dirty(std::slice::from_ref(&m)),
        Some(magazine::value(magazine::block_of(second), true))
    );
    assert_eq!(
        magazine::counts(std::slice::from_ref(&m)),
        (BATCH as u64 - 2, 0)
    );
}

/// Threads allocate and free (freed values dirty) on 2 magazines while a zeroer thread takes
/// dirty values out of them and gives the blocks back: a zeroer never gets a clean value or a
/// block someone holds, no block is handed out twice, none is lost.
#[test]
fn threads_zeroer_takes_dirty_values() {
    let nblocks = 64u64;
    let units = nblocks * B;
    let p = ValuePool(Mutex::new(Values(
        BitAlloc::new(vec![0u64; storage_words(units).unwrap()], units).unwrap(),
    )));
    let ms = mags(2);
    let owned: Vec<AtomicBool> = (0..nblocks).map(|_| AtomicBool::new(false)).collect();
    let done = AtomicBool::new(false);
    let stolen = AtomicU64::new(0);
    std::thread::scope(|s| {
        let (p, ms, owned, done, stolen) = (&p, &ms, &owned, &done, &stolen);
        s.spawn(move || {
            while !done.load(Ordering::Acquire) {
                if let Some(v) = magazine::take_dirty(ms) {
                    assert!(magazine::is_dirty(v), "zeroer got a clean value");
                    let b = magazine::block_of(v);
                    assert!(
                        !owned[(b / B) as usize].load(Ordering::Acquire),
                        "zeroer got a held block {b}"
                    );
                    p.with(|a| a.give(magazine::value(b, false)));
                    stolen.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let workers: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    let mut rng = Rng(0x1234_5678 ^ (t as u64 + 1));
                    let mut held = Vec::new();
                    let cpu = t % 2;
                    for _ in 0..300_000 {
                        let r = rng.next();
                        if held.is_empty() || (r % 8 < 5 && held.len() < 24) {
                            if let Some(v) = magazine::alloc(ms, cpu, p) {
                                let b = magazine::block_of(v);
                                assert!(
                                    !owned[(b / B) as usize].swap(true, Ordering::AcqRel),
                                    "block {b} handed out twice"
                                );
                                held.push(b);
                            }
                        } else {
                            let b = held.swap_remove((r >> 8) as usize % held.len());
                            owned[(b / B) as usize].store(false, Ordering::Release);
                            magazine::free(ms, cpu, magazine::value(b, true), p);
                        }
                    }
                    for b in held {
                        owned[(b / B) as usize].store(false, Ordering::Release);
                        magazine::free(ms, cpu, magazine::value(b, true), p);
                    }
                })
            })
            .collect();
        // Stop the zeroer before a worker's panic is passed on: the scope waits for every
        // thread, and a zeroer left running would make a failure a hang.
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        // On a loaded machine the zeroer may not have run yet: the workers left their blocks
        // in the magazines, dirty, so give it up to 30 s to take one.
        let t0 = std::time::Instant::now();
        while results.iter().all(Result::is_ok)
            && stolen.load(Ordering::Relaxed) == 0
            && t0.elapsed() < std::time::Duration::from_secs(30)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        done.store(true, Ordering::Release);
        for r in results {
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        }
    });
    let mut a = p.0.lock().unwrap();
    magazine::drain_all(&ms, &mut *a);
    assert_eq!(a.0.free_units(), units, "blocks lost");
    assert!(
        stolen.load(Ordering::Relaxed) > 0,
        "the zeroer never took a block"
    );
}
