// SPDX-License-Identifier: GPL-2.0

//! A range allocator over a bitmap whose search cost does not grow with the pool size.
//!
//! `BitAlloc` hands out contiguous, aligned runs of *allocation units* (a unit is whatever the
//! caller decides: 4 KiB pages, 2 MiB blocks, ...). One bit per unit records whether the unit
//! is allocated (`1`) or free (`0`), exactly like a CMA bitmap. On top of the bitmap sits a
//! summary tree in the style of FreeBSD's blist and LLFree: every *leaf* of [`LEAF_UNITS`] units
//! and every inner node over [`FANOUT`] children records four numbers for its span: the free
//! run touching its start (`head`), the free run touching its end (`tail`), the longest free
//! run anywhere inside it (`max`) and the order of the largest free block that is aligned to
//! its own size (`blk`). A search walks the tree in address order and skips every node whose
//! `max` is too short for the request or whose `blk` is too small for its alignment (a 512-unit
//! request aligned to 512 descends only where a free aligned 512-unit block exists), joining a
//! node's `tail` to the next node's `head` so that runs crossing node boundaries (a 1 GiB
//! request spans 256 leaves) are found from the summaries alone. Only leaves that may hold a
//! fit are scanned, a 64-bit word at a time. A request longer than the root's `max`, or one
//! that needs a larger free aligned block than the root's `blk` shows, is refused in a few
//! compares against a cached copy of those two values (an upper bound while a leaf is pending,
//! see below). A range across whole leaves is marked with word fills and constant summaries,
//! and freed or claimed after checking the summaries of the leaves it covers rather than their
//! bitmap words.
//!
//! The placement policy is *first fit*: every successful [`BitAlloc::alloc`] returns the lowest
//! start that satisfies the request, the same answer CMA's `bitmap_find_next_zero_area_off()`
//! gives, so fragmentation behaves like CMA's (measured in
//! `Documentation/mm/extmem-allocator.rst`). A request fails only when no aligned free run of
//! the requested length exists ("no false full").
//!
//! Two constant-time shortcuts keep small requests as cheap as a plain bitmap. A *hint* is a
//! lower bound of the lowest free unit; a request of at most 64 units aligned to at most 64 is
//! first tried in the word at the hint, which gives the same first-fit answer when it fits
//! there. And an operation that stays inside one leaf does not update the summaries at once:
//! the leaf is remembered as *pending* together with a snapshot of the words it changed. The
//! next operation that needs the summaries settles it, which costs nothing when the words are
//! back to the snapshot (an allocation freed again) and one leaf rescan plus an update of its
//! ancestors otherwise. Only one leaf is ever pending, so every answer stays exact.
//!
//! The caller provides the storage, a slice of `u64` of at least [`storage_words`] words, so no
//! memory is allocated here: the kernel may place it in early-boot memory and the host tests
//! use a `Vec<u64>`. Metadata is the bitmap plus 7.9% for the summaries (one word per leaf,
//! four per inner node).
//!
//! This file is pure `core` Rust with no `unsafe` and no kernel imports; the same file builds in
//! the kernel (`mm/extmem/extmem/extmem.rs`) and in the host crate for tests and benchmarks. It takes
//! no locks: the caller serialises access (a spinlock around each call is enough; no call
//! allocates or sleeps).

#![forbid(unsafe_code)]

use core::fmt;
use core::ops::DerefMut;

/// Allocation units covered by one leaf of the summary tree.
pub const LEAF_UNITS: u64 = 1024;

/// Children of every inner node of the summary tree.
pub const FANOUT: usize = 16;

/// Largest pool, in allocation units, that [`BitAlloc`] manages (2^56 units).
pub const MAX_UNITS: u64 = 1 << 56;

const LEAF_WORDS: usize = 16;
const LEAF_SHIFT: u32 = 10;
const FANOUT_U64: u64 = 16;
const FANOUT_SHIFT: u32 = 4;
/// Levels: the leaves (level 0) and at most 12 inner levels for `MAX_UNITS` units.
const MAX_LEVELS: usize = 13;
const FIELD_BITS: u32 = 16;
/// Words per inner node summary: head, tail, max, blk.
const NODE_WORDS: usize = 4;
const NODE_WORDS_U64: u64 = 4;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

/// Magic bytes at the start of a serialised allocator state.
pub const STATE_MAGIC: [u8; 8] = *b"EXMBMAP\0";
/// Version of the serialised state format that [`BitAlloc::serialize`] writes.
pub const STATE_VERSION: u32 = 1;
/// Size in bytes of the fixed header of the serialised state.
pub const STATE_HEADER_LEN: usize = 48;
/// Size in bytes of one allocated run record in the serialised state.
pub const STATE_RUN_LEN: usize = 16;
const HEADER_LEN_U32: u32 = 48;

/// Why a serialised allocator state was rejected by [`BitAlloc::restore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The buffer is shorter than the header or its length disagrees with the run count.
    Length,
    /// The magic bytes are wrong.
    Magic,
    /// The format version is not [`STATE_VERSION`].
    Version,
    /// The header length field is not [`STATE_HEADER_LEN`].
    Header,
    /// The unit count differs from the pool being restored.
    Units,
    /// The checksum does not match the contents.
    Checksum,
    /// A run is empty, out of range, overlapping, unsorted or adjacent to the previous one.
    Runs,
    /// The allocated unit total disagrees with the runs.
    Total,
}

impl Corruption {
    /// Returns a short reason for kernel log lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Corruption::Length => "state length does not match its run count",
            Corruption::Magic => "bad state magic",
            Corruption::Version => "unsupported state version",
            Corruption::Header => "bad state header length",
            Corruption::Units => "state is for a pool of another size",
            Corruption::Checksum => "state checksum mismatch",
            Corruption::Runs => "state runs are empty, out of range, unsorted or overlapping",
            Corruption::Total => "state allocated total does not match its runs",
        }
    }
}

/// Errors of the allocator; no error changes the allocator state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// A count of zero units (or a pool of zero units) was given.
    Zero,
    /// The alignment is not a power of two.
    BadAlign,
    /// The range (or the pool size) is outside what the allocator covers.
    OutOfRange,
    /// `start + count` overflows.
    Overflow,
    /// No aligned free run of the requested length exists.
    NoSpace,
    /// Some unit of a fixed claim is already allocated.
    Busy,
    /// Some unit of the range being freed is not allocated.
    NotAllocated,
    /// The storage is shorter than [`storage_words`] asks for.
    BadStorage,
    /// The output buffer of [`BitAlloc::serialize`] is too short.
    ShortBuffer,
    /// The summaries disagree with the bitmap (found by [`BitAlloc::check`]).
    Inconsistent,
    /// A serialised state was rejected.
    Corrupt(Corruption),
}

impl AllocError {
    /// Returns a short reason for kernel log lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            AllocError::Zero => "zero units",
            AllocError::BadAlign => "alignment is not a power of two",
            AllocError::OutOfRange => "range outside the pool",
            AllocError::Overflow => "start + count overflows",
            AllocError::NoSpace => "no aligned free run of that size",
            AllocError::Busy => "range is partly allocated",
            AllocError::NotAllocated => "range is not (fully) allocated",
            AllocError::BadStorage => "storage too small for the pool",
            AllocError::ShortBuffer => "output buffer too small",
            AllocError::Inconsistent => "summaries disagree with the bitmap",
            AllocError::Corrupt(c) => c.as_str(),
        }
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returns how many `u64` words of storage a pool of `units` allocation units needs.
///
/// That is the bitmap (one bit per unit, rounded up to whole words), one packed summary word
/// per leaf of [`LEAF_UNITS`] units and three words per inner node. Returns `None` when `units`
/// is zero, larger than [`MAX_UNITS`], or the size does not fit in `usize`.
pub const fn storage_words(units: u64) -> Option<usize> {
    if units == 0 || units > MAX_UNITS {
        return None;
    }
    let words = units.div_ceil(64);
    let mut n = units.div_ceil(LEAF_UNITS);
    let mut total = words + n;
    while n > 1 {
        n = n.div_ceil(FANOUT_U64);
        total += NODE_WORDS_U64 * n;
    }
    if total > usize::MAX as u64 {
        return None;
    }
    Some(total as usize)
}

/// Converts a word or node index; indices are bounded by the storage length, so on failure
/// the result is out of range and every `.get()` with it misses.
fn ix(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Widens an index (`usize` is at most 64 bits on every kernel target).
fn wide(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Returns the bits `p` of `z` such that bits `p..p + k` are all set (`1 <= k <= 64`).
#[inline]
fn windows(z: u64, k: u32) -> u64 {
    let mut m = z;
    let mut have = 1;
    while have < k && m != 0 {
        let sh = if have < k - have { have } else { k - have };
        m &= m >> sh;
        have += sh;
    }
    m
}

/// Returns the larger of `best` and the longest run of set bits in `z`.
#[inline]
fn longest_run_above(z: u64, best: u64) -> u64 {
    if best >= 64 {
        return best;
    }
    let mut m = windows(z, (best + 1) as u32);
    let mut run = best;
    while m != 0 {
        run += 1;
        m &= m >> 1;
    }
    run
}

/// Returns `k + 1` for the largest free block of `2^k` units aligned to `2^k` inside a word
/// whose free units are the set bits of `z` (0 if none; a full word gives 7).
#[inline]
fn word_blk(z: u64) -> u64 {
    if z == u64::MAX {
        return 7;
    }
    let mut m = z;
    let mut blk = 0;
    for (sh, pairs) in [
        (1, 0x5555_5555_5555_5555u64),
        (2, 0x1111_1111_1111_1111),
        (4, 0x0101_0101_0101_0101),
        (8, 0x0001_0001_0001_0001),
        (16, 0x0000_0001_0000_0001),
    ] {
        if m == 0 {
            return blk;
        }
        blk += 1;
        m &= (m >> sh) & pairs;
    }
    if m == 0 {
        blk
    } else {
        blk + 1
    }
}

/// Returns `k + 1` for the largest aligned group of `2^j` entirely free children (their
/// bits set in `full`, at most 16 children of `2^log` units each), `k = log + j`; 0 if none.
#[inline]
fn group_blk(full: u32, log: u64) -> u64 {
    if full == 0 {
        return 0;
    }
    let mut m = full;
    let mut blk = log + 1;
    for (sh, pairs) in [(1, 0x5555u32), (2, 0x1111), (4, 0x0101), (8, 0x0001)] {
        m &= (m >> sh) & pairs;
        if m == 0 {
            return blk;
        }
        blk += 1;
    }
    blk
}

/// Returns the bit positions `p` of a word whose first unit is a multiple of 64 such that
/// `p + offset` is a multiple of `align` (a power of two, at most 64).
#[inline]
fn word_pattern(align: u64, offset: u64) -> u64 {
    // One bit every `align` bits, for align 1, 2, 4, ..., 64.
    const PATS: [u64; 7] = [
        u64::MAX,
        0x5555_5555_5555_5555,
        0x1111_1111_1111_1111,
        0x0101_0101_0101_0101,
        0x0001_0001_0001_0001,
        0x0000_0001_0000_0001,
        1,
    ];
    let mask = align.wrapping_sub(1) & 63;
    let pat = PATS
        .get(align.trailing_zeros() as usize)
        .copied()
        .unwrap_or(0);
    pat << (align.wrapping_sub(offset & mask) & mask)
}

/// Free-run summary of one node: runs of free units at the start, at the end and anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sum {
    head: u64,
    tail: u64,
    max: u64,
    /// `k + 1` if a free block of `2^k` units starting at a multiple of `2^k` lies inside,
    /// for the largest such `k`; 0 if no unit is free.
    blk: u64,
}

impl Sum {
    const ZERO: Sum = Sum {
        head: 0,
        tail: 0,
        max: 0,
        blk: 0,
    };

    /// The summary of an entirely free node of `span` units (a power of two).
    const fn full(span: u64) -> Sum {
        Sum {
            head: span,
            tail: span,
            max: span,
            blk: span.trailing_zeros() as u64 + 1,
        }
    }

    fn pack(self) -> u64 {
        self.head
            | (self.tail << FIELD_BITS)
            | (self.max << (2 * FIELD_BITS))
            | (self.blk << (3 * FIELD_BITS))
    }

    fn unpack(w: u64) -> Sum {
        Sum {
            head: w & FIELD_MASK,
            tail: (w >> FIELD_BITS) & FIELD_MASK,
            max: (w >> (2 * FIELD_BITS)) & FIELD_MASK,
            blk: w >> (3 * FIELD_BITS),
        }
    }
}

/// Accumulates child summaries, left to right, into their parent's summary.
struct Combine {
    head: u64,
    head_done: bool,
    run: u64,
    best: u64,
    blk: u64,
    /// Bit `i` set when child `i` is entirely free.
    full: u32,
    n: u32,
}

impl Combine {
    fn new() -> Self {
        Combine {
            head: 0,
            head_done: false,
            run: 0,
            best: 0,
            blk: 0,
            full: 0,
            n: 0,
        }
    }

    #[inline]
    fn push(&mut self, c: Sum, span: u64) {
        if c.blk > self.blk {
            self.blk = c.blk;
        }
        self.n += 1;
        if c.head >= span {
            self.full |= 1 << (self.n - 1);
            self.run += span;
            if !self.head_done {
                self.head += span;
            }
        } else {
            if !self.head_done {
                self.head += c.head;
                self.head_done = true;
            }
            let joined = self.run + c.head;
            if joined > self.best {
                self.best = joined;
            }
            if c.max > self.best {
                self.best = c.max;
            }
            self.run = c.tail;
        }
    }

    /// Returns the parent's summary; children span `span` units (a power of two).
    fn finish(self, span: u64) -> Sum {
        let blk = group_blk(self.full, span.trailing_zeros().into());
        Sum {
            head: self.head,
            tail: self.run,
            max: if self.run > self.best {
                self.run
            } else {
                self.best
            },
            blk: if blk > self.blk { blk } else { self.blk },
        }
    }
}

/// One search request, normalised: starts `s` with `(s + off) & mask == 0`.
#[derive(Clone, Copy)]
struct Req {
    count: u64,
    mask: u64,
    off: u64,
    /// Aligned bit positions inside a word when `mask < 64`, else 0.
    word_pat: u64,
    /// A node can hold a fit only if its `blk` is at least this (see [`Req::new`]).
    need: u64,
}

impl Req {
    fn new(count: u64, align: u64, offset: u64) -> Req {
        let mask = align - 1;
        let off = offset & mask;
        let word_pat = if align <= 64 {
            word_pattern(align, offset)
        } else {
            0
        };
        // A fit starts at a multiple of `2^j`, `2^j` the largest power of two not above
        // `count` or `align`, when the offset is one too; then its first `2^j` units are a
        // free aligned block, which only nodes with `blk >= j + 1` have.
        let small = if count < align { count } else { align };
        let j = u64::from(63 - small.leading_zeros());
        let need = if off & ((1u64 << j) - 1) == 0 {
            j + 1
        } else {
            0
        };
        Req {
            count,
            mask,
            off,
            word_pat,
            need,
        }
    }

    /// Lowest aligned start at or above `r` (`r` and the alignment are at most 2^57).
    #[inline]
    fn first_at(&self, r: u64) -> u64 {
        ((r + self.off + self.mask) & !self.mask) - self.off
    }

    /// Aligned start positions within the word whose first unit is `base`.
    #[inline]
    fn word_mask(&self, base: u64) -> u64 {
        if self.mask < 64 {
            self.word_pat
        } else {
            let c = self.first_at(base);
            if c - base < 64 {
                1u64 << (c - base)
            } else {
                0
            }
        }
    }
}

/// State of the one leaf whose summary may be behind its bitmap words.
#[derive(Debug, Clone, Copy)]
struct Pending {
    leaf: usize,
    word: usize,
    words: usize,
    /// Value every word in `word..word + words` had when the leaf summary was last exact.
    orig: u64,
    /// Whether `orig` describes the words; if not, the leaf must be rescanned.
    exact: bool,
}

/// A first-fit range allocator over a caller-provided bitmap with a summary tree.
///
/// All positions and lengths are in allocation units; unit `i` is bit `i % 64` of word
/// `i / 64` of the storage's bitmap part.
///
/// # Invariants
///
/// - `storage.len() >= storage_words(units)`; bits for units `>= units` in the last bitmap word
///   are set, as if allocated.
/// - Every summary is exact for the bitmap, except for the leaf named by `pending` and its
///   ancestors, which are exact for the bitmap with that leaf's words
///   `word..word + words` equal to `orig` (when `exact`) or for an earlier state (when not).
/// - `free` is the number of clear bits below `units`; every unit below `hint` is allocated.
/// - No free block of `bmask + 1` units (a power of two) that starts at a multiple of its size
///   starts below `bhint`.
/// - `max_bound` is at least the longest free run and `blk_bound` at least the root's exact
///   `blk`: the root summary's values when they were last exact, raised to `u64::MAX` by every
///   free that leaves a leaf pending (only allocations happened since, which shrink both).
pub struct BitAlloc<S: DerefMut<Target = [u64]>> {
    storage: S,
    units: u64,
    free: u64,
    hint: u64,
    /// Lower bound of the lowest free naturally aligned block of `bmask + 1` units: the
    /// block size last searched for, so that repeated 2 MiB or 1 GiB requests start there.
    bhint: u64,
    bmask: u64,
    words: usize,
    /// Highest level; the root is node 0 of this level.
    top: usize,
    /// Start of each level's summaries in `storage`.
    base: [usize; MAX_LEVELS],
    /// Number of nodes of each level.
    nodes: [usize; MAX_LEVELS],
    pending: Option<Pending>,
    /// Upper bound of the longest free run, so that longer requests fail in one compare.
    max_bound: u64,
    /// Upper bound of the root's `blk`, so that requests needing a larger aligned free block
    /// fail in a few instructions.
    blk_bound: u64,
}

/// Iterator over the maximal allocated runs of a [`BitAlloc`], as `(start, count)` in units.
///
/// Created by [`BitAlloc::allocated_runs`]; runs come in increasing address order.
pub struct AllocatedRuns<'a, S: DerefMut<Target = [u64]>> {
    alloc: &'a BitAlloc<S>,
    pos: u64,
}

impl<S: DerefMut<Target = [u64]>> Iterator for AllocatedRuns<'_, S> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let start = self.alloc.next_bit(self.pos, true)?;
        let end = self
            .alloc
            .next_bit(start, false)
            .unwrap_or(self.alloc.units);
        self.pos = end;
        Some((start, end - start))
    }
}

/// FNV-1a over a byte slice, continuing from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

fn get_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Some(u32::from_le_bytes(a))
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), AllocError> {
    let end = at.checked_add(bytes.len()).ok_or(AllocError::ShortBuffer)?;
    out.get_mut(at..end)
        .ok_or(AllocError::ShortBuffer)?
        .copy_from_slice(bytes);
    Ok(())
}

/// Checks a count against a start and the pool size; returns the end of the range.
fn range_end(start: u64, count: u64, units: u64) -> Result<u64, AllocError> {
    if count == 0 {
        return Err(AllocError::Zero);
    }
    let end = start.checked_add(count).ok_or(AllocError::Overflow)?;
    if end > units {
        return Err(AllocError::OutOfRange);
    }
    Ok(end)
}

impl<S: DerefMut<Target = [u64]>> BitAlloc<S> {
    /// Creates an allocator over `storage` for a pool of `units` units, all free.
    ///
    /// `storage` must hold at least [`storage_words`]`(units)` words; its previous contents are
    /// overwritten. Takes time linear in `units / 64`.
    pub fn new(storage: S, units: u64) -> Result<Self, AllocError> {
        let mut a = Self::layout(storage, units)?;
        let words = a.words;
        if let Some(bits) = a.storage.get_mut(..words) {
            bits.fill(0);
        }
        a.finish_build();
        Ok(a)
    }

    /// Creates an allocator whose allocated units are the set bits of `bitmap`.
    ///
    /// `bitmap` holds one bit per unit, unit `i` in bit `i % 64` of word `i / 64`, and must have
    /// at least `units.div_ceil(64)` words; bits at or above `units` are ignored. This converts
    /// a CMA-style bitmap and builds test patterns in one pass.
    pub fn from_bitmap(storage: S, units: u64, bitmap: &[u64]) -> Result<Self, AllocError> {
        let mut a = Self::layout(storage, units)?;
        let words = a.words;
        let src = bitmap.get(..words).ok_or(AllocError::BadStorage)?;
        if let Some(bits) = a.storage.get_mut(..words) {
            bits.copy_from_slice(src);
        }
        a.finish_build();
        Ok(a)
    }

    /// Checks the sizes and lays out the levels; the contents are not initialised yet.
    fn layout(storage: S, units: u64) -> Result<Self, AllocError> {
        if units == 0 {
            return Err(AllocError::Zero);
        }
        let need = storage_words(units).ok_or(AllocError::OutOfRange)?;
        if storage.len() < need {
            return Err(AllocError::BadStorage);
        }
        let words = ix(units.div_ceil(64));
        let mut base = [0usize; MAX_LEVELS];
        let mut nodes = [0usize; MAX_LEVELS];
        let mut n = ix(units.div_ceil(LEAF_UNITS));
        let mut at = words;
        let mut top = 0;
        base[0] = at;
        nodes[0] = n;
        at += n;
        while n > 1 {
            n = n.div_ceil(FANOUT);
            top += 1;
            // `storage_words` succeeded, so there are at most `MAX_LEVELS` levels and no sum
            // overflows.
            if let (Some(b), Some(c)) = (base.get_mut(top), nodes.get_mut(top)) {
                *b = at;
                *c = n;
            }
            at += NODE_WORDS * n;
        }
        Ok(BitAlloc {
            storage,
            units,
            free: 0,
            hint: 0,
            bhint: 0,
            bmask: 0,
            words,
            top,
            base,
            nodes,
            pending: None,
            max_bound: 0,
            blk_bound: 0,
        })
    }

    /// Sets the padding bits, counts free units and computes every summary.
    fn finish_build(&mut self) {
        let tail_bits = self.units % 64;
        if tail_bits != 0 {
            if let Some(w) = self.storage.get_mut(self.words - 1) {
                *w |= u64::MAX << tail_bits;
            }
        }
        let mut used = 0u64;
        for w in self.storage.iter().take(self.words) {
            used += u64::from(w.count_ones());
        }
        self.free = (wide(self.words) * 64).saturating_sub(used);
        self.hint = 0;
        self.bhint = 0;
        self.bmask = 0;
        self.pending = None;
        for leaf in 0..self.nodes[0] {
            let s = self.leaf_summary(leaf);
            self.set_sum(0, leaf, s);
        }
        for level in 1..=self.top {
            for i in 0..self.nodes[level] {
                let s = self.node_summary(level, i);
                self.set_sum(level, i, s);
            }
        }
        self.sync_bounds();
    }

    /// Forgets the reject bounds after a free whose leaf stays pending.
    #[inline(always)]
    fn raise_bounds(&mut self) {
        self.max_bound = u64::MAX;
        self.blk_bound = u64::MAX;
    }

    /// Sets the reject bounds to the root summary; every summary must be exact.
    #[inline]
    fn sync_bounds(&mut self) {
        let r = self.sum(self.top, 0);
        self.max_bound = r.max;
        self.blk_bound = r.blk;
    }

    /// Returns the storage, for the caller to free or reuse.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Returns the pool size in allocation units.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Returns the number of free allocation units, in O(1).
    pub fn free_units(&self) -> u64 {
        self.free
    }

    /// Returns the number of allocated allocation units, in O(1).
    pub fn used_units(&self) -> u64 {
        self.units - self.free
    }

    /// Returns the length in allocation units of the longest free run, in O(log units).
    ///
    /// This is O(1) unless a leaf is pending, in which case its path to the root is
    /// recomputed on the fly (read only).
    pub fn largest_free_run(&self) -> u64 {
        match self.pending {
            Some(p) if !self.pending_clean(&p) => self.virtual_root(p.leaf).max,
            _ => self.sum(self.top, 0).max,
        }
    }

    /// Returns whether `unit` is allocated; units outside the pool count as allocated.
    pub fn is_allocated(&self, unit: u64) -> bool {
        if unit >= self.units {
            return true;
        }
        self.word(ix(unit / 64)) & (1u64 << (unit % 64)) != 0
    }

    /// Returns an iterator over the maximal runs of allocated units, as `(start, count)`.
    pub fn allocated_runs(&self) -> AllocatedRuns<'_, S> {
        AllocatedRuns {
            alloc: self,
            pos: 0,
        }
    }

    /// Allocates `count` units whose start is a multiple of `align` units; returns the start.
    ///
    /// `align` must be a power of two (1 for no alignment). The lowest such start with `count`
    /// free units is chosen. Fails with [`AllocError::NoSpace`] only when no aligned free run
    /// of `count` units exists.
    #[inline(always)]
    pub fn alloc(&mut self, count: u64, align: u64) -> Result<u64, AllocError> {
        self.alloc_offset(count, align, 0)
    }

    /// Allocates `count` units whose start plus `offset` is a multiple of `align` units.
    ///
    /// This is [`BitAlloc::alloc`] for a pool whose first unit is not itself aligned: pass the
    /// index of the pool's first unit in the global unit numbering (a PFN, say) as `offset`,
    /// like the `align_offset` of `bitmap_find_next_zero_area_off()`. Returns the start.
    #[inline(always)]
    pub fn alloc_offset(&mut self, count: u64, align: u64, offset: u64) -> Result<u64, AllocError> {
        if align.is_power_of_two() {
            if count > self.max_bound {
                // Longer than the longest free run.
                return Err(AllocError::NoSpace);
            }
            if count.wrapping_sub(1) < 64 && align <= 64 {
                // 1 to 64 units aligned to at most 64: try the word at the hint first.
                if let Some(start) = self.alloc_small(count, align, offset) {
                    return Ok(start);
                }
            } else if count != 0 && self.needs_larger_block(count, align, offset) {
                // No free aligned block as large as the request's first aligned part.
                return Err(AllocError::NoSpace);
            } else if count.wrapping_sub(1) < LEAF_UNITS && align <= LEAF_UNITS {
                // Up to one leaf: try the lowest aligned start at the hint.
                if let Some(start) = self.alloc_probe(count, align, offset) {
                    return Ok(start);
                }
            }
        }
        self.alloc_search(count, align, offset)
    }

    /// The general case of [`BitAlloc::alloc_offset`]: a walk of the summary tree.
    #[inline(never)]
    fn alloc_search(&mut self, count: u64, align: u64, offset: u64) -> Result<u64, AllocError> {
        if count == 0 {
            return Err(AllocError::Zero);
        }
        if !align.is_power_of_two() {
            return Err(AllocError::BadAlign);
        }
        // Settle even for a request above the free total, so that the bounds let the next
        // such request fail in the inline shortcut.
        self.settle();
        self.sync_bounds();
        if count > self.free
            || count > self.max_bound
            || self.needs_larger_block(count, align, offset)
        {
            return Err(AllocError::NoSpace);
        }
        self.alloc_walk(count, align, offset)
    }

    /// Whether a request of `count >= 1` units aligned to `align` (a power of two) with
    /// `offset` needs a free aligned block larger than `blk_bound` allows: a fit starts at a
    /// multiple of `2^j`, `2^j` the largest power of two not above `count` or `align`, when
    /// the offset is one too, and its first `2^j` units are then such a block.
    #[inline(always)]
    fn needs_larger_block(&self, count: u64, align: u64, offset: u64) -> bool {
        let small = if count < align { count } else { align };
        let j = 63 - small.leading_zeros();
        u64::from(j) >= self.blk_bound && offset & ((1u64 << j) - 1) == 0
    }

    /// [`Self::alloc_search`] once the summaries are exact and the root's `max` does not
    /// rule the request out.
    #[inline(never)]
    fn alloc_walk(&mut self, count: u64, align: u64, offset: u64) -> Result<u64, AllocError> {
        if align > self.units {
            // At most one aligned start lies inside the pool.
            let start = (align - offset % align) % align;
            return match self.alloc_at(start, count) {
                Ok(()) => Ok(start),
                Err(_) => Err(AllocError::NoSpace),
            };
        }
        let start = if count == align && offset & (align - 1) == 0 {
            // A naturally aligned block: follow `blk` down the tree, and remember where the
            // lowest one is for the next request of that size.
            let found = self.search_block(count.trailing_zeros());
            self.bmask = align - 1;
            self.bhint = found.unwrap_or(self.units);
            found
        } else {
            self.search(&Req::new(count, align, offset))
        }
        .ok_or(AllocError::NoSpace)?;
        if count == 1 && align == 1 {
            // First fit for one unit finds the lowest free unit.
            self.hint = start;
        }
        self.mark(start, start + count, true);
        Ok(start)
    }

    /// Claims the fixed range of `count` units at `start`.
    ///
    /// Fails with [`AllocError::Busy`] if any of those units is allocated.
    pub fn alloc_at(&mut self, start: u64, count: u64) -> Result<(), AllocError> {
        let end = range_end(start, count, self.units)?;
        let single = self.prepare(start, end);
        let ok = if single {
            self.range_is(start, end, false)
        } else {
            self.range_is_settled(start, end, false)
        };
        if !ok {
            return Err(AllocError::Busy);
        }
        self.set_bits(start, end, true);
        self.commit(start, end, true, single);
        Ok(())
    }

    /// Frees the `count` units at `start`.
    ///
    /// Every unit of the range must be allocated, otherwise (double free, a range never
    /// allocated) this fails with [`AllocError::NotAllocated`] and changes nothing. The range
    /// need not match one earlier allocation: any allocated units can be freed.
    #[inline(always)]
    pub fn free(&mut self, start: u64, count: u64) -> Result<(), AllocError> {
        let end = start.wrapping_add(count);
        if end > start && end <= self.units && (start ^ (end - 1)) < LEAF_UNITS {
            // Inside one leaf: check and clear at most 16 words, the leaf becomes pending.
            if (start | end) & 63 == 0 {
                let (w0, w1) = (ix(start / 64), ix(end / 64));
                if !self.words_are(w0, w1, u64::MAX) {
                    return Err(AllocError::NotAllocated);
                }
                self.note(start, end);
                self.fill_words(w0, w1, 0);
            } else {
                if !self.range_is(start, end, true) {
                    return Err(AllocError::NotAllocated);
                }
                self.note(start, end);
                self.set_bits(start, end, false);
            }
            self.lower_hints(start);
            self.raise_bounds();
            self.free += count;
            return Ok(());
        }
        self.free_large(start, count)
    }

    /// [`BitAlloc::free`] of a range across leaves, or a bad range.
    #[inline(never)]
    fn free_large(&mut self, start: u64, count: u64) -> Result<(), AllocError> {
        let end = range_end(start, count, self.units)?;
        let single = self.prepare(start, end);
        if single {
            // Only a bad range can get here inside one leaf; check it word by word.
            if !self.range_is(start, end, true) {
                return Err(AllocError::NotAllocated);
            }
            self.set_bits(start, end, false);
        } else if !self.range_is_settled(start, end, true) {
            return Err(AllocError::NotAllocated);
        } else {
            self.set_bits(start, end, false);
        }
        self.lower_hints(start);
        self.commit(start, end, false, single);
        Ok(())
    }

    /// Checks every summary against the bitmap and the free counter; for tests and debugging.
    ///
    /// Settles the pending leaf first. Takes time linear in `units / 64`.
    pub fn check(&mut self) -> Result<(), AllocError> {
        self.settle();
        let mut used = 0u64;
        for w in self.storage.iter().take(self.words) {
            used += u64::from(w.count_ones());
        }
        if (wide(self.words) * 64).saturating_sub(used) != self.free {
            return Err(AllocError::Inconsistent);
        }
        let tail_bits = self.units % 64;
        if tail_bits != 0 && (self.word(self.words - 1) >> tail_bits) != (u64::MAX >> tail_bits) {
            return Err(AllocError::Inconsistent);
        }
        if self.hint > self.units || (self.hint > 0 && !self.range_is(0, self.hint, true)) {
            return Err(AllocError::Inconsistent);
        }
        // No free naturally aligned block of `bmask + 1` units below `bhint`.
        let size = self.bmask + 1;
        if size <= 64 {
            let pat = word_pattern(size, 0);
            for i in 0..ix(self.bhint.min(self.units).div_ceil(64)) {
                let below = self.bhint - wide(i) * 64;
                let m = windows(!self.word(i), size as u32) & pat;
                if below < 64 && m & !(u64::MAX << below) != 0 || below >= 64 && m != 0 {
                    return Err(AllocError::Inconsistent);
                }
            }
        } else {
            let mut b = 0;
            while b < self.bhint && b + size <= self.units {
                if self.range_is(b, b + size, false) {
                    return Err(AllocError::Inconsistent);
                }
                b += size;
            }
        }
        // The reject bounds may only be above the exact root.
        let root = self.sum(self.top, 0);
        if self.max_bound < root.max || self.blk_bound < root.blk {
            return Err(AllocError::Inconsistent);
        }
        for leaf in 0..self.nodes[0] {
            if self.leaf_summary(leaf) != self.sum(0, leaf) {
                return Err(AllocError::Inconsistent);
            }
        }
        for level in 1..=self.top {
            for i in 0..self.nodes[level] {
                if self.node_summary(level, i) != self.sum(level, i) {
                    return Err(AllocError::Inconsistent);
                }
            }
        }
        Ok(())
    }

    // ---- serialisation -------------------------------------------------------------------

    /// Returns the size in bytes of the serialised state; takes time linear in the bitmap.
    pub fn serialized_len(&self) -> usize {
        let runs = self.allocated_runs().count();
        runs.saturating_mul(STATE_RUN_LEN)
            .saturating_add(STATE_HEADER_LEN)
    }

    /// Writes the state to `out` for a kexec handover; returns the number of bytes written.
    ///
    /// The format (version 1, all integers little-endian) is a 48-byte header followed by one
    /// 16-byte record per maximal allocated run:
    ///
    /// | offset | size | field                                                     |
    /// |--------|------|-----------------------------------------------------------|
    /// | 0      | 8    | magic [`STATE_MAGIC`], `"EXMBMAP\0"`                      |
    /// | 8      | 4    | version, [`STATE_VERSION`]                                |
    /// | 12     | 4    | header length, [`STATE_HEADER_LEN`]                       |
    /// | 16     | 8    | pool size in units                                        |
    /// | 24     | 8    | allocated units                                           |
    /// | 32     | 8    | number of runs `n`                                        |
    /// | 40     | 8    | checksum: 64-bit FNV-1a over bytes 0..40 and 48..48 + 16n |
    /// | 48     | 16n  | runs: start (u64) then count (u64)                        |
    ///
    /// Runs are maximal: increasing, non-empty, inside the pool, and separated by at least one
    /// free unit. A typical pool with a few hundred allocations needs a few KiB.
    ///
    /// Fails with [`AllocError::ShortBuffer`] if `out` is shorter than
    /// [`BitAlloc::serialized_len`]; the contents of `out` are then unspecified.
    pub fn serialize(&self, out: &mut [u8]) -> Result<usize, AllocError> {
        let mut at = STATE_HEADER_LEN;
        let mut runs = 0u64;
        for (start, count) in self.allocated_runs() {
            put(out, at, &start.to_le_bytes())?;
            put(out, at + 8, &count.to_le_bytes())?;
            at += STATE_RUN_LEN;
            runs += 1;
        }
        put(out, 0, &STATE_MAGIC)?;
        put(out, 8, &STATE_VERSION.to_le_bytes())?;
        put(out, 12, &HEADER_LEN_U32.to_le_bytes())?;
        put(out, 16, &self.units.to_le_bytes())?;
        put(out, 24, &self.used_units().to_le_bytes())?;
        put(out, 32, &runs.to_le_bytes())?;
        let h = match (out.get(..40), out.get(STATE_HEADER_LEN..at)) {
            (Some(hdr), Some(body)) => fnv1a(fnv1a(FNV_OFFSET, hdr), body),
            _ => return Err(AllocError::ShortBuffer),
        };
        put(out, 40, &h.to_le_bytes())?;
        Ok(at)
    }

    /// Rebuilds an allocator from a state written by [`BitAlloc::serialize`].
    ///
    /// `storage` and `units` are as for [`BitAlloc::new`]; `units` must equal the pool size
    /// recorded in the state. Every field is validated (magic, version, lengths, unit count,
    /// checksum, runs in range, sorted and disjoint, allocated total) before the state is
    /// trusted; a bad state gives [`AllocError::Corrupt`]. Takes time linear in the bitmap
    /// and the number of runs.
    pub fn restore(storage: S, units: u64, bytes: &[u8]) -> Result<Self, AllocError> {
        let bad = |c| AllocError::Corrupt(c);
        if bytes.len() < STATE_HEADER_LEN {
            return Err(bad(Corruption::Length));
        }
        if bytes.get(..8) != Some(&STATE_MAGIC[..]) {
            return Err(bad(Corruption::Magic));
        }
        if get_u32(bytes, 8) != Some(STATE_VERSION) {
            return Err(bad(Corruption::Version));
        }
        if get_u32(bytes, 12) != Some(HEADER_LEN_U32) {
            return Err(bad(Corruption::Header));
        }
        let nruns = get_u64(bytes, 32).ok_or(bad(Corruption::Length))?;
        let body = usize::try_from(nruns)
            .ok()
            .and_then(|n| n.checked_mul(STATE_RUN_LEN))
            .and_then(|n| n.checked_add(STATE_HEADER_LEN));
        if body != Some(bytes.len()) {
            return Err(bad(Corruption::Length));
        }
        let (hdr, runs) = bytes.split_at(STATE_HEADER_LEN);
        let hdr_sum = hdr.get(..40).ok_or(bad(Corruption::Length))?;
        let sum = fnv1a(fnv1a(FNV_OFFSET, hdr_sum), runs);
        if get_u64(bytes, 40) != Some(sum) {
            return Err(bad(Corruption::Checksum));
        }
        if get_u64(bytes, 16) != Some(units) {
            return Err(bad(Corruption::Units));
        }
        let used = get_u64(bytes, 24).ok_or(bad(Corruption::Length))?;
        let mut total = 0u64;
        let mut prev_end: Option<u64> = None;
        for rec in runs.chunks_exact(STATE_RUN_LEN) {
            let start = get_u64(rec, 0).ok_or(bad(Corruption::Length))?;
            let count = get_u64(rec, 8).ok_or(bad(Corruption::Length))?;
            let end = range_end(start, count, units).map_err(|_| bad(Corruption::Runs))?;
            if let Some(p) = prev_end {
                if start <= p {
                    return Err(bad(Corruption::Runs));
                }
            }
            prev_end = Some(end);
            total += count;
        }
        if total != used {
            return Err(bad(Corruption::Total));
        }
        let mut a = Self::layout(storage, units)?;
        let words = a.words;
        if let Some(bits) = a.storage.get_mut(..words) {
            bits.fill(0);
        }
        for rec in runs.chunks_exact(STATE_RUN_LEN) {
            if let (Some(start), Some(count)) = (get_u64(rec, 0), get_u64(rec, 8)) {
                a.set_bits(start, start + count, true);
            }
        }
        a.finish_build();
        Ok(a)
    }

    // ---- bitmap words --------------------------------------------------------------------

    #[inline]
    fn word(&self, i: usize) -> u64 {
        if i < self.words {
            self.storage.get(i).copied().unwrap_or(u64::MAX)
        } else {
            u64::MAX
        }
    }

    /// Sets (`alloc`) or clears the bits of units `s..e` (a non-empty range in the pool).
    fn set_bits(&mut self, s: u64, e: u64, alloc: bool) {
        let w0 = ix(s / 64);
        let w1 = ix((e - 1) / 64);
        let first = u64::MAX << (s % 64);
        let last = u64::MAX >> (63 - (e - 1) % 64);
        if w0 == w1 {
            if let Some(w) = self.storage.get_mut(w0) {
                if alloc {
                    *w |= first & last;
                } else {
                    *w &= !(first & last);
                }
            }
            return;
        }
        let Some(bits) = self.storage.get_mut(w0..=w1) else {
            return;
        };
        let n = bits.len();
        if n == 1 {
            if let Some(w) = bits.first_mut() {
                if alloc {
                    *w |= first & last;
                } else {
                    *w &= !(first & last);
                }
            }
            return;
        }
        let fill = if alloc { u64::MAX } else { 0 };
        if let Some(w) = bits.first_mut() {
            *w = if alloc { *w | first } else { *w & !first };
        }
        if let Some(mid) = bits.get_mut(1..n - 1) {
            mid.fill(fill);
        }
        if let Some(w) = bits.last_mut() {
            *w = if alloc { *w | last } else { *w & !last };
        }
    }

    /// Returns whether bitmap words `w0..w1` (a non-empty range) all equal `want`.
    #[inline(always)]
    fn words_are(&self, w0: usize, w1: usize, want: u64) -> bool {
        let Some(ws) = self.storage.get(w0..w1) else {
            return false;
        };
        if let Ok(a) = <&[u64; 8]>::try_from(ws) {
            // A 2 MiB block of 4 KiB units: a few vector compares instead of a loop.
            return a.iter().fold(0, |acc, &w| acc | (w ^ want)) == 0;
        }
        ws.iter().fold(0, |acc, &w| acc | (w ^ want)) == 0
    }

    /// Sets bitmap words `w0..w1` to `v`.
    #[inline(always)]
    fn fill_words(&mut self, w0: usize, w1: usize, v: u64) {
        if let Some(ws) = self.storage.get_mut(w0..w1) {
            if let Ok(a) = <&mut [u64; 8]>::try_from(&mut *ws) {
                // A 2 MiB block of 4 KiB units: two vector stores instead of a call.
                *a = [v; 8];
            } else {
                ws.fill(v);
            }
        }
    }

    /// Returns whether every unit of `s..e` is allocated (`alloc`) or free.
    #[inline]
    fn range_is(&self, s: u64, e: u64, alloc: bool) -> bool {
        let w0 = ix(s / 64);
        let w1 = ix((e - 1) / 64);
        let first = u64::MAX << (s % 64);
        let last = u64::MAX >> (63 - (e - 1) % 64);
        let want = if alloc { u64::MAX } else { 0 };
        if w0 == w1 {
            return (self.word(w0) ^ want) & first & last == 0;
        }
        let Some(bits) = self.storage.get(w0..=w1) else {
            return false;
        };
        match bits {
            [head, mid @ .., tail] => {
                // A branch-free reduction, so that long ranges are checked a vector at a time.
                let diff = mid.iter().fold(0, |acc, &w| acc | (w ^ want));
                (head ^ want) & first == 0 && (tail ^ want) & last == 0 && diff == 0
            }
            _ => false,
        }
    }

    /// Returns the first unit at or after `from` that is allocated (`alloc`) or free.
    fn next_bit(&self, from: u64, alloc: bool) -> Option<u64> {
        if from >= self.units {
            return None;
        }
        let flip = if alloc { 0 } else { u64::MAX };
        let mut i = ix(from / 64);
        let mut w = (self.word(i) ^ flip) & (u64::MAX << (from % 64));
        loop {
            if w != 0 {
                let u = wide(i) * 64 + u64::from(w.trailing_zeros());
                return if u < self.units { Some(u) } else { None };
            }
            i += 1;
            if i >= self.words {
                return None;
            }
            // Skip leaves known to be entirely free when looking for allocated units.
            if alloc && i & (LEAF_WORDS - 1) == 0 {
                let leaf = i / LEAF_WORDS;
                let pend = matches!(self.pending, Some(p) if p.leaf == leaf);
                if !pend && self.sum(0, leaf).head == LEAF_UNITS {
                    i += LEAF_WORDS - 1;
                    w = 0;
                    continue;
                }
            }
            w = self.word(i) ^ flip;
        }
    }

    // ---- summaries -----------------------------------------------------------------------

    #[inline]
    fn sum(&self, level: usize, i: usize) -> Sum {
        let Some((&base, &n)) = self.base.get(level).zip(self.nodes.get(level)) else {
            return Sum::ZERO;
        };
        if i >= n {
            return Sum::ZERO;
        }
        if level == 0 {
            return self
                .storage
                .get(base + i)
                .map_or(Sum::ZERO, |&w| Sum::unpack(w));
        }
        match self
            .storage
            .get(base + NODE_WORDS * i..base + NODE_WORDS * (i + 1))
        {
            Some(&[head, tail, max, blk]) => Sum {
                head,
                tail,
                max,
                blk,
            },
            _ => Sum::ZERO,
        }
    }

    fn set_sum(&mut self, level: usize, i: usize, s: Sum) {
        let base = self.base.get(level).copied().unwrap_or(usize::MAX);
        if level == 0 {
            if let Some(w) = self.storage.get_mut(base.saturating_add(i)) {
                *w = s.pack();
            }
        } else if let Some(w) = self
            .storage
            .get_mut(base.saturating_add(NODE_WORDS * i)..base.saturating_add(NODE_WORDS * (i + 1)))
        {
            w.copy_from_slice(&[s.head, s.tail, s.max, s.blk]);
        }
    }

    /// Units covered by one node of `level`.
    #[inline]
    fn span(level: usize) -> u64 {
        LEAF_UNITS << (FANOUT_SHIFT * (level as u32))
    }

    /// Computes a leaf's summary from its bitmap words.
    fn leaf_summary(&self, leaf: usize) -> Sum {
        let w0 = leaf * LEAF_WORDS;
        let mut head = 0u64;
        let mut head_done = false;
        let mut run = 0u64;
        let mut best = 0u64;
        let mut blk = 0u64;
        let mut full = 0u32;
        for (k, i) in (w0..w0 + LEAF_WORDS).enumerate() {
            let z = !self.word(i);
            if blk < 6 {
                let b = word_blk(z);
                if b > blk {
                    blk = b;
                }
            }
            if z == u64::MAX {
                full |= 1 << k;
                run += 64;
                if !head_done {
                    head += 64;
                }
                continue;
            }
            let t = u64::from(z.trailing_ones());
            if !head_done {
                head += t;
                head_done = true;
            }
            if run + t > best {
                best = run + t;
            }
            best = longest_run_above(z, best);
            run = u64::from(z.leading_ones());
        }
        if run > best {
            best = run;
        }
        let g = group_blk(full, 6);
        Sum {
            head,
            tail: run,
            max: best,
            blk: if g > blk { g } else { blk },
        }
    }

    /// Computes an inner node's summary from its children's stored summaries.
    fn node_summary(&self, level: usize, i: usize) -> Sum {
        let child = level - 1;
        let cspan = Self::span(child);
        let mut c = Combine::new();
        let (Some(&base), Some(&n)) = (self.base.get(child), self.nodes.get(child)) else {
            return Sum::ZERO;
        };
        let first = i * FANOUT;
        let last = (first + FANOUT).min(n);
        if first < last {
            if child == 0 {
                if let Some(ws) = self.storage.get(base + first..base + last) {
                    for &w in ws {
                        c.push(Sum::unpack(w), cspan);
                    }
                }
            } else if let Some(ws) = self
                .storage
                .get(base + NODE_WORDS * first..base + NODE_WORDS * last)
            {
                for n in ws.chunks_exact(NODE_WORDS) {
                    if let [head, tail, max, blk] = *n {
                        c.push(
                            Sum {
                                head,
                                tail,
                                max,
                                blk,
                            },
                            cspan,
                        );
                    }
                }
            }
        }
        // Missing children (past the end of the pool) count as allocated.
        if last < first + FANOUT {
            c.push(Sum::ZERO, cspan);
        }
        c.finish(cspan)
    }

    /// Recomputes the ancestors of leaves `lo..=hi` from level 1 up, stopping early once a
    /// level is unchanged.
    fn propagate(&mut self, mut lo: usize, mut hi: usize) {
        for level in 1..=self.top {
            lo /= FANOUT;
            hi /= FANOUT;
            let mut changed = false;
            for i in lo..=hi {
                let s = self.node_summary(level, i);
                if s != self.sum(level, i) {
                    self.set_sum(level, i, s);
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Brings every summary up to date after units `s..e` (a non-empty range in the pool)
    /// were set (`alloc`) or cleared.
    ///
    /// At each level the nodes that `s..e` covers entirely get a constant summary (a memset
    /// for a large range) and only the at most two nodes at its ends are recomputed, so a
    /// 1 GiB range costs a few hundred summary words, not a rescan of its 4096 bitmap words.
    fn refresh(&mut self, s: u64, e: u64, alloc: bool) {
        for level in 0..=self.top {
            let span = Self::span(level);
            let lo = s / span;
            let hi = (e - 1) / span;
            // Nodes `cf..cl` lie entirely inside `s..e`.
            let cf = s.div_ceil(span);
            let cl = e / span;
            if cf < cl {
                let c = if alloc { Sum::ZERO } else { Sum::full(span) };
                self.fill_sums(level, ix(cf), ix(cl), c);
            }
            for i in [lo, hi] {
                if i < cf || i >= cl {
                    let i = ix(i);
                    let new = if level == 0 {
                        self.leaf_summary(i)
                    } else {
                        self.node_summary(level, i)
                    };
                    self.set_sum(level, i, new);
                }
            }
        }
    }

    /// Sets the summaries of nodes `from..to` of `level` to `c`.
    fn fill_sums(&mut self, level: usize, from: usize, to: usize, c: Sum) {
        let base = self.base.get(level).copied().unwrap_or(usize::MAX);
        if level == 0 {
            let range = base.saturating_add(from)..base.saturating_add(to);
            if let Some(w) = self.storage.get_mut(range) {
                w.fill(c.pack());
            }
        } else {
            let range =
                base.saturating_add(NODE_WORDS * from)..base.saturating_add(NODE_WORDS * to);
            if let Some(w) = self.storage.get_mut(range) {
                for n in w.chunks_exact_mut(NODE_WORDS) {
                    n.copy_from_slice(&[c.head, c.tail, c.max, c.blk]);
                }
            }
        }
    }

    /// Returns whether the pending leaf's words are back to their snapshot.
    fn pending_clean(&self, p: &Pending) -> bool {
        p.exact
            && self
                .storage
                .get(p.word..p.word + p.words)
                .is_some_and(|ws| ws.iter().fold(0, |acc, &w| acc | (w ^ p.orig)) == 0)
    }

    /// Makes every summary exact again; a pending leaf whose words are back to their
    /// snapshot stays pending (its summaries are exact already).
    #[inline]
    fn settle(&mut self) {
        if let Some(p) = self.pending {
            if !self.pending_clean(&p) {
                self.settle_leaf(p.leaf);
            }
        }
    }

    /// Rescans the pending leaf and updates its ancestors.
    #[inline(never)]
    fn settle_leaf(&mut self, leaf: usize) {
        self.pending = None;
        let s = self.leaf_summary(leaf);
        if s != self.sum(0, leaf) {
            self.set_sum(0, leaf, s);
            self.propagate(leaf, leaf);
        }
    }

    /// Makes every summary exact again and forgets the pending leaf.
    fn settle_all(&mut self) {
        self.settle();
        self.pending = None;
    }

    /// The root summary with the pending leaf's path recomputed, without writing anything.
    fn virtual_root(&self, leaf: usize) -> Sum {
        let mut s = self.leaf_summary(leaf);
        let mut i = leaf;
        for level in 1..=self.top {
            let parent = i / FANOUT;
            let cspan = Self::span(level - 1);
            let mut c = Combine::new();
            for k in parent * FANOUT..parent * FANOUT + FANOUT {
                let cs = if k == i { s } else { self.sum(level - 1, k) };
                c.push(cs, cspan);
            }
            s = c.finish(cspan);
            i = parent;
        }
        s
    }

    /// Prepares the summaries for a change of units `s..e` (a non-empty range in the pool).
    ///
    /// Must be called before the bits change. A change inside one leaf makes that leaf the
    /// pending one (settling another pending leaf first) and returns `true`; a larger change
    /// settles everything and returns `false`, and [`Self::commit`] then refreshes the
    /// summaries. Calling this and then not changing the bits is harmless.
    #[inline(never)]
    fn prepare(&mut self, s: u64, e: u64) -> bool {
        let leaf = ix(s >> LEAF_SHIFT);
        if leaf != ix((e - 1) >> LEAF_SHIFT) {
            self.settle_all();
            return false;
        }
        let w0 = ix(s / 64);
        let n = ix((e - 1) / 64) - w0 + 1;
        if let Some(p) = self.pending {
            if p.leaf == leaf {
                if (p.word == w0 && p.words == n) || !p.exact {
                    // The snapshot covers these words, or the leaf will be rescanned anyway.
                    return true;
                }
                if !self.pending_clean(&p) {
                    // Other words of the leaf changed: only a rescan can settle it now.
                    if let Some(q) = self.pending.as_mut() {
                        q.exact = false;
                    }
                    return true;
                }
                // The leaf is back to its snapshot: take a new one for these words.
            }
        }
        self.settle_all();
        let orig = self.word(w0);
        let exact = self
            .storage
            .get(w0..w0 + n)
            .is_some_and(|ws| ws.iter().all(|&w| w == orig));
        self.pending = Some(Pending {
            leaf,
            word: w0,
            words: n,
            orig,
            exact,
        });
        true
    }

    /// Finishes a change of units `s..e` begun by [`Self::prepare`] (which returned `single`).
    #[inline]
    fn commit(&mut self, s: u64, e: u64, alloc: bool, single: bool) {
        if !single {
            self.refresh(s, e, alloc);
            self.sync_bounds();
        } else if !alloc {
            self.raise_bounds();
        }
        if alloc {
            self.free -= e - s;
        } else {
            self.free += e - s;
        }
    }

    /// Marks units `s..e` allocated (`alloc`) or free and keeps the summaries exact.
    fn mark(&mut self, s: u64, e: u64, alloc: bool) {
        let single = self.prepare(s, e);
        self.set_bits(s, e, alloc);
        self.commit(s, e, alloc, single);
    }

    /// Returns whether every unit of `s..e` is allocated (`alloc`) or free, reading the
    /// summaries of the leaves that `s..e` covers entirely instead of their bitmap words;
    /// every summary must be exact (no leaf pending).
    ///
    /// A leaf is entirely allocated exactly when its summary is all zero and entirely free
    /// exactly when it is that of a free leaf, so a 1 GiB range reads 256 summary words
    /// instead of 4096 bitmap words.
    fn range_is_settled(&self, s: u64, e: u64, alloc: bool) -> bool {
        let cf = s.div_ceil(LEAF_UNITS);
        let cl = e / LEAF_UNITS;
        if cf >= cl {
            return self.range_is(s, e, alloc);
        }
        let want = if alloc {
            Sum::ZERO.pack()
        } else {
            Sum::full(LEAF_UNITS).pack()
        };
        let base = self.base.first().copied().unwrap_or(usize::MAX);
        let sums_ok = self
            .storage
            .get(base.saturating_add(ix(cf))..base.saturating_add(ix(cl)))
            .is_some_and(|ws| ws.iter().fold(0, |acc, &w| acc | (w ^ want)) == 0);
        let a = cf * LEAF_UNITS;
        let b = cl * LEAF_UNITS;
        sums_ok && (s == a || self.range_is(s, a, alloc)) && (b == e || self.range_is(b, e, alloc))
    }

    // ---- search --------------------------------------------------------------------------

    /// [`Self::prepare`] for units `s..e` inside one leaf, before they change; free when the
    /// pending snapshot already covers exactly their words.
    #[inline(always)]
    fn note(&mut self, s: u64, e: u64) {
        let w0 = ix(s / 64);
        let n = ix((e - 1) / 64) - w0 + 1;
        if !matches!(self.pending, Some(p) if p.word == w0 && p.words == n) {
            self.prepare(s, e);
        }
    }

    /// Keeps both hints lower bounds after units from `start` on were freed.
    #[inline(always)]
    fn lower_hints(&mut self, start: u64) {
        if start < self.hint {
            self.hint = start;
        }
        if start < self.bhint {
            self.bhint = start & !self.bmask;
        }
    }

    /// Tries the lowest aligned start at or above the hint for up to [`LEAF_UNITS`] units
    /// aligned to at most [`LEAF_UNITS`]: units below the hint are allocated, so if that start
    /// fits it is the first fit. A fit that would cross a leaf is left to the tree search.
    #[inline(always)]
    fn alloc_probe(&mut self, count: u64, align: u64, offset: u64) -> Option<u64> {
        let mask = align - 1;
        let off = offset & mask;
        let mut from = self.hint;
        if count == align && mask == self.bmask && off == 0 && self.bhint > from {
            // No free block of this size starts below `bhint`.
            from = self.bhint;
        }
        let s = ((from + off + mask) & !mask) - off;
        let e = s + count;
        if e > self.units || (s ^ (e - 1)) >= LEAF_UNITS {
            return None;
        }
        if (s | e) & 63 == 0 {
            // Whole words (a 2 MiB block of 4 KiB units is 8): no edge masks.
            let (w0, w1) = (ix(s / 64), ix(e / 64));
            if !self.words_are(w0, w1, 0) {
                return None;
            }
            self.note(s, e);
            self.fill_words(w0, w1, u64::MAX);
        } else {
            if !self.range_is(s, e, false) {
                return None;
            }
            self.note(s, e);
            self.set_bits(s, e, true);
        }
        self.free -= count;
        Some(s)
    }

    /// Tries the word at the hint for `count <= 64` units aligned to `align <= 64`.
    ///
    /// Units below the hint are allocated, so a fit that lies entirely inside the hint's word
    /// is the first fit; one that would cross into the next word is left to the tree search.
    #[inline(always)]
    fn alloc_small(&mut self, count: u64, align: u64, offset: u64) -> Option<u64> {
        let mut h = self.hint;
        let mut z = 0;
        let mut w = 0;
        for _ in 0..2 {
            if h >= self.units {
                return None;
            }
            w = ix(h / 64);
            z = !self.word(w) & (u64::MAX << (h % 64));
            if z != 0 {
                break;
            }
            // Nothing free from the hint to the end of its word.
            h = ((h | 63) + 1).min(self.units);
            self.hint = h;
        }
        let mut m = if count == 1 {
            z
        } else {
            windows(z, count as u32)
        };
        if align > 1 {
            m &= word_pattern(align, offset);
        }
        if m == 0 {
            return None;
        }
        let bit = u64::from(m.trailing_zeros());
        let start = wide(w) * 64 + bit;
        self.note(start, start + count);
        if let Some(x) = self.storage.get_mut(w) {
            *x |= (u64::MAX >> (64 - count)) << bit;
        }
        self.free -= count;
        Some(start)
    }

    /// Walks the summary tree in address order for the first fit; summaries must be exact.
    fn search(&self, req: &Req) -> Option<u64> {
        let count = req.count;
        let top = self.top;
        let mut level = top;
        let mut idx = 0usize;
        // Start of the free run that reaches the current node from the left.
        let mut rs: Option<u64> = None;
        loop {
            let span = Self::span(level);
            let a = wide(idx) * span;
            if a >= self.units {
                return None;
            }
            let b = a + span;
            let sm = self.sum(level, idx);
            let mut descend = false;
            if sm.head >= span {
                let r = rs.unwrap_or(a);
                let s = req.first_at(r);
                if s + count <= b {
                    return Some(s);
                }
                rs = Some(r);
            } else {
                let r = match rs {
                    Some(r) => Some(r),
                    None if sm.head > 0 => Some(a),
                    None => None,
                };
                if let Some(r) = r {
                    let s = req.first_at(r);
                    if s + count <= a + sm.head {
                        return Some(s);
                    }
                }
                if sm.max >= count && sm.blk >= req.need && req.first_at(a + 1) + count <= b {
                    descend = true;
                } else {
                    rs = if sm.tail > 0 { Some(b - sm.tail) } else { None };
                }
            }
            if descend {
                if level == 0 {
                    match self.scan_leaf(idx, rs, req) {
                        Ok(s) => return Some(s),
                        Err(r) => rs = r,
                    }
                } else {
                    level -= 1;
                    idx *= FANOUT;
                    continue;
                }
            }
            // Next node in address order: the next sibling, or the parent's next sibling.
            loop {
                if level == top {
                    return None;
                }
                if (idx + 1) & (FANOUT - 1) != 0 {
                    idx += 1;
                    break;
                }
                idx /= FANOUT;
                level += 1;
            }
        }
    }

    /// Returns the lowest free block of `2^j` units that starts at a multiple of `2^j`;
    /// summaries must be exact.
    ///
    /// Such a block lies inside one child of every node whose span is larger, or covers an
    /// aligned group of entirely free children, so the walk reads at most one node per level:
    /// the first child whose `blk` shows a free aligned block of at least `2^j` units.
    fn search_block(&self, j: u32) -> Option<u64> {
        let need = u64::from(j) + 1;
        let mut level = self.top;
        let mut idx = 0usize;
        if self.sum(level, idx).blk < need {
            return None;
        }
        loop {
            let a = wide(idx) * Self::span(level);
            if level == 0 {
                return self.leaf_block(idx, j).map(|b| a + b);
            }
            let child = level - 1;
            let clog = LEAF_SHIFT + FANOUT_SHIFT * (child as u32);
            let first = idx * FANOUT;
            if j > clog {
                // The block is `2^(j - clog)` entirely free children, aligned to that many
                // (at most all [`FANOUT`] of them, as this node's `blk` shows).
                if j - clog > FANOUT_SHIFT {
                    return None;
                }
                let g = 1u32 << (j - clog);
                let mut full = 0u32;
                for k in 0..FANOUT {
                    if self.sum(child, first + k).head >= Self::span(child) {
                        full |= 1 << k;
                    }
                }
                let mut k = 0;
                while k < FANOUT as u32 {
                    let group = (u32::MAX >> (32 - g)) << k;
                    if full & group == group {
                        return Some(a + (u64::from(k) << clog));
                    }
                    k += g;
                }
                return None;
            }
            idx = first + self.first_child_blk(child, first, need)?;
            level = child;
        }
    }

    /// Returns `k` for the first of the (at most [`FANOUT`]) nodes `first + k` of `level`
    /// whose `blk` is at least `need`.
    #[inline]
    fn first_child_blk(&self, level: usize, first: usize, need: u64) -> Option<usize> {
        let base = *self.base.get(level)?;
        let last = (first + FANOUT).min(*self.nodes.get(level)?);
        if level == 0 {
            let sums = self.storage.get(base + first..base + last)?;
            sums.iter().position(|&w| w >> (3 * FIELD_BITS) >= need)
        } else {
            let sums = self
                .storage
                .get(base + NODE_WORDS * first..base + NODE_WORDS * last)?;
            sums.chunks_exact(NODE_WORDS)
                .position(|n| n.get(3).is_some_and(|&b| b >= need))
        }
    }

    /// Returns the offset inside `leaf` of its lowest free block of `2^j` units aligned to
    /// `2^j` (`j <= 10`).
    fn leaf_block(&self, leaf: usize, j: u32) -> Option<u64> {
        let w0 = leaf * LEAF_WORDS;
        let ws = self.storage.get(w0..(w0 + LEAF_WORDS).min(self.words))?;
        if j > LEAF_SHIFT {
            return None;
        }
        if j < 6 {
            let size = 1u64 << j;
            let pat = word_pattern(size, 0);
            for (k, &w) in ws.iter().enumerate() {
                let m = windows(!w, size as u32) & pat;
                if m != 0 {
                    return Some(wide(k) * 64 + u64::from(m.trailing_zeros()));
                }
            }
            return None;
        }
        let g = 1usize << (j - 6);
        for (k, grp) in ws.chunks_exact(g).enumerate() {
            if grp.iter().fold(0, |acc, &w| acc | w) == 0 {
                return Some(wide(k * g) * 64);
            }
        }
        None
    }

    /// Scans one leaf a word at a time for the first fit, with a free run entering from the
    /// left at `rs`; returns the start, or the free run leaving on the right.
    fn scan_leaf(&self, leaf: usize, mut rs: Option<u64>, req: &Req) -> Result<u64, Option<u64>> {
        let count = req.count;
        let w0 = leaf * LEAF_WORDS;
        for i in w0..w0 + LEAF_WORDS {
            if i >= self.words {
                return Err(None);
            }
            let base = wide(i) * 64;
            let z = !self.word(i);
            if z == 0 {
                rs = None;
                continue;
            }
            if let Some(r) = rs {
                let t = u64::from(z.trailing_ones());
                let s = req.first_at(r);
                if s + count <= base + t {
                    return Ok(s);
                }
                if t == 64 {
                    continue;
                }
            } else if z == u64::MAX {
                rs = Some(base);
                let s = req.first_at(base);
                if s + count <= base + 64 {
                    return Ok(s);
                }
                continue;
            }
            if count <= 64 {
                let m = windows(z, count as u32) & req.word_mask(base);
                if m != 0 {
                    return Ok(base + u64::from(m.trailing_zeros()));
                }
            }
            let l = u64::from(z.leading_ones());
            rs = if l > 0 { Some(base + 64 - l) } else { None };
        }
        Err(rs)
    }
}
