/* SPDX-License-Identifier: GPL-2.0 */
/*
 * extmem's kexec handover state.
 */
#ifndef _LINUX_KHO_ABI_EXTMEM_H
#define _LINUX_KHO_ABI_EXTMEM_H

#include <linux/types.h>

/**
 * DOC: extmem KHO handover ABI
 *
 * extmem keeps physical memory that has no struct page, so KHO cannot
 * preserve it page by page. Instead the kernel that kexecs describes its
 * areas and the allocations preserved in LUO sessions in one physically
 * contiguous blob (kho_alloc_preserve()), published as the KHO subtree
 * EXTMEM_KHO_NODE_NAME; the next kernel carves the same physical ranges
 * again, before anything can allocate from them, and restores each area's
 * allocator.
 *
 * This interface is a contract. Any change to the layout below requires a
 * new EXTMEM_KHO_COMPATIBLE string; the writer and the validator are
 * mm/extmem/extmem/handover.rs, which is the reference implementation.
 *
 * All fields are little-endian. The blob holds a header, then nr_areas
 * struct extmem_kho_area, then nr_allocs struct extmem_kho_alloc, then
 * (EXTMEM_KHO_COMPATIBLE "extmem-v2") nr_regions struct extmem_kho_region,
 * then each area's allocator state at its state_off: the BitAlloc
 * serialisation ("EXMBMAP" magic, version, unit count, allocated runs,
 * FNV-1a checksum) holding exactly the preserved allocations and sticky
 * regions of that area. The header's checksum is the FNV-1a 64 of the
 * header (with the checksum field as zero) and all tables.
 *
 * "extmem-v1" (struct extmem_kho_header_v1: no region table, @flags where
 * v2 has @nr_regions) is still accepted from an older kernel.
 *
 * A preserved allocation is identified by its physical base address, which
 * is also the serialized_data of its LUO file (EXTMEM_LUO_COMPATIBLE handler),
 * with EXTMEM_LUO_PRIVATE set when a guest_memfd had made the allocation
 * private (never mappable by userspace again): the next kernel's allocation
 * fd is private from the start. The base is page-aligned, so the bit is
 * free; a kernel that does not know it finds no allocation at that address
 * and retrieves nothing (the memory stays held).
 */

#define EXTMEM_KHO_NODE_NAME	"extmem"
#define EXTMEM_KHO_COMPATIBLE	"extmem-v2"
#define EXTMEM_KHO_COMPATIBLE_V1	"extmem-v1"
/* The LUO file handler of allocation fds; its data is the physical address. */
#define EXTMEM_LUO_COMPATIBLE	"extmem-v1"
#define EXTMEM_LUO_PRIVATE	1ULL
#define EXTMEM_KHO_MAX_AREAS	16
/*
 * The poisoned units, a record of its own (struct extmem_kho_poison), kept
 * up to date whenever a unit is poisoned.
 */
#define EXTMEM_KHO_POISON_NODE	"extmem-poison"
#define EXTMEM_KHO_POISON_COMPATIBLE	"extmem-hwp-v1"
/* struct extmem_kho_poison.flags: more units were poisoned than it lists. */
#define EXTMEM_KHO_POISON_OVERFLOW	1
/*
 * The areas alone (struct extmem_kho_area_record), written once when the
 * pool is built: a next kernel that rejects the state as a whole carves the
 * areas listed here and quarantines them.
 */
#define EXTMEM_KHO_AREAS_NODE	"extmem-areas"
#define EXTMEM_KHO_AREAS_COMPATIBLE	"extmem-areas-v1"
#define EXTMEM_KHO_LABEL_LEN	32
#define EXTMEM_KHO_NAME_LEN	32

/**
 * struct extmem_kho_header - start of the blob ("extmem-v2")
 * @compatible: EXTMEM_KHO_COMPATIBLE, NUL-padded
 * @header_len: sizeof(struct extmem_kho_header), 80
 * @nr_areas: entries of the area table, at most EXTMEM_KHO_MAX_AREAS
 * @nr_allocs: entries of the allocation table
 * @nr_regions: entries of the region table
 * @total_len: bytes of the blob in use, header included
 * @areas_off: offset of the area table (== header_len)
 * @allocs_off: offset of the allocation table (right after the areas)
 * @checksum: FNV-1a 64, see above
 * @regions_off: offset of the region table (right after the allocations)
 * @flags: zero
 * @reserved: zero
 */
struct extmem_kho_header {
	char compatible[16];
	__u32 header_len;
	__u32 nr_areas;
	__u32 nr_allocs;
	__u32 nr_regions;
	__u64 total_len;
	__u64 areas_off;
	__u64 allocs_off;
	__u64 checksum;
	__u64 regions_off;
	__u32 flags;
	__u32 reserved;
} __packed;

/**
 * struct extmem_kho_header_v1 - start of an "extmem-v1" blob
 * @compatible: EXTMEM_KHO_COMPATIBLE_V1, NUL-padded
 * @header_len: 64
 * @flags: zero
 *
 * The other fields as in struct extmem_kho_header; there is no region table.
 */
struct extmem_kho_header_v1 {
	char compatible[16];
	__u32 header_len;
	__u32 nr_areas;
	__u32 nr_allocs;
	__u32 flags;
	__u64 total_len;
	__u64 areas_off;
	__u64 allocs_off;
	__u64 checksum;
} __packed;

/**
 * struct extmem_kho_area - one area carved out of memblock
 * @base: physical base address, a multiple of the memory section size
 * @size: bytes, a non-zero multiple of the memory section size
 * @nid: NUMA node of the whole area
 * @unit_shift: log2 of the allocator's unit in bytes (12)
 * @state_off: offset of the area's allocator state in the blob
 * @state_len: its length in bytes
 * @reserved: zero
 */
struct extmem_kho_area {
	__u64 base;
	__u64 size;
	__u32 nid;
	__u32 unit_shift;
	__u64 state_off;
	__u64 state_len;
	__u64 reserved;
} __packed;

/**
 * struct extmem_kho_alloc - one allocation preserved in a LUO session
 * @phys: physical base address; the allocation's identity
 * @len: bytes, a multiple of the unit
 * @area: index into the area table
 * @nid: NUMA node (that of the area)
 * @label: the label given at allocation, NUL-terminated
 * @reserved: zero
 */
struct extmem_kho_alloc {
	__u64 phys;
	__u64 len;
	__u32 area;
	__u32 nid;
	char label[EXTMEM_KHO_LABEL_LEN];
	__u64 reserved;
} __packed;

/**
 * struct extmem_kho_region - a sticky region ("extmem-v2")
 * @phys: physical base address, a multiple of @align
 * @len: bytes, a non-zero multiple of @align
 * @align: physical alignment: a power of two from the unit to 1 GiB
 * @area: index into the area table
 * @nid: NUMA node (that of the area)
 * @uid: owner of the device node, in the initial user namespace
 * @gid: group of the device node, in the initial user namespace
 * @mode: permission bits of the device node, at most 0777
 * @flags: zero
 * @name: 1 to 31 characters of [A-Za-z0-9._-], not starting with '.',
 *	NUL-padded; unique in the table
 * @reserved: zero
 *
 * A region overlaps no allocation and no other region.
 */
struct extmem_kho_region {
	__u64 phys;
	__u64 len;
	__u64 align;
	__u32 area;
	__u32 nid;
	__u32 uid;
	__u32 gid;
	__u32 mode;
	__u32 flags;
	char name[EXTMEM_KHO_NAME_LEN];
	__u64 reserved[2];
} __packed;

/**
 * struct extmem_kho_poison - the poison record (EXTMEM_KHO_POISON_COMPATIBLE)
 * @compatible: EXTMEM_KHO_POISON_COMPATIBLE, NUL-padded
 * @count: entries of @phys
 * @flags: EXTMEM_KHO_POISON_OVERFLOW or zero; with it, the next kernel
 *	quarantines every area
 * @checksum: FNV-1a 64 of the header (this field as zero) and the entries
 * @phys: physical addresses of the poisoned units, unit-aligned
 *
 * The next kernel fences every listed unit in the area that holds it
 * (mm/extmem/extmem/handover_poison.rs is the reference).
 */
struct extmem_kho_poison {
	char compatible[16];
	__u32 count;
	__u32 flags;
	__u64 checksum;
	__u64 phys[];
} __packed;

/**
 * struct extmem_kho_area_entry - one area of the area record
 * @base: physical base address, a multiple of the memory section size
 * @size: bytes, a non-zero multiple of the memory section size
 * @nid: NUMA node
 * @reserved: zero
 */
struct extmem_kho_area_entry {
	__u64 base;
	__u64 size;
	__u32 nid;
	__u32 reserved;
} __packed;

/**
 * struct extmem_kho_area_record - the area record (EXTMEM_KHO_AREAS_COMPATIBLE)
 * @compatible: EXTMEM_KHO_AREAS_COMPATIBLE, NUL-padded
 * @count: entries of @areas, at most EXTMEM_KHO_MAX_AREAS
 * @flags: zero
 * @checksum: FNV-1a 64 of the header (this field as zero) and the entries
 * @areas: the areas, in the order of the pool; none overlaps another or wraps
 *
 * Read only when the state (EXTMEM_KHO_NODE_NAME) is rejected: the next
 * kernel carves every listed area at its address and quarantines it
 * (mm/extmem/extmem/handover_areas.rs is the reference).
 */
struct extmem_kho_area_record {
	char compatible[16];
	__u32 count;
	__u32 flags;
	__u64 checksum;
	struct extmem_kho_area_entry areas[];
} __packed;

#endif /* _LINUX_KHO_ABI_EXTMEM_H */
