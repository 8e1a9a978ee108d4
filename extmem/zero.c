// SPDX-License-Identifier: GPL-2.0
/*
 * The background zeroers: one kthread per area, created on the area's node
 * (kthread_create_on_node() makes that node its preferred affinity), that
 * zeroes the area's dirty free memory a chunk at a time with
 * extmem_zero_step() (extmem/pool.rs, which drops the area's lock while it
 * zeroes) and sleeps when there is nothing to do; freeing memory wakes it.
 * It runs at nice 19 and reschedules between chunks.
 *
 * Before anything else, each zeroer maps its area write-back
 * (extmem_area_map(), at normal priority): that mapping is kept off the
 * pool's readiness, and whoever needs it waits for it. An area whose zeroer
 * cannot be created is mapped by extmem_zeroers_start() itself.
 *
 * extmem.prezero=0 on the command line (or 0 written to
 * /sys/module/extmem/parameters/prezero) stops background zeroing: each
 * allocation then zeroes what it takes that is dirty, as it always does for
 * memory the zeroer has not reached yet. Writing 1 starts it again.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/prio.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "internal.h"

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "extmem."

static bool extmem_prezero = true;
static struct task_struct **extmem_zeroers;
/* Published with a release store once extmem_zeroers is filled in. */
static unsigned int extmem_nr_zeroers;

static int prezero_set(const char *val, const struct kernel_param *kp)
{
	unsigned int i, n;
	int err = param_set_bool(val, kp);

	if (err)
		return err;
	/* Pairs with the release in extmem_zeroers_start(). */
	n = smp_load_acquire(&extmem_nr_zeroers);
	for (i = 0; i < n; i++)
		extmem_zeroer_wake(i);
	return 0;
}

static const struct kernel_param_ops prezero_ops = {
	.set = prezero_set,
	.get = param_get_bool,
};
module_param_cb(prezero, &prezero_ops, &extmem_prezero, 0644);
MODULE_PARM_DESC(prezero, "Zero freed extmem memory in the background (default 1)");

void extmem_zeroer_wake(u32 idx)
{
	/* Pairs with the release in extmem_zeroers_start(). */
	unsigned int n = smp_load_acquire(&extmem_nr_zeroers);

	if (idx < n && extmem_zeroers[idx] && READ_ONCE(extmem_prezero))
		wake_up_process(extmem_zeroers[idx]);
}

static int extmem_zeroer_fn(void *data)
{
	u32 idx = (u32)(unsigned long)data;

	extmem_area_map(idx);
	set_user_nice(current, MAX_NICE);
	for (;;) {
		if (READ_ONCE(extmem_prezero) && extmem_zero_step(idx)) {
			cond_resched();
			continue;
		}
		/* Freeing memory wakes us after it put the range in the set. */
		set_current_state(TASK_IDLE);
		if (!READ_ONCE(extmem_prezero) || !extmem_zero_pending(idx))
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

void extmem_zeroers_start(u32 n)
{
	struct task_struct **t;
	u32 i;

	if (!n)
		return;
	t = kcalloc(n, sizeof(*t), GFP_KERNEL);
	if (!t) {
		pr_err("no background zeroers: out of memory; allocations zero what they take\n");
		for (i = 0; i < n; i++)
			extmem_area_map(i);
		return;
	}
	for (i = 0; i < n; i++) {
		struct task_struct *k;

		k = kthread_create_on_node(extmem_zeroer_fn,
					   (void *)(unsigned long)i,
					   extmem_get_area(i)->nid,
					   "extmem_zero/%u", i);
		if (IS_ERR(k)) {
			pr_err("area %u: no background zeroer (%ld); allocations zero what they take\n",
			       i, PTR_ERR(k));
			extmem_area_map(i);
			continue;
		}
		t[i] = k;
	}
	extmem_zeroers = t;
	/* The array is filled in before anyone sees the count. */
	smp_store_release(&extmem_nr_zeroers, n);
	for (i = 0; i < n; i++)
		if (t[i])
			wake_up_process(t[i]);
}

/* Zeroes @len bytes at @addr, rescheduling between 2 MiB chunks; ignores signals. */
void extmem_zero_range(void *addr, size_t len)
{
	while (len) {
		size_t chunk = min_t(size_t, len, SZ_2M);

		memset(addr, 0, chunk);
		addr += chunk;
		len -= chunk;
		cond_resched();
	}
}
