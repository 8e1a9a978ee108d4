// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the 7.3 kernel APIs that have no Rust abstraction yet.
//!
//! This module is the only place in extmem with `unsafe` blocks and `bindings::` uses (besides
//! the `#[kunit_tests]` suites that poke at C on purpose). Each wrapper is shaped so that it
//! could be sent to `rust/kernel/` on its own: it owns one C object or one C call, states its
//! invariants, and every `unsafe` block says why it is sound.
//!
//! - [`cap`]: capability checks (`capable()`).
//! - `cpus`: running a function on several CPUs at once (`extmem/cpus.c`), for KUnit.
//! - [`anon_file`]: an anonymous-inode file whose private data is a typed, owned Rust object.
//! - [`chrdev`]: a character device with its own devtmpfs node (the regions' devices of
//!   `devif/region.c`) whose files hold typed Rust private data.
//! - [`pfnmap`]: a `VM_PFNMAP` VMA and its fault handler, with typed `insert_pfn` /
//!   `insert_pfn_pmd` / `insert_pfn_pud`.
//! - [`memremap`]: an RAII `memremap()` mapping.
//! - [`kho_blob`]: a KHO-preserved blob: preserved and published as a subtree for the next
//!   kernel, or the previous kernel's, restored, owned and freed here.
//! - [`luo`]: a LUO file handler: a trait for its operations and an RAII registration.
//! - [`uapi`]: the extmem UAPI structures and their versioned copy from and to userspace.
//! - [`numa`]: NUMA node numbers.
//! - [`resource`]: what the resource tree says about a physical address.
//! - [`carveout`]: the records of the boot carve-out (`extmem/boot.c`).
//! - [`c_entry`]: the entry points extmem's C calls with raw pointers.
//! - [`hugetlb_conv`]: the C half of the HugeTLB conversion (`hugetlb_conv/conv.c`).
//! - [`zeroer`]: the background zeroer threads (`extmem/zero.c`).
//! - [`mf`]: memory failure: an area's `register_pfn_address_space()` and the address space
//!   its files share (`extmem/poison.c`).
//!
//! The rest of extmem (`devif/`, `hugetlb_conv/glue.rs`, `devif/luo.rs`, `extmem/pool.rs`) is
//! written on these and on the abstractions 7.3 already has.

pub(crate) mod anon_file;
pub(crate) mod c_entry;
pub(crate) mod cap;
#[cfg(CONFIG_EXTMEM_KUNIT_TEST)]
pub(crate) mod cpus;
pub(crate) mod carveout;
pub(crate) mod chrdev;
pub(crate) mod hugetlb_conv;
pub(crate) mod kho_blob;
pub(crate) mod luo;
pub(crate) mod memremap;
pub(crate) mod mf;
pub(crate) mod numa;
pub(crate) mod pfnmap;
pub(crate) mod resource;
pub(crate) mod uapi;
pub(crate) mod zeroer;
