// SPDX-License-Identifier: GPL-2.0

//! Property tests of the magazines wired to an area (`extmem/magpool.rs`): a model of what
//! `extmem/pool.rs` does with a `BitAlloc`, a small `DirtySet` (so that it is often full), the
//! zeroer's chunk in flight, poisoned units and two magazines, with the contents of every unit
//! (zero or not).
//!
//! After every step: a clean value in a magazine reads zero, and a block handed out as clean
//! reads zero (no dirty byte handed out); a free unit outside the set and not in flight reads
//! zero; no cached block is free, dirty-listed, in flight or poisoned; nothing is lost (free,
//! cached, held and poisoned units add up to the area). `cargo test --features broken-magpool`
//! builds a refill that marks every block clean, which these properties must catch
//! (`scripts/host-test.sh` checks that they do).

use extmem_core::bitalloc::{storage_words, BitAlloc};
use extmem_core::dirty::{DirtySet, Run};
use extmem_core::magazine::{self, Magazine};
use extmem_core::magpool::{largest_free_run, steal_dirty, Side, Steal, BLOCK};
use proptest::prelude::*;

const CPUS: usize = 2;

struct Model {
    alloc: BitAlloc<Vec<u64>>,
    dirty: DirtySet<Vec<Run>>,
    inflight: Option<(u64, u64)>,
    offset: u64,
    poisoned: Vec<u64>,
    /// Contents: true where a unit may hold something else than zero.
    garbage: Vec<bool>,
    mags: Vec<Magazine>,
    /// Held ranges (start, count).
    held: Vec<(u64, u64)>,
    units: u64,
    bad: u64,
}

macro_rules! side {
    ($m:expr) => {{
        let garbage = &mut $m.garbage;
        Side::new(
            &mut $m.alloc,
            &mut $m.dirty,
            &mut $m.inflight,
            $m.offset,
            &$m.poisoned,
            move |s: u64, e: u64| {
                for u in s..e {
                    garbage[u as usize] = false;
                }
            },
        )
    }};
}

#[derive(Clone, Debug)]
enum Op {
    /// A 2 MiB allocation through magazine `cpu`, as `Area::alloc_zeroed` makes it.
    Alloc(usize),
    /// Frees held range `i % len` through magazine `cpu` if it is a block.
    Free(usize, usize),
    /// A small allocation of `n` units (through the allocator, as the pool's slow path).
    Small(u64),
    /// The zeroer takes a chunk (from the set, else from a magazine).
    ZeroStart,
    /// The zeroer's chunk is zeroed.
    ZeroEnd,
    /// Everything drains into the allocator (a failed request, poison, reclaim, usage).
    Drain,
    /// Unit `u % units` fails.
    Poison(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..CPUS).prop_map(Op::Alloc),
        5 => (0..CPUS, any::<usize>()).prop_map(|(c, i)| Op::Free(c, i)),
        2 => (1u64..40).prop_map(Op::Small),
        3 => Just(Op::ZeroStart),
        3 => Just(Op::ZeroEnd),
        1 => Just(Op::Drain),
        1 => any::<u64>().prop_map(Op::Poison),
    ]
}

impl Model {
    fn new(blocks: u64, extra: u64, offset: u64, cap: usize) -> Self {
        let units = blocks * BLOCK + extra;
        let alloc =
            BitAlloc::new(vec![0u64; storage_words(units).unwrap()], units).expect("allocator");
        let mut dirty = DirtySet::new(vec![Run::default(); cap]);
        dirty.insert(0, units).unwrap();
        Self {
            alloc,
            dirty,
            inflight: None,
            offset,
            poisoned: Vec::new(),
            garbage: vec![true; units as usize],
            mags: (0..CPUS).map(|_| Magazine::new()).collect(),
            held: Vec::new(),
            units,
            bad: 0,
        }
    }

    fn drain(&mut self) {
        let mags = core::mem::take(&mut self.mags);
        let mut side = side!(self);
        magazine::drain_all(&mags, &mut side);
        let bad = side.bad;
        drop(side);
        self.bad += bad;
        self.mags = mags;
    }

    /// Hands out units `[s, s + n)`: they must read zero (the caller zeroed what it was told
    /// was dirty); then the owner writes them.
    fn hand_out(&mut self, s: u64, n: u64) -> Result<(), TestCaseError> {
        for u in s..s + n {
            prop_assert!(!self.garbage[u as usize], "unit {} handed out dirty", u);
            prop_assert!(
                !self.poisoned.contains(&u),
                "poisoned unit {} handed out",
                u
            );
            self.garbage[u as usize] = true;
        }
        self.held.push((s, n));
        Ok(())
    }

    /// The pool's slow path: first fit, its dirty pieces zeroed; fails if in flight or full
    /// (the pool waits or claims a tail; not modelled).
    fn slow(&mut self, n: u64, align: u64) -> Result<(), TestCaseError> {
        let s = match self.alloc.alloc_offset(n, align, self.offset) {
            Ok(s) => s,
            Err(_) => {
                self.drain();
                match self.alloc.alloc_offset(n, align, self.offset) {
                    Ok(s) => s,
                    Err(_) => return Ok(()),
                }
            }
        };
        let inflight = self.inflight.is_some_and(|(a, b)| a < s + n && s < b);
        let mut pieces = Vec::new();
        if inflight || self.dirty.remove(s, n, |a, b| pieces.push((a, b))).is_err() {
            self.alloc.free(s, n).unwrap();
            return Ok(());
        }
        for (a, b) in pieces {
            for u in a..b {
                self.garbage[u as usize] = false;
            }
        }
        self.hand_out(s, n)
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Alloc(cpu) => {
                // As `Area::alloc_zeroed`: a clean value first.
                let v = match self.mags[cpu].pop_clean_first() {
                    Some(v) => Some(v),
                    None => {
                        let mags = core::mem::take(&mut self.mags);
                        let mut side = side!(self);
                        let v = if side.room_for_refill() {
                            magazine::refill(&mags[cpu], &mut side)
                        } else {
                            None
                        };
                        let bad = side.bad;
                        drop(side);
                        self.bad += bad;
                        self.mags = mags;
                        v
                    }
                };
                match v {
                    Some(v) => {
                        let b = magazine::block_of(v);
                        if magazine::is_dirty(v) {
                            for u in b..b + BLOCK {
                                self.garbage[u as usize] = false;
                            }
                        }
                        self.hand_out(b, BLOCK)?;
                    }
                    None => self.slow(BLOCK, BLOCK)?,
                }
            }
            Op::Free(cpu, i) => {
                if self.held.is_empty() {
                    return Ok(());
                }
                let (s, n) = self.held.swap_remove(i % self.held.len());
                let poisoned = self.poisoned.iter().any(|&p| p >= s && p < s + n);
                let v = magazine::value(s, true);
                if n == BLOCK && !poisoned && self.mags[cpu].push(v) {
                    return Ok(());
                }
                let mags = core::mem::take(&mut self.mags);
                let mut side = side!(self);
                if n == BLOCK
                    && !poisoned
                    && v < mags[cpu].ceiling()
                    && side.room_for(magazine::BATCH + 1)
                {
                    if !magazine::spill(&mags[cpu], &mut side, v) {
                        magazine::Blocks::give(&mut side, v);
                    }
                } else {
                    // The pool's release: around poison, dirty (zeroed first if no room).
                    drop(side);
                    self.mags = mags;
                    self.release(s, n);
                    return Ok(());
                }
                let bad = side.bad;
                drop(side);
                self.bad += bad;
                self.mags = mags;
            }
            Op::Small(n) => self.slow(n, 1)?,
            Op::ZeroStart => {
                if self.inflight.is_some() {
                    return Ok(());
                }
                if let Some(r) = self.dirty.take_first(BLOCK) {
                    self.inflight = Some((r.start, r.end));
                    return Ok(());
                }
                let mags = core::mem::take(&mut self.mags);
                let mut side = side!(self);
                let got = steal_dirty(&mags, &mut side);
                let bad = side.bad;
                drop(side);
                self.bad += bad;
                self.mags = mags;
                if let Steal::Chunk(s, e) = got {
                    prop_assert_eq!(self.inflight, Some((s, e)));
                }
            }
            Op::ZeroEnd => {
                if let Some((s, e)) = self.inflight.take() {
                    for u in s..e {
                        self.garbage[u as usize] = false;
                    }
                }
            }
            Op::Drain => self.drain(),
            Op::Poison(u) => {
                let u = u % self.units;
                if self.poisoned.contains(&u) || self.inflight.is_some_and(|(s, e)| s <= u && u < e)
                {
                    return Ok(());
                }
                self.drain();
                if self.alloc.alloc_at(u, 1).is_ok() && self.dirty.remove(u, 1, |_, _| {}).is_err()
                {
                    self.alloc.free(u, 1).unwrap();
                    return Ok(());
                }
                self.poisoned.push(u);
            }
        }
        Ok(())
    }

    /// The pool's release of a held range: around poisoned units, into the set, or zeroed
    /// first and free clean if the set has no room.
    fn release(&mut self, s: u64, n: u64) {
        let poisoned = self
            .poisoned
            .iter()
            .filter(|&&p| p >= s && p < s + n)
            .count();
        let room = self.dirty.spare() > poisoned;
        for u in s..s + n {
            if self.poisoned.contains(&u) {
                continue;
            }
            if !room {
                self.garbage[u as usize] = false;
            }
            self.alloc.free(u, 1).unwrap();
            if room {
                self.dirty.insert(u, 1).unwrap();
            }
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.bad, 0);
        let in_flight = |u: u64| self.inflight.is_some_and(|(s, e)| s <= u && u < e);
        let mut cached = vec![false; self.units as usize];
        for m in &self.mags {
            let mut err = Ok(());
            m.for_each(|v| {
                let b = magazine::block_of(v);
                for u in b..b + BLOCK {
                    if cached[u as usize] {
                        err = Err(format!("unit {u} cached twice"));
                    }
                    cached[u as usize] = true;
                    if !magazine::is_dirty(v) && self.garbage[u as usize] {
                        err = Err(format!("clean cached block {b} has garbage at {u}"));
                    }
                    if !self.alloc.is_allocated(u)
                        || self.dirty.intersects(u, 1)
                        || in_flight(u)
                        || self.poisoned.contains(&u)
                    {
                        err = Err(format!(
                            "cached unit {u} free, dirty-listed, in flight or poisoned"
                        ));
                    }
                }
            });
            err.map_err(TestCaseError::fail)?;
        }
        let mut accounted = 0u64;
        for u in 0..self.units {
            let free = !self.alloc.is_allocated(u);
            if free && !self.dirty.intersects(u, 1) && !in_flight(u) {
                prop_assert!(
                    !self.garbage[u as usize],
                    "free unit {} reads garbage outside the set",
                    u
                );
            }
            let held = self.held.iter().any(|&(s, n)| s <= u && u < s + n);
            let poisoned_held = self.poisoned.contains(&u) && !held;
            accounted += u64::from(free || cached[u as usize] || held || poisoned_held);
            prop_assert!(
                !(free && (cached[u as usize] || held)),
                "unit {} free and cached or held",
                u
            );
        }
        prop_assert_eq!(accounted, self.units, "units lost");
        // The longest run of units that are free or cached, as the pool reports it without
        // draining the magazines.
        let (mut want, mut run) = (0u64, 0u64);
        for u in 0..self.units {
            if !self.alloc.is_allocated(u) || cached[u as usize] {
                run += 1;
                want = want.max(run);
            } else {
                run = 0;
            }
        }
        let mut blocks = Vec::new();
        for m in &self.mags {
            m.for_each(|v| blocks.push(magazine::block_of(v)));
        }
        prop_assert_eq!(largest_free_run(&self.alloc, &mut blocks), want);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn magazines_never_hand_out_dirty(
        blocks in 4u64..24,
        extra in 0u64..600,
        offset in prop_oneof![Just(0u64), 1u64..512],
        cap in 2usize..12,
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let mut m = Model::new(blocks, extra, offset, cap);
        for op in ops {
            m.step(op)?;
            m.check()?;
        }
        // Everything back: the area is whole but for its poisoned units.
        for (s, n) in core::mem::take(&mut m.held) {
            m.release(s, n);
        }
        m.drain();
        m.check()?;
        prop_assert_eq!(m.alloc.free_units(), m.units - m.poisoned.len() as u64);
    }
}
