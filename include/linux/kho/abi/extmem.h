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
 * each area's allocator state at its state_off: the BitAlloc serialisation
 * ("EXMBMAP" magic, version, unit count, allocated runs, FNV-1a checksum)
 * holding exactly the preserved allocations of that area. The header's
 * checksum is the FNV-1a 64 of the header (with the checksum field as zero)
 * and both tables.
 *
 * A preserved allocation is identified by its physical base address, which
 * is also the serialized_data of its LUO file ("extmem-v1" handler).
 */

#define EXTMEM_KHO_NODE_NAME	"extmem"
#define EXTMEM_KHO_COMPATIBLE	"extmem-v1"
#define EXTMEM_KHO_MAX_AREAS	16
#define EXTMEM_KHO_LABEL_LEN	32

/**
 * struct extmem_kho_header - start of the blob
 * @compatible: EXTMEM_KHO_COMPATIBLE, NUL-padded
 * @header_len: sizeof(struct extmem_kho_header)
 * @nr_areas: entries of the area table, at most EXTMEM_KHO_MAX_AREAS
 * @nr_allocs: entries of the allocation table
 * @flags: zero
 * @total_len: bytes of the blob in use, header included
 * @areas_off: offset of the area table (== header_len)
 * @allocs_off: offset of the allocation table (right after the areas)
 * @checksum: FNV-1a 64, see above
 */
struct extmem_kho_header {
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

#endif /* _LINUX_KHO_ABI_EXTMEM_H */
