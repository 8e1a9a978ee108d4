// SPDX-License-Identifier: GPL-2.0
/*
 * extmem across kexec: the outgoing KHO state.
 *
 * At late_initcall, if KHO is enabled, a buffer is preserved with
 * kho_alloc_preserve() and published as the KHO subtree "extmem"; a reboot
 * notifier fills it when a kexec is under way (after LUO has frozen the
 * sessions), through extmem_handover_write() in extmem/kho.rs. The LUO file
 * handler "extmem-v1" is Rust, in devif/luo.rs.
 *
 * /sys/kernel/debug/extmem/corrupt_handover is a test-only knob: when set,
 * the state written for the next kernel has area 0's allocator state damaged,
 * so that tests can check the next kernel quarantines it.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/init.h>
#include <linux/kexec.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/extmem.h>
#include <linux/notifier.h>
#include <linux/reboot.h>
#include <linux/sizes.h>

#include "../extmem/internal.h"

#define EXTMEM_HANDOVER_SIZE	SZ_256K

static void *extmem_ho_blob;
static bool extmem_corrupt_handover;

static int extmem_reboot(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	if (action == SYS_RESTART && kexec_in_progress && extmem_ho_blob)
		extmem_handover_write(extmem_ho_blob, EXTMEM_HANDOVER_SIZE,
				      extmem_corrupt_handover);
	return NOTIFY_DONE;
}

static struct notifier_block extmem_reboot_nb = {
	.notifier_call = extmem_reboot,
};

static int __init extmem_luo_init(void)
{
	struct dentry *dir;
	int err;

	if (!extmem_nr_areas())
		return 0;

	dir = debugfs_create_dir("extmem", NULL);
	debugfs_create_bool("corrupt_handover", 0600, dir,
			    &extmem_corrupt_handover);

	if (kho_is_enabled()) {
		void *blob = kho_alloc_preserve(EXTMEM_HANDOVER_SIZE);

		if (IS_ERR(blob)) {
			pr_err("no handover buffer (%pe); allocations will not survive kexec\n",
			       blob);
		} else if ((err = kho_add_subtree(EXTMEM_KHO_NODE_NAME, blob,
						  EXTMEM_HANDOVER_SIZE))) {
			pr_err("cannot publish the handover state (%d)\n", err);
			kho_unpreserve_free(blob);
		} else {
			extmem_ho_blob = blob;
			register_reboot_notifier(&extmem_reboot_nb);
		}
	}
	return 0;
}
late_initcall(extmem_luo_init);
