// SPDX-License-Identifier: GPL-2.0

//! Shared by the allocator tests and the fuzz harness: a naive bool-per-unit oracle, an
//! action decoder, and a checker that drives `BitAlloc` and the oracle side by side.

#![allow(dead_code, unreachable_pub)]

use extmem_core::bitalloc::{storage_words, AllocError, BitAlloc};

/// The naive model: one `bool` per unit, `true` = allocated.
pub struct Oracle {
    pub used: Vec<bool>,
}

impl Oracle {
    pub fn new(units: u64) -> Self {
        Oracle {
            used: vec![false; units as usize],
        }
    }

    pub fn units(&self) -> u64 {
        self.used.len() as u64
    }

    pub fn free_units(&self) -> u64 {
        self.used.iter().filter(|u| !**u).count() as u64
    }

    /// Maximal free runs as `(start, end)`.
    pub fn free_runs(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        let mut i = 0;
        let n = self.used.len();
        while i < n {
            if self.used[i] {
                i += 1;
                continue;
            }
            let s = i;
            while i < n && !self.used[i] {
                i += 1;
            }
            v.push((s as u64, i as u64));
        }
        v
    }

    pub fn used_runs(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        let mut i = 0;
        let n = self.used.len();
        while i < n {
            if !self.used[i] {
                i += 1;
                continue;
            }
            let s = i;
            while i < n && self.used[i] {
                i += 1;
            }
            v.push((s as u64, (i - s) as u64));
        }
        v
    }

    /// The first unit of the free run ending at `p` and the end of the one starting there.
    pub fn free_around(&self, p: u64) -> (u64, u64) {
        let n = self.units();
        let p = p.min(n);
        let mut lo = p;
        while lo > 0 && !self.used[(lo - 1) as usize] {
            lo -= 1;
        }
        let mut hi = p;
        while hi < n && !self.used[hi as usize] {
            hi += 1;
        }
        (lo, hi)
    }

    pub fn largest_free_run(&self) -> u64 {
        self.free_runs()
            .iter()
            .map(|(s, e)| e - s)
            .max()
            .unwrap_or(0)
    }

    /// The lowest `s` with `(s + offset) % align == 0` and `count` free units at `s`.
    pub fn first_fit(&self, count: u64, align: u64, offset: u64) -> Option<u64> {
        for (a, b) in self.free_runs() {
            // Smallest s >= a with (s + offset) % align == 0, in u128 to dodge overflow.
            let al = u128::from(align);
            let x = u128::from(a) + u128::from(offset);
            let s = x.div_ceil(al) * al - u128::from(offset);
            if s + u128::from(count) <= u128::from(b) {
                return Some(s as u64);
            }
        }
        None
    }

    pub fn range_all(&self, s: u64, count: u64, used: bool) -> bool {
        (s..s + count).all(|i| self.used[i as usize] == used)
    }

    pub fn set(&mut self, s: u64, count: u64, used: bool) {
        for i in s..s + count {
            self.used[i as usize] = used;
        }
    }
}

/// An allocator over a `Vec<u64>` sized by `storage_words`.
pub fn new_alloc(units: u64) -> BitAlloc<Vec<u64>> {
    let words = storage_words(units).expect("pool size");
    // Poison the storage: `new` must not rely on zeroed memory (nor on the materialised flag,
    // bit 63, being clear or set in what it has not written).
    let poison = if units.is_multiple_of(2) {
        0xa5a5_a5a5_a5a5_a5a5
    } else {
        0x5a5a_5a5a_5a5a_5a5a
    };
    BitAlloc::new(vec![poison; words], units).expect("new")
}

/// One operation of a random sequence.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Allocate `count` units aligned to `1 << align_log` with `offset`.
    Alloc {
        count: u64,
        align_log: u32,
        offset: u64,
    },
    /// Claim `count` units at `start`.
    AllocAt { start: u64, count: u64 },
    /// Free part of live allocation number `pick % live` (`part` chooses whole or a piece).
    FreeLive { pick: u64, part: u8 },
    /// Free an arbitrary range (usually an error).
    FreeRaw { start: u64, count: u64 },
    /// Serialise and restore into fresh storage.
    RoundTrip,
    /// Run the full consistency check.
    Check,
}

/// Simple deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Turns 8 random words into an operation, biased towards what fragments a pool.
pub fn decode(units: u64, w: [u64; 4]) -> Op {
    let kind = w[0] % 100;
    let size_class = (w[0] >> 8) % 8;
    let count = match size_class {
        0..=3 => 1 + w[1] % 8,
        4 | 5 => 1 + w[1] % 80,
        6 => 1 + w[1] % 1100,
        _ => 1 + w[1] % units.max(1),
    };
    match kind {
        0..=44 => {
            let align_log = match (w[2] >> 5) % 4 {
                0 => 0,
                1 => (w[2] % 7) as u32,
                2 => (w[2] % 11) as u32,
                _ => (w[2] % 20) as u32,
            };
            let offset = if (w[2] >> 40).is_multiple_of(4) {
                w[3]
            } else {
                0
            };
            // Often a naturally aligned block (count == align), which has its own search.
            let count = if (w[2] >> 44).is_multiple_of(3) {
                1u64 << align_log
            } else {
                count
            };
            Op::Alloc {
                count,
                align_log,
                offset,
            }
        }
        45..=52 => Op::AllocAt {
            start: w[2] % units.max(1),
            count,
        },
        53..=88 => Op::FreeLive {
            pick: w[2],
            part: (w[3] % 4) as u8,
        },
        89..=95 => {
            // Mostly in range, sometimes wild (overflow, out of range, zero).
            let start = match w[3] % 8 {
                0 => w[2],
                1 => u64::MAX - w[2] % 4,
                _ => w[2] % units.max(1),
            };
            let count = match w[3] % 16 {
                0 => 0,
                1 => u64::MAX - w[1] % 8,
                _ => count,
            };
            Op::FreeRaw { start, count }
        }
        96..=98 => Op::Check,
        _ => Op::RoundTrip,
    }
}

/// Drives a `BitAlloc` and an `Oracle` with the same operations and compares them.
pub struct Pair {
    pub a: BitAlloc<Vec<u64>>,
    pub o: Oracle,
    pub live: Vec<(u64, u64)>,
    pub ops: u64,
}

impl Pair {
    pub fn new(units: u64) -> Self {
        Pair {
            a: new_alloc(units),
            o: Oracle::new(units),
            live: Vec::new(),
            ops: 0,
        }
    }

    /// Compares the cheap statistics (after every operation).
    pub fn compare_stats(&self) -> Result<(), String> {
        let free = self.o.free_units();
        if self.a.free_units() != free {
            return Err(format!("free_units {} != {}", self.a.free_units(), free));
        }
        let l = self.o.largest_free_run();
        if self.a.largest_free_run() != l {
            return Err(format!(
                "largest_free_run {} != {}",
                self.a.largest_free_run(),
                l
            ));
        }
        Ok(())
    }

    /// Compares everything, including the runs and the internal summaries.
    pub fn compare_all(&mut self) -> Result<(), String> {
        self.compare_stats()?;
        let runs: Vec<(u64, u64)> = self.a.allocated_runs().collect();
        if runs != self.o.used_runs() {
            return Err("allocated_runs differ from the oracle".into());
        }
        for u in [0, self.o.units() / 2, self.o.units() - 1, self.o.units()] {
            let want = u >= self.o.units() || self.o.used[u as usize];
            if self.a.is_allocated(u) != want {
                return Err(format!("is_allocated({u})"));
            }
        }
        self.compare_free_around()?;
        self.a.check().map_err(|e| format!("check: {e}"))?;
        self.compare_stats()
    }

    /// Compares `free_around` with the oracle at the edges of the first allocated runs and
    /// a few fixed points, looking both ways from each.
    pub fn compare_free_around(&self) -> Result<(), String> {
        let n = self.o.units();
        let mut at = vec![0, n / 3, n / 2, n.saturating_sub(1), n];
        for (s, c) in self.o.used_runs().into_iter().take(16) {
            at.extend([s, s + c, s.saturating_sub(1), s + c + 1]);
        }
        for p in at.into_iter().map(|p| p.min(n)) {
            let (got, want) = (self.a.free_around(p, p), self.o.free_around(p));
            if got != want {
                return Err(format!("free_around({p}) = {got:?}, want {want:?}"));
            }
        }
        Ok(())
    }

    pub fn apply(&mut self, op: Op) -> Result<(), String> {
        self.ops += 1;
        let units = self.o.units();
        match op {
            Op::Alloc {
                count,
                align_log,
                offset,
            } => {
                let align = 1u64 << align_log;
                let want = self.o.first_fit(count, align, offset);
                let got = self.a.alloc_offset(count, align, offset);
                match (got, want) {
                    (Ok(s), Some(w)) if s == w => {
                        self.o.set(s, count, true);
                        self.live.push((s, count));
                    }
                    (Err(AllocError::NoSpace), None) => {}
                    _ => {
                        return Err(format!(
                            "alloc({count}, {align}, off {offset}) = {got:?}, oracle {want:?}"
                        ))
                    }
                }
            }
            Op::AllocAt { start, count } => {
                let count = count.min(units - start);
                let ok = self.o.range_all(start, count, false);
                let got = self.a.alloc_at(start, count);
                match got {
                    Ok(()) if ok => {
                        self.o.set(start, count, true);
                        self.live.push((start, count));
                    }
                    Err(AllocError::Busy) if !ok => {}
                    _ => return Err(format!("alloc_at({start}, {count}) = {got:?}, ok {ok}")),
                }
            }
            Op::FreeLive { pick, part } => {
                if self.live.is_empty() {
                    return Ok(());
                }
                let i = (pick % self.live.len() as u64) as usize;
                let (s, c) = self.live.swap_remove(i);
                // Free the whole allocation, or its head, tail or middle (keeping the rest).
                let (fs, fc) = match part {
                    1 if c > 1 => {
                        self.live.push((s + c / 2, c - c / 2));
                        (s, c / 2)
                    }
                    2 if c > 1 => {
                        self.live.push((s, c / 2));
                        (s + c / 2, c - c / 2)
                    }
                    3 if c > 2 => {
                        self.live.push((s, 1));
                        self.live.push((s + c - 1, 1));
                        (s + 1, c - 2)
                    }
                    _ => (s, c),
                };
                self.a
                    .free(fs, fc)
                    .map_err(|e| format!("free({fs}, {fc}) of a live range: {e:?}"))?;
                self.o.set(fs, fc, false);
                // A second free of the same range must fail and change nothing.
                if pick % 5 == 0 {
                    let e = self.a.free(fs, fc);
                    if e != Err(AllocError::NotAllocated) {
                        return Err(format!("double free({fs}, {fc}) = {e:?}"));
                    }
                }
            }
            Op::FreeRaw { start, count } => {
                let got = self.a.free(start, count);
                let want = if count == 0 {
                    Err(AllocError::Zero)
                } else if start.checked_add(count).is_none() {
                    Err(AllocError::Overflow)
                } else if start + count > units {
                    Err(AllocError::OutOfRange)
                } else if !self.o.range_all(start, count, true) {
                    Err(AllocError::NotAllocated)
                } else {
                    Ok(())
                };
                if got != want {
                    return Err(format!("free({start}, {count}) = {got:?}, want {want:?}"));
                }
                if got.is_ok() {
                    self.o.set(start, count, false);
                    // The freed units may belong to live allocations: drop those records.
                    let e = start + count;
                    let mut nl = Vec::new();
                    for (s, c) in self.live.drain(..) {
                        let le = s + c;
                        if le <= start || s >= e {
                            nl.push((s, c));
                        } else {
                            if s < start {
                                nl.push((s, start - s));
                            }
                            if le > e {
                                nl.push((e, le - e));
                            }
                        }
                    }
                    self.live = nl;
                }
            }
            Op::RoundTrip => {
                let mut buf = vec![0u8; self.a.serialized_len()];
                let n = self.a.serialize(&mut buf).map_err(|e| format!("{e:?}"))?;
                if n != buf.len() {
                    return Err("serialize length".into());
                }
                let words = storage_words(units).unwrap();
                // Garbage storage: restore writes only what the runs need.
                let poison = if self.ops.is_multiple_of(2) {
                    u64::MAX
                } else {
                    0x1234_5678_9abc_def0
                };
                let r = BitAlloc::restore(vec![poison; words], units, &buf)
                    .map_err(|e| format!("restore: {e:?}"))?;
                self.a = r;
                self.compare_all()?;
            }
            Op::Check => self.compare_all()?,
        }
        self.compare_stats()
    }

    /// Frees everything, then allocates the whole pool in one request.
    pub fn finish(&mut self) -> Result<(), String> {
        let runs: Vec<(u64, u64)> = self.a.allocated_runs().collect();
        for (s, c) in runs {
            self.a.free(s, c).map_err(|e| format!("free all: {e:?}"))?;
        }
        self.o = Oracle::new(self.o.units());
        self.live.clear();
        self.compare_all()?;
        let units = self.o.units();
        let s = self
            .a
            .alloc(units, 1)
            .map_err(|e| format!("whole pool: {e:?}"))?;
        if s != 0 || self.a.free_units() != 0 || self.a.largest_free_run() != 0 {
            return Err("whole-pool allocation".into());
        }
        self.a.check().map_err(|e| format!("{e:?}"))?;
        self.a.free(0, units).map_err(|e| format!("{e:?}"))?;
        self.a.check().map_err(|e| format!("{e:?}"))?;
        if self.a.largest_free_run() != units {
            return Err("largest after whole-pool free".into());
        }
        Ok(())
    }
}
