// SPDX-License-Identifier: GPL-2.0
/*
 * Runs a function on several CPUs at once, one kthread bound to each: for
 * the KUnit cases that measure how the per-CPU magazines of
 * extmem/magazine.rs scale (extmem/magazine_kunit.rs). Rust 7.3 has no
 * kthread abstraction, hence this file.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/slab.h>

#include "internal.h"

struct extmem_cpu_run {
	void (*fn)(void *data, u32 i);
	void *data;
	u32 i;
	struct completion done;
};

static int extmem_cpu_thread(void *arg)
{
	struct extmem_cpu_run *r = arg;

	r->fn(r->data, r->i);
	/* r may be freed as soon as it is completed: touch nothing after. */
	kthread_complete_and_exit(&r->done, 0);
}

u32 extmem_nr_online_cpus(void)
{
	return num_online_cpus();
}

u32 extmem_run_on_cpus(u32 n, void (*fn)(void *data, u32 i), void *data)
{
	struct task_struct **t;
	struct extmem_cpu_run *r;
	unsigned int cpu;
	u32 i, started = 0;

	n = min(n, num_online_cpus());
	if (!n)
		return 0;
	r = kcalloc(n, sizeof(*r), GFP_KERNEL);
	t = kcalloc(n, sizeof(*t), GFP_KERNEL);
	if (!r || !t)
		goto out;
	cpus_read_lock();
	i = 0;
	for_each_online_cpu(cpu) {
		if (i == n)
			break;
		r[i] = (struct extmem_cpu_run){ .fn = fn, .data = data, .i = i };
		init_completion(&r[i].done);
		t[i] = kthread_create_on_cpu(extmem_cpu_thread, &r[i], cpu,
					     "extmem_cpu/%u");
		if (IS_ERR(t[i]))
			break;
		i++;
	}
	if (i < n) {
		/* None has run yet: stop them before they call fn. */
		while (i--)
			kthread_stop(t[i]);
		cpus_read_unlock();
		goto out;
	}
	for (i = 0; i < n; i++)
		wake_up_process(t[i]);
	for (i = 0; i < n; i++)
		wait_for_completion(&r[i].done);
	cpus_read_unlock();
	started = n;
out:
	kfree(t);
	kfree(r);
	return started;
}
