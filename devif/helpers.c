// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for extmem's Rust code: what bindgen cannot reach because it
 * is a macro or a static inline function. Declared in ../extmem/internal.h.
 */

#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/string.h>
#include <asm/cpufeature.h>

#include "../extmem/internal.h"

void extmem_clear(void *addr, size_t len)
{
	while (len) {
		size_t chunk = min_t(size_t, len, SZ_2M);

		memset(addr, 0, chunk);
		addr += chunk;
		len -= chunk;
		cond_resched();
	}
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
