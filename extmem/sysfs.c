// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/mm/extmem/: one directory per area carved out at boot, and
 * one per node with an area (nodeN/, from hugetlb_conv/conv.c), and handover/
 * with the kexec handover figures.
 *
 * The layout is read from the boot records (extmem_get_area()); the usage
 * figures come from the Rust pool (extmem_area_usage()), which is set up
 * at device_initcall, before this file registers at late_initcall.
 * Documented in Documentation/ABI/testing/sysfs-kernel-mm-extmem.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/extmem.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "internal.h"

struct extmem_area_kobj {
	struct kobject kobj;
	unsigned int idx;
};

static struct kobject *extmem_kobj;

static unsigned int to_idx(struct kobject *kobj)
{
	return container_of(kobj, struct extmem_area_kobj, kobj)->idx;
}

static ssize_t node_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%d\n", extmem_get_area(to_idx(kobj))->nid);
}

static ssize_t base_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%#llx\n",
			  (u64)extmem_get_area(to_idx(kobj))->base);
}

static ssize_t size_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  (u64)extmem_get_area(to_idx(kobj))->size);
}

/* The allocator's figures: one attribute per field of extmem_area_stats. */
#define EXTMEM_STAT_ATTR(_name, _field)					\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	struct extmem_area_stats st = extmem_area_usage(to_idx(kobj));	\
									\
	return st.ready ? sysfs_emit(buf, "%llu\n", st._field) : -ENODEV;	\
}

EXTMEM_STAT_ATTR(free_bytes, free_bytes)
EXTMEM_STAT_ATTR(largest_free_run, largest_free)
EXTMEM_STAT_ATTR(bytes_in_use, bytes_in_use)
EXTMEM_STAT_ATTR(allocations, allocations)
EXTMEM_STAT_ATTR(failed_requests, failed_requests)
EXTMEM_STAT_ATTR(poisoned, poisoned)

/* How long the area took to become ready, and its allocator's metadata. */
#define EXTMEM_READY_ATTR(_name)					\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	struct extmem_area_ready r = extmem_area_readiness(to_idx(kobj)); \
									\
	return r.ready ? sysfs_emit(buf, "%llu\n", r._name) : -ENODEV;	\
}

EXTMEM_READY_ATTR(ready_us)
EXTMEM_READY_ATTR(metadata_bytes)

/* The write-back mapping, made after the area is ready: EBUSY until it is. */
static ssize_t map_us_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	struct extmem_area_ready r = extmem_area_readiness(to_idx(kobj));

	if (!r.ready)
		return -ENODEV;
	return r.mapped ? sysfs_emit(buf, "%llu\n", r.map_us) : -EBUSY;
}

/* The zeroing figures: one attribute per field of extmem_zero_stats. */
#define EXTMEM_ZERO_ATTR(_name)						\
static ssize_t _name##_show(struct kobject *kobj,			\
			    struct kobj_attribute *attr, char *buf)	\
{									\
	struct extmem_zero_stats st = extmem_area_zero_stats(to_idx(kobj)); \
									\
	return st.ready ? sysfs_emit(buf, "%llu\n", st._name) : -ENODEV;	\
}									\
static struct kobj_attribute _name##_attr = __ATTR_RO(_name)

EXTMEM_ZERO_ATTR(clean_bytes);
EXTMEM_ZERO_ATTR(dirty_bytes);
EXTMEM_ZERO_ATTR(zeroed_bytes);
EXTMEM_ZERO_ATTR(zeroing_ns);
EXTMEM_ZERO_ATTR(sync_zeroed_bytes);
EXTMEM_ZERO_ATTR(sync_zeroing_ns);

static ssize_t quarantined_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	const char *why = extmem_area_quarantined(to_idx(kobj));

	return sysfs_emit(buf, "%s\n", why ? why : "none");
}

static struct kobj_attribute node_attr = __ATTR_RO(node);
static struct kobj_attribute quarantined_attr = __ATTR_RO(quarantined);
/* A physical address: for root only, as in /proc/iomem. */
static struct kobj_attribute base_attr = __ATTR(base, 0400, base_show, NULL);
static struct kobj_attribute size_attr = __ATTR_RO(size);
static struct kobj_attribute free_bytes_attr = __ATTR_RO(free_bytes);
static struct kobj_attribute largest_free_run_attr =
	__ATTR_RO(largest_free_run);
static struct kobj_attribute bytes_in_use_attr = __ATTR_RO(bytes_in_use);
static struct kobj_attribute allocations_attr = __ATTR_RO(allocations);
static struct kobj_attribute failed_requests_attr = __ATTR_RO(failed_requests);
static struct kobj_attribute poisoned_attr = __ATTR_RO(poisoned);
static struct kobj_attribute ready_us_attr = __ATTR_RO(ready_us);
static struct kobj_attribute metadata_bytes_attr = __ATTR_RO(metadata_bytes);
static struct kobj_attribute map_us_attr = __ATTR_RO(map_us);

static struct attribute *extmem_area_attrs[] = {
	&node_attr.attr,
	&base_attr.attr,
	&size_attr.attr,
	&free_bytes_attr.attr,
	&largest_free_run_attr.attr,
	&bytes_in_use_attr.attr,
	&allocations_attr.attr,
	&failed_requests_attr.attr,
	&quarantined_attr.attr,
	&poisoned_attr.attr,
	&ready_us_attr.attr,
	&metadata_bytes_attr.attr,
	&map_us_attr.attr,
	&clean_bytes_attr.attr,
	&dirty_bytes_attr.attr,
	&zeroed_bytes_attr.attr,
	&zeroing_ns_attr.attr,
	&sync_zeroed_bytes_attr.attr,
	&sync_zeroing_ns_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(extmem_area);

/* handover/: one attribute per field of extmem_handover_stats. */
#define EXTMEM_HANDOVER_ATTR(_name, _fmt)					\
static ssize_t ho_##_name##_show(struct kobject *kobj,			\
				 struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, _fmt "\n", extmem_handover_stats()._name);	\
}									\
static struct kobj_attribute ho_##_name##_attr =			\
	__ATTR(_name, 0444, ho_##_name##_show, NULL)

EXTMEM_HANDOVER_ATTR(enabled, "%d");
EXTMEM_HANDOVER_ATTR(preserved_allocations, "%llu");
EXTMEM_HANDOVER_ATTR(sticky_regions, "%llu");
EXTMEM_HANDOVER_ATTR(incoming_allocations, "%llu");

static struct attribute *extmem_handover_attrs[] = {
	&ho_enabled_attr.attr,
	&ho_preserved_allocations_attr.attr,
	&ho_sticky_regions_attr.attr,
	&ho_incoming_allocations_attr.attr,
	NULL,
};

static const struct attribute_group extmem_handover_group = {
	.name = "handover",
	.attrs = extmem_handover_attrs,
};

static void extmem_area_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct extmem_area_kobj, kobj));
}

static const struct kobj_type extmem_area_ktype = {
	.release = extmem_area_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = extmem_area_groups,
};

static int __init extmem_sysfs_init(void)
{
	unsigned int i, n = extmem_nr_areas();
	int err;

	extmem_kobj = kobject_create_and_add("extmem", mm_kobj);
	if (!extmem_kobj)
		return -ENOMEM;
	err = sysfs_create_group(extmem_kobj, &extmem_handover_group);
	if (err)
		return err;

	for (i = 0; i < n; i++) {
		struct extmem_area_kobj *ak = kzalloc_obj(*ak);

		if (!ak)
			return -ENOMEM;
		ak->idx = i;
		err = kobject_init_and_add(&ak->kobj, &extmem_area_ktype,
					   extmem_kobj, "area%u", i);
		if (err) {
			pr_err("area %u: sysfs directory failed: %d\n", i, err);
			kobject_put(&ak->kobj);
			return err;
		}
	}
	/* nodeN/: the HugeTLB conversion of each node with an area. */
	return extmem_hugetlb_sysfs_init(extmem_kobj);
}
late_initcall(extmem_sysfs_init);
