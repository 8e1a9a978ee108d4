// SPDX-License-Identifier: GPL-2.0

//! Host build of extmem's pure core.
//!
//! The modules are the very files that `mm/extmem/extmem.rs` compiles into the kernel; this
//! crate only gives them a `std` home so that `cargo test`, property tests, fuzzing and the
//! benchmarks can exercise them.

#[path = "../extmem/param.rs"]
pub mod param;

#[path = "../extmem/bitalloc/mod.rs"]
pub mod bitalloc;

#[path = "../extmem/handover.rs"]
pub mod handover;

#[path = "../extmem/handover_poison.rs"]
pub mod handover_poison;

#[path = "../extmem/handover_areas.rs"]
pub mod handover_areas;

#[path = "../extmem/dirty.rs"]
pub mod dirty;

#[path = "../extmem/magazine.rs"]
pub mod magazine;

#[path = "../extmem/magpool.rs"]
pub mod magpool;
