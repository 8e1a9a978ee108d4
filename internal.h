/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interfaces between extmem's C files and its Rust crate (extmem.rs).
 * The functions declared here are defined in Rust with #[no_mangle].
 */
#ifndef _MM_EXTMEM_INTERNAL_H
#define _MM_EXTMEM_INTERNAL_H

#include <linux/extmem.h>
#include <linux/mmzone.h>
#include <linux/types.h>

/*
 * Sizes and fixed addresses in extmem= are multiples of the memory section
 * size (128 MiB on x86_64): the memory map is built a section at a time,
 * so an area never shares a section with memory the page allocator owns,
 * and a memory block (a whole number of sections) can later be hot-plugged
 * over part of an area without touching its neighbours.
 */
#define EXTMEM_GRANULE		(1ULL << SECTION_SIZE_BITS)

/*
 * Parses an extmem= string of @len bytes (not NUL-terminated), logs one
 * line for each rejected entry and stores up to @max accepted entries in
 * @out. Returns the number stored. Defined in extmem/boot.rs.
 */
u32 extmem_parse_param(const char *s, size_t len, u32 max_nodes, u64 granule,
		       struct extmem_request *out, u32 max);

/*
 * Reads the allocator's view of area @idx: free bytes and the largest free
 * run in bytes. Returns 0, or -ENODEV before the pool is up. Defined in
 * extmem/pool.rs.
 */
int extmem_area_usage(u32 idx, u64 *free_bytes, u64 *largest_free);

#endif /* _MM_EXTMEM_INTERNAL_H */
