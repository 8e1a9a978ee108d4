// SPDX-License-Identifier: GPL-2.0
/*
 * The device side of extmem regions: the class "extmem_region", one
 * character device per region with its devtmpfs node
 * /dev/extmem_region/<name> (owner, group and mode as the region says) and
 * its attributes in /sys/class/extmem_region/<name>/, the way devdax shows
 * its devices. What a region is, its file operations and its memory are
 * Rust (devif/region.rs, through extmem/wrappers/chrdev.rs); this file only
 * does what the driver core asks of C: the class, the device type with its
 * devnode() and release(), the cdev. Declared in ../extmem/internal.h.
 */

#define pr_fmt(fmt) "extmem: " fmt

#include <linux/cdev.h>
#include <linux/cred.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/init.h>
#include <linux/slab.h>
#include <linux/uidgid.h>

#include "../extmem/internal.h"

struct extmem_region_dev {
	struct device dev;
	struct cdev cdev;
	struct extmem_region_node node;
	kuid_t uid;
	kgid_t gid;
	void *data;
	void (*drop_data)(void *data);
};

static dev_t extmem_region_devt;
static DEFINE_IDA(extmem_region_minors);

static struct extmem_region_dev *to_rd(const struct device *dev)
{
	return container_of(dev, struct extmem_region_dev, dev);
}

#define EXTMEM_REGION_ATTR(_name, _fmt, _expr)				\
static ssize_t _name##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	const struct extmem_region_node *n = &to_rd(dev)->node;	\
									\
	return sysfs_emit(buf, _fmt "\n", _expr);			\
}									\
static DEVICE_ATTR_RO(_name)

EXTMEM_REGION_ATTR(size, "%llu", n->size);
EXTMEM_REGION_ATTR(align, "%llu", n->align);
EXTMEM_REGION_ATTR(target_node, "%d", n->nid);
EXTMEM_REGION_ATTR(numa_node, "%d", n->nid);
EXTMEM_REGION_ATTR(sticky, "%d", n->sticky ? 1 : 0);
EXTMEM_REGION_ATTR(uid, "%u", n->uid);
EXTMEM_REGION_ATTR(gid, "%u", n->gid);
EXTMEM_REGION_ATTR(mode, "%04o", n->mode);

/* The physical range, for the administrator only (0400), as devdax does. */
static ssize_t resource_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%#llx\n", to_rd(dev)->node.phys);
}
static DEVICE_ATTR_ADMIN_RO(resource);

static struct attribute *extmem_region_attrs[] = {
	&dev_attr_size.attr,
	&dev_attr_align.attr,
	&dev_attr_target_node.attr,
	&dev_attr_numa_node.attr,
	&dev_attr_sticky.attr,
	&dev_attr_uid.attr,
	&dev_attr_gid.attr,
	&dev_attr_mode.attr,
	&dev_attr_resource.attr,
	NULL,
};
ATTRIBUTE_GROUPS(extmem_region);

static char *extmem_region_devnode(const struct device *dev, umode_t *mode,
				   kuid_t *uid, kgid_t *gid)
{
	const struct extmem_region_dev *rd = to_rd(dev);

	if (mode)
		*mode = rd->node.mode;
	if (uid)
		*uid = rd->uid;
	if (gid)
		*gid = rd->gid;
	return kasprintf(GFP_KERNEL, "extmem_region/%s", dev_name(dev));
}

static void extmem_region_release(struct device *dev)
{
	struct extmem_region_dev *rd = to_rd(dev);

	if (dev->devt)
		ida_free(&extmem_region_minors, MINOR(dev->devt));
	rd->drop_data(rd->data);
	kfree(rd);
}

static const struct device_type extmem_region_type = {
	.name = "extmem_region",
	.devnode = extmem_region_devnode,
	.release = extmem_region_release,
};

static const struct class extmem_region_class = {
	.name = "extmem_region",
	.dev_groups = extmem_region_groups,
};

int extmem_region_ids(u32 uid, u32 gid, u32 *kuid, u32 *kgid)
{
	kuid_t ku = make_kuid(current_user_ns(), uid);
	kgid_t kg = make_kgid(current_user_ns(), gid);

	if (!uid_valid(ku) || !gid_valid(kg))
		return -EINVAL;
	*kuid = from_kuid(&init_user_ns, ku);
	*kgid = from_kgid(&init_user_ns, kg);
	return 0;
}

struct extmem_region_dev *
extmem_region_dev_add(const char *name, const struct extmem_region_node *node,
		      const struct file_operations *fops, void *data,
		      void (*drop_data)(void *data))
{
	struct extmem_region_dev *rd;
	int minor, err;

	if (!extmem_region_devt) {
		drop_data(data);
		return ERR_PTR(-ENODEV);
	}
	rd = kzalloc(sizeof(*rd), GFP_KERNEL);
	if (!rd) {
		drop_data(data);
		return ERR_PTR(-ENOMEM);
	}
	rd->node = *node;
	rd->uid = make_kuid(&init_user_ns, node->uid);
	rd->gid = make_kgid(&init_user_ns, node->gid);
	rd->data = data;
	rd->drop_data = drop_data;
	device_initialize(&rd->dev);
	rd->dev.class = &extmem_region_class;
	rd->dev.type = &extmem_region_type;
	set_dev_node(&rd->dev, node->nid);
	/* From here on, put_device() frees rd and drops data. */
	minor = ida_alloc_max(&extmem_region_minors, EXTMEM_MAX_REGIONS - 1,
			      GFP_KERNEL);
	if (minor < 0) {
		err = minor;
		goto put;
	}
	rd->dev.devt = MKDEV(MAJOR(extmem_region_devt), minor);
	err = dev_set_name(&rd->dev, "%s", name);
	if (err)
		goto put;
	cdev_init(&rd->cdev, fops);
	err = cdev_device_add(&rd->cdev, &rd->dev);
	if (err)
		goto put;
	return rd;
put:
	put_device(&rd->dev);
	return ERR_PTR(err);
}

void extmem_region_dev_del(struct extmem_region_dev *rd)
{
	cdev_device_del(&rd->cdev, &rd->dev);
	put_device(&rd->dev);
}

void *extmem_region_dev_data(struct inode *inode)
{
	return container_of(inode->i_cdev, struct extmem_region_dev, cdev)->data;
}

static int __init extmem_region_init(void)
{
	int err;

	err = class_register(&extmem_region_class);
	if (err)
		return err;
	err = alloc_chrdev_region(&extmem_region_devt, 0, EXTMEM_MAX_REGIONS,
				  "extmem_region");
	if (err) {
		class_unregister(&extmem_region_class);
		pr_err("no character device numbers for regions (%d)\n", err);
	}
	return err;
}
subsys_initcall(extmem_region_init);
