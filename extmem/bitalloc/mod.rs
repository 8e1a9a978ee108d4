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
//! The two block sizes that dominate (2 MiB and 1 GiB of 4 KiB units: 512 and 2^18 units,
//! naturally aligned) have an index of their own: every materialised inner node keeps, in
//! spare bits of its `blk` word, masks of which children hold a free such block and which are
//! entirely free, kept exact by every operation. A block allocation follows the first set bit
//! from the root (one word per level), a block free checks and writes its words (or one uniform
//! node for 1 GiB), and both update the masks on the way up until a word stays the same. They
//! do not recompute summaries: the nodes they change are marked *stale* and recomputed once,
//! bottom up, by the next operation that needs exact summaries. The index adds no metadata.
//!
//! The caller provides the storage, a slice of `u64` of at least [`storage_words`] words, so no
//! memory is allocated here: the kernel may place it in early-boot memory and the host tests
//! use a `Vec<u64>`. Metadata is the bitmap plus 7.9% for the summaries (one word per leaf,
//! four per inner node): 34 MiB for 1 TiB of 4 KiB units, 2.1 MiB for 64 GiB.
//!
//! Metadata is built lazily. A node is *uniform* (entirely free or entirely allocated, as its
//! summary says) or *materialised*; below a uniform node the storage holds garbage, and an
//! operation that must look inside one first writes its children (or a leaf's bitmap words)
//! as uniform nodes of the same state. So [`BitAlloc::new`] writes O(log units) words over
//! storage that need not be zeroed, [`BitAlloc::from_runs`] and [`BitAlloc::restore`] cost a
//! few summaries per run, and an allocation or free covering whole nodes (1 GiB of 4 KiB units
//! is one level-2 node) writes one summary and recomputes its ancestors instead of its bitmap
//! words. Storage a pool never allocates from is never written.
//!
//! This module is pure `core` Rust with no `unsafe` and no kernel imports; the same files build
//! in the kernel (`mm/extmem/extmem/extmem.rs`) and in the host crate for tests and benchmarks.
//! It takes no locks: the caller serialises access (a spinlock around each call is enough; no
//! call allocates or sleeps).
//!
//! The files, one idea each:
//!
//! - `mod.rs`: this map, the tree geometry constants and [`storage_words`].
//! - `error.rs`: [`AllocError`] and [`Corruption`], with their log strings.
//! - `allocator.rs`: the [`BitAlloc`] type and its invariants, construction, queries,
//!   [`AllocatedRuns`] and the `alloc`/`alloc_at`/`free` entry points.
//! - `shortcut.rs`: the constant-time paths: the hints (`alloc_small`, `alloc_probe`) and
//!   the reject bounds.
//! - `search.rs`: the first-fit walk of the summary tree (`Req`, `search`, `search_block`) and
//!   the word-at-a-time leaf scans.
//! - `bitmap.rs`: reading and writing the bitmap words (set, test and scan ranges of units).
//! - `word.rs`: bit tricks on one 64-bit word (free windows, longest run, aligned blocks).
//! - `summary.rs`: the node summary `Sum` (head, tail, max, blk), its packed leaf form and
//!   `Combine`, which folds children into their parent.
//! - `tree.rs`: the stored summary tree: reading and writing nodes, recomputing leaves and
//!   inner nodes.
//! - `lazy.rs`: uniform nodes: materialising, the lazy construction, range checks and marks
//!   across leaves that write whole nodes as uniform, and finding the node that decides a
//!   unit.
//! - `pending.rs`: the one pending leaf whose summary may lag its words: prepare, commit,
//!   settle (which also repairs stale nodes).
//! - `index.rs`: the block index: the child masks, the 2 MiB and 1 GiB block operations,
//!   stale marks and their repair.
//! - `check.rs`: [`BitAlloc::check`], the full consistency check for tests and debugging.
//! - `state.rs`: the serialised state for the kexec handover ([`BitAlloc::serialize`],
//!   [`BitAlloc::restore`]) and its format constants.

#![forbid(unsafe_code)]

mod allocator;
mod bitmap;
mod check;
mod error;
mod index;
mod lazy;
mod pending;
mod search;
mod shortcut;
mod state;
mod summary;
mod tree;
mod word;

pub use allocator::{AllocatedRuns, BitAlloc};
pub use error::{AllocError, Corruption};
pub use state::{STATE_HEADER_LEN, STATE_MAGIC, STATE_RUN_LEN, STATE_VERSION};

/// Allocation units covered by one leaf of the summary tree.
pub const LEAF_UNITS: u64 = 1024;

/// Children of every inner node of the summary tree.
pub const FANOUT: usize = 16;

/// Largest pool, in allocation units, that [`BitAlloc`] manages (2^56 units).
pub const MAX_UNITS: u64 = 1 << 56;

const LEAF_WORDS: usize = 16;
/// The two block sizes with their own index (`index.rs`): `2^9` units (2 MiB of 4 KiB units,
/// half a leaf) and `2^18` units (1 GiB of 4 KiB units, one node of level [`G_LEVEL`]).
const BLOCK_B_LOG: u32 = 9;
const BLOCK_B: u64 = 1 << BLOCK_B_LOG;
const BLOCK_G_LOG: u32 = 18;
const BLOCK_G: u64 = 1 << BLOCK_G_LOG;
const G_LEVEL: usize = 2;
const _: () = assert!(BLOCK_G == LEAF_UNITS << (FANOUT_SHIFT * G_LEVEL as u32));
const _: () = assert!(BLOCK_B * 2 == LEAF_UNITS);
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

/// Returns how many `u64` words of storage a pool of `units` allocation units needs.
///
/// That is the bitmap (one bit per unit, rounded up to whole words), one packed summary word
/// per leaf of [`LEAF_UNITS`] units and four words per inner node. Returns `None` when `units`
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
