// SPDX-License-Identifier: GPL-2.0
/*
 * extmem HugeTLB conversion: turn ranges of extmem into 2 MiB and 1 GiB
 * HugeTLB pages of their node, and take them back.
 *
 * A conversion *unit* is one range allocated from an area of the node:
 * 1 GiB, 1 GiB-aligned, for 1 GiB pages; one memory block (128 MiB on
 * x86_64 below 64 GiB of RAM) for 2 MiB pages; never less than a memory
 * block. Converting a unit hot-plugs exactly the memory blocks covering it
 * with __add_memory_driver_managed() ("System RAM (extmem)", nested under
 * the area's "extmem" resource, memmap not on the memory itself so that a
 * 1 GiB page keeps its alignment) and onlines them to the node's kernel
 * zone (MMOP_ONLINE_KERNEL: ZONE_NORMAL, or ZONE_DMA32 below 4 GiB; never
 * ZONE_MOVABLE, where gigantic pages are not allowed by default). The
 * pages of the range never reach the buddy allocator: while extmem
 * onlines them, its online_page callback (set_online_page_callback(), as
 * virtio-mem does for the parts of its blocks it has not plugged) turns
 * them into spare pages instead of freeing them, so nothing else can
 * allocate them, not even for a moment.
 *
 * Every 2 MiB *piece* of a unit is either inside a HugeTLB folio or
 * *spare*. Spare pages are in the state the page allocator leaves a page
 * it is about to free (free_pages_prepare()), with PageOffline() set and
 * not counted as managed: memory offlining skips them (as it does for
 * virtio-mem's fake-offline pages), the buddy allocator never sees them.
 * A folio is made from spare pages the way the page allocator hands one
 * out (post_alloc_hook(), prep_compound_page()), and joins the pool with
 * init_new_hugetlb_folio() + prep_and_add_allocated_folios(), marked
 * HPG_extmem. A 1 GiB unit plugged for one 1 GiB page skips the spare
 * state: its pages stay as onlining initialised them and
 * conv_make_folio_raw() writes each struct page once into the folio. The
 * blocks of a unit are onlined and offlined with one call for the range
 * (online_memory_block_range(), offline_memory_block_range()), as the
 * owner's (MEMORY_BLOCK_RANGE_OWNED): a raw unit is onlined without its
 * pages passing through the online_page callback or its pageblocks being
 * isolated, and a unit whose pages are all spare (PageOffline(), no
 * reference, on no list of the page allocator) is offlined with one check
 * of each page instead of memory offlining's isolation and scans.
 *
 * A folio leaves the pool through __update_and_free_hugetlb_folio() —
 * whether extmem shrinks it (dissolve_free_hugetlb_folio()), nr_hugepages
 * shrinks, memory offlining dissolves it or it was demoted from 1 GiB to
 * 2 MiB — which calls extmem_hugetlb_free_folio() for HPG_extmem folios:
 * its pages become spare again. A unit whose pieces are all spare is
 * offlined and removed (conv_remove_unit()) and its range goes
 * back to the area's allocator: at once when extmem shrinks, from a work
 * item when HugeTLB freed the folio.
 *
 * Ownership: the memory blocks of a unit are extmem's. A memory notifier
 * refuses MEM_GOING_ONLINE and MEM_GOING_OFFLINE of any block inside an
 * extmem area unless the task doing it is the one holding conv_mutex
 * (extmem itself, plugging or removing a unit), so root cannot offline or
 * re-online a block through /sys/devices/system/memory/memoryN/state. A
 * unit is removed with the device-hotplug lock held across offlining all
 * its blocks and removing them, and a block offlined is never onlined
 * again: if offlining stops part way (a signal, a page that cannot be
 * isolated) the unit is marked dying, keeps its range, is never used for
 * pages again, and is removed by a later attempt (a work item when a
 * signal stopped it). Every failure ends with one owner: the range is
 * either free in its area, or a unit on conv_units (counted in
 * nodeN/hugetlb_plugged_bytes and shown in /proc/iomem). Pages found bad
 * are quarantined in their unit (marked used, never built into a folio,
 * the unit never removed), never freed to the buddy allocator. So are
 * pages a memory failure hit: a HugeTLB page that leaves the pool with the
 * hwpoison mark (HugeTLB says so, patches/0019), spare pieces holding a
 * PageHWPoison() page and a unit about to be removed with one
 * (conv_hwpoisoned(), free until the machine's first memory failure)
 * quarantine their unit: the poisoned page is never in a folio again and
 * never returns to its area with the range.
 *
 * Waste: 1 GiB pages waste nothing (a unit is exactly the page). 2 MiB
 * pages come in units of a memory block; the pieces of a unit that no
 * 2 MiB page uses stay hot-plugged and spare (at most 63 x 2 MiB per
 * partly used unit) until a later 2 MiB conversion uses them or the unit
 * empties. Shrinking takes pages from the emptiest units first.
 *
 * Locking: conv_mutex serialises conversions and unit removal (and is
 * taken before the device-hotplug lock, the memory hotplug locks and an
 * hstate's resize_lock); its holder is conv_owner.
 * conv_lock, a leaf spinlock taken with interrupts off, protects the unit
 * list and each unit's piece bitmap, because extmem_hugetlb_free_folio()
 * may run in any context.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/extmem.h>
#include <linux/hugetlb.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/math64.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/page-flags.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/sysfs.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>
#include <asm/set_memory.h>

#include "../extmem/internal.h"
#include "../../internal.h"
#include "../../page_alloc.h"
#include "../../hugetlb_internal.h"

#define PIECE_ORDER	(PMD_SHIFT - PAGE_SHIFT)
#define PIECE_SHIFT	PMD_SHIFT
#define PIECE_PAGES	(1UL << PIECE_ORDER)

static const char conv_res_name[] = "System RAM (extmem)";

/**
 * struct conv_unit - a hot-plugged range of extmem that backs HugeTLB pages
 * @list: entry in conv_units
 * @start: physical base, aligned to @size
 * @size: bytes, a power of two and a whole number of memory blocks
 * @nid: NUMA node of the area the range came from
 * @nr_pieces: 2 MiB pieces in the unit
 * @nr_used: pieces inside HugeTLB folios
 * @dying: removal started (some blocks may be offline): never used again,
 *	removed by conv_reap()
 * @quarantined: bad or hardware-poisoned pages were found: the unit is never
 *	used for new pages nor removed; its range stays extmem's, unused
 * @raw: just plugged as one folio-to-be: its pages are as onlining left
 *	them (PageOffline(), one reference), not spare; conv_grow() makes
 *	the folio before it drops conv_mutex
 * @used: one bit per piece, set while the piece is inside a HugeTLB folio
 */
struct conv_unit {
	struct list_head list;
	u64 start;
	u64 size;
	int nid;
	unsigned long nr_pieces;
	unsigned long nr_used;
	bool dying;
	bool quarantined;
	bool raw;
	unsigned long used[];
};

static LIST_HEAD(conv_units);
static DEFINE_SPINLOCK(conv_lock);
static DEFINE_MUTEX(conv_mutex);

static void conv_reap_workfn(struct work_struct *work);
static DECLARE_WORK(conv_reap_work, conv_reap_workfn);

/* The task holding conv_mutex: the only one allowed to online/offline extmem blocks. */
static struct task_struct *conv_owner;

/*
 * The range extmem is onlining, [conv_plug_start, conv_plug_end), and
 * whether a page in it was bad. Written under conv_mutex; read by
 * conv_online_page(), which runs in the same task, below
 * __add_memory_driver_managed().
 */
static u64 conv_plug_start, conv_plug_end;
static bool conv_plug_bad, conv_plug_raw;

/*
 * Whether a 1 GiB unit plugged for one 1 GiB page skips the spare state
 * (debugfs extmem_hugetlb/raw_gib, to compare both ways in one boot).
 */
static bool conv_raw_gib = true;

/*
 * Whether a unit's blocks are onlined and offlined with one call for the
 * range (online_memory_block_range(), offline_memory_block_range()) rather
 * than block by block (debugfs extmem_hugetlb/range_blocks).
 */
static bool conv_range_blocks = true;

/*
 * Whether a unit's range is onlined and offlined as the owner's
 * (MEMORY_BLOCK_RANGE_OWNED: online_owned_pages(), offline_owned_pages())
 * when its blocks go at once: a raw unit's pages are onlined without the
 * online_page callback or pageblock isolation, and every unit's spare
 * pages are offlined with one check of each instead of the isolation,
 * drains, scans and tests of memory offlining (debugfs
 * extmem_hugetlb/owned_range).
 */
static bool conv_owned_range = true;

/*
 * Test only (debugfs extmem_hugetlb/break_owned, with
 * CONFIG_EXTMEM_TEST_KNOBS): the next unit removed
 * gets one reference on its second page while it is offlined, a page that
 * is not spare; offline_owned_pages() must refuse it, and the unit stays
 * dying until a later removal without the knob. Cleared when used.
 */
static bool conv_break_owned;

/*
 * Phase profile of conversions (debugfs: extmem_hugetlb/profile): ns
 * spent in each phase, summed over every conversion since the file was
 * last written to. Written by the task holding conv_mutex (the online_page
 * callback and the memory notifier run in that task); read without a lock
 * (a torn sum is harmless in a debugging aid).
 */
enum conv_phase {
	PH_GROW,		/* extmem_hugetlb_set() growing, whole */
	PH_ALLOC,		/* ranges taken from the areas */
	PH_ADD,			/* hot-add: sections, memmap allocation, block devices */
	PH_MEMMAP,		/* onlining up to MEM_GOING_ONLINE: memmap init, zone resize */
	PH_ONLINE_CB,		/* the online_page callback (pages made spare) */
	PH_ONLINE_REST,		/* the rest of onlining (zonelists, watermarks, uevents) */
	PH_FOLIO,		/* spare pages to folios */
	PH_POOL,		/* prep_and_add_allocated_folios() (HVO when enabled) */
	PH_SHRINK,		/* extmem_hugetlb_set() shrinking, whole */
	PH_DISSOLVE,		/* dissolve_free_hugetlb_folio() (vmemmap restore, spare) */
	PH_SPARE,		/* extmem_hugetlb_free_folio(): folio pages made spare */
	PH_OFF_ISOLATE,		/* offlining up to MEM_GOING_OFFLINE: isolation, drains */
	PH_OFF_SCAN,		/* MEM_GOING_OFFLINE to MEM_OFFLINE: scan, zone shrink */
	PH_OFF_REST,		/* the rest of offlining (uevents) */
	PH_REMOVE,		/* hot-remove: block devices, memmap, direct map */
	PH_FREE,		/* ranges given back to the areas */
	NR_CONV_PHASES
};

static const char * const conv_phase_names[NR_CONV_PHASES] = {
	"grow", "alloc", "add", "memmap", "online_cb", "online_rest", "folio",
	"pool", "shrink", "dissolve", "spare", "offline_isolate", "offline_scan",
	"offline_rest", "remove", "free",
};

static u64 conv_prof[NR_CONV_PHASES];
static u64 conv_prof_count[2];	/* grows, shrinks */
/* Start of the block being onlined or offlined, and its notifier times. */
static u64 conv_blk_t0, conv_blk_t1, conv_blk_t2;

static inline u64 conv_now(void)
{
	return ktime_get_ns();
}

static inline void conv_prof_add(enum conv_phase ph, u64 t0)
{
	WRITE_ONCE(conv_prof[ph], conv_prof[ph] + (conv_now() - t0));
}

static void conv_mutex_lock(void)
{
	mutex_lock(&conv_mutex);
	WRITE_ONCE(conv_owner, current);
}

static void conv_mutex_unlock(void)
{
	WRITE_ONCE(conv_owner, NULL);
	mutex_unlock(&conv_mutex);
}

/* True if [@start, @start + @size) overlaps an extmem area. */
static bool conv_in_areas(u64 start, u64 size)
{
	unsigned int i, n = extmem_nr_areas();

	for (i = 0; i < n; i++) {
		const struct extmem_area *a = extmem_get_area(i);

		if (start < (u64)a->base + a->size && (u64)a->base < start + size)
			return true;
	}
	return false;
}

/* Bytes of extmem carved out on @nid. */
static u64 extmem_node_bytes(int nid)
{
	unsigned int i, n = extmem_nr_areas();
	u64 bytes = 0;

	for (i = 0; i < n; i++)
		if (extmem_get_area(i)->nid == nid)
			bytes += extmem_get_area(i)->size;
	return bytes;
}

static struct page *piece_page(const struct conv_unit *u, unsigned long idx)
{
	return pfn_to_page(PHYS_PFN(u->start + ((u64)idx << PIECE_SHIFT)));
}

/* The unit holding @pfn. Called with conv_lock held. */
static struct conv_unit *conv_find(unsigned long pfn)
{
	u64 phys = PFN_PHYS(pfn);
	struct conv_unit *u;

	list_for_each_entry(u, &conv_units, list)
		if (phys >= u->start && phys - u->start < u->size)
			return u;
	return NULL;
}

/* False until the machine's first memory failure (num_poisoned_pages). */
static bool conv_any_hwpoison(void)
{
	return IS_ENABLED(CONFIG_MEMORY_FAILURE) &&
	       atomic_long_read(&num_poisoned_pages);
}

/*
 * True if any of the @nr pages at @page is hardware-poisoned: memory_failure()
 * set PageHWPoison() on it, in a HugeTLB folio (HugeTLB moves the mark from
 * the folio to the raw page when the folio leaves the pool) or spare. Such a
 * page must never be built into a folio again nor go back to its area with
 * the unit. Costs one read until the machine's first memory failure
 * (conv_any_hwpoison()), which is when a page can be poisoned.
 */
static bool conv_hwpoisoned(struct page *page, unsigned long nr)
{
	unsigned long i;

	if (!conv_any_hwpoison())
		return false;
	for (i = 0; i < nr; i++)
		if (PageHWPoison(page + i))
			return true;
	return false;
}

/*
 * Turns a frozen compound page of @order (a HugeTLB folio on its way out)
 * into spare pages.
 */
static bool conv_make_spare(struct page *page, unsigned int order)
{
	unsigned long i, nr = 1UL << order;

	if (!free_pages_prepare(page, order))
		return false;
	for (i = 0; i < nr; i++)
		__SetPageOffline(page + i);
	adjust_managed_page_count(page, -(long)nr);
	return true;
}

/* Builds a HugeTLB folio of @order out of spare pages. */
static struct folio *conv_make_folio(struct page *page, unsigned int order)
{
	unsigned long i, nr = 1UL << order;
	struct folio *folio;

	for (i = 0; i < nr; i++)
		__ClearPageOffline(page + i);
	adjust_managed_page_count(page, nr);
	post_alloc_hook(page, order, GFP_KERNEL | __GFP_COMP, ALLOC_DEFAULT);
	prep_compound_page(page, order);
	folio = page_folio(page);
	init_new_hugetlb_folio(folio);
	folio_set_hugetlb_extmem(folio);
	return folio;
}

/*
 * Builds a HugeTLB folio of @order out of pages that onlining left as
 * memmap_init_range() made them (PageOffline(), one reference, nothing
 * else set) and that were never spare: each struct page is written once,
 * what generic_online_page(), free_pages_prepare() and
 * prep_compound_page() together would leave, without the checks for
 * state a page can only have after it was used.
 */
static struct folio *conv_make_folio_raw(struct page *page, unsigned int order)
{
	unsigned long i, nr = 1UL << order;
	struct folio *folio;

	__ClearPageOffline(page);
	set_page_count(page, 0);
	adjust_managed_page_count(page, nr);
	post_alloc_hook(page, order, GFP_KERNEL | __GFP_COMP, ALLOC_DEFAULT);
	__SetPageHead(page);
	for (i = 1; i < nr; i++) {
		struct page *tail = page + i;

		/* Clears PageOffline(): the page type overlays _mapcount. */
		atomic_set(&tail->_mapcount, -1);
		set_page_count(tail, 0);
		prep_compound_tail(tail, page, order);
	}
	prep_compound_head(page, order);
	folio = page_folio(page);
	init_new_hugetlb_folio(folio);
	folio_set_hugetlb_extmem(folio);
	return folio;
}

/* Drops the reference onlining left on every page of a raw unit's online blocks. */
static int conv_raw_unref_block(struct memory_block *mem, void *arg)
{
	unsigned long pfn = section_nr_to_pfn(mem->start_section_nr);
	unsigned long end = pfn + memory_block_size_bytes() / PAGE_SIZE;

	if (mem->state != MEM_ONLINE)
		return 0;
	for (; pfn < end; pfn++)
		set_page_count(pfn_to_page(pfn), 0);
	return 0;
}

void extmem_hugetlb_free_folio(struct folio *folio, bool hwpoison)
{
	unsigned long pfn = folio_pfn(folio), flags, idx, n;
	unsigned int order = folio_order(folio);
	struct conv_unit *u;
	bool empty = false;

	bool ours = READ_ONCE(conv_owner) == current;
	u64 t0 = conv_now();
	bool ok;

	if (WARN_ON_ONCE(order < PIECE_ORDER))
		return;
	if (hwpoison) {
		/*
		 * As for bad pages: its pieces stay used, the unit is never
		 * removed or used again, and the pages are not prepared (page
		 * checks would report the marked one as bad).
		 */
		spin_lock_irqsave(&conv_lock, flags);
		u = conv_find(pfn);
		if (u)
			u->quarantined = true;
		spin_unlock_irqrestore(&conv_lock, flags);
		pr_err("memory failure in a HugeTLB page at pfn %#lx (order %u): quarantined in extmem\n",
		       pfn, order);
		return;
	}
	ok = conv_make_spare(&folio->page, order);
	if (ours)
		conv_prof_add(PH_SPARE, t0);
	if (!ok) {
		/* Its pieces stay marked used: the unit keeps them, and is never removed. */
		pr_err("bad pages at pfn %#lx (order %u): quarantined in extmem\n",
		       pfn, order);
		return;
	}
	spin_lock_irqsave(&conv_lock, flags);
	u = conv_find(pfn);
	if (!WARN_ON_ONCE(!u)) {
		idx = (PFN_PHYS(pfn) - u->start) >> PIECE_SHIFT;
		n = 1UL << (order - PIECE_ORDER);
		bitmap_clear(u->used, idx, n);
		u->nr_used -= n;
		empty = !u->nr_used;
	}
	spin_unlock_irqrestore(&conv_lock, flags);
	if (empty)
		schedule_work(&conv_reap_work);
}

/* True if the piece @idx of @u is the head of an extmem HugeTLB folio of @order. */
static bool conv_is_folio(const struct conv_unit *u, unsigned long idx,
			  unsigned int order)
{
	struct page *page = piece_page(u, idx);
	struct folio *folio = page_folio(page);

	return &folio->page == page && folio_test_hugetlb(folio) &&
	       folio_test_hugetlb_extmem(folio) && folio_order(folio) == order;
}

/* Extmem-backed HugeTLB pages of @order on @nid, free or in use. */
static unsigned long conv_count(int nid, unsigned int order)
{
	unsigned long step = 1UL << (order - PIECE_ORDER), idx, count = 0;
	struct conv_unit *u;

	spin_lock_irq(&conv_lock);
	list_for_each_entry(u, &conv_units, list) {
		if (u->nid != nid)
			continue;
		for (idx = 0; idx + step <= u->nr_pieces; idx += step)
			if (test_bit(idx, u->used) && conv_is_folio(u, idx, order))
				count++;
	}
	spin_unlock_irq(&conv_lock);
	return count;
}

/*
 * Marks used for good the spare pieces of @nid's units that hold a page a
 * memory failure hit, so that conv_spare_slots() does not count them and
 * conv_grow() never builds a folio of them. Nothing to do (one read) until
 * the machine's first memory failure. Called with conv_mutex held, which
 * keeps pieces from becoming used meanwhile.
 */
static void conv_quarantine_hwpoisoned(int nid)
{
	struct conv_unit *u;
	unsigned long idx;

	if (!conv_any_hwpoison())
		return;
	/* Units leave the list only under conv_mutex; the bits change under conv_lock. */
	list_for_each_entry(u, &conv_units, list) {
		if (u->nid != nid || u->dying || u->raw || u->quarantined)
			continue;
		for (idx = 0; idx < u->nr_pieces; idx++) {
			if (test_bit(idx, u->used) ||
			    !conv_hwpoisoned(piece_page(u, idx), PIECE_PAGES))
				continue;
			spin_lock_irq(&conv_lock);
			set_bit(idx, u->used);
			u->nr_used++;
			u->quarantined = true;
			spin_unlock_irq(&conv_lock);
			pr_err("node %d: memory failure in spare pages at %#llx: quarantined in extmem\n",
			       nid, u->start + ((u64)idx << PIECE_SHIFT));
		}
		cond_resched();
	}
}

/* Spare places for pages of @order on @nid. Called with conv_mutex held. */
static unsigned long conv_spare_slots(int nid, unsigned int order)
{
	unsigned long step = 1UL << (order - PIECE_ORDER), idx, n = 0;
	struct conv_unit *u;

	spin_lock_irq(&conv_lock);
	list_for_each_entry(u, &conv_units, list) {
		if (u->nid != nid || u->dying || u->quarantined)
			continue;
		for (idx = 0; idx + step <= u->nr_pieces; idx += step)
			if (find_next_bit(u->used, idx + step, idx) >= idx + step)
				n++;
	}
	spin_unlock_irq(&conv_lock);
	return n;
}

/* Profile of one offlining that started at conv_blk_t0. */
static void conv_prof_offline(void)
{
	u64 t3 = conv_now();

	if (conv_blk_t1 && conv_blk_t2) {
		conv_prof[PH_OFF_ISOLATE] += conv_blk_t1 - conv_blk_t0;
		conv_prof[PH_OFF_SCAN] += conv_blk_t2 - conv_blk_t1;
		conv_prof[PH_OFF_REST] += t3 - conv_blk_t2;
	}
}

static int conv_offline_block(struct memory_block *mem, void *arg)
{
	int rc;

	conv_blk_t1 = conv_blk_t2 = 0;
	conv_blk_t0 = conv_now();
	rc = device_offline(&mem->dev);
	conv_prof_offline();
	/* 1: it was offline already. */
	return rc < 0 ? rc : 0;
}

/*
 * Offlines the blocks of [@start, @start + @size): all at once if they
 * all are online, else (a unit a signal stopped part way) each block that
 * is not offline yet.
 */
static int conv_offline_range(u64 start, u64 size)
{
	int rc;

	if (READ_ONCE(conv_range_blocks) && READ_ONCE(conv_owned_range)) {
		conv_blk_t1 = conv_blk_t2 = 0;
		conv_blk_t0 = conv_now();
		rc = offline_memory_block_range(start, size, MEMORY_BLOCK_RANGE_OWNED);
		conv_prof_offline();
		if (rc != -EINVAL && rc != -EBUSY)
			return rc;
		/* Every page is spare: a page that is not is a bug; memory offlining judges it. */
		if (rc == -EBUSY)
			pr_warn_once("[mem %#018llx-%#018llx]: a page is not spare; offlining it the usual way\n",
				     start, start + size - 1);
	}
	if (READ_ONCE(conv_range_blocks)) {
		conv_blk_t1 = conv_blk_t2 = 0;
		conv_blk_t0 = conv_now();
		rc = offline_memory_block_range(start, size, 0);
		conv_prof_offline();
		if (rc != -EINVAL)
			return rc;
	}
	return walk_memory_blocks(start, size, NULL, conv_offline_block);
}

/*
 * Offlines and removes the memory blocks of @u and frees its range to the
 * area. @u is off the list and all its pages are spare (or, for a raw
 * unit, as onlining left them: their references are dropped here). The
 * device-hotplug lock is held from the first block offlined to the
 * removal, and a block offlined is never onlined again: on failure @u is
 * marked dying (some of its blocks may be offline) and the error
 * returned; @u keeps its range.
 */
static int conv_remove_unit(struct conv_unit *u)
{
	u64 t0;
	int rc;

	/* A page a memory failure hit must not go back to the area with the range. */
	if (conv_hwpoisoned(pfn_to_page(PHYS_PFN(u->start)), u->size >> PAGE_SHIFT)) {
		pr_err("node %d: memory failure in [mem %#018llx-%#018llx]: quarantined, it stays plugged and unused\n",
		       u->nid, u->start, u->start + u->size - 1);
		u->quarantined = true;
		return -EHWPOISON;
	}
	lock_device_hotplug();
	/* Offlining takes PageOffline() pages with no reference only. */
	if (u->raw) {
		walk_memory_blocks(u->start, u->size, NULL, conv_raw_unref_block);
		u->raw = false;
	}
	if (READ_ONCE(conv_break_owned)) {
		struct page *page = pfn_to_page(PHYS_PFN(u->start) + 1);

		WRITE_ONCE(conv_break_owned, false);
		/* Not get_page(): it may not be taken on a page without one. */
		page_ref_inc(page);
		rc = conv_offline_range(u->start, u->size);
		page_ref_dec(page);
	} else {
		rc = conv_offline_range(u->start, u->size);
	}
	if (!rc) {
		t0 = conv_now();
		__remove_memory(u->start, u->size);
		conv_prof_add(PH_REMOVE, t0);
	}
	unlock_device_hotplug();
	if (rc) {
		u->dying = true;
		return rc;
	}
	t0 = conv_now();
	extmem_conv_free(u->start, u->size);
	conv_prof_add(PH_FREE, t0);
	kfree(u);
	return 0;
}

/*
 * Puts @u (off the list, dying) back on the list for a later conv_reap(),
 * and says so unless @rc is 0 (the caller logs it).
 */
static void conv_keep_dying(struct conv_unit *u, int rc)
{
	spin_lock_irq(&conv_lock);
	list_add(&u->list, &conv_units);
	spin_unlock_irq(&conv_lock);
	if (rc == -EINTR) {
		pr_warn("node %d: removing [mem %#018llx-%#018llx] interrupted by a signal; a work item finishes it\n",
			u->nid, u->start, u->start + u->size - 1);
		schedule_work(&conv_reap_work);
	} else if (rc && rc != -EHWPOISON) {
		pr_warn("node %d: cannot remove [mem %#018llx-%#018llx] yet: %d; it stays extmem's, retried at the next conversion\n",
			u->nid, u->start, u->start + u->size - 1, rc);
	}
}

/* Removes every unit whose pieces are all spare. Called with conv_mutex held. */
static void conv_reap(void)
{
	struct conv_unit *u, *next;
	unsigned int nr_intr = 0;
	LIST_HEAD(empty);
	int rc;

	spin_lock_irq(&conv_lock);
	list_for_each_entry_safe(u, next, &conv_units, list)
		if (!u->nr_used && !u->quarantined)
			list_move(&u->list, &empty);
	spin_unlock_irq(&conv_lock);

	list_for_each_entry_safe(u, next, &empty, list) {
		list_del(&u->list);
		/* Offlining would stop at once: leave it all to the work item. */
		if (signal_pending(current)) {
			u->dying = true;
			spin_lock_irq(&conv_lock);
			list_add(&u->list, &conv_units);
			spin_unlock_irq(&conv_lock);
			nr_intr++;
			continue;
		}
		rc = conv_remove_unit(u);
		if (rc == -EINTR)
			nr_intr++;
		if (rc)
			conv_keep_dying(u, rc == -EINTR ? 0 : rc);
	}
	if (nr_intr) {
		pr_warn("removing %u unit(s) interrupted by a signal; a work item finishes it\n",
			nr_intr);
		schedule_work(&conv_reap_work);
	}
}
static void conv_reap_workfn(struct work_struct *work)
{
	conv_mutex_lock();
	conv_reap();
	conv_mutex_unlock();
}

/*
 * The online_page callback while extmem onlines a unit: pages of the unit
 * become spare (prepared as for freeing, PageOffline(), not managed)
 * instead of going to the buddy allocator; other memory onlined meanwhile
 * goes there as usual.
 */
static void conv_online_page(struct page *page, unsigned int order)
{
	unsigned long i, nr = 1UL << order;
	u64 phys = page_to_phys(page), t0;

	if (phys < READ_ONCE(conv_plug_start) || phys >= READ_ONCE(conv_plug_end)) {
		generic_online_page(page, order);
		return;
	}
	/* A raw unit: the pages stay as they are until conv_make_folio_raw(). */
	if (conv_plug_raw)
		return;
	t0 = conv_now();
	/* Hot-plugged pages start PageOffline() with a reference: as __free_pages_core(). */
	for (i = 0; i < nr; i++) {
		__ClearPageOffline(page + i);
		set_page_count(page + i, 0);
	}
	if (!free_pages_prepare(page, order))
		conv_plug_bad = true;
	for (i = 0; i < nr; i++)
		if (!PageOffline(page + i))
			__SetPageOffline(page + i);
	conv_prof_add(PH_ONLINE_CB, t0);
}

/* Profile of one onlining that started at conv_blk_t0, @cb0 the callback's time then. */
static void conv_prof_online(u64 cb0)
{
	u64 t2 = conv_now();

	if (conv_blk_t1) {
		conv_prof[PH_MEMMAP] += conv_blk_t1 - conv_blk_t0;
		conv_prof[PH_ONLINE_REST] += t2 - conv_blk_t1 -
					     (conv_prof[PH_ONLINE_CB] - cb0);
	}
}

/* Onlines one block of a unit being plugged (as add_memory_resource() would). */
static int conv_online_block(struct memory_block *mem, void *arg)
{
	u64 cb0 = conv_prof[PH_ONLINE_CB];

	conv_blk_t1 = 0;
	conv_blk_t0 = conv_now();
	mem->online_type = MMOP_ONLINE_KERNEL;
	/* Errors show as blocks left offline, which conv_plug() checks. */
	device_online(&mem->dev);
	conv_prof_online(cb0);
	return 0;
}

/*
 * Onlines the blocks of a unit being plugged: at once, else one by one. A
 * raw unit's pages stay as hot-add made them either way; onlined as the
 * owner's, they are not even passed to conv_online_page().
 */
static void conv_online_range(u64 start, u64 size)
{
	u64 cb0 = conv_prof[PH_ONLINE_CB];
	unsigned int flags = 0;
	int rc;

	if (conv_plug_raw && READ_ONCE(conv_owned_range))
		flags = MEMORY_BLOCK_RANGE_OWNED;
	if (READ_ONCE(conv_range_blocks)) {
		conv_blk_t1 = 0;
		conv_blk_t0 = conv_now();
		rc = online_memory_block_range(start, size, MMOP_ONLINE_KERNEL, flags);
		conv_prof_online(cb0);
		if (rc != -EINVAL)
			return;
	}
	walk_memory_blocks(start, size, NULL, conv_online_block);
}

static int conv_block_offline(struct memory_block *mem, void *arg)
{
	return mem->state != MEM_ONLINE;
}

/*
 * Memory notifier: refuses onlining and offlining of extmem's blocks by
 * anyone but extmem (the task holding conv_mutex).
 */
static int conv_memory_cb(struct notifier_block *nb, unsigned long action,
			  void *arg)
{
	const struct memory_notify *mn = arg;
	u64 start = PFN_PHYS(mn->start_pfn), size = PFN_PHYS(mn->nr_pages);

	if (READ_ONCE(conv_owner) == current) {
		/* The phase profile: where extmem's own (off|on)lining is. */
		if (action == MEM_GOING_ONLINE || action == MEM_GOING_OFFLINE)
			conv_blk_t1 = conv_now();
		else if (action == MEM_OFFLINE)
			conv_blk_t2 = conv_now();
		return NOTIFY_DONE;
	}
	if (action != MEM_GOING_ONLINE && action != MEM_GOING_OFFLINE)
		return NOTIFY_DONE;
	if (!conv_in_areas(start, size))
		return NOTIFY_DONE;
	pr_warn_ratelimited("refusing to %s [mem %#018llx-%#018llx]: extmem owns it (nodeN/hugetlb_* give it back)\n",
			    action == MEM_GOING_ONLINE ? "online" : "offline",
			    start, start + size - 1);
	return notifier_from_errno(-EBUSY);
}

static struct notifier_block conv_memory_nb = {
	.notifier_call = conv_memory_cb,
	/* Before the callbacks that prepare for the change (KASAN, SLUB, ...). */
	.priority = KSM_CALLBACK_PRI + 1,
};

/*
 * Hot-plugs and onlines the range [@start, @start + @size) of node @nid,
 * all of it spare. Returns the new unit, off the list. On failure the
 * range has one owner again: it is free in its area, or (if it could not
 * be removed or has bad pages) a dying or quarantined unit on the list.
 */
static struct conv_unit *conv_plug(int nid, u64 start, u64 size, bool raw)
{
	unsigned long nr_pieces = size >> PIECE_SHIFT;
	struct conv_unit *u;
	bool bad;
	u64 t0;
	int rc;

	u = kzalloc(struct_size(u, used, BITS_TO_LONGS(nr_pieces)), GFP_KERNEL);
	if (!u) {
		extmem_conv_free(start, size);
		return ERR_PTR(-ENOMEM);
	}
	u->start = start;
	u->size = size;
	u->nid = nid;
	u->nr_pieces = nr_pieces;

	/*
	 * The boot direct map still covers the area, with 1 GiB pages where
	 * it could. x86 hot-add of less than 1 GiB inside such a page
	 * replaces it with a page table mapping only the range added, and
	 * hot-remove of less than 1 GiB assumes it finds a page table, not a
	 * 1 GiB page. Split the 1 GiB page first, with CPA, which keeps the
	 * rest of it mapped (it may be System RAM next to an area that is
	 * not 1 GiB-aligned). Nothing to do if it is not mapped at all.
	 */
	if (size < PUD_SIZE)
		set_memory_4k((unsigned long)__va(start), 1);

	rc = set_online_page_callback(conv_online_page);
	if (rc) {
		pr_err("node %d: cannot hot-plug: another driver (virtio-mem?) decides how memory is onlined\n",
		       nid);
		extmem_conv_free(start, size);
		kfree(u);
		return ERR_PTR(-EBUSY);
	}
	WRITE_ONCE(conv_plug_start, start);
	WRITE_ONCE(conv_plug_end, start + size);
	conv_plug_bad = false;
	conv_plug_raw = raw;
	u->raw = raw;
	/*
	 * Added offline, then onlined block by block as
	 * __add_memory_driver_managed() would, so that the profile tells
	 * hot-add from onlining. Nobody else can online them meanwhile
	 * (conv_memory_cb()).
	 */
	t0 = conv_now();
	rc = __add_memory_driver_managed(nid, start, size, conv_res_name,
					 MHP_NONE, MMOP_OFFLINE);
	conv_prof_add(PH_ADD, t0);
	if (!rc) {
		lock_device_hotplug();
		conv_online_range(start, size);
		unlock_device_hotplug();
	}
	WRITE_ONCE(conv_plug_start, 0);
	WRITE_ONCE(conv_plug_end, 0);
	conv_plug_raw = false;
	bad = conv_plug_bad;
	restore_online_page_callback(conv_online_page);
	if (rc) {
		pr_err("node %d: hot-plugging [mem %#018llx-%#018llx] failed: %d\n",
		       nid, start, start + size - 1, rc);
		extmem_conv_free(start, size);
		kfree(u);
		return ERR_PTR(rc);
	}
	if (bad) {
		pr_err("node %d: bad pages in [mem %#018llx-%#018llx]: quarantined, it stays plugged and unused\n",
		       nid, start, start + size - 1);
		u->quarantined = true;
		bitmap_fill(u->used, nr_pieces);
		u->nr_used = nr_pieces;
		spin_lock_irq(&conv_lock);
		list_add(&u->list, &conv_units);
		spin_unlock_irq(&conv_lock);
		return ERR_PTR(-EIO);
	}
	/* __add_memory_driver_managed() does not fail if onlining a block did. */
	if (walk_memory_blocks(start, size, NULL, conv_block_offline)) {
		pr_err("node %d: onlining [mem %#018llx-%#018llx] failed; removing it\n",
		       nid, start, start + size - 1);
		rc = conv_remove_unit(u);
		if (rc)
			conv_keep_dying(u, rc);
		return ERR_PTR(-EIO);
	}
	return u;
}

/*
 * Adds @want pages of hstate @h on @nid, all or nothing. Called with
 * conv_mutex held.
 */
static int conv_grow(int nid, struct hstate *h, unsigned long want)
{
	unsigned int order = huge_page_order(h);
	unsigned long step = 1UL << (order - PIECE_ORDER), idx, got = 0;
	u64 unit = max_t(u64, huge_page_size(h), memory_block_size_bytes());
	unsigned long spare, per_unit = unit / huge_page_size(h);
	unsigned long nr_new = 0, i;
	struct conv_unit *u, *next;
	LIST_HEAD(new_units);
	LIST_HEAD(folios);
	u64 *starts = NULL, t0;
	struct folio *folio;
	int rc = 0, rc2;

	/*
	 * More pages than the node's extmem could ever hold: no room. This
	 * also keeps the rounding below from overflowing for a @want near
	 * 2^64 (a target written from userspace).
	 */
	if (want > div64_u64(extmem_node_bytes(nid), huge_page_size(h)))
		return -ENOSPC;
	conv_quarantine_hwpoisoned(nid);
	spare = conv_spare_slots(nid, order);
	if (want > spare) {
		nr_new = DIV_ROUND_UP(want - spare, per_unit);
		if (nr_new > extmem_node_bytes(nid) / unit)
			return -ENOSPC;
		starts = kvcalloc(nr_new, sizeof(*starts), GFP_KERNEL);
		if (!starts)
			return -ENOMEM;
	}

	/* Take every range before hot-plugging any: nothing is half-done. */
	t0 = conv_now();
	for (i = 0; i < nr_new; i++) {
		s64 phys = extmem_conv_alloc(nid, unit, unit);

		if (phys < 0) {
			rc = phys;
			while (i--)
				extmem_conv_free(starts[i], unit);
			kvfree(starts);
			return rc == -ENOMEM ? -ENOSPC : rc;
		}
		starts[i] = phys;
	}
	conv_prof_add(PH_ALLOC, t0);
	for (i = 0; i < nr_new; i++) {
		/* A unit that is exactly one page of the size asked: no spare state. */
		u = conv_plug(nid, starts[i], unit,
			      READ_ONCE(conv_raw_gib) && per_unit == 1 && unit == PUD_SIZE);
		if (IS_ERR(u)) {
			/* conv_plug() settled the owner of starts[i]. */
			rc = PTR_ERR(u);
			for (i++; i < nr_new; i++)
				extmem_conv_free(starts[i], unit);
			list_for_each_entry_safe(u, next, &new_units, list) {
				list_del(&u->list);
				rc2 = conv_remove_unit(u);
				if (rc2)
					conv_keep_dying(u, rc2);
			}
			kvfree(starts);
			return rc;
		}
		list_add_tail(&u->list, &new_units);
	}
	kvfree(starts);
	spin_lock_irq(&conv_lock);
	list_splice_tail(&new_units, &conv_units);
	spin_unlock_irq(&conv_lock);

	/* Claim the places: fullest units first would need sorting; first fit is enough. */
	t0 = conv_now();
	list_for_each_entry(u, &conv_units, list) {
		if (u->nid != nid || u->dying || u->quarantined)
			continue;
		for (idx = 0; got < want && idx + step <= u->nr_pieces; idx += step) {
			if (find_next_bit(u->used, idx + step, idx) < idx + step)
				continue;
			spin_lock_irq(&conv_lock);
			bitmap_set(u->used, idx, step);
			u->nr_used += step;
			spin_unlock_irq(&conv_lock);
			/* Spare pages a memory failure hit: used for good, never a folio. */
			if (!u->raw && conv_hwpoisoned(piece_page(u, idx), 1UL << order)) {
				spin_lock_irq(&conv_lock);
				u->quarantined = true;
				spin_unlock_irq(&conv_lock);
				pr_err("node %d: memory failure in spare pages at %#llx: quarantined in extmem\n",
				       nid, u->start + ((u64)idx << PIECE_SHIFT));
				break;
			}
			if (u->raw && !idx && step == u->nr_pieces) {
				folio = conv_make_folio_raw(piece_page(u, idx), order);
				u->raw = false;
			} else {
				folio = conv_make_folio(piece_page(u, idx), order);
			}
			list_add_tail(&folio->lru, &folios);
			got++;
		}
	}
	/* Fewer only if spare pages were found poisoned (conv_quarantine_hwpoisoned() raced). */
	if (got != want)
		pr_err("node %d: %lu of %lu pages made; spare pages were poisoned\n",
		       nid, got, want);
	conv_prof_add(PH_FOLIO, t0);

	/* As demotion does: pages added under resize_lock are not surplus. */
	t0 = conv_now();
	mutex_lock(&h->resize_lock);
	prep_and_add_allocated_folios(h, &folios);
	spin_lock_irq(&hugetlb_lock);
	h->max_huge_pages += got;
	spin_unlock_irq(&hugetlb_lock);
	mutex_unlock(&h->resize_lock);
	conv_prof_add(PH_POOL, t0);
	return 0;
}

struct conv_cand {
	unsigned long pfn;
	unsigned long unit_used;
};

static int conv_cand_cmp(const void *a, const void *b)
{
	const struct conv_cand *x = a, *y = b;

	if (x->unit_used != y->unit_used)
		return x->unit_used < y->unit_used ? -1 : 1;
	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/*
 * Takes free extmem pages of hstate @h on @nid out of the pool until
 * @target remain, emptiest units first, then removes the units left with
 * no pages. Pages in use (or reserved) stay. Called with conv_mutex held.
 */
static void conv_shrink(int nid, struct hstate *h, unsigned long target)
{
	unsigned int order = huge_page_order(h);
	unsigned long step = 1UL << (order - PIECE_ORDER), idx, n = 0, max, i;
	unsigned long cur = conv_count(nid, order);
	struct conv_cand *cand;
	struct conv_unit *u;
	u64 t0;

	max = cur;
	cand = kvcalloc(max, sizeof(*cand), GFP_KERNEL);
	if (cand) {
		spin_lock_irq(&conv_lock);
		list_for_each_entry(u, &conv_units, list) {
			if (u->nid != nid)
				continue;
			for (idx = 0; n < max && idx + step <= u->nr_pieces; idx += step) {
				if (!test_bit(idx, u->used) || !conv_is_folio(u, idx, order))
					continue;
				cand[n].pfn = page_to_pfn(piece_page(u, idx));
				cand[n].unit_used = u->nr_used;
				n++;
			}
		}
		spin_unlock_irq(&conv_lock);
		sort(cand, n, sizeof(*cand), conv_cand_cmp, NULL);

		for (i = 0; i < n && cur > target; i++) {
			struct folio *folio = pfn_folio(cand[i].pfn);

			/* Killed: stop taking pages; what was taken is removed below. */
			if (fatal_signal_pending(current))
				break;
			if (!folio_test_hugetlb(folio) || folio_order(folio) != order ||
			    !folio_test_hugetlb_extmem(folio))
				continue;
			/* 0: dissolved, or freed by someone else meanwhile. */
			t0 = conv_now();
			if (!dissolve_free_hugetlb_folio(folio))
				cur--;
			conv_prof_add(PH_DISSOLVE, t0);
			cond_resched();
		}
		kvfree(cand);
	}
	conv_reap();
}

/* The hstate for @page_size bytes (2 MiB or 1 GiB), or NULL. */
static struct hstate *conv_hstate(u64 page_size)
{
	if (page_size != PMD_SIZE && page_size != PUD_SIZE)
		return NULL;
	return size_to_hstate(page_size);
}

int extmem_hugetlb_count(int nid, u64 page_size, u64 *count)
{
	struct hstate *h = conv_hstate(page_size);

	if (!h)
		return page_size == PUD_SIZE ? -EOPNOTSUPP : -EINVAL;
	if (nid < 0 || nid >= nr_node_ids || !extmem_node_bytes(nid))
		return -ENODEV;
	*count = conv_count(nid, huge_page_order(h));
	return 0;
}

int extmem_hugetlb_set(int nid, u64 page_size, u64 target, u64 *count)
{
	struct hstate *h = conv_hstate(page_size);
	unsigned int order;
	unsigned long cur;
	int rc = 0;
	u64 t0;

	if (!h)
		return page_size == PUD_SIZE ? -EOPNOTSUPP : -EINVAL;
	if (nid < 0 || nid >= nr_node_ids || !extmem_node_bytes(nid))
		return -ENODEV;
	order = huge_page_order(h);

	conv_mutex_lock();
	/* Finish removals a signal or a busy page stopped. */
	conv_reap();
	cur = conv_count(nid, order);
	t0 = conv_now();
	if (target > cur) {
		rc = conv_grow(nid, h, target - cur);
		if (rc == -ENOSPC)
			pr_info("node %d: no room for %llu more %lu kB pages in extmem; converted none\n",
				nid, target - cur, huge_page_size(h) >> 10);
		conv_prof_add(PH_GROW, t0);
		conv_prof_count[0]++;
	} else if (target < cur) {
		conv_shrink(nid, h, target);
		if (conv_count(nid, order) > target)
			rc = -EBUSY;
		conv_prof_add(PH_SHRINK, t0);
		conv_prof_count[1]++;
	}
	*count = conv_count(nid, order);
	conv_mutex_unlock();
	return rc;
}

/* Bytes of extmem on @nid hot-plugged for HugeTLB, spare pieces included. */
static u64 conv_plugged_bytes(int nid)
{
	struct conv_unit *u;
	u64 bytes = 0;

	spin_lock_irq(&conv_lock);
	list_for_each_entry(u, &conv_units, list)
		if (u->nid == nid)
			bytes += u->size;
	spin_unlock_irq(&conv_lock);
	return bytes;
}

/* /sys/kernel/mm/extmem/nodeN/ */

struct conv_node_kobj {
	struct kobject kobj;
	int nid;
};

static int to_nid(struct kobject *kobj)
{
	return container_of(kobj, struct conv_node_kobj, kobj)->nid;
}

static ssize_t conv_show(struct kobject *kobj, char *buf, u64 page_size)
{
	u64 count;
	int rc = extmem_hugetlb_count(to_nid(kobj), page_size, &count);

	return rc ? rc : sysfs_emit(buf, "%llu\n", count);
}

static ssize_t conv_store(struct kobject *kobj, const char *buf, size_t len,
			  u64 page_size)
{
	u64 target, count;
	int rc;

	rc = kstrtou64(buf, 10, &target);
	if (rc)
		return rc;
	rc = extmem_hugetlb_set(to_nid(kobj), page_size, target, &count);
	return rc ? rc : len;
}

static ssize_t hugetlb_1G_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return conv_show(kobj, buf, PUD_SIZE);
}

static ssize_t hugetlb_1G_store(struct kobject *kobj,
				struct kobj_attribute *attr, const char *buf,
				size_t len)
{
	return conv_store(kobj, buf, len, PUD_SIZE);
}

static ssize_t hugetlb_2M_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return conv_show(kobj, buf, PMD_SIZE);
}

static ssize_t hugetlb_2M_store(struct kobject *kobj,
				struct kobj_attribute *attr, const char *buf,
				size_t len)
{
	return conv_store(kobj, buf, len, PMD_SIZE);
}

static ssize_t hugetlb_plugged_bytes_show(struct kobject *kobj,
					  struct kobj_attribute *attr,
					  char *buf)
{
	return sysfs_emit(buf, "%llu\n", conv_plugged_bytes(to_nid(kobj)));
}

static struct kobj_attribute hugetlb_1G_attr = __ATTR_RW(hugetlb_1G);
static struct kobj_attribute hugetlb_2M_attr = __ATTR_RW(hugetlb_2M);
static struct kobj_attribute hugetlb_plugged_bytes_attr =
	__ATTR_RO(hugetlb_plugged_bytes);

static struct attribute *conv_node_attrs[] = {
	&hugetlb_1G_attr.attr,
	&hugetlb_2M_attr.attr,
	&hugetlb_plugged_bytes_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(conv_node);

static void conv_node_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct conv_node_kobj, kobj));
}

static const struct kobj_type conv_node_ktype = {
	.release = conv_node_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = conv_node_groups,
};

/* debugfs extmem_hugetlb/profile: "phase ns" lines; writing resets them. */
static int conv_profile_show(struct seq_file *m, void *v)
{
	int i;

	seq_printf(m, "grows %llu\nshrinks %llu\n", READ_ONCE(conv_prof_count[0]),
		   READ_ONCE(conv_prof_count[1]));
	for (i = 0; i < NR_CONV_PHASES; i++)
		seq_printf(m, "%s %llu\n", conv_phase_names[i], READ_ONCE(conv_prof[i]));
	return 0;
}

static int conv_profile_open(struct inode *inode, struct file *file)
{
	return single_open(file, conv_profile_show, NULL);
}

static ssize_t conv_profile_write(struct file *file, const char __user *buf,
				  size_t len, loff_t *ppos)
{
	conv_mutex_lock();
	memset(conv_prof, 0, sizeof(conv_prof));
	memset(conv_prof_count, 0, sizeof(conv_prof_count));
	conv_mutex_unlock();
	return len;
}

static const struct file_operations conv_profile_fops = {
	.owner = THIS_MODULE,
	.open = conv_profile_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
	.write = conv_profile_write,
};

/*
 * The debugfs switches raw_gib and range_blocks: read as 0 or 1, and take 0
 * or 1 (with or without a newline). Anything else is refused with -EINVAL
 * and a log line (debugfs_create_bool() would ignore it and report success).
 */
static ssize_t conv_switch_read(struct file *file, char __user *buf, size_t count,
				loff_t *ppos)
{
	char s[2] = { READ_ONCE(*(bool *)file->private_data) ? '1' : '0', '\n' };

	return simple_read_from_buffer(buf, count, ppos, s, sizeof(s));
}

static ssize_t conv_switch_write(struct file *file, const char __user *buf, size_t count,
				 loff_t *ppos)
{
	unsigned int v;

	if (kstrtouint_from_user(buf, count, 10, &v) || v > 1) {
		pr_warn_ratelimited("debugfs extmem_hugetlb/%pD: takes 0 or 1\n", file);
		return -EINVAL;
	}
	WRITE_ONCE(*(bool *)file->private_data, v);
	return count;
}

static const struct file_operations conv_switch_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = conv_switch_read,
	.write = conv_switch_write,
	.llseek = default_llseek,
};

int extmem_hugetlb_sysfs_init(struct kobject *parent)
{
	int nid, err;
	struct dentry *dir = debugfs_create_dir("extmem_hugetlb", NULL);

	debugfs_create_file("profile", 0600, dir, NULL, &conv_profile_fops);
	debugfs_create_file("raw_gib", 0600, dir, &conv_raw_gib, &conv_switch_fops);
	debugfs_create_file("range_blocks", 0600, dir, &conv_range_blocks, &conv_switch_fops);
	debugfs_create_file("owned_range", 0600, dir, &conv_owned_range, &conv_switch_fops);
	/* It damages a removal on purpose: test kernels only. */
	if (IS_ENABLED(CONFIG_EXTMEM_TEST_KNOBS))
		debugfs_create_file("break_owned", 0600, dir, &conv_break_owned,
				    &conv_switch_fops);

	err = register_memory_notifier(&conv_memory_nb);
	if (err) {
		pr_err("memory notifier failed: %d\n", err);
		return err;
	}
	for_each_node(nid) {
		struct conv_node_kobj *nk;

		if (!extmem_node_bytes(nid))
			continue;
		nk = kzalloc_obj(*nk);
		if (!nk)
			return -ENOMEM;
		nk->nid = nid;
		err = kobject_init_and_add(&nk->kobj, &conv_node_ktype, parent,
					   "node%d", nid);
		if (err) {
			pr_err("node %d: sysfs directory failed: %d\n", nid, err);
			kobject_put(&nk->kobj);
			return err;
		}
	}
	return 0;
}
