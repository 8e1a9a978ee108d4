// SPDX-License-Identifier: GPL-2.0
/*
 * Device DMA into extmem through VFIO type1: a device reaches an allocation
 * while its owner has it, and never once the owner has freed it.
 *
 * The device is QEMU's "edu" (vendor 0x1234, device 0x11e8; QEMU's
 * docs/specs/edu.rst) behind an emulated IOMMU: its DMA engine copies up to
 * 4 KiB (here 2 KiB, see XFER) between a buffer inside the device (device
 * address 0x40000) and any IOVA below 256 MiB (BAR0: 0x80 source, 0x88
 * destination, 0x90 count, 0x98 command). The test binds it to vfio-pci (driver_override), opens the
 * container and the group, maps memory at IOVAs with VFIO_IOMMU_MAP_DMA and
 * has the device copy.
 *
 * VFIO type1 maps the pfns of a VM_PFNMAP mapping without a reference, so
 * an extmem allocation freed by its owner (munmap and close) used to stay
 * mapped in the IOMMU while extmem gave the same memory to the next
 * owner. With the pfnmap_hold hook (patches/) type1 holds the allocation's
 * file while the IOVA range is mapped: the memory stays allocated, counted
 * and out of the free pool until VFIO_IOMMU_UNMAP_DMA (or the container's
 * release), and only then goes back to the pool.
 *
 * The VM boot: q35, "-device intel-iommu,intremap=off -device edu",
 * "intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1" (no interrupt
 * remapping). Needs root. Without /dev/extmem, an edu device or VFIO the
 * tests skip, unless EXTMEM_VFIO_REQUIRE=1 (the vfio boot sets it) makes
 * that a failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/extmem.h>
#include <linux/kvm.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "extmem_util.h"

#define PCI_DEVS	"/sys/bus/pci/devices"
#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8

/* edu's BAR0 registers and its DMA buffer. */
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_RUN	0x1
#define EDU_CMD_TO_RAM	0x2
#define EDU_BUF		0x40000
/*
 * A DMA moves XFER bytes. The buffer is 4 KiB, but QEMU 7.2's range check
 * is off by one: a transfer of all of it stops QEMU ("hardware error").
 */
#define XFER		2048

/* IOVAs: below edu's 28-bit DMA mask. */
#define IOVA_SCRATCH	0x100000ULL
#define IOVA_ALLOC	0x1000000ULL
#define IOVA_REGION	0x2000000ULL

#define ALLOC_LEN	(2 * MiB)
#define SCRATCH_LEN	4096
#define REGION_NAME	"t-vfio"

struct edu {
	int container, group, device;
	uint64_t bar0, config;	/* region offsets in the device fd */
};

/* The first edu device's address (0000:00:03.0) in @bdf; 0 or -ENODEV. */
static int edu_find(char *bdf, size_t len)
{
	struct dirent *d;
	DIR *dir = opendir(PCI_DEVS);
	int rc = -ENODEV;

	if (!dir)
		return -ENODEV;
	while ((d = readdir(dir))) {
		char path[PATH_MAX];
		uint64_t vendor, device;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_DEVS "/%s/vendor", d->d_name);
		if (read_u64(path, &vendor) || vendor != EDU_VENDOR)
			continue;
		snprintf(path, sizeof(path), PCI_DEVS "/%s/device", d->d_name);
		if (read_u64(path, &device) || device != EDU_DEVICE)
			continue;
		snprintf(bdf, len, "%s", d->d_name);
		rc = 0;
		break;
	}
	closedir(dir);
	return rc;
}

/* Binds @bdf to vfio-pci and returns its IOMMU group number, or -errno. */
static int edu_bind(const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX], *slash;
	ssize_t n;
	int rc;

	snprintf(path, sizeof(path), PCI_DEVS "/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n >= 0)
		link[n] = '\0';
	if (n < 0 || !strstr(link, "/vfio-pci")) {
		snprintf(path, sizeof(path), PCI_DEVS "/%s/driver_override", bdf);
		rc = write_str(path, "vfio-pci");
		if (rc)
			return rc;
		if (n >= 0) {
			snprintf(path, sizeof(path), PCI_DEVS "/%s/driver/unbind", bdf);
			rc = write_str(path, bdf);
			if (rc)
				return rc;
		}
		rc = write_str("/sys/bus/pci/drivers_probe", bdf);
		if (rc)
			return rc;
	}
	snprintf(path, sizeof(path), PCI_DEVS "/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	slash = strrchr(link, '/');
	return slash ? atoi(slash + 1) : -EINVAL;
}

static int region_offset(int device, unsigned int index, uint64_t *off)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	*off = info.offset;
	return 0;
}

/* Container, group and device of edu at @bdf; 0 or -errno. */
static int edu_open(struct edu *e, const char *bdf, int group_nr)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[64];
	uint16_t cmd;

	e->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (e->container < 0)
		return -errno;
	if (ioctl(e->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(e->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		return -EOPNOTSUPP;
	snprintf(path, sizeof(path), "/dev/vfio/%d", group_nr);
	e->group = open(path, O_RDWR | O_CLOEXEC);
	if (e->group < 0)
		return -errno;
	if (ioctl(e->group, VFIO_GROUP_GET_STATUS, &status))
		return -errno;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -EBUSY;
	if (ioctl(e->group, VFIO_GROUP_SET_CONTAINER, &e->container) ||
	    ioctl(e->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return -errno;
	e->device = ioctl(e->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (e->device < 0)
		return -errno;
	if (region_offset(e->device, VFIO_PCI_BAR0_REGION_INDEX, &e->bar0) ||
	    region_offset(e->device, VFIO_PCI_CONFIG_REGION_INDEX, &e->config))
		return -errno;
	/* Memory decoding and bus mastering: the device's DMA needs both. */
	if (pread(e->device, &cmd, sizeof(cmd), e->config + PCI_COMMAND) != sizeof(cmd))
		return -EIO;
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(e->device, &cmd, sizeof(cmd), e->config + PCI_COMMAND) != sizeof(cmd))
		return -EIO;
	return 0;
}

static void edu_close(struct edu *e)
{
	if (e->device >= 0)
		close(e->device);
	if (e->group >= 0)
		close(e->group);
	if (e->container >= 0)
		close(e->container);
	e->device = -1;
	e->group = -1;
	e->container = -1;
}

static int reg_write(struct edu *e, uint64_t reg, uint32_t val)
{
	return pwrite(e->device, &val, 4, e->bar0 + reg) == 4 ? 0 : -EIO;
}

static int reg_read(struct edu *e, uint64_t reg, uint32_t *val)
{
	return pread(e->device, val, 4, e->bar0 + reg) == 4 ? 0 : -EIO;
}

/*
 * One DMA of XFER bytes: from @iova into the device's buffer, or
 * (@to_ram) from the buffer to @iova. The device runs it 100 ms (virtual
 * time) later; a DMA the IOMMU refuses completes too, moving nothing.
 */
static int edu_dma(struct edu *e, uint64_t iova, int to_ram)
{
	uint32_t cmd = EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0);
	int i;

	if (reg_write(e, EDU_DMA_SRC, to_ram ? EDU_BUF : iova) ||
	    reg_write(e, EDU_DMA_DST, to_ram ? iova : EDU_BUF) ||
	    reg_write(e, EDU_DMA_CNT, XFER) || reg_write(e, EDU_DMA_CMD, cmd))
		return -EIO;
	for (i = 0; i < 1000; i++) {
		if (reg_read(e, EDU_DMA_CMD, &cmd))
			return -EIO;
		if (!(cmd & EDU_CMD_RUN))
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static int dma_map(struct edu *e, void *va, uint64_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)va,
		.iova = iova,
		.size = len,
	};

	return ioctl(e->container, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

static int dma_unmap(struct edu *e, uint64_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = iova,
		.size = len,
	};

	return ioctl(e->container, VFIO_IOMMU_UNMAP_DMA, &u) ? -errno : 0;
}

/* XFER bytes of a pattern that @seed names. */
static void pattern(uint64_t *buf, uint64_t seed)
{
	size_t i;

	for (i = 0; i < XFER / 8; i++)
		buf[i] = seed ^ (i * 0x9e3779b97f4a7c15ULL);
}

static int matches(const void *p, uint64_t seed)
{
	uint64_t want[XFER / 8];

	pattern(want, seed);
	return !memcmp(p, want, XFER);
}

/*
 * The device writes the pattern @seed at @iova: the pattern goes from the
 * scratch page into the device, then from the device to @iova.
 */
static int device_write(struct edu *e, uint64_t *scratch, uint64_t iova, uint64_t seed)
{
	int rc;

	pattern(scratch, seed);
	rc = edu_dma(e, IOVA_SCRATCH, 0);
	return rc ? rc : edu_dma(e, iova, 1);
}

/*
 * The device reads XFER bytes at @iova into the scratch page; the
 * device's buffer is first filled with another pattern, so a read the
 * IOMMU refuses leaves no trace of @iova's contents.
 */
static int device_read(struct edu *e, uint64_t *scratch, uint64_t iova)
{
	int rc;

	pattern(scratch, 0x5eed);
	rc = edu_dma(e, IOVA_SCRATCH, 0);
	if (!rc)
		rc = edu_dma(e, iova, 0);
	memset(scratch, 0, XFER);
	return rc ? rc : edu_dma(e, IOVA_SCRATCH, 1);
}

/* A request of len bytes at the given alignment on node 0; a fd or -errno. */
static int alloc_aligned(int dev, uint64_t len, uint64_t align, const char *label)
{
	struct extmem_alloc_args a = {
		.size = sizeof(a),
		.length = len,
		.alignment = align,
		.node = 0,
	};

	snprintf(a.label, sizeof(a.label), "%s", label);
	return ioctl(dev, EXTMEM_IOC_ALLOC, &a) < 0 ? -errno : a.fd;
}

static int alloc(int dev, uint64_t len, const char *label)
{
	return alloc_aligned(dev, len, len, label);
}

static uint64_t phys_of(int fd)
{
	struct extmem_info info = { .size = sizeof(info) };

	return ioctl(fd, EXTMEM_IOC_INFO, &info) ? 0 : info.phys;
}

static void *map(int fd, uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

FIXTURE(vfio)
{
	int dev;
	struct edu e;
	uint64_t *scratch;
	uint64_t free0;
};

FIXTURE_SETUP(vfio)
{
	int require = env_u64("EXTMEM_VFIO_REQUIRE", 0) == 1;
	char bdf[NAME_MAX + 1];
	int group, rc;

	self->e = (struct edu){ .container = -1, .group = -1, .device = -1 };
	self->scratch = NULL;
	self->dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && !require)
		SKIP(return, DEV ": %s", strerror(errno));
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", DEV, strerror(errno));
	self->free0 = node_free_bytes(0);
	if (self->free0 < 4 * ALLOC_LEN && !require)
		SKIP(return, "node 0 has no extmem area with 8 MiB free");
	ASSERT_LE(4 * ALLOC_LEN, self->free0);
	rc = edu_find(bdf, sizeof(bdf));
	if (rc && !require)
		SKIP(return, "no edu device (QEMU's -device edu)");
	ASSERT_EQ(0, rc) TH_LOG("no edu device");
	group = edu_bind(bdf);
	if (group < 0 && !require)
		SKIP(return, "%s: no IOMMU group or no vfio-pci: %s", bdf, strerror(-group));
	ASSERT_LE(0, group) TH_LOG("%s: binding to vfio-pci: %s", bdf, strerror(-group));
	rc = edu_open(&self->e, bdf, group);
	ASSERT_EQ(0, rc) TH_LOG("%s: VFIO: %s", bdf, strerror(-rc));
	self->scratch = mmap(NULL, SCRATCH_LEN, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->scratch);
	ASSERT_EQ(0, dma_map(&self->e, self->scratch, IOVA_SCRATCH, SCRATCH_LEN));
}

FIXTURE_TEARDOWN(vfio)
{
	struct extmem_region_args r = { .size = sizeof(r), .name = REGION_NAME };

	edu_close(&self->e);
	if (self->dev < 0)
		return;
	ioctl(self->dev, EXTMEM_IOC_REGION_DESTROY, &r);
	/* Whatever the test held went back with the container. */
	EXPECT_EQ(self->free0, node_free_bytes(0)) TH_LOG("the pool is not whole again");
	close(self->dev);
}

/*
 * Owned: the device writes into the allocation and reads it. Freed by its
 * owner while the IOVA range is mapped: the memory stays allocated (the next
 * owner gets other memory, the pool counts it) and the device reaches none
 * of the next owner's. Unmapped: the memory is free again, the next owner
 * gets it, and the device reaches nothing there.
 */
TEST_F(vfio, freed_allocation_never_reaches_the_next_owner)
{
	uint64_t pa, pb, pc;
	uint64_t *a, *b, *c;
	int fa, fb, fc;

	fa = alloc(self->dev, ALLOC_LEN, "vfio-a");
	ASSERT_LE(0, fa) TH_LOG("alloc: %s", strerror(-fa));
	pa = phys_of(fa);
	ASSERT_NE(0, pa);
	a = map(fa, ALLOC_LEN);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, dma_map(&self->e, a, IOVA_ALLOC, ALLOC_LEN));

	/* Owned: the device writes and reads. */
	ASSERT_EQ(0, device_write(&self->e, self->scratch, IOVA_ALLOC + 4096, 0xa1));
	EXPECT_TRUE(matches(a + 4096 / 8, 0xa1)) TH_LOG("the device's write did not arrive");
	pattern(a + 8192 / 8, 0xa2);
	ASSERT_EQ(0, device_read(&self->e, self->scratch, IOVA_ALLOC + 8192));
	EXPECT_TRUE(matches(self->scratch, 0xa2)) TH_LOG("the device did not read it");

	/* The owner frees it; the IOVA range stays mapped. */
	ASSERT_EQ(0, munmap(a, ALLOC_LEN));
	ASSERT_EQ(0, close(fa));
	fb = alloc(self->dev, ALLOC_LEN, "vfio-b");
	ASSERT_LE(0, fb);
	pb = phys_of(fb);
	b = map(fb, ALLOC_LEN);
	ASSERT_NE(NULL, b);
	EXPECT_NE(pa, pb)
		TH_LOG("the next owner got memory the device still maps (%#" PRIx64 ")", pa);
	EXPECT_EQ(self->free0 - 2 * ALLOC_LEN, node_free_bytes(0))
		TH_LOG("the DMA-mapped memory is not counted as allocated");

	ASSERT_EQ(0, device_write(&self->e, self->scratch, IOVA_ALLOC + 4096, 0xb1));
	EXPECT_FALSE(matches(b + 4096 / 8, 0xb1))
		TH_LOG("the device wrote into the next owner's memory");
	pattern(b + 8192 / 8, 0xb2);
	ASSERT_EQ(0, device_read(&self->e, self->scratch, IOVA_ALLOC + 8192));
	EXPECT_FALSE(matches(self->scratch, 0xb2))
		TH_LOG("the device read the next owner's memory");

	/* Unmapped: the memory goes back to the pool and the device to nothing. */
	ASSERT_EQ(0, dma_unmap(&self->e, IOVA_ALLOC, ALLOC_LEN));
	EXPECT_EQ(self->free0 - ALLOC_LEN, node_free_bytes(0));
	fc = alloc(self->dev, ALLOC_LEN, "vfio-c");
	ASSERT_LE(0, fc);
	pc = phys_of(fc);
	/*
	 * A 2 MiB ALLOC is served from a per-CPU magazine, whose refill passes
	 * over a block the background zeroer is zeroing at that moment (the
	 * one just unmapped): until it comes back, give the block back, let
	 * the zeroer finish, empty the magazines (a request the node cannot
	 * satisfy gives every cached block back to the allocator) and ask
	 * again, for 2 s at most.
	 */
	for (int tries = 0; pc != pa && tries < 200; tries++) {
		ASSERT_EQ(0, close(fc));
		usleep(10000);
		ASSERT_EQ(-ENOMEM, alloc_aligned(self->dev, node_free_bytes(0) + ALLOC_LEN,
						 ALLOC_LEN, "vfio-drain"));
		fc = alloc(self->dev, ALLOC_LEN, "vfio-c");
		ASSERT_LE(0, fc);
		pc = phys_of(fc);
	}
	EXPECT_EQ(pa, pc) TH_LOG("the unmapped memory did not go back to the pool");
	c = map(fc, ALLOC_LEN);
	ASSERT_NE(NULL, c);
	pattern(c + 8192 / 8, 0xc2);
	ASSERT_EQ(0, device_write(&self->e, self->scratch, IOVA_ALLOC + 4096, 0xc1));
	EXPECT_FALSE(matches(c + 4096 / 8, 0xc1)) TH_LOG("an unmapped IOVA reached memory");
	ASSERT_EQ(0, device_read(&self->e, self->scratch, IOVA_ALLOC + 8192));
	EXPECT_FALSE(matches(self->scratch, 0xc2));
	munmap(b, ALLOC_LEN);
	munmap(c, ALLOC_LEN);
	close(fb);
	close(fc);
}

/*
 * One DMA mapping over two allocations mapped side by side holds both;
 * closing the container (without an unmap) frees both.
 */
TEST_F(vfio, container_release_frees_what_it_held)
{
	char *va;
	int fa, fb;

	fa = alloc(self->dev, ALLOC_LEN, "vfio-a");
	ASSERT_LE(0, fa);
	fb = alloc(self->dev, ALLOC_LEN, "vfio-b");
	ASSERT_LE(0, fb);
	va = mmap(NULL, 2 * ALLOC_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, va);
	ASSERT_EQ(va, mmap(va, ALLOC_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fa, 0));
	ASSERT_EQ(va + ALLOC_LEN, mmap(va + ALLOC_LEN, ALLOC_LEN, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_FIXED, fb, 0));
	ASSERT_EQ(0, dma_map(&self->e, va, IOVA_ALLOC, 2 * ALLOC_LEN));
	munmap(va, 2 * ALLOC_LEN);
	close(fa);
	close(fb);
	EXPECT_EQ(self->free0 - 2 * ALLOC_LEN, node_free_bytes(0))
		TH_LOG("freed while the device maps it");
	edu_close(&self->e);
	EXPECT_EQ(self->free0, node_free_bytes(0)) TH_LOG("not freed with the container");
}

/* A region stays while a device maps it: DESTROY is refused until the unmap. */
TEST_F(vfio, region_is_not_destroyed_while_dma_mapped)
{
	struct extmem_region_args r = {
		.size = sizeof(r),
		.length = ALLOC_LEN,
		.node = 0,
		.mode = 0600,
		.name = REGION_NAME,
	};
	struct extmem_region_args d = { .size = sizeof(d), .name = REGION_NAME };
	void *p;
	int fd;

	ASSERT_EQ(0, ioctl(self->dev, EXTMEM_IOC_REGION_CREATE, &r)) TH_LOG("%s", strerror(errno));
	fd = open("/dev/extmem_region/" REGION_NAME, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	p = map(fd, ALLOC_LEN);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, dma_map(&self->e, p, IOVA_REGION, ALLOC_LEN));
	munmap(p, ALLOC_LEN);
	close(fd);
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_REGION_DESTROY, &d))
		TH_LOG("destroyed while a device maps it");
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, dma_unmap(&self->e, IOVA_REGION, ALLOC_LEN));
	EXPECT_EQ(0, ioctl(self->dev, EXTMEM_IOC_REGION_DESTROY, &d)) TH_LOG("%s", strerror(errno));
}

/* From patches/0013 (include/uapi/linux/kvm.h), in case the header predates it. */
#ifndef GUEST_MEMFD_FLAG_EXTMEM
#define GUEST_MEMFD_FLAG_EXTMEM		(1ULL << 2)
#endif

/*
 * KVM_CREATE_GUEST_MEMFD over allocation fd @fd of @len bytes in a new
 * protected VM (its fd in *@vm): the guest_memfd's fd, or -errno.
 */
static int gmem_over(int *vm, int fd, uint64_t len)
{
	struct {
		uint64_t size, flags;
		uint32_t extmem_fd, pad;
		uint64_t reserved[5];
	} a = { .size = len, .flags = GUEST_MEMFD_FLAG_EXTMEM, .extmem_fd = fd };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), g;

	if (kvm < 0)
		return -errno;
	*vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	close(kvm);
	if (*vm < 0)
		return -errno;
	g = ioctl(*vm, KVM_CREATE_GUEST_MEMFD, &a);
	return g < 0 ? -errno : g;
}

/*
 * A device's DMA mapping made while the allocation was mapped outlives the
 * munmap that binding it to a guest_memfd needs: the device could then
 * reach memory that is private to the guest. Binding is refused (EBUSY)
 * while the DMA mapping lasts, and works once it is gone.
 */
TEST_F(vfio, gmem_bind_refused_while_dma_mapped)
{
	int fa, vm = -1, vm2 = -1, g;
	void *a;

	fa = alloc(self->dev, ALLOC_LEN, "vfio-gmem");
	ASSERT_LE(0, fa);
	a = map(fa, ALLOC_LEN);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, dma_map(&self->e, a, IOVA_ALLOC, ALLOC_LEN));
	ASSERT_EQ(0, munmap(a, ALLOC_LEN));

	g = gmem_over(&vm, fa, ALLOC_LEN);
	if (g == -ENOENT || g == -EINVAL || (vm < 0 && g < 0)) {
		if (vm >= 0)
			close(vm);
		dma_unmap(&self->e, IOVA_ALLOC, ALLOC_LEN);
		close(fa);
		SKIP(return, "no KVM with GUEST_MEMFD_FLAG_EXTMEM here (%s)", strerror(-g));
	}
	EXPECT_EQ(-EBUSY, g) TH_LOG("bound while a device maps it for DMA");
	if (g >= 0)
		close(g);

	ASSERT_EQ(0, dma_unmap(&self->e, IOVA_ALLOC, ALLOC_LEN));
	g = gmem_over(&vm2, fa, ALLOC_LEN);
	EXPECT_LE(0, g) TH_LOG("not bound once the DMA mapping is gone: %s", strerror(-g));
	if (g >= 0)
		close(g);
	close(vm2);
	close(vm);
	close(fa);
}

TEST_HARNESS_MAIN
