// SPDX-License-Identifier: GPL-2.0
/*
 * Memory failure (hwpoison) on extmem pfns, which have no struct page.
 *
 * Each area is registered once with register_pfn_address_space(), so that
 * memory_failure() on any of its pfns, allocated or free, reaches extmem.
 * The registration names one address_space per area: the i_mapping of an
 * inode of the area's own (anon_inode_create_getfile()), which every file
 * that maps the area's memory (allocation fds, regions' nodes) gets as its
 * f_mapping when it is made, the way block device files share the bdev
 * mapping. So the area's mapping holds every VMA of the area in its i_mmap
 * tree, and memory_failure_pfn() finds them there; pfn_to_vma_pgoff()
 * tells which of them map the failed pfn (vm_private_data is the
 * allocation, devif/devif.rs). pfn_failed() (patches/0010) then has the
 * pool fence the unit (extmem/pool.rs, Area::poison) and takes the pfn
 * out of every user mapping, so that the next access faults and gets
 * SIGBUS (BUS_MCEERR_AR) from the fault handler instead of the poison.
 * The poisoned units reach the next kernel in a KHO record of their own
 * (EXTMEM_KHO_POISON_NODE, extmem/handover_poison.rs).
 * Declared in internal.h; the Rust half is extmem/wrappers/mf.rs.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/anon_inodes.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/io.h>
#include <linux/fs.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/extmem.h>
#include <linux/memory-failure.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "internal.h"

struct extmem_mf_area {
	struct pfn_address_space pas;
	/* Holds the inode whose i_mapping is the area's; never released. */
	struct file *anchor;
	unsigned int idx;
};

/* Set once per area at pool init, never cleared: the pool lives forever. */
static struct extmem_mf_area *extmem_mf[EXTMEM_MAX_AREAS];

static const struct file_operations extmem_mf_anchor_fops = {};

static int extmem_mf_pfn_to_vma_pgoff(struct vm_area_struct *vma,
				      unsigned long pfn, pgoff_t *pgoff)
{
	unsigned long start, off;
	u64 phys, len;

	/* Only extmem's files use the area's mapping; all its VMAs are PFN maps. */
	if (!(vma->vm_flags & VM_PFNMAP) || !vma->vm_private_data)
		return -EINVAL;
	extmem_vma_allocation_range(vma->vm_private_data, &phys, &len);
	start = PHYS_PFN(phys);
	if (pfn < start || pfn - start >= (len >> PAGE_SHIFT))
		return -EFAULT;
	off = pfn - start;
	if (off < vma->vm_pgoff || off - vma->vm_pgoff >= vma_pages(vma))
		return -EFAULT;
	*pgoff = off;
	return 0;
}

/*
 * Zaps the pfn from every VMA of @mapping that maps it: the whole 1 GiB
 * block around it (cut to the VMA), so that a PUD or PMD leaf is removed
 * whole and never split here (splitting a PUD wants the mmap lock). The rest
 * of the block faults back in, with smaller entries around the poisoned unit.
 */
static void extmem_mf_zap(struct address_space *mapping, unsigned long pfn)
{
	struct vm_area_struct *vma;
	pgoff_t pgoff;

	i_mmap_lock_read(mapping);
	mapping_rmap_tree_foreach(vma, mapping, 0, ULONG_MAX) {
		unsigned long addr, start, end;

		if (extmem_mf_pfn_to_vma_pgoff(vma, pfn, &pgoff))
			continue;
		addr = vma->vm_start + ((pgoff - vma->vm_pgoff) << PAGE_SHIFT);
		start = max(vma->vm_start, ALIGN_DOWN(addr, PUD_SIZE));
		end = min(vma->vm_end, ALIGN_DOWN(addr, PUD_SIZE) + PUD_SIZE);
		zap_special_vma_range(vma, start, end - start);
	}
	i_mmap_unlock_read(mapping);
}

static void extmem_mf_pfn_failed(struct pfn_address_space *pas,
				 unsigned long pfn)
{
	struct extmem_mf_area *a = container_of(pas, struct extmem_mf_area, pas);

	extmem_area_pfn_failed(a->idx, pfn);
	extmem_mf_zap(pas->mapping, pfn);
}

int extmem_mf_register(unsigned int idx, u64 base, u64 size)
{
	struct extmem_mf_area *a;
	int err;

	if (idx >= EXTMEM_MAX_AREAS || !size || extmem_mf[idx])
		return -EINVAL;
	a = kzalloc_obj(*a, GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	a->anchor = anon_inode_create_getfile("[extmem]", &extmem_mf_anchor_fops,
					      NULL, O_RDONLY, NULL);
	if (IS_ERR(a->anchor)) {
		err = PTR_ERR(a->anchor);
		kfree(a);
		return err;
	}
	a->idx = idx;
	a->pas.node.start = PHYS_PFN(base);
	a->pas.node.last = PHYS_PFN(base + size) - 1;
	a->pas.mapping = a->anchor->f_mapping;
	a->pas.pfn_to_vma_pgoff = extmem_mf_pfn_to_vma_pgoff;
	a->pas.pfn_failed = extmem_mf_pfn_failed;
	err = register_pfn_address_space(&a->pas);
	if (err) {
		fput(a->anchor);
		kfree(a);
		return err;
	}
	/* Publishes @a whole to extmem_mf_attach(), which pairs with it. */
	smp_store_release(&extmem_mf[idx], a);
	return 0;
}

void extmem_mf_attach(struct file *file, unsigned int idx)
{
	struct extmem_mf_area *a;

	if (idx >= EXTMEM_MAX_AREAS)
		return;
	/* Pairs with extmem_mf_register(): @a is seen whole or not at all. */
	a = smp_load_acquire(&extmem_mf[idx]);
	if (a)
		file->f_mapping = a->pas.mapping;
}

const void *extmem_mf_incoming(size_t *len)
{
	phys_addr_t phys;

	if (!is_kho_boot() ||
	    kho_retrieve_subtree(EXTMEM_KHO_POISON_NODE, &phys, len))
		return NULL;
	return phys_to_virt(phys);
}
