// SPDX-License-Identifier: GPL-2.0

//! Parser for the `extmem=` boot parameter.
//!
//! The parameter is a comma-separated list of entries `<node>:<size>[@<phys>]`. `<node>` is a
//! decimal NUMA node id; `<size>` and `<phys>` are decimal or `0x` hexadecimal numbers with an
//! optional binary suffix `K`, `M`, `G` or `T` (either case), as `memparse()` reads them, except
//! that a leading `0` does not mean octal.
//!
//! Each entry is validated on its own and gets its own outcome, so one bad entry never takes the
//! others down with it. The checks here are the ones that need nothing but the text and two
//! numbers the caller supplies ([`Rules`]): the highest node id the kernel could know about and
//! the granule every size and fixed address must be a multiple of. Whether a node is online, or a
//! fixed range is RAM on that node, is for the boot glue to decide against memblock.
//!
//! This file is part of extmem's pure core: no `unsafe`, no allocation, no kernel imports. The
//! kernel and the host test crate compile the very same file.

#![forbid(unsafe_code)]

use core::fmt;

/// The most entries one `extmem=` string may hold; later entries are rejected.
pub const MAX_ENTRIES: usize = 16;

/// What the caller knows that the text does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Node ids at or above this are rejected (the kernel passes `MAX_NUMNODES`).
    pub max_nodes: u32,
    /// Every size and fixed address must be a multiple of this many bytes (a power of two).
    pub granule: u64,
}

/// One accepted entry: `size` bytes on `node`, at `phys` if the entry fixed an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// NUMA node id.
    pub node: u32,
    /// Size of the area in bytes; a non-zero multiple of [`Rules::granule`].
    pub size: u64,
    /// Fixed physical base address in bytes, if the entry had `@<phys>`.
    pub phys: Option<u64>,
}

impl Entry {
    /// Returns the end (exclusive) of a fixed entry's range, or `None` for a dynamic one.
    pub fn fixed_end(&self) -> Option<u64> {
        self.phys.and_then(|p| p.checked_add(self.size))
    }
}

/// Why an entry was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// The entry is empty (two commas in a row, or a leading or trailing comma).
    Empty,
    /// There is no `:` after the node id.
    MissingColon,
    /// The node id is missing or not a decimal number.
    BadNode,
    /// The node id is not below [`Rules::max_nodes`].
    NodeOutOfRange,
    /// The size is missing or not a number.
    BadSize,
    /// The size is zero.
    ZeroSize,
    /// The size is not a multiple of the granule.
    SizeUnaligned,
    /// The address after `@` is missing or not a number.
    BadPhys,
    /// The fixed address is not a multiple of the granule.
    PhysUnaligned,
    /// A number, or `phys + size`, does not fit in 64 bits.
    Overflow,
    /// Characters follow the size or address that are not a known suffix.
    TrailingGarbage,
    /// The fixed range overlaps the fixed range of the earlier entry with this index.
    Overlap(usize),
    /// More than [`MAX_ENTRIES`] entries were given.
    TooMany,
}

impl Reject {
    /// Returns a short human-readable reason for a log line (without the granule value).
    pub fn as_str(&self) -> &'static str {
        match self {
            Reject::Empty => "empty entry",
            Reject::MissingColon => "expected <node>:<size>[@<phys>]",
            Reject::BadNode => "node id is not a decimal number",
            Reject::NodeOutOfRange => "node id out of range",
            Reject::BadSize => "size is not a number",
            Reject::ZeroSize => "size is zero",
            Reject::SizeUnaligned => "size is not a multiple of the granule",
            Reject::BadPhys => "address after '@' is not a number",
            Reject::PhysUnaligned => "address is not a multiple of the granule",
            Reject::Overflow => "number too large",
            Reject::TrailingGarbage => "unexpected characters after a number",
            Reject::Overlap(_) => "fixed range overlaps an earlier entry",
            Reject::TooMany => "too many entries",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Overlap(i) => write!(f, "fixed range overlaps entry {}", i),
            Reject::TooMany => write!(f, "too many entries (at most {})", MAX_ENTRIES),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The outcome for one comma-separated entry of the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome<'a> {
    /// Position of the entry in the string, counting from 0.
    pub index: usize,
    /// The entry's text, for log lines.
    pub text: &'a str,
    /// The accepted entry, or why it was rejected.
    pub result: Result<Entry, Reject>,
}

/// The outcomes of a whole `extmem=` string.
#[derive(Clone, Debug)]
pub struct Parsed<'a> {
    outcomes: [Option<Outcome<'a>>; MAX_ENTRIES],
    len: usize,
    extra: usize,
    extra_text: &'a str,
}

impl<'a> Parsed<'a> {
    /// Returns the outcomes of the first [`MAX_ENTRIES`] entries, in order.
    pub fn outcomes(&self) -> impl Iterator<Item = &Outcome<'a>> + '_ {
        self.outcomes.iter().take(self.len).flatten()
    }

    /// Returns the accepted entries, in order.
    pub fn accepted(&self) -> impl Iterator<Item = Entry> + '_ {
        self.outcomes().filter_map(|o| o.result.ok())
    }

    /// Returns how many entries beyond [`MAX_ENTRIES`] were rejected as [`Reject::TooMany`],
    /// and the text they occupied.
    pub fn too_many(&self) -> (usize, &'a str) {
        (self.extra, self.extra_text)
    }
}

/// Parses a whole `extmem=` string. Never fails as a whole: each entry has its own outcome.
pub fn parse<'a>(input: &'a str, rules: &Rules) -> Parsed<'a> {
    let mut parsed = Parsed {
        outcomes: [None; MAX_ENTRIES],
        len: 0,
        extra: 0,
        extra_text: "",
    };
    if input.is_empty() {
        return parsed;
    }
    let mut offset = 0usize;
    for (index, text) in input.split(',').enumerate() {
        if index >= MAX_ENTRIES {
            if parsed.extra == 0 {
                parsed.extra_text = input.get(offset..).unwrap_or("");
            }
            parsed.extra += 1;
            continue;
        }
        offset = offset.saturating_add(text.len()).saturating_add(1);
        let mut result = parse_entry(text, rules);
        if let Ok(entry) = result {
            if let Some(earlier) = overlapping(&parsed, &entry) {
                result = Err(Reject::Overlap(earlier));
            }
        }
        if let Some(slot) = parsed.outcomes.get_mut(index) {
            *slot = Some(Outcome {
                index,
                text,
                result,
            });
            parsed.len = index + 1;
        }
    }
    parsed
}

/// Returns the index of an accepted earlier fixed entry whose range overlaps `entry`'s.
fn overlapping(parsed: &Parsed<'_>, entry: &Entry) -> Option<usize> {
    let (start, end) = (entry.phys?, entry.fixed_end()?);
    parsed.outcomes().find_map(|o| {
        let e = o.result.ok()?;
        let (s2, e2) = (e.phys?, e.fixed_end()?);
        (start < e2 && s2 < end).then_some(o.index)
    })
}

fn parse_entry(text: &str, rules: &Rules) -> Result<Entry, Reject> {
    if text.is_empty() {
        return Err(Reject::Empty);
    }
    let (node_text, rest) = text.split_once(':').ok_or(Reject::MissingColon)?;
    let node = parse_node(node_text)?;
    if node >= rules.max_nodes {
        return Err(Reject::NodeOutOfRange);
    }
    let (size_text, phys_text) = match rest.split_once('@') {
        Some((s, p)) => (s, Some(p)),
        None => (rest, None),
    };
    let size = parse_bytes(size_text).map_err(|e| e.unwrap_or(Reject::BadSize))?;
    if size == 0 {
        return Err(Reject::ZeroSize);
    }
    if !is_multiple(size, rules.granule) {
        return Err(Reject::SizeUnaligned);
    }
    let phys = match phys_text {
        None => None,
        Some(p) => {
            let phys = parse_bytes(p).map_err(|e| e.unwrap_or(Reject::BadPhys))?;
            if !is_multiple(phys, rules.granule) {
                return Err(Reject::PhysUnaligned);
            }
            phys.checked_add(size).ok_or(Reject::Overflow)?;
            Some(phys)
        }
    };
    Ok(Entry { node, size, phys })
}

fn is_multiple(value: u64, granule: u64) -> bool {
    granule != 0 && value.is_multiple_of(granule)
}

fn parse_node(text: &str) -> Result<u32, Reject> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reject::BadNode);
    }
    text.bytes().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(b - b'0')))
            .ok_or(Reject::NodeOutOfRange)
    })
}

/// Parses a number with an optional suffix. `Err(None)` means "not a number at all", which the
/// caller turns into the reason that fits the field.
fn parse_bytes(text: &str) -> Result<u64, Option<Reject>> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    let end = digits
        .bytes()
        .position(|b| !char::from(b).is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return Err(None);
    }
    let (number, suffix) = digits.split_at(end);
    let value = number.bytes().try_fold(0u64, |acc, b| {
        let digit = char::from(b).to_digit(radix).ok_or(Some(Reject::BadSize))?;
        acc.checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(Some(Reject::Overflow))
    })?;
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        _ => return Err(Some(Reject::TrailingGarbage)),
    };
    if value.leading_zeros() < shift {
        return Err(Some(Reject::Overflow));
    }
    Ok(value << shift)
}

/// Formats a byte count the way the parser reads it back: the largest suffix that divides it.
#[derive(Clone, Copy, Debug)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u32, &str); 4] = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
        let v = self.0;
        for (shift, name) in UNITS {
            if v != 0 && v.trailing_zeros() >= shift {
                return write!(f, "{}{}", v >> shift, name);
            }
        }
        write!(f, "{}", v)
    }
}

impl fmt::Display for Entry {
    /// Formats the entry in the syntax [`parse`] accepts, so that it parses back to itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, Bytes(self.size))?;
        if let Some(phys) = self.phys {
            write!(f, "@{:#x}", phys)?;
        }
        Ok(())
    }
}
