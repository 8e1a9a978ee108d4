// SPDX-License-Identifier: GPL-2.0

//! The boot parameter's way into Rust: `boot.c` hands the `extmem=` text to
//! `extmem_parse_param()` ([`crate::wrappers::c_entry`]), which calls [`parse_into`]: it logs
//! every rejected entry and returns the accepted ones.
//!
//! This runs from `mm_core_init_early()`, long before slab: it must not allocate, and it
//! only writes into the caller's array.

use crate::param::{self, Reject, Rules};
use crate::wrappers::c_entry::Request;
use kernel::prelude::*;

/// Logs like `pr_err!` when `$log` is true.
macro_rules! err {
    ($log:expr, $($arg:tt)*) => {
        if $log {
            pr_err!($($arg)*);
        }
    };
}

/// Parses `bytes` and fills `out`, logging each rejection if `log`; for `boot.c` through
/// `extmem_parse_param()` ([`crate::wrappers::c_entry`]).
///
/// Stores at most `out.len()` accepted entries and returns how many it stored.
pub(crate) fn parse_into(bytes: &[u8], rules: &Rules, out: &mut [Request], log: bool) -> u32 {
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
                *slot = Request {
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
