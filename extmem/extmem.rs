// SPDX-License-Identifier: GPL-2.0

//! extmem: a pool allocator for physical memory that has no `struct page`.
//!
//! At boot, `boot.c` takes the ranges named by `extmem=` out of memblock, so that the page
//! allocator never sees them and no memory map is built for them. This crate holds the rest:
//!
//! - the pure core, which has no `unsafe` and no kernel imports and is also built on the host
//!   for tests, fuzzing and benchmarks: the boot parameter parser ([`param`]), the range
//!   allocator ([`bitalloc`]), the set of dirty free units ([`dirty`]), the per-CPU magazines ([`magazine`], [`magpool`]) and the kexec handover formats ([`handover`],
//!   [`handover_poison`], [`handover_areas`]);
//! - the kernel glue: the parser's entry point for `boot.c` (`boot`) and the pool of areas
//!   (`pool`), each area with its allocator, its background zeroer (`zero`), and memory
//!   failure on its pfns (`poison`);
//! - the interfaces: `/dev/extmem` and allocation fds (`devif`), regions and their device nodes
//!   (`region`), and the figures `sysfs.c` shows;
//! - the HugeTLB conversion's ranges and ioctl (`hugetlb_conv`; the conversion itself is C,
//!   `hugetlb_conv/conv.c`);
//! - KUnit suites of the core and the glue.
//!
//! Data flows one way: `boot.c` records the areas, the pool reads them at `device_initcall`,
//! and the interfaces use the pool.

use kernel::miscdevice::{MiscDeviceOptions, MiscDeviceRegistration};
use kernel::prelude::*;

pub mod bitalloc;
pub mod dirty;
pub mod handover;
pub mod handover_areas;
pub mod handover_poison;
pub mod magazine;
pub mod magpool;
pub mod param;

mod bitalloc_kunit;
mod boot;
#[path = "../devif/devif.rs"]
mod devif;
#[path = "../devif/gmem.rs"]
mod gmem;
#[path = "../hugetlb_conv/glue.rs"]
mod hugetlb_conv;
mod kho;
mod kunit;
mod magazine_kunit;
mod magpool_kunit;
#[path = "../devif/luo.rs"]
mod luo;
mod poison;
mod pool;
#[path = "../devif/region.rs"]
mod region;
mod sysfs;
mod wrappers;
mod zero;

module! {
    type: Extmem,
    name: "extmem",
    authors: ["extmem developers"],
    description: "Physical memory pool for memory carved out at boot",
    license: "GPL",
}

#[pin_data]
struct Extmem {
    pool: &'static pool::Pool,
    luo: Option<Pin<KBox<wrappers::luo::Registration<luo::AllocationFd>>>>,
    _regions: &'static region::Regions,
    #[pin]
    misc: MiscDeviceRegistration<devif::ExtmemDev>,
}

impl kernel::InPlaceModule for Extmem {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            pool: pool::init()?,
            luo: luo::register(),
            _regions: region::init()?,
            misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"extmem" }),
        })
    }
}
