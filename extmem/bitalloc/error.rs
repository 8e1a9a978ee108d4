// SPDX-License-Identifier: GPL-2.0

//! The allocator's error types, each with a short reason for kernel log lines.

use core::fmt;

/// Why a serialised allocator state was rejected by
/// [`BitAlloc::restore`](super::BitAlloc::restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The buffer is shorter than the header or its length disagrees with the run count.
    Length,
    /// The magic bytes are wrong.
    Magic,
    /// The format version is not [`STATE_VERSION`](super::STATE_VERSION).
    Version,
    /// The header length field is not [`STATE_HEADER_LEN`](super::STATE_HEADER_LEN).
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
    /// The storage is shorter than [`storage_words`](super::storage_words) asks for.
    BadStorage,
    /// The output buffer of [`BitAlloc::serialize`](super::BitAlloc::serialize) is too short.
    ShortBuffer,
    /// The summaries disagree with the bitmap (found by
    /// [`BitAlloc::check`](super::BitAlloc::check)).
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
