// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for extmem's Rust code: what bindgen cannot reach because it
 * is a macro or a static inline function. Declared in ../extmem/internal.h.
 */

#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
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
