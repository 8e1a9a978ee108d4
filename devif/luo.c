// SPDX-License-Identifier: GPL-2.0
/*
 * extmem across kexec: the reboot notifier that writes the state for the next
 * kernel.
 *
 * When the pool is built, extmem/kho.rs preserves a buffer with
 * kho_alloc_preserve() and publishes it as the KHO subtree "extmem" (if KHO
 * is enabled). The reboot notifier here fills it when a kexec is under way
 * (after LUO has frozen the sessions), through extmem_handover_write(). The
 * LUO file handler "extmem-v1" is Rust, in devif/luo.rs.
 *
 * /sys/kernel/debug/extmem/corrupt_handover is a test-only knob
 * (CONFIG_EXTMEM_TEST_KNOBS): when set, the state written for the next
 * kernel has area 0's allocator state damaged, so that tests can check the
 * next kernel quarantines it.
 */

#include <linux/debugfs.h>
#include <linux/init.h>
#include <linux/kexec.h>
#include <linux/notifier.h>
#include <linux/reboot.h>

#include "../extmem/internal.h"

static bool extmem_corrupt_handover;

static int extmem_reboot(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	if (action == SYS_RESTART && kexec_in_progress)
		extmem_handover_write(extmem_corrupt_handover);
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
	}
	register_reboot_notifier(&extmem_reboot_nb);
	return 0;
}
late_initcall(extmem_luo_init);
