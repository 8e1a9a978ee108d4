// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for extmem's Rust code: what bindgen cannot reach because it
 * is a macro or a static inline function, and the DMA hold's file (whose
 * release callback is C). Declared in ../extmem/internal.h.
 */

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/cpufeature.h>

#include "../extmem/internal.h"

/*
 * Zeroes in 2 MiB chunks, rescheduling between them; gives up with -EINTR
 * when the caller has a fatal signal pending, so that a task killed while
 * it waits for a large allocation dies promptly (the caller frees the
 * range). Returns 0 when everything was zeroed.
 */
int extmem_clear(void *addr, size_t len)
{
	while (len) {
		size_t chunk = min_t(size_t, len, SZ_2M);

		if (fatal_signal_pending(current))
			return -EINTR;
		memset(addr, 0, chunk);
		addr += chunk;
		len -= chunk;
		cond_resched();
	}
	return 0;
}

/*
 * Maps an area write-back with the memory-encryption attribute that user
 * mappings (vm_get_page_prot() sets it) and KVM's stage-2 entries (for
 * pfns that are not MMIO) give the same frames: encrypted wherever the
 * host encrypts memory (AMD SME), so that the zeros written through this
 * mapping are the zeros read through theirs. memremap() cannot say that
 * for memory that is not busy System RAM: on an SME host its write-back
 * fallback, ioremap_cache(), maps decrypted. Unmapped with memunmap().
 */
void *extmem_map_wb(phys_addr_t phys, size_t len)
{
	return (void __force *)ioremap_encrypted(phys, len);
}

/*
 * The encryption bits (_PAGE_ENC, 0 on a host that does not encrypt
 * memory) of the kernel page-table entry that maps @addr, and of what a
 * shared read-write user mapping gets: for the KUnit test that the two
 * agree.
 */
u64 extmem_kernel_map_enc(const void *addr)
{
	unsigned int level;
	pte_t *pte = lookup_address((unsigned long)addr, &level);

	return pte ? pte_val(*pte) & _PAGE_ENC : U64_MAX;
}

u64 extmem_user_prot_enc(void)
{
	return pgprot_val(vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED)) & _PAGE_ENC;
}

/*
 * Returns true if any byte of [@start, @start + @len) is busy System RAM:
 * memory of the page allocator (including blocks hot-plugged into an
 * area), which extmem must never map as its own.
 */
static int extmem_found_ram(struct resource *res, void *arg)
{
	return 1;
}

bool extmem_range_has_ram(phys_addr_t start, size_t len)
{
	return len && walk_system_ram_res(start, start + len - 1, NULL,
					  extmem_found_ram) == 1;
}

bool extmem_has_gbpages(void)
{
	return boot_cpu_has(X86_FEATURE_GBPAGES);
}

bool extmem_vma_desc_is_cow(struct vm_area_desc *desc)
{
	return vma_desc_is_cow_mapping(desc);
}

void extmem_vma_desc_set_pfnmap(struct vm_area_desc *desc)
{
	vma_desc_set_flags(desc, VMA_PFNMAP_BIT, VMA_IO_BIT, VMA_DONTEXPAND_BIT,
			   VMA_DONTDUMP_BIT);
}

/*
 * A DMA hold (vm_operations_struct.pfnmap_hold): a file of its own that
 * keeps @target, the mapped file, and tells its owner when the holder lets
 * go, so that the owner can count what devices still reach. VFIO type1
 * asks for a hold for every page it pins and keeps one file per run of
 * calls, so a live hold of the same owner and target is handed out again
 * rather than a new file made each time: the live holds are on a list,
 * which a hold leaves in its release, before its memory can go.
 */
struct extmem_dma_hold {
	struct list_head node;
	struct file *file;
	struct file *target;
	const void *owner;
	void (*released)(const void *owner);
};

static LIST_HEAD(extmem_dma_holds);
static DEFINE_SPINLOCK(extmem_dma_holds_lock);

static int extmem_dma_hold_release(struct inode *inode, struct file *file)
{
	struct extmem_dma_hold *h = file->private_data;

	spin_lock(&extmem_dma_holds_lock);
	list_del(&h->node);
	spin_unlock(&extmem_dma_holds_lock);
	/* @target keeps the owner alive until this fput(). */
	h->released(h->owner);
	fput(h->target);
	kfree(h);
	return 0;
}

static const struct file_operations extmem_dma_hold_fops = {
	.release = extmem_dma_hold_release,
};

struct file *extmem_dma_hold(struct file *target, const void *owner,
			     void (*released)(const void *owner), bool *made)
{
	struct extmem_dma_hold *h;
	struct file *file;

	*made = false;
	spin_lock(&extmem_dma_holds_lock);
	list_for_each_entry(h, &extmem_dma_holds, node) {
		/* Not yet released, so not freed; a dying one is passed over. */
		if (h->owner == owner && h->target == target &&
		    file_ref_get(&h->file->f_ref)) {
			file = h->file;
			spin_unlock(&extmem_dma_holds_lock);
			return file;
		}
	}
	spin_unlock(&extmem_dma_holds_lock);

	h = kzalloc_obj(*h, GFP_KERNEL);
	if (!h)
		return ERR_PTR(-ENOMEM);
	h->target = get_file(target);
	h->owner = owner;
	h->released = released;
	file = anon_inode_getfile("[extmem-dma-hold]", &extmem_dma_hold_fops, h,
				  O_RDONLY);
	if (IS_ERR(file)) {
		fput(h->target);
		kfree(h);
		return file;
	}
	h->file = file;
	spin_lock(&extmem_dma_holds_lock);
	list_add(&h->node, &extmem_dma_holds);
	spin_unlock(&extmem_dma_holds_lock);
	*made = true;
	return file;
}
