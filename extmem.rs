// SPDX-License-Identifier: GPL-2.0

//! extmem: a pool allocator for physical memory that has no `struct page`.
//!
//! At boot, `boot.c` takes the ranges named by `extmem=` out of memblock, so that the page
//! allocator never sees them and no memory map is built for them. This crate holds the rest:
//!
//! - the pure core, which has no `unsafe` and no kernel imports and is also built on the host
//!   for tests, fuzzing and benchmarks: the boot parameter parser ([`param`]);
//! - the kernel glue: the parser's entry point for `boot.c` (`boot`), and the pool of areas
//!   (`pool`) that sysfs reads;
//! - KUnit suites of both.
//!
//! Data flows one way: `boot.c` records the areas, the pool reads them at `device_initcall`,
//! and the interfaces (`sysfs.c`) read the pool.

use kernel::prelude::*;

#[path = "extmem/param.rs"]
pub mod param;

#[path = "extmem/boot.rs"]
mod boot;
#[path = "extmem/kunit.rs"]
mod kunit;
#[path = "extmem/pool.rs"]
mod pool;

module! {
    type: Extmem,
    name: "extmem",
    authors: ["extmem developers"],
    description: "Physical memory pool for memory carved out at boot",
    license: "GPL",
}

struct Extmem;

impl kernel::Module for Extmem {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pool::init()?;
        Ok(Extmem)
    }
}
