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

#include <linux/ctype.h>
#include <linux/kthread.h>
#include <linux/minmax.h>
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

/*
 * The values a boolean kernel parameter takes, as whole words (kstrtobool()
 * alone looks only at the first character, so that "10" or "yak" would
 * pass): anything else is refused with -EINVAL and a log line, and the
 * setting does not change.
 */
static int prezero_parse(const char *val, bool *on)
{
	static const char *const yes[] = { "1", "y", "yes", "on" };
	static const char *const no[] = { "0", "n", "no", "off" };
	char word[4];
	size_t len;
	unsigned int i;

	/* "extmem.prezero" alone on the command line means on. */
	if (!val) {
		*on = true;
		return 0;
	}
	len = strcspn(val, "\n");
	if (len && len < sizeof(word) && !val[len + (val[len] == '\n')]) {
		for (i = 0; i < len; i++)
			word[i] = tolower(val[i]);
		word[len] = '\0';
		for (i = 0; i < ARRAY_SIZE(yes); i++) {
			if (!strcmp(word, yes[i])) {
				*on = true;
				return 0;
			}
			if (!strcmp(word, no[i])) {
				*on = false;
				return 0;
			}
		}
	}
	pr_warn_ratelimited("prezero: '%.*s' is not 0, 1, n, y, no, yes, off or on; left at %d\n",
			    (int)min_t(size_t, len, 32), val,
			    READ_ONCE(extmem_prezero));
	return -EINVAL;
}

static int prezero_set(const char *val, const struct kernel_param *kp)
{
	unsigned int i, n;
	bool on;
	int err = prezero_parse(val, &on);

	if (err)
		return err;
	WRITE_ONCE(*(bool *)kp->arg, on);
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

#ifdef CONFIG_EXTMEM_TEST_KNOBS
/*
 * Test-only: extmem.test_fail_map=<area index> makes that area's write-back
 * mapping fail as if memremap() had, so that a test sees what an operator
 * would: the area quarantined, nothing of it handed out.
 */
static int extmem_test_fail_map_idx = -1;
module_param_named(test_fail_map, extmem_test_fail_map_idx, int, 0444);
MODULE_PARM_DESC(test_fail_map, "Test only: fail the write-back mapping of this area");
#endif

bool extmem_test_fail_map(u32 idx)
{
#ifdef CONFIG_EXTMEM_TEST_KNOBS
	return extmem_test_fail_map_idx >= 0 && (u32)extmem_test_fail_map_idx == idx;
#else
	return false;
#endif
}

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
