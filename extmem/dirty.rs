// SPDX-License-Identifier: GPL-2.0

//! The set of an area's free units that may still hold old contents (*dirty* units).
//!
//! extmem hands out memory that held another tenant's data, so every byte must read zero
//! before its new owner sees it. Rather than zeroing a whole allocation when it is made, the
//! pool records which free units are dirty in a [`DirtySet`]: freed memory goes in, a
//! background zeroer takes chunks out (zeroes them outside the allocator's lock, and they are
//! clean), and an allocation takes its range out and zeroes only the dirty pieces it got back.
//! A free unit not in the set reads zero; the set never claims a dirty unit is clean.
//!
//! The set is a sorted array of disjoint, non-adjacent half-open runs `[start, end)` of units,
//! in storage the caller provides (a fixed capacity, so nothing is allocated here and the
//! operations can run under a spinlock). An operation that would need one more run than the
//! storage holds fails with [`DirtyError::Full`] and changes nothing; the caller then zeroes
//! the memory itself (see `extmem/pool.rs`). Each operation moves at most the runs behind the
//! place it changes (one `memmove` of the array's tail) and finds its place by binary search.
//!
//! With the cargo feature `broken-dirty` (host builds only), [`DirtySet::remove`] forgets to
//! report the last dirty piece of a removal that spans several runs, a deliberately wrong
//! shortcut that `host/tests/dirty_prop.rs` must catch.

#![forbid(unsafe_code)]

use core::ops::DerefMut;

/// A half-open run of units `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// First unit of the run.
    pub start: u64,
    /// One past the last unit of the run.
    pub end: u64,
}

/// Why a [`DirtySet`] operation did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtyError {
    /// The operation needs one more run than the storage holds.
    Full,
    /// The range is empty or wraps around `u64::MAX`.
    Range,
}

/// Free units that may hold old contents, as sorted disjoint runs of units.
///
/// # Invariants
///
/// `runs[..len]` is sorted by `start`, every run is non-empty, and consecutive runs neither
/// overlap nor touch (`runs[i].end < runs[i + 1].start`); `dirty` is the sum of their lengths.
pub struct DirtySet<S> {
    runs: S,
    len: usize,
    dirty: u64,
}

impl<S: DerefMut<Target = [Run]>> DirtySet<S> {
    /// Returns an empty set whose capacity, in runs, is the length of `storage`.
    pub fn new(storage: S) -> Self {
        Self {
            runs: storage,
            len: 0,
            dirty: 0,
        }
    }

    /// Returns the most runs the set can hold.
    pub fn capacity(&self) -> usize {
        self.runs.len()
    }

    /// Returns how many more runs fit.
    pub fn spare(&self) -> usize {
        self.capacity() - self.len
    }

    /// Returns the runs, in address order.
    pub fn runs(&self) -> &[Run] {
        &self.runs[..self.len]
    }

    /// Returns the number of dirty units.
    pub fn dirty_units(&self) -> u64 {
        self.dirty
    }

    /// Returns true if no unit is dirty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every run: for memory that will never be handed out (a quarantined area).
    pub fn clear(&mut self) {
        self.len = 0;
        self.dirty = 0;
    }

    /// Returns true if any unit of `[start, start + count)` is dirty.
    pub fn intersects(&self, start: u64, count: u64) -> bool {
        let end = start.saturating_add(count);
        let i = self.runs().partition_point(|r| r.end <= start);
        self.runs().get(i).is_some_and(|r| r.start < end)
    }

    /// Marks `count` units at `start` dirty (they may already be, in part).
    ///
    /// Fails with [`DirtyError::Full`] (nothing changed) if the range touches no run and the
    /// storage is full, [`DirtyError::Range`] for an empty or wrapping range.
    pub fn insert(&mut self, start: u64, count: u64) -> Result<(), DirtyError> {
        let end = checked_end(start, count)?;
        let len = self.len;
        let runs = &mut self.runs[..];
        // Runs `i..j` overlap or touch `[start, end)`.
        let i = runs[..len].partition_point(|r| r.end < start);
        let j = runs[..len].partition_point(|r| r.start <= end);
        if i == j {
            if len == runs.len() {
                return Err(DirtyError::Full);
            }
            runs.copy_within(i..len, i + 1);
            runs[i] = Run { start, end };
            self.len += 1;
            self.dirty += count;
            return Ok(());
        }
        let merged: u64 = runs[i..j].iter().map(|r| r.end - r.start).sum();
        let run = Run {
            start: start.min(runs[i].start),
            end: end.max(runs[j - 1].end),
        };
        runs[i] = run;
        runs.copy_within(j..len, i + 1);
        self.len -= j - i - 1;
        self.dirty = self.dirty - merged + (run.end - run.start);
        Ok(())
    }

    /// Marks `count` units at `start` clean, calling `piece(start, end)` for each dirty piece
    /// of the range in address order; returns the number of dirty units the range held.
    ///
    /// Fails with [`DirtyError::Full`] (nothing changed, `piece` not called) if the range lies
    /// strictly inside one run, which would split it, and the storage is full;
    /// [`DirtyError::Range`] for an empty or wrapping range.
    pub fn remove(
        &mut self,
        start: u64,
        count: u64,
        mut piece: impl FnMut(u64, u64),
    ) -> Result<u64, DirtyError> {
        let end = checked_end(start, count)?;
        let len = self.len;
        let runs = &mut self.runs[..];
        // Runs `i..j` overlap `[start, end)`.
        let i = runs[..len].partition_point(|r| r.end <= start);
        let j = runs[..len].partition_point(|r| r.start < end);
        if i >= j {
            return Ok(0);
        }
        let first = runs[i];
        let last = runs[j - 1];
        if j == i + 1 && first.start < start && first.end > end {
            // A hole in the middle of one run: one more run.
            if len == runs.len() {
                return Err(DirtyError::Full);
            }
            runs.copy_within(i + 1..len, i + 2);
            runs[i].end = start;
            runs[i + 1] = Run {
                start: end,
                end: first.end,
            };
            self.len += 1;
            self.dirty -= count;
            piece(start, end);
            return Ok(count);
        }
        let mut removed = 0;
        for (k, r) in runs[i..j].iter().enumerate() {
            let (s, e) = (r.start.max(start), r.end.min(end));
            removed += e - s;
            if cfg!(feature = "broken-dirty") && k + 1 == j - i && k > 0 {
                continue;
            }
            piece(s, e);
        }
        // What is left of the first and the last run; at most `j - i` runs in all, since
        // both are left only when `j - i >= 2` (the single-run case is above).
        let mut at = i;
        if first.start < start {
            runs[at] = Run {
                start: first.start,
                end: start,
            };
            at += 1;
        }
        if last.end > end {
            runs[at] = Run {
                start: end,
                end: last.end,
            };
            at += 1;
        }
        runs.copy_within(j..len, at);
        self.len -= j - at;
        self.dirty -= removed;
        Ok(removed)
    }

    /// Removes and returns the first at most `max` dirty units at the lowest address (the
    /// start of the first run), or `None` if the set is empty (or `max` is 0). Never needs
    /// room.
    pub fn take_first(&mut self, max: u64) -> Option<Run> {
        if self.len == 0 || max == 0 {
            return None;
        }
        let runs = &mut self.runs[..];
        let first = runs[0];
        let end = first.end.min(first.start.saturating_add(max));
        if end == first.end {
            runs.copy_within(1..self.len, 0);
            self.len -= 1;
        } else {
            runs[0].start = end;
        }
        self.dirty -= end - first.start;
        Some(Run {
            start: first.start,
            end,
        })
    }

    /// Returns the storage, for reuse.
    pub fn into_storage(self) -> S {
        self.runs
    }
}

fn checked_end(start: u64, count: u64) -> Result<u64, DirtyError> {
    match start.checked_add(count) {
        Some(end) if count > 0 => Ok(end),
        _ => Err(DirtyError::Range),
    }
}
