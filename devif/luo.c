// SPDX-License-Identifier: GPL-2.0
/*
 * extmem across kexec: the test knobs and the reboot notifier.
 *
 * When the pool is built, extmem/kho.rs preserves a buffer with
 * kho_alloc_preserve(), publishes it as the KHO subtree "extmem" (if KHO is
 * enabled) and keeps the state in it current: every preserve, unpreserve and
 * sticky-region change rewrites it first. The LUO file handler "extmem-v1"
 * (Rust, devif/luo.rs) checks it in its freeze callback, which can still
 * refuse the kexec. The reboot notifier here only logs what is handed over
 * (and retries a stale state) through extmem_handover_write().
 *
 * Test-only knobs (CONFIG_EXTMEM_TEST_KNOBS), in /sys/kernel/debug/extmem/:
 * corrupt_handover damages area 0's allocator state in the state written at
 * the kexec, so that tests can check the next kernel quarantines it;
 * fail_handover makes that write fail, so that tests can check the kexec is
 * refused; corrupt_handover_header damages the state's header checksum, so
 * that tests can check the next kernel, which rejects the state as a whole,
 * quarantines the areas the separate area record lists; hold_fault holds
 * the next fault of an extmem mapping between its poisoned check and its
 * insert (see extmem_test_hold_fault()).
 */

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/init.h>
#include <linux/kexec.h>
#include <linux/notifier.h>
#include <linux/reboot.h>

#include "../extmem/internal.h"

static bool extmem_corrupt_handover;
static bool extmem_fail_handover;
static bool extmem_corrupt_handover_header;

u32 extmem_handover_test_knobs(void)
{
	return (READ_ONCE(extmem_corrupt_handover) ? EXTMEM_KNOB_CORRUPT : 0) |
	       (READ_ONCE(extmem_fail_handover) ? EXTMEM_KNOB_FAIL : 0) |
	       (READ_ONCE(extmem_corrupt_handover_header) ?
		EXTMEM_KNOB_CORRUPT_HEADER : 0);
}

/*
 * debugfs extmem/hold_fault: a test writes 1; the next fault of an extmem
 * mapping that found its units not poisoned sets it to 2 and waits there,
 * before it inserts the entry, until the test writes 0 (30 s at most, then
 * it clears the knob itself). So the test can land a memory failure on the
 * unit between the fault's check and its insert, and see that the entry
 * does not stay.
 */
static u32 extmem_hold_fault;

void extmem_test_hold_fault(void)
{
	int i;

	if (!IS_ENABLED(CONFIG_EXTMEM_TEST_KNOBS) ||
	    READ_ONCE(extmem_hold_fault) != 1 ||
	    cmpxchg(&extmem_hold_fault, 1, 2) != 1)
		return;
	for (i = 0; i < 1500 && READ_ONCE(extmem_hold_fault) == 2; i++)
		msleep(20);
	cmpxchg(&extmem_hold_fault, 2, 0);
}

static int extmem_hold_fault_get(void *data, u64 *val)
{
	*val = READ_ONCE(extmem_hold_fault);
	return 0;
}

/* Only 0 (release, or disarm) and 1 (arm); 2 is the kernel's to set. */
static int extmem_hold_fault_set(void *data, u64 val)
{
	if (val > 1)
		return -EINVAL;
	WRITE_ONCE(extmem_hold_fault, val);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(extmem_hold_fault_fops, extmem_hold_fault_get,
			 extmem_hold_fault_set, "%llu\n");

static int extmem_reboot(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	if (action == SYS_RESTART && kexec_in_progress)
		extmem_handover_write();
	return NOTIFY_DONE;
}

static struct notifier_block extmem_reboot_nb = {
	.notifier_call = extmem_reboot,
};

static int __init extmem_luo_init(void)
{
	struct dentry *dir;

	if (!extmem_nr_areas())
		return 0;

	if (IS_ENABLED(CONFIG_EXTMEM_TEST_KNOBS)) {
		dir = debugfs_create_dir("extmem", NULL);
		debugfs_create_bool("corrupt_handover", 0600, dir,
				    &extmem_corrupt_handover);
		debugfs_create_bool("fail_handover", 0600, dir,
				    &extmem_fail_handover);
		debugfs_create_bool("corrupt_handover_header", 0600, dir,
				    &extmem_corrupt_handover_header);
		debugfs_create_file_unsafe("hold_fault", 0600, dir, NULL,
					   &extmem_hold_fault_fops);
	}
	register_reboot_notifier(&extmem_reboot_nb);
	return 0;
}
late_initcall(extmem_luo_init);
