// SPDX-License-Identifier: GPL-2.0
/*
 * extmem boot carve-out.
 *
 * extmem= is recorded by an early_param handler (which runs before memblock
 * is filled and so can only remember the text). extmem_reserve(), called
 * first thing in mm_core_init_early(), parses it with the Rust parser in
 * extmem/param.rs and takes each accepted entry out of memblock.memory:
 * the range then gets no struct page, no zone counts it and the page
 * allocator never sees it. Fixed ranges are carved before placed ones so
 * that a placed area cannot take a fixed range's place.
 *
 * An entry that cannot be satisfied is logged and skipped; nothing of it
 * stays reserved. At postcore_initcall the areas' "System RAM" resources
 * are replaced by non-busy, exclusive "extmem" ones, so that /proc/iomem
 * tells the truth, PAT does not look for a memory map the range does not
 * have, kexec_file does not place segments there and /dev/mem refuses it.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/atomic.h>
#include <linux/extmem.h>
#include <linux/init.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/extmem.h>
#include <linux/log2.h>
#include <linux/memblock.h>
#include <linux/minmax.h>
#include <linux/nodemask.h>
#include <linux/sizes.h>
#include <linux/string.h>
#include <asm/setup.h>

#include "internal.h"

static char extmem_param[COMMAND_LINE_SIZE] __initdata;
static size_t extmem_param_len __initdata;

static struct extmem_area extmem_areas[EXTMEM_MAX_AREAS] __ro_after_init;
static unsigned int extmem_nr __ro_after_init;
static struct resource extmem_res[EXTMEM_MAX_AREAS];

/* The previous kernel's state, on a KHO boot that carried one. */
static phys_addr_t extmem_ho_phys __ro_after_init;
static size_t extmem_ho_len __ro_after_init;
/* For each area, its index in the handed-over state, or -1. */
static int extmem_ho_index[EXTMEM_MAX_AREAS] __ro_after_init;
/* For each area, why it must be quarantined (the layout changed), or NULL. */
static const char *extmem_ho_mismatch[EXTMEM_MAX_AREAS] __ro_after_init;
/* The state was rejected: the areas come from the area record, quarantined. */
static bool extmem_ho_rejected __initdata;
/*
 * For each area, the storage of its allocator (extmem_meta_words() words),
 * reserved in memblock at carve time and not initialised, until the pool
 * takes it (extmem_area_meta()); NULL if memblock had no room.
 */
static u64 *extmem_meta[EXTMEM_MAX_AREAS];
static size_t extmem_meta_len[EXTMEM_MAX_AREAS] __ro_after_init;

/* Every extmem= on the command line adds its entries to one list. */
static int __init extmem_early_param(char *s)
{
	size_t len;

	if (!s || !*s) {
		pr_err("extmem= needs <node>:<size>[@<phys>][,...]\n");
		return 0;
	}
	len = strlen(s);
	if (extmem_param_len + len + 1 >= sizeof(extmem_param)) {
		pr_err("extmem= too long, ignoring \"%s\"\n", s);
		return 0;
	}
	if (extmem_param_len)
		extmem_param[extmem_param_len++] = ',';
	memcpy(extmem_param + extmem_param_len, s, len);
	extmem_param_len += len;
	return 0;
}
early_param("extmem", extmem_early_param);

/* True if [base, base + size) is memblock memory, all of it on @nid. */
static bool __init extmem_range_on_node(phys_addr_t base, phys_addr_t size,
					int nid)
{
	unsigned long start_pfn, end_pfn, pfn = PHYS_PFN(base);
	unsigned long last = PHYS_PFN(base + size);
	int i, rnid;

	for_each_mem_pfn_range(i, MAX_NUMNODES, &start_pfn, &end_pfn, &rnid) {
		if (end_pfn <= pfn)
			continue;
		if (start_pfn > pfn || rnid != nid)
			return false;
		pfn = end_pfn;
		if (pfn >= last)
			return true;
	}
	return false;
}

/*
 * On a KHO boot, the memory the previous kernel preserved (a memfd kept in
 * a live update session, KHO's own metadata) is reserved in memblock only
 * later, by kho_memory_init(), which writes into the struct page of every
 * preserved page: a range holding any must not be carved. Neither may a
 * KHO scratch area, which this kernel boots from and hands on. True if
 * [base, base + size) is free of both; logs why not otherwise.
 */
static bool __init extmem_kho_free(const struct extmem_request *req,
				   phys_addr_t base, phys_addr_t size)
{
	phys_addr_t hit = 0;
	int err = kho_range_in_use_early(base, size, &hit);

	if (!err)
		return true;
	if (err == -EEXIST)
		pr_err("entry %u: [mem %#018llx-%#018llx] holds memory the previous kernel preserved across kexec (at %#llx); not carved\n",
		       req->index, (u64)base, (u64)(base + size - 1), (u64)hit);
	else if (err == -EBUSY)
		pr_err("entry %u: [mem %#018llx-%#018llx] overlaps a KHO scratch area (at %#llx); not carved\n",
		       req->index, (u64)base, (u64)(base + size - 1), (u64)hit);
	else
		pr_err("entry %u: cannot read the previous kernel's preserved-memory map (%d); not carved\n",
		       req->index, err);
	return false;
}

/*
 * A handed-over area that is not all memory of its node any more (the NUMA
 * layout changed): it may hold preserved guest memory, so it is carved all
 * the same, on the node of its first page, and quarantined. Returns that
 * node, or NUMA_NO_NODE if the range is not all memory (nothing to hold).
 */
static int __init extmem_handover_mismatch(const struct extmem_request *req)
{
	phys_addr_t base = req->phys, size = req->size;

	if (!memblock_is_region_memory(base, size) ||
	    memblock_is_region_reserved(base, size)) {
		pr_err("area %u of the previous kernel: [mem %#018llx-%#018llx] is not free memory here; not carved\n",
		       req->index, (u64)base, (u64)(base + size - 1));
		return NUMA_NO_NODE;
	}
	pr_err("area %u of the previous kernel: [mem %#018llx-%#018llx] is not all memory of node %u here; carved and quarantined\n",
	       req->index, (u64)base, (u64)(base + size - 1), req->nid);
	return early_pfn_to_nid(PHYS_PFN(base));
}

/*
 * Reserves the storage of area @idx's allocator (bitmap and summaries, about
 * 35 KiB per GiB) in memblock, on the area's node if it has room. It is
 * neither zeroed nor touched here: the allocator initialises what it uses
 * (extmem/bitalloc/), so that nothing proportional to the area's size runs
 * at boot. If memblock has no room the pool allocates it instead.
 */
static void __init extmem_reserve_meta(unsigned int idx, phys_addr_t size,
				       int nid)
{
	size_t words = extmem_meta_words(size >> PAGE_SHIFT);
	void *p;

	if (!words)
		return;
	p = memblock_alloc_try_nid_raw(words * sizeof(u64), SMP_CACHE_BYTES,
				       0, MEMBLOCK_ALLOC_ACCESSIBLE, nid);
	if (!p) {
		pr_warn("area %u: no early memory for its %zu KiB of metadata; allocated later\n",
			idx, words * sizeof(u64) >> 10);
		return;
	}
	extmem_meta[idx] = p;
	extmem_meta_len[idx] = words;
}

static void __init extmem_carve(const struct extmem_request *req)
{
	phys_addr_t size = req->size, base, align;
	const char *mismatch = NULL;
	int nid = req->nid;
	struct extmem_area *area;

	if (req->handover &&
	    (!node_online(nid) || !extmem_range_on_node(req->phys, size, nid))) {
		nid = extmem_handover_mismatch(req);
		if (nid == NUMA_NO_NODE)
			return;
		mismatch = "the NUMA layout differs from the previous kernel's";
		base = req->phys;
		goto carve;
	}

	if (!node_online(nid)) {
		pr_err("entry %u: node %d is not online or has no memory\n",
		       req->index, nid);
		return;
	}

	if (req->fixed) {
		base = req->phys;
		if (!extmem_range_on_node(base, size, nid)) {
			pr_err("entry %u: [mem %#018llx-%#018llx] is not memory of node %d\n",
			       req->index, (u64)base, (u64)(base + size - 1), nid);
			return;
		}
		if (!req->handover && !extmem_kho_free(req, base, size))
			return;
		if (memblock_is_region_reserved(base, size)) {
			pr_err("entry %u: [mem %#018llx-%#018llx] overlaps memory in use (kernel, initrd or firmware)\n",
			       req->index, (u64)base, (u64)(base + size - 1));
			return;
		}
	} else {
		/* 1 GiB alignment keeps 1 GiB allocations possible. */
		align = max_t(phys_addr_t, EXTMEM_GRANULE,
			      min_t(phys_addr_t, SZ_1G, rounddown_pow_of_two(size)));
		base = memblock_alloc_range_nid(size, align, 0,
						MEMBLOCK_ALLOC_ACCESSIBLE, nid,
						true);
		if (!base && align > EXTMEM_GRANULE)
			base = memblock_alloc_range_nid(size, EXTMEM_GRANULE, 0,
							MEMBLOCK_ALLOC_ACCESSIBLE,
							nid, true);
		if (!base) {
			pr_err("entry %u: no free %llu MiB range on node %d\n",
			       req->index, (u64)size >> 20, nid);
			return;
		}
		/* The range is removed below; it must not stay reserved. */
		memblock_phys_free(base, size);
		/* On a KHO boot memblock allocates from the scratch areas. */
		if (!extmem_kho_free(req, base, size))
			return;
	}

carve:
	if (memblock_remove(base, size)) {
		pr_err("entry %u: memblock_remove of [mem %#018llx-%#018llx] failed\n",
		       req->index, (u64)base, (u64)(base + size - 1));
		return;
	}

	if (extmem_ho_rejected)
		mismatch = "the previous kernel's extmem state was rejected";
	extmem_ho_index[extmem_nr] =
		req->handover && !extmem_ho_rejected ? (int)req->index : -1;
	extmem_ho_mismatch[extmem_nr] = mismatch;
	area = &extmem_areas[extmem_nr];
	area->base = base;
	area->size = size;
	area->nid = nid;
	extmem_reserve_meta(extmem_nr, size, nid);
	pr_info("area %u: node %d, %llu MiB at [mem %#018llx-%#018llx]%s\n",
		extmem_nr, nid, (u64)size >> 20, (u64)base,
		(u64)(base + size - 1), req->fixed ? " (fixed)" : "");
	extmem_nr++;
}

/*
 * On a kexec handover boot, the areas are the previous kernel's, at the
 * same physical addresses, whatever extmem= says now: allocations in them
 * may have been preserved. Returns the number of areas, or a negative
 * errno if there is no usable state (then extmem= applies).
 */
static int __init extmem_handover_layout(struct extmem_request *reqs,
					 unsigned int max)
{
	phys_addr_t phys;
	size_t len;
	int n;

	/* The layout extmem/handover.rs reads and writes. */
	BUILD_BUG_ON(sizeof(struct extmem_kho_header) != 80);
	BUILD_BUG_ON(sizeof(struct extmem_kho_header_v1) != 64);
	BUILD_BUG_ON(sizeof(struct extmem_kho_area) != 48);
	BUILD_BUG_ON(sizeof(struct extmem_kho_alloc) != 64);
	BUILD_BUG_ON(sizeof(struct extmem_kho_region) != 96);
	BUILD_BUG_ON(sizeof(struct extmem_kho_area_record) != 32);
	BUILD_BUG_ON(sizeof(struct extmem_kho_area_entry) != 24);
	BUILD_BUG_ON(EXTMEM_KHO_MAX_AREAS != EXTMEM_MAX_AREAS);

	if (!is_kho_boot() ||
	    kho_retrieve_subtree(EXTMEM_KHO_NODE_NAME, &phys, &len))
		return -ENOENT;
	n = extmem_handover_areas(phys_to_virt(phys), len, MAX_NUMNODES,
				  EXTMEM_GRANULE, reqs, max);
	if (n < 0)
		return n;
	extmem_ho_phys = phys;
	extmem_ho_len = len;
	if (extmem_param_len)
		pr_info("restoring the %d area(s) handed over by the previous kernel; extmem=%s is not applied\n",
			n, extmem_param);
	return n;
}

/*
 * The previous kernel's state exists but was rejected as a whole: its areas
 * may hold preserved guest memory that cannot be located. Fail closed: carve
 * the areas its separate, immutable area record (EXTMEM_KHO_AREAS_NODE)
 * lists, at their addresses, and quarantine every one of them. Returns the
 * number of areas, or a negative errno if there is no usable record (then
 * extmem= applies, and that memory may reach the page allocator).
 */
static int __init extmem_rejected_layout(struct extmem_request *reqs,
					 unsigned int max)
{
	phys_addr_t phys;
	size_t len;
	int n;

	if (kho_retrieve_subtree(EXTMEM_KHO_AREAS_NODE, &phys, &len)) {
		pr_crit("the previous kernel left no area record; memory of its areas, which may hold preserved guest memory, may be lost to the page allocator\n");
		return -ENOENT;
	}
	n = extmem_handover_area_record(phys_to_virt(phys), len, MAX_NUMNODES,
					EXTMEM_GRANULE, reqs, max);
	if (n < 0) {
		pr_crit("memory of the previous kernel's areas, which may hold preserved guest memory, may be lost to the page allocator\n");
		return n;
	}
	extmem_ho_rejected = true;
	pr_err("quarantining the %d area(s) of the previous kernel's area record%s%s\n",
	       n, extmem_param_len ? "; extmem= is not applied: " : "",
	       extmem_param_len ? extmem_param : "");
	return n;
}

void __init extmem_reserve(void)
{
	struct extmem_request reqs[EXTMEM_MAX_AREAS];
	unsigned int n, i;
	int fixed, ret;

	ret = extmem_handover_layout(reqs, ARRAY_SIZE(reqs));
	if (ret == -EINVAL)
		ret = extmem_rejected_layout(reqs, ARRAY_SIZE(reqs));
	if (ret >= 0) {
		for (i = 0; i < ret; i++)
			extmem_carve(&reqs[i]);
		return;
	}
	if (!extmem_param_len)
		return;

	n = extmem_parse_param(extmem_param, extmem_param_len, MAX_NUMNODES,
			       EXTMEM_GRANULE, reqs, ARRAY_SIZE(reqs));

	for (fixed = 1; fixed >= 0; fixed--)
		for (i = 0; i < n; i++)
			if (reqs[i].fixed == fixed)
				extmem_carve(&reqs[i]);
}

unsigned int extmem_nr_areas(void)
{
	return extmem_nr;
}

const struct extmem_area *extmem_get_area(unsigned int idx)
{
	return idx < extmem_nr ? &extmem_areas[idx] : NULL;
}

const void *extmem_handover_state(size_t *len)
{
	if (!extmem_ho_phys)
		return NULL;
	*len = extmem_ho_len;
	return phys_to_virt(extmem_ho_phys);
}

u64 *extmem_area_meta(unsigned int idx, size_t *words)
{
	if (idx >= extmem_nr)
		return NULL;
	*words = extmem_meta_len[idx];
	return xchg(&extmem_meta[idx], NULL);
}

int extmem_area_handover_index(unsigned int idx)
{
	return idx < extmem_nr ? extmem_ho_index[idx] : -1;
}

const char *extmem_area_handover_mismatch(unsigned int idx)
{
	return idx < extmem_nr ? extmem_ho_mismatch[idx] : NULL;
}

/*
 * The previous kernel's area record is only read in early boot: give its
 * page back once KHO can restore it.
 */
static int __init extmem_free_area_record(void)
{
	phys_addr_t phys;
	size_t len;

	if (is_kho_boot() &&
	    !kho_retrieve_subtree(EXTMEM_KHO_AREAS_NODE, &phys, &len))
		kho_restore_free(phys_to_virt(phys));
	return 0;
}
late_initcall(extmem_free_area_record);

static int __init extmem_release_ram(struct resource *res, void *arg)
{
	release_mem_region_adjustable(res->start, resource_size(res));
	return 0;
}

/*
 * e820 made every RAM range a busy "System RAM" resource before extmem
 * ran. Cut the areas out of those and put "extmem" resources in their
 * place, flagged as virtio-mem flags its device range: System RAM that is
 * not busy (a later hot-plug of part of an area nests under it, and
 * walk_system_ram_range(), page_is_ram(), PAT, kexec_file and /proc/kcore,
 * which look for busy System RAM, do not see it) and IORESOURCE_EXCLUSIVE,
 * so that /dev/mem refuses every byte of it even with iomem=relaxed
 * (devmem_is_allowed() and resource_is_exclusive()): an area holds other
 * tenants' memory.
 */
static int __init extmem_init_resources(void)
{
	unsigned int i;

	for (i = 0; i < extmem_nr; i++) {
		const struct extmem_area *area = &extmem_areas[i];
		struct resource *res = &extmem_res[i];

		/* One piece per System RAM resource the area intersects. */
		walk_system_ram_res(area->base, area->base + area->size - 1,
				    NULL, extmem_release_ram);
		res->name = "extmem";
		res->start = area->base;
		res->end = area->base + area->size - 1;
		res->flags = IORESOURCE_SYSTEM_RAM | IORESOURCE_EXCLUSIVE;
		res->desc = IORES_DESC_NONE;
		if (insert_resource(&iomem_resource, res))
			pr_warn("area %u: cannot insert [mem %#018llx-%#018llx] into iomem\n",
				i, (u64)res->start, (u64)res->end);
	}
	return 0;
}
postcore_initcall(extmem_init_resources);
