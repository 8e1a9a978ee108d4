// SPDX-License-Identifier: GPL-2.0

//! The boot parameter's way into Rust: `boot.c` hands the `extmem=` text to
//! [`extmem_parse_param`], which logs every rejected entry and returns the accepted ones.
//!
//! This runs from `mm_core_init_early()`, long before slab: it must not allocate, and it
//! only writes into the caller's array.

use crate::param::{self, Reject, Rules};
use kernel::bindings;
use kernel::prelude::*;

/// Logs like `pr_err!` when `$log` is true.
macro_rules! err {
    ($log:expr, $($arg:tt)*) => {
        if $log {
            pr_err!($($arg)*);
        }
    };
}

/// Parses an `extmem=` string for `boot.c`; see `internal.h`.
///
/// Logs one line per rejected entry and stores at most `max` accepted entries in `out`.
/// Returns how many it stored.
///
/// # Safety
///
/// - `s` must point to `len` readable bytes.
/// - `out` must point to `max` writable `struct extmem_request`s that nothing else accesses
///   during the call.
#[no_mangle]
pub(crate) unsafe extern "C" fn extmem_parse_param(
    s: *const c_char,
    len: usize,
    max_nodes: u32,
    granule: u64,
    out: *mut bindings::extmem_request,
    max: u32,
) -> u32 {
    // SAFETY: The caller guarantees that `s` points to `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(s.cast::<u8>(), len) };
    let Ok(max) = usize::try_from(max) else {
        return 0;
    };
    // SAFETY: The caller guarantees that `out` points to `max` writable requests that only
    // this call accesses.
    let out = unsafe { core::slice::from_raw_parts_mut(out, max) };
    parse_into(bytes, &Rules { max_nodes, granule }, out, true)
}

/// Parses `bytes` and fills `out`, logging each rejection if `log`; the safe half of
/// [`extmem_parse_param`].
pub(crate) fn parse_into(
    bytes: &[u8],
    rules: &Rules,
    out: &mut [bindings::extmem_request],
    log: bool,
) -> u32 {
    let text = match core::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.valid_up_to();
            err!(
                log,
                "extmem= is not text from byte {} on; ignoring the rest\n",
                valid
            );
            // `valid_up_to()` is a character boundary inside `bytes`.
            core::str::from_utf8(bytes.get(..valid).unwrap_or(&[])).unwrap_or("")
        }
    };
    let parsed = param::parse(text, rules);
    let mut stored = 0u32;
    for outcome in parsed.outcomes() {
        let index = u32::try_from(outcome.index).unwrap_or(u32::MAX);
        match outcome.result {
            Ok(entry) => {
                let Some(slot) = out.get_mut(stored as usize) else {
                    err!(
                        log,
                        "entry {} '{}': no room for more areas\n",
                        index,
                        outcome.text
                    );
                    continue;
                };
                *slot = bindings::extmem_request {
                    size: entry.size,
                    phys: entry.phys.unwrap_or(0),
                    nid: entry.node,
                    index,
                    fixed: entry.phys.is_some(),
                    handover: false,
                };
                stored += 1;
            }
            Err(reason @ (Reject::SizeUnaligned | Reject::PhysUnaligned)) => err!(
                log,
                "entry {} '{}': {} ({} MiB)\n",
                index,
                outcome.text,
                reason.as_str(),
                rules.granule >> 20
            ),
            Err(Reject::Overlap(earlier)) => err!(
                log,
                "entry {} '{}': fixed range overlaps entry {}\n",
                index,
                outcome.text,
                earlier
            ),
            Err(reason) => err!(
                log,
                "entry {} '{}': {}\n",
                index,
                outcome.text,
                reason.as_str()
            ),
        }
    }
    let (extra, extra_text) = parsed.too_many();
    if extra > 0 {
        err!(
            log,
            "too many entries (at most {}): ignoring '{}'\n",
            param::MAX_ENTRIES,
            extra_text
        );
    }
    stored
}
