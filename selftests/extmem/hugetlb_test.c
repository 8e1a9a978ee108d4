// SPDX-License-Identifier: GPL-2.0
/*
 * extmem HugeTLB conversion: /sys/kernel/mm/extmem/nodeN/hugetlb_{1G,2M}
 * and EXTMEM_IOC_HUGETLB.
 *
 * Every test starts from and returns to no converted pages, and checks
 * what the rest of the kernel sees: the node's HugeTLB counters, memory
 * blocks in /sys/devices/system/memory/, the areas' free bytes, and (as
 * root, through /proc/self/pagemap) where a HugeTLB mapping's pages are.
 *
 * The test VM boots with two NUMA nodes of 3 GiB and "extmem=0:2G,1:2G".
 * 1 GiB pages are tested on the highest node with an area, 2 MiB pages on
 * the lowest; a test skips what the machine cannot do (no 1 GiB pages, no
 * area of 2 GiB on that node).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <linux/extmem.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "extmem_util.h"

#define NODES		"/sys/devices/system/node"
#define MEMORY		"/sys/devices/system/memory"
#define MAX_AREAS	64


#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT	26
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB	(21 << MAP_HUGE_SHIFT)
#endif
#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB	(30 << MAP_HUGE_SHIFT)
#endif
#define MPOL_BIND	2

struct area {
	int node;
	uint64_t base, total;
};

static const char *size_name(uint64_t page_size)
{
	return page_size == GiB ? "1G" : "2M";
}

/* nodeN/hugetlb_{1G,2M}: the count, or -errno. */
static int64_t conv_get(int node, uint64_t page_size)
{
	char path[128];
	uint64_t v;
	int rc;

	snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_%s", node, size_name(page_size));
	rc = read_u64(path, &v);
	return rc ? rc : (int64_t)v;
}

static int conv_set(int node, uint64_t page_size, uint64_t count)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_%s", node, size_name(page_size));
	snprintf(buf, sizeof(buf), "%" PRIu64 "\n", count);
	return write_str(path, buf);
}

/* The node's HugeTLB counter @what (nr_hugepages, free_hugepages, ...). */
static int64_t node_huge(int node, uint64_t page_size, const char *what)
{
	char path[160];
	uint64_t v;
	int rc;

	snprintf(path, sizeof(path), NODES "/node%d/hugepages/hugepages-%" PRIu64 "kB/%s",
		 node, page_size >> 10, what);
	rc = read_u64(path, &v);
	return rc ? rc : (int64_t)v;
}

static int read_areas(int dev, struct area *a)
{
	int n;

	for (n = 0; n < MAX_AREAS; n++) {
		struct extmem_area_info ai;

		memset(&ai, 0, sizeof(ai));
		ai.size = sizeof(ai);
		ai.index = n;
		if (ioctl(dev, EXTMEM_IOC_AREA_INFO, &ai) < 0)
			return errno == ENOENT ? n : -errno;
		a[n].node = ai.node;
		a[n].base = ai.base;
		a[n].total = ai.total;
	}
	return n;
}

/* Free bytes of all areas of @node, from sysfs. */
static uint64_t node_free(const struct area *a, int n, int node)
{
	uint64_t sum = 0, v;
	char path[128];
	int i;

	for (i = 0; i < n; i++) {
		if (a[i].node != node)
			continue;
		snprintf(path, sizeof(path), SYSFS "/area%d/free_bytes", i);
		if (!read_u64(path, &v))
			sum += v;
	}
	return sum;
}

static uint64_t node_total(const struct area *a, int n, int node)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < n; i++)
		if (a[i].node == node)
			sum += a[i].total;
	return sum;
}

/* Memory block devices inside any area: only converted memory has them. */
static int blocks_in_areas(const struct area *a, int n)
{
	uint64_t bs, b;
	char path[128];
	int i, count = 0;

	if (read_u64(MEMORY "/block_size_bytes", &bs) || !bs)
		return -1;
	/* block_size_bytes is hex without 0x. */
	{
		char buf[64];

		read_str(MEMORY "/block_size_bytes", buf, sizeof(buf));
		bs = strtoull(buf, NULL, 16);
	}
	for (i = 0; i < n; i++)
		for (b = a[i].base / bs; b < (a[i].base + a[i].total) / bs; b++) {
			snprintf(path, sizeof(path), MEMORY "/memory%" PRIu64, b);
			if (!access(path, F_OK))
				count++;
		}
	return count;
}

/* The physical address behind @va (root only), or 0. */
static uint64_t virt_to_phys(void *va)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, 8, (uintptr_t)va / pg * 8) != 8)
		e = 0;
	close(fd);
	if (!(e & (1ULL << 63)) || !(e & ((1ULL << 55) - 1)))
		return 0;
	return (e & ((1ULL << 55) - 1)) * pg + (uintptr_t)va % pg;
}

static int bind_to(int node)
{
	unsigned long mask = 1UL << node;

	return syscall(SYS_set_mempolicy, MPOL_BIND, &mask, 8 * sizeof(mask)) ? -errno : 0;
}

static int in_areas(const struct area *a, int n, int node, uint64_t phys, uint64_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (a[i].node == node && phys >= a[i].base &&
		    phys + len <= a[i].base + a[i].total)
			return 1;
	return 0;
}

/*
 * In a child bound to @node: maps @nr HugeTLB pages of @page_size, writes
 * the first word of every 4 KiB, reads it back and checks that each huge
 * page lies, whole and aligned, in an extmem area of @node. Returns the
 * child's exit code: 0 ok, 1 mmap failed, 2 data wrong, 3 page outside
 * extmem, 4 bind failed.
 */
static int map_and_check(const struct area *a, int n, int node, uint64_t page_size, int nr)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		size_t len = page_size * nr, o;
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			    (page_size == GiB ? MAP_HUGE_1GB : MAP_HUGE_2MB);
		char *p;

		if (bind_to(node))
			_exit(4);
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (p == MAP_FAILED)
			_exit(1);
		for (o = 0; o < len; o += 4096)
			*(volatile uint64_t *)(p + o) = o ^ 0x5a5a5a5a5a5a5a5aULL;
		for (o = 0; o < len; o += 4096)
			if (*(volatile uint64_t *)(p + o) != (o ^ 0x5a5a5a5a5a5a5a5aULL))
				_exit(2);
		for (o = 0; o < len; o += page_size) {
			uint64_t phys = virt_to_phys(p + o);
			uint64_t last = virt_to_phys(p + o + page_size - 4096);

			if (!phys || phys % page_size || last != phys + page_size - 4096 ||
			    !in_areas(a, n, node, phys, page_size))
				_exit(3);
		}
		munmap(p, len);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static int hugetlb_ioctl(int dev, struct extmem_hugetlb_args *h, int node,
			 uint64_t page_size, uint64_t target)
{
	memset(h, 0, sizeof(*h));
	h->size = sizeof(*h);
	h->node = node;
	h->page_size = page_size;
	h->target = target;
	return ioctl(dev, EXTMEM_IOC_HUGETLB, h) ? -errno : 0;
}

static int has_1g_pages(void)
{
	return !access(NODES "/node0/hugepages/hugepages-1048576kB", F_OK);
}

/* A line of /proc/meminfo in bytes, or 0. */
static uint64_t meminfo_bytes(const char *key)
{
	char line[256];
	uint64_t v = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			v = strtoull(line + strlen(key), NULL, 10) * 1024;
			break;
		}
	fclose(f);
	return v;
}

/* Bytes of "System RAM (extmem)" in /proc/iomem (root sees the addresses). */
static uint64_t iomem_extmem_bytes(void)
{
	unsigned long long s, e;
	char line[256], name[128];
	uint64_t sum = 0;
	FILE *f = fopen("/proc/iomem", "re");

	if (!f)
		return ~0ULL;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %llx-%llx : %127[^\n]", &s, &e, name) == 3 &&
		    !strcmp(name, "System RAM (extmem)"))
			sum += e - s + 1;
	fclose(f);
	return sum;
}

static uint64_t block_size(void)
{
	char buf[64];

	if (read_str(MEMORY "/block_size_bytes", buf, sizeof(buf)))
		return 0;
	return strtoull(buf, NULL, 16);
}

FIXTURE(conv)
{
	int dev;
	int n;
	struct area a[MAX_AREAS];
	int node_1g, node_2m;	/* -1 if none fits */
	uint64_t free_1g, free_2m;
	uint64_t memtotal0;	/* bytes, with nothing converted */
};

FIXTURE_SETUP(conv)
{
	int i;

	self->dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist (kernel without CONFIG_EXTMEM?)");
	if (self->dev < 0 && (errno == EACCES || errno == EPERM))
		SKIP(return, "opening " DEV " needs root (CAP_SYS_ADMIN)");
	ASSERT_LE(0, self->dev);
	self->n = read_areas(self->dev, self->a);
	ASSERT_LE(0, self->n);
	if (!self->n)
		SKIP(return, "no extmem areas (boot with extmem=)");
	self->node_1g = self->node_2m = -1;
	for (i = 0; i < self->n; i++) {
		int node = self->a[i].node;

		if (node_total(self->a, self->n, node) >= 2 * GiB && has_1g_pages() &&
		    node > self->node_1g)
			self->node_1g = node;
		if (self->node_2m < 0 || node < self->node_2m)
			self->node_2m = node;
	}
	if (self->node_1g >= 0) {
		ASSERT_EQ(0, conv_get(self->node_1g, GiB)) TH_LOG("pages left converted");
		self->free_1g = node_free(self->a, self->n, self->node_1g);
	}
	ASSERT_EQ(0, conv_get(self->node_2m, 2 * MiB)) TH_LOG("pages left converted");
	self->free_2m = node_free(self->a, self->n, self->node_2m);
	ASSERT_EQ(0, blocks_in_areas(self->a, self->n));
	self->memtotal0 = meminfo_bytes("MemTotal:");
	ASSERT_LT(0, self->memtotal0);
}

FIXTURE_TEARDOWN(conv)
{
	if (self->dev < 0)
		return;
	if (self->node_1g >= 0)
		conv_set(self->node_1g, GiB, 0);
	if (self->node_2m >= 0)
		conv_set(self->node_2m, 2 * MiB, 0);
	close(self->dev);
}

/*
 * What extmem says it holds agrees with the rest of the kernel: the sum of
 * nodeN/hugetlb_plugged_bytes is what /proc/iomem shows as "System RAM
 * (extmem)" and what the memory blocks in the areas cover, and MemTotal
 * grew by exactly the extmem HugeTLB pages (spare pieces are not counted).
 * Returns 0, or the number of the check that failed (and logs it, unless
 * @step is NULL).
 */
static int agree(struct __test_metadata *_metadata, FIXTURE_DATA(conv) *self,
		 const char *step)
{
	uint64_t plugged = 0, pages = 0, v, iomem, blocks, total;
	int nodes[MAX_AREAS], nn = 0, i, j;
	char path[128];
	int64_t c;

	for (i = 0; i < self->n; i++) {
		for (j = 0; j < nn && nodes[j] != self->a[i].node; j++)
			;
		if (j == nn)
			nodes[nn++] = self->a[i].node;
	}
	for (i = 0; i < nn; i++) {
		snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_plugged_bytes", nodes[i]);
		if (read_u64(path, &v))
			return 1;
		plugged += v;
		c = conv_get(nodes[i], 2 * MiB);
		if (c < 0)
			return 2;
		pages += c * 2 * MiB;
		c = conv_get(nodes[i], GiB);
		if (c > 0)
			pages += c * GiB;
	}
	iomem = iomem_extmem_bytes();
	blocks = blocks_in_areas(self->a, self->n) * block_size();
	total = meminfo_bytes("MemTotal:");
	if (plugged != iomem || plugged != blocks || total != self->memtotal0 + pages) {
		if (step)
				TH_LOG("%s: plugged %" PRIu64 " MiB, /proc/iomem %" PRIu64 " MiB, blocks %"
			       PRIu64 " MiB, MemTotal %+" PRId64 " KiB for %" PRIu64 " MiB of pages",
			       step, plugged >> 20, iomem >> 20, blocks >> 20,
			       (int64_t)(total - self->memtotal0) / 1024, pages >> 20);
		return 3;
	}
	return 0;
}

/*
 * Waits (up to 5 s) until no memory block is left in the areas and @node's
 * areas have @free bytes free again: a unit a HugeTLB shrink emptied is
 * removed, and its range freed, by a work item. Returns the blocks left.
 */
static int wait_given_back(const struct area *a, int n, int node, uint64_t free)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int i;

	for (i = 0; i < 250; i++) {
		if (!blocks_in_areas(a, n) && node_free(a, n, node) == free)
			return 0;
		nanosleep(&ts, NULL);
	}
	return blocks_in_areas(a, n);
}

/* Convert, map, give back, for @nr pages of @page_size on @node. */
static void convert_map_shrink(struct __test_metadata *_metadata, FIXTURE_DATA(conv) *self,
			       int node, uint64_t page_size, int nr, uint64_t free0)
{
	int64_t nr0 = node_huge(node, page_size, "nr_hugepages");
	int64_t fr0 = node_huge(node, page_size, "free_hugepages");
	uint64_t bs, plugged;
	char buf[64];

	ASSERT_LE(0, nr0);
	ASSERT_LE(0, fr0);
	ASSERT_EQ(0, conv_set(node, page_size, nr));
	EXPECT_EQ(nr, conv_get(node, page_size));
	EXPECT_EQ(nr0 + nr, node_huge(node, page_size, "nr_hugepages"));
	EXPECT_EQ(fr0 + nr, node_huge(node, page_size, "free_hugepages"));

	/* Exactly the memory blocks covering the converted range are there. */
	ASSERT_EQ(0, read_str(MEMORY "/block_size_bytes", buf, sizeof(buf)));
	bs = strtoull(buf, NULL, 16);
	snprintf(buf, sizeof(buf), SYSFS "/node%d/hugetlb_plugged_bytes", node);
	ASSERT_EQ(0, read_u64(buf, &plugged));
	if (page_size == GiB) {
		EXPECT_EQ(nr * GiB, plugged);
	} else {
		EXPECT_EQ((nr * page_size + bs - 1) / bs * bs, plugged);
	}
	EXPECT_EQ(plugged / bs, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(free0 - plugged, node_free(self->a, self->n, node));
	TH_LOG("node %d: %d x %s: %" PRIu64 " MiB hot-plugged in %" PRIu64 " blocks", node, nr,
	       size_name(page_size), plugged >> 20, plugged / bs);

	EXPECT_EQ(0, map_and_check(self->a, self->n, node, page_size, nr));

	ASSERT_EQ(0, conv_set(node, page_size, 0));
	EXPECT_EQ(0, conv_get(node, page_size));
	EXPECT_EQ(nr0, node_huge(node, page_size, "nr_hugepages"));
	EXPECT_EQ(fr0, node_huge(node, page_size, "free_hugepages"));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(free0, node_free(self->a, self->n, node));
}

TEST_F_TIMEOUT(conv, gib_pages_on_node, 240)
{
	if (self->node_1g < 0)
		SKIP(return, "no 1 GiB pages or no node with 2 GiB of extmem");
	convert_map_shrink(_metadata, self, self->node_1g, GiB, 2, self->free_1g);
}

TEST_F_TIMEOUT(conv, two_mib_pages_on_node, 240)
{
	convert_map_shrink(_metadata, self, self->node_2m, 2 * MiB, 3, self->free_2m);
}

/* More 2 MiB pages than one memory block holds: two blocks, all used. */
TEST_F_TIMEOUT(conv, two_mib_pages_span_blocks, 240)
{
	convert_map_shrink(_metadata, self, self->node_2m, 2 * MiB, 100, self->free_2m);
}

/* Asking for more than the node has converts nothing. */
TEST_F(conv, too_many_is_enospc_and_converts_nothing)
{
	int node = self->node_1g >= 0 ? self->node_1g : self->node_2m;
	uint64_t ps = self->node_1g >= 0 ? GiB : 2 * MiB;
	uint64_t free0 = node_free(self->a, self->n, node);
	uint64_t too_many = free0 / ps + 1;
	int64_t nr0 = node_huge(node, ps, "nr_hugepages");
	struct extmem_hugetlb_args h;

	/*
	 * Up to 2^64 - 2 (2^64 - 1 is EXTMEM_HUGETLB_QUERY): near 2^64 the
	 * rounding to memory blocks used to wrap, the call succeeded with
	 * nothing converted and the first one per boot hit a WARN.
	 */
	const uint64_t edges[] = { too_many, 1ULL << 40, 1ULL << 63, ~0ULL - 64, ~0ULL - 63,
				   ~0ULL - 62, ~0ULL - 2, ~0ULL - 1 };
	unsigned int i;

	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		EXPECT_EQ(-ENOSPC, conv_set(node, ps, edges[i])) TH_LOG("sysfs target %#llx",
									(unsigned long long)edges[i]);
		EXPECT_EQ(-ENOSPC, hugetlb_ioctl(self->dev, &h, node, ps, edges[i]))
			TH_LOG("ioctl target %#llx", (unsigned long long)edges[i]);
		/* too_many counts pages of ps: as 2 MiB pages, it may fit. */
		if (i > 0)
			EXPECT_EQ(-ENOSPC, hugetlb_ioctl(self->dev, &h, node, 2 * MiB, edges[i]))
				TH_LOG("ioctl 2 MiB target %#llx", (unsigned long long)edges[i]);
	}
	EXPECT_EQ(0, conv_get(node, ps));
	EXPECT_EQ(nr0, node_huge(node, ps, "nr_hugepages"));
	EXPECT_EQ(free0, node_free(self->a, self->n, node));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
}

/* Pages in use stay; the free ones go back and the caller hears EBUSY. */
TEST_F_TIMEOUT(conv, shrink_in_use_is_ebusy, 240)
{
	int node = self->node_1g >= 0 ? self->node_1g : self->node_2m;
	uint64_t ps = self->node_1g >= 0 ? GiB : 2 * MiB;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
		    (ps == GiB ? MAP_HUGE_1GB : MAP_HUGE_2MB);
	struct extmem_hugetlb_args h;
	char *p;

	ASSERT_EQ(0, conv_set(node, ps, 2));
	ASSERT_EQ(0, bind_to(node));
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, flags, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	EXPECT_EQ(1, node_huge(node, ps, "free_hugepages"));

	EXPECT_EQ(-EBUSY, conv_set(node, ps, 0));
	EXPECT_EQ(1, conv_get(node, ps));
	EXPECT_EQ(0, node_huge(node, ps, "free_hugepages"));
	EXPECT_EQ(1, node_huge(node, ps, "nr_hugepages"));

	/* The ioctl says the same and reports the count it reached. */
	EXPECT_EQ(-EBUSY, hugetlb_ioctl(self->dev, &h, node, ps, 0));
	EXPECT_EQ(1, h.count);

	munmap(p, ps);
	EXPECT_EQ(0, conv_set(node, ps, 0));
	EXPECT_EQ(0, conv_get(node, ps));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(node == self->node_1g ? self->free_1g : self->free_2m,
		  node_free(self->a, self->n, node));
}

/* Shrinking nr_hugepages hands extmem's pages back to extmem, not to buddy. */
TEST_F_TIMEOUT(conv, nr_hugepages_shrink_returns_to_extmem, 240)
{
	int node = self->node_1g >= 0 ? self->node_1g : self->node_2m;
	uint64_t ps = self->node_1g >= 0 ? GiB : 2 * MiB;
	uint64_t free0 = node_free(self->a, self->n, node);
	char path[160];

	ASSERT_EQ(0, conv_set(node, ps, 1));
	ASSERT_EQ(1, node_huge(node, ps, "nr_hugepages"));
	snprintf(path, sizeof(path), NODES "/node%d/hugepages/hugepages-%" PRIu64 "kB/nr_hugepages",
		 node, ps >> 10);
	ASSERT_EQ(0, write_str(path, "0"));
	EXPECT_EQ(0, node_huge(node, ps, "nr_hugepages"));
	EXPECT_EQ(0, conv_get(node, ps));
	EXPECT_EQ(0, wait_given_back(self->a, self->n, node, free0));
	EXPECT_EQ(free0, node_free(self->a, self->n, node));
}

/* Demoting a 1 GiB extmem page gives 2 MiB extmem pages, which go back too. */
TEST_F_TIMEOUT(conv, demoted_gib_page_returns_to_extmem, 240)
{
	int node = self->node_1g;
	char path[160];

	if (node < 0)
		SKIP(return, "no 1 GiB pages or no node with 2 GiB of extmem");
	ASSERT_EQ(0, conv_set(node, GiB, 1));
	snprintf(path, sizeof(path), NODES "/node%d/hugepages/hugepages-1048576kB/demote", node);
	if (write_str(path, "1"))
		SKIP(conv_set(node, GiB, 0); return, "cannot demote (%s)", strerror(errno));
	EXPECT_EQ(0, conv_get(node, GiB));
	EXPECT_EQ(512, conv_get(node, 2 * MiB));
	EXPECT_EQ(512, node_huge(node, 2 * MiB, "nr_hugepages"));
	EXPECT_EQ(0, map_and_check(self->a, self->n, node, 2 * MiB, 4));
	EXPECT_EQ(0, conv_set(node, 2 * MiB, 0));
	EXPECT_EQ(0, node_huge(node, 2 * MiB, "nr_hugepages"));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(self->free_1g, node_free(self->a, self->n, node));
}

/* Spare 2 MiB places of a block are used before a new block is plugged. */
TEST_F_TIMEOUT(conv, two_mib_reuses_spare_places, 240)
{
	int node = self->node_2m;
	uint64_t plugged1, plugged2;
	char path[128];

	snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_plugged_bytes", node);
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 1));
	ASSERT_EQ(0, read_u64(path, &plugged1));
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 5));
	ASSERT_EQ(0, read_u64(path, &plugged2));
	EXPECT_EQ(plugged1, plugged2);
	EXPECT_EQ(5, node_huge(node, 2 * MiB, "nr_hugepages"));
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 2));
	ASSERT_EQ(0, read_u64(path, &plugged2));
	EXPECT_EQ(plugged1, plugged2);
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 0));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(self->free_2m, node_free(self->a, self->n, node));
}

TEST_F(conv, rejects_bad_input)
{
	static const char *const knobs[] = { "raw_gib", "range_blocks", "owned_range" };
	/* 2^32 + 1 and 2^64 wrap to 1 and 0 if parsed into a narrower type. */
	static const char *const bad[] = { "2", "-1", "banana", "\n", "9", "1x", "0x1", "Y",
					   "4294967297", "18446744073709551616",
					   "18446744073709551615" };
	int node = self->node_2m, k, i;
	struct extmem_hugetlb_args h;
	char path[128], val[8], after[8];

	snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_2M", node);
	EXPECT_EQ(-EINVAL, write_str(path, "abc"));
	EXPECT_EQ(-EINVAL, write_str(path, "1.5"));
	EXPECT_EQ(-EINVAL, write_str(path, "-1"));
	EXPECT_EQ(-EINVAL, write_str(path, "2M"));

	/* Page sizes that are not a HugeTLB page size. */
	EXPECT_EQ(-EINVAL, hugetlb_ioctl(self->dev, &h, node, 3 * MiB, 1));
	EXPECT_EQ(-EINVAL, hugetlb_ioctl(self->dev, &h, node, 4096, 1));
	EXPECT_EQ(-EINVAL, hugetlb_ioctl(self->dev, &h, node, 0, 1));
	EXPECT_EQ(-EINVAL, hugetlb_ioctl(self->dev, &h, node, 2 * MiB + 4096, 1));
	/* A node without extmem, or none at all: to set and to query. */
	EXPECT_EQ(-ENODEV, hugetlb_ioctl(self->dev, &h, 63, 2 * MiB, 1));
	EXPECT_EQ(-ENODEV, hugetlb_ioctl(self->dev, &h, -1, 2 * MiB, 1));
	EXPECT_EQ(-ENODEV, hugetlb_ioctl(self->dev, &h, 99, 2 * MiB, 1));
	EXPECT_EQ(-ENODEV, hugetlb_ioctl(self->dev, &h, 99, 2 * MiB, EXTMEM_HUGETLB_QUERY));
	EXPECT_EQ(-ENODEV, hugetlb_ioctl(self->dev, &h, 63, 2 * MiB, EXTMEM_HUGETLB_QUERY));
	EXPECT_EQ(-ENODEV, hugetlb_ioctl(self->dev, &h, -1, 2 * MiB, EXTMEM_HUGETLB_QUERY));

	/*
	 * The kernel matches type, number and direction, not the size: the
	 * same command with another size works, without _IOC_READ|_IOC_WRITE
	 * it is unknown.
	 */
	hugetlb_ioctl(self->dev, &h, node, 2 * MiB, EXTMEM_HUGETLB_QUERY);
	EXPECT_EQ(0, ioctl(self->dev, _IOC(_IOC_READ | _IOC_WRITE, EXTMEM_IOCTL_TYPE, 0x02, 200),
			   &h));
	EXPECT_EQ(-1, ioctl(self->dev, _IO(EXTMEM_IOCTL_TYPE, 0x02), &h));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->dev, _IOW(EXTMEM_IOCTL_TYPE, 0x02, h), &h));
	EXPECT_EQ(ENOTTY, errno);

	/* Reserved fields and flags. */
	memset(&h, 0, sizeof(h));
	h.size = sizeof(h);
	h.node = node;
	h.page_size = 2 * MiB;
	h.flags = 1;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_HUGETLB, &h));
	EXPECT_EQ(EINVAL, errno);
	h.flags = 0;
	h.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_HUGETLB, &h));
	EXPECT_EQ(EINVAL, errno);
	h.reserved[1] = 0;
	h.size = EXTMEM_HUGETLB_ARGS_SIZE_VER0 - 8;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_HUGETLB, &h));
	EXPECT_EQ(EINVAL, errno);

	/*
	 * The benchmark's debugfs switches (root only) are booleans: values
	 * that are not are refused and change nothing.
	 */
	for (k = 0; k < (int)ARRAY_SIZE(knobs); k++) {
		snprintf(path, sizeof(path), "/sys/kernel/debug/extmem_hugetlb/%s", knobs[k]);
		if (read_str(path, val, sizeof(val)))
			continue;
		EXPECT_TRUE(!strcmp(val, "0\n") || !strcmp(val, "1\n")) TH_LOG("%s reads %s", knobs[k], val);
		/* Writing what it reads is accepted. */
		EXPECT_EQ(0, write_str(path, val));
		for (i = 0; i < (int)ARRAY_SIZE(bad); i++) {
			EXPECT_EQ(-EINVAL, write_str(path, bad[i])) TH_LOG("%s '%s'", knobs[k], bad[i]);
			ASSERT_EQ(0, read_str(path, after, sizeof(after)));
			EXPECT_STREQ(val, after);
		}
	}

	EXPECT_EQ(0, conv_get(node, 2 * MiB));
	EXPECT_EQ(self->free_2m, node_free(self->a, self->n, node));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
}

/* The ioctl and sysfs are two views of one count. */
TEST_F(conv, ioctl_and_sysfs_agree)
{
	int node = self->node_2m;
	struct extmem_hugetlb_args h;

	ASSERT_EQ(0, hugetlb_ioctl(self->dev, &h, node, 2 * MiB, 2));
	EXPECT_EQ(2, h.count);
	EXPECT_EQ(2, conv_get(node, 2 * MiB));
	ASSERT_EQ(0, hugetlb_ioctl(self->dev, &h, node, 2 * MiB, EXTMEM_HUGETLB_QUERY));
	EXPECT_EQ(2, h.count);
	EXPECT_EQ(2, conv_get(node, 2 * MiB));
	ASSERT_EQ(0, hugetlb_ioctl(self->dev, &h, node, 2 * MiB, 0));
	EXPECT_EQ(0, h.count);
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
}

/* The numbers of up to @max memory blocks inside the areas, lowest first. */
static int area_blocks(const struct area *a, int n, uint64_t *ids, int max)
{
	uint64_t bs = block_size(), b;
	char path[128];
	int i, count = 0;

	if (!bs)
		return -1;
	for (i = 0; i < n; i++)
		for (b = a[i].base / bs; b < (a[i].base + a[i].total) / bs && count < max; b++) {
			snprintf(path, sizeof(path), MEMORY "/memory%" PRIu64, b);
			if (!access(path, F_OK))
				ids[count++] = b;
		}
	return count;
}

/* Writes @val to memory block @id's attribute @attr: 0 or -errno. */
static int block_write(uint64_t id, const char *attr, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), MEMORY "/memory%" PRIu64 "/%s", id, attr);
	return write_str(path, val);
}

static int block_online(uint64_t id)
{
	char path[128], buf[32] = "";

	snprintf(path, sizeof(path), MEMORY "/memory%" PRIu64 "/state", id);
	if (read_str(path, buf, sizeof(buf)))
		return -1;
	return !strncmp(buf, "online", 6);
}

/*
 * Tries every way sysfs offers to offline or re-online the block @id:
 * each is refused and the block stays online. Returns the number of
 * attempts that were not refused.
 */
static int try_foreign_hotplug(struct __test_metadata *_metadata, uint64_t id)
{
	static const char *const tries[][2] = {
		{ "state", "offline" }, { "online", "0" }, { "state", "online_kernel" },
		{ "state", "online_movable" }, { "state", "online" }, { "online", "1" },
	};
	unsigned int i;
	int bad = 0, rc;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		rc = block_write(id, tries[i][0], tries[i][1]);
		/*
		 * Offlining: EBUSY from extmem. Onlining a block that is online
		 * changes nothing (state: EINVAL from sysfs; online: 0).
		 */
		if ((i < 2 && rc != -EBUSY) || block_online(id) != 1) {
			TH_LOG("memory%" PRIu64 "/%s <- %s: %d, online %d", id, tries[i][0],
			       tries[i][1], rc, block_online(id));
			bad++;
		}
	}
	return bad;
}

/*
 * A converted block belongs to extmem: sysfs cannot offline it (which
 * dissolved free pages and let a later online hand them to the buddy
 * allocator while extmem still counted them) nor online it again.
 */
TEST_F_TIMEOUT(conv, foreign_offline_online_is_refused, 240)
{
	int node = self->node_1g >= 0 ? self->node_1g : self->node_2m;
	uint64_t ps = self->node_1g >= 0 ? GiB : 2 * MiB, ids[16];
	int nb, i;

	ASSERT_EQ(0, conv_set(node, ps, 1));
	ASSERT_EQ(0, conv_set(self->node_2m, 2 * MiB, 3));
	nb = area_blocks(self->a, self->n, ids, 16);
	ASSERT_LT(0, nb);
	EXPECT_EQ(0, agree(_metadata, self, "converted"));
	for (i = 0; i < nb; i++)
		EXPECT_EQ(0, try_foreign_hotplug(_metadata, ids[i]));
	EXPECT_EQ(0, agree(_metadata, self, "after the refused writes"));
	EXPECT_EQ(1, conv_get(node, ps));
	EXPECT_EQ(3, conv_get(self->node_2m, 2 * MiB));
	EXPECT_EQ(0, map_and_check(self->a, self->n, self->node_2m, 2 * MiB, 3));
	EXPECT_EQ(0, conv_set(node, ps, 0));
	EXPECT_EQ(0, conv_set(self->node_2m, 2 * MiB, 0));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(0, agree(_metadata, self, "given back"));
}

/* MemFree of @node in bytes, or 0. */
static uint64_t node_memfree(int node)
{
	char path[128], line[256], *p;
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), NODES "/node%d/meminfo", node);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, "MemFree:");
		if (p) {
			v = strtoull(p + 8, NULL, 10) * 1024;
			break;
		}
	}
	fclose(f);
	return v;
}

/* A child bound to @node that fills @npipes pipes and keeps churning them. */
static pid_t pipe_hog(int node, int npipes, uint64_t mlock_bytes)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	{
		static char buf[256 << 10];
		int fds[256][2], i, n = 0;
		char *m;

		if (bind_to(node))
			_exit(4);
		if (mlock_bytes) {
			m = mmap(NULL, mlock_bytes, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			if (m != MAP_FAILED)
				mlock(m, mlock_bytes);
		}
		memset(buf, 0x5a, sizeof(buf));
		for (i = 0; i < npipes && i < 256; i++, n++) {
			if (pipe2(fds[i], O_NONBLOCK))
				break;
			fcntl(fds[i][1], F_SETPIPE_SZ, 1 << 20);
			while (write(fds[i][1], buf, sizeof(buf)) > 0)
				;
		}
		/* Free and take pipe buffers, unmovable kernel pages, for ever. */
		for (;;)
			for (i = 0; i < n; i++) {
				if (read(fds[i][0], buf, sizeof(buf)) < 0)
					continue;
				while (write(fds[i][1], buf, sizeof(buf)) > 0)
					;
			}
	}
}

static void stop_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/*
 * The reproducer of the isolation review: a 1 GiB page demoted to 2 MiB
 * pages, its first block offlined and onlined again from sysfs, pipe
 * buffers filling the node, then the 2 MiB count written again. Used to
 * build HugeTLB folios on slab pages in use and panic; now the sysfs
 * writes are refused and nothing changes.
 */
TEST_F_TIMEOUT(conv, review_reproducer_demote_offline_online_kernel, 240)
{
	int node = self->node_1g;
	uint64_t ids[8];
	char path[160];
	pid_t hog;
	int nb;

	if (node < 0)
		SKIP(return, "no 1 GiB pages or no node with 2 GiB of extmem");
	ASSERT_EQ(0, conv_set(node, GiB, 1));
	snprintf(path, sizeof(path), NODES "/node%d/hugepages/hugepages-1048576kB/demote", node);
	if (write_str(path, "1"))
		SKIP(conv_set(node, GiB, 0); return, "cannot demote (%s)", strerror(errno));
	ASSERT_EQ(512, conv_get(node, 2 * MiB));
	nb = area_blocks(self->a, self->n, ids, 8);
	ASSERT_EQ(8, nb);
	EXPECT_EQ(-EBUSY, block_write(ids[0], "state", "offline"));
	EXPECT_NE(0, block_write(ids[0], "state", "online_kernel"));
	EXPECT_EQ(1, block_online(ids[0]));
	EXPECT_EQ(0, agree(_metadata, self, "after offline + online_kernel"));

	hog = pipe_hog(node, 128, 0);
	ASSERT_LT(0, hog);
	sleep(1);
	EXPECT_EQ(0, conv_set(node, 2 * MiB, 512));
	EXPECT_EQ(512, conv_get(node, 2 * MiB));
	EXPECT_EQ(0, map_and_check(self->a, self->n, node, 2 * MiB, 64));
	EXPECT_EQ(0, agree(_metadata, self, "after echo 512"));
	stop_child(hog);
	EXPECT_EQ(0, conv_set(node, 2 * MiB, 0));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(self->free_1g, node_free(self->a, self->n, node));
	EXPECT_EQ(0, agree(_metadata, self, "given back"));
}

/*
 * Grow and shrink, 2 MiB pages on one node and 1 GiB pages on another,
 * while a child bound to the 2 MiB node holds most of its free memory
 * mlock'd and churns pipe buffers (unmovable) there: after every step
 * extmem's counts, /proc/iomem, the memory blocks and MemTotal agree.
 */
TEST_F_TIMEOUT(conv, grow_shrink_under_pressure_agree, 300)
{
	static const int64_t t2m[] = { 1, 64, 65, 300, 7, 0, 128, 1, 500, 0 };
	static const int64_t t1g[] = { 1, 0, 2, 1, 0, 1, 0, 2, 0, 0 };
	int node = self->node_2m, i, rc;
	uint64_t free, lock;
	char step[64];
	pid_t hog;

	/* Leave the node 320 MiB: memmap and page tables of hot-plugged blocks come from it. */
	free = node_memfree(node);
	lock = free > 512 * MiB ? free - 320 * MiB : 0;
	TH_LOG("node %d: %" PRIu64 " MiB free, %" PRIu64 " MiB mlock'd", node, free >> 20,
	       lock >> 20);
	hog = pipe_hog(node, 64, lock);
	ASSERT_LT(0, hog);
	sleep(1);
	for (i = 0; i < (int)(sizeof(t2m) / sizeof(t2m[0])); i++) {
		rc = conv_set(node, 2 * MiB, t2m[i]);
		EXPECT_TRUE(!rc || rc == -ENOSPC || rc == -ENOMEM) TH_LOG("2M %" PRId64 ": %d",
									   t2m[i], rc);
		if (!rc)
			EXPECT_EQ(t2m[i], conv_get(node, 2 * MiB));
		snprintf(step, sizeof(step), "2M step %d (%" PRId64 ")", i, t2m[i]);
		EXPECT_EQ(0, agree(_metadata, self, step));
		if (self->node_1g < 0)
			continue;
		rc = conv_set(self->node_1g, GiB, t1g[i]);
		EXPECT_TRUE(!rc || rc == -ENOSPC || rc == -ENOMEM) TH_LOG("1G %" PRId64 ": %d",
									   t1g[i], rc);
		snprintf(step, sizeof(step), "1G step %d (%" PRId64 ")", i, t1g[i]);
		EXPECT_EQ(0, agree(_metadata, self, step));
	}
	stop_child(hog);
	EXPECT_EQ(0, conv_set(node, 2 * MiB, 0));
	if (self->node_1g >= 0)
		EXPECT_EQ(0, conv_set(self->node_1g, GiB, 0));
	EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
	EXPECT_EQ(self->free_2m, node_free(self->a, self->n, node));
	EXPECT_EQ(0, agree(_metadata, self, "given back"));
}

/*
 * A large shrink killed part way ends cleanly: what was taken out is
 * removed (by a work item if the signal stopped the offlining), what was
 * not stays converted, and everything agrees; no block is left half
 * removed.
 */
TEST_F_TIMEOUT(conv, killed_shrink_ends_cleanly, 300)
{
	static const unsigned int delay_us[] = { 0, 50, 200, 1000, 3000, 10000 };
	int node = self->node_2m, status, go[2];
	char c;
	uint64_t free0 = self->free_2m;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	unsigned int i, j;
	int64_t left;
	pid_t pid;

	for (i = 0; i < sizeof(delay_us) / sizeof(delay_us[0]); i++) {
		ASSERT_EQ(0, conv_set(node, 2 * MiB, 900));
		ASSERT_EQ(0, pipe(go));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			/* Tell the parent, then shrink at once: the delay starts here. */
			if (write(go[1], "g", 1) != 1)
				_exit(2);
			_exit(conv_set(node, 2 * MiB, 0) ? 1 : 0);
		}
		close(go[1]);
		ASSERT_EQ(1, read(go[0], &c, 1));
		close(go[0]);
		if (delay_us[i])
			usleep(delay_us[i]);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		left = conv_get(node, 2 * MiB);
		EXPECT_LE(0, left);
		EXPECT_GE(900, left);
		TH_LOG("killed %u us into the shrink: %" PRId64 " pages left, exit %s", delay_us[i],
		       left, WIFSIGNALED(status) ? "by SIGKILL" : "normal");
		/* A dying unit is removed by a work item: give it 5 s. */
		for (j = 0; j < 250 && agree(_metadata, self, NULL); j++)
			nanosleep(&ts, NULL);
		EXPECT_EQ(0, agree(_metadata, self, "after the kill"));
		EXPECT_EQ(0, conv_set(node, 2 * MiB, 0));
		EXPECT_EQ(0, wait_given_back(self->a, self->n, node, free0));
		EXPECT_EQ(0, agree(_metadata, self, "given back"));
	}
}

/* A counter of /proc/vmstat, or -1. */
static int64_t vmstat(const char *key)
{
	char line[256];
	size_t len = strlen(key);
	int64_t v = -1;
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ' ') {
			v = strtoll(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

#define HVO_SYSCTL	"/proc/sys/vm/hugetlb_optimize_vmemmap"

/* Pages of struct page for @bytes of memory (64-byte struct page). */
#define MEMMAP_PAGES(bytes)	((bytes) / 4096 * 64 / 4096)

/*
 * HugeTLB's vmemmap optimisation (HVO) applies to extmem's 1 GiB pages as
 * to its own: with vm.hugetlb_optimize_vmemmap off, converting one page
 * adds 16 MiB of struct pages (nr_memmap_pages grows by 4096); with it on,
 * HugeTLB frees all but one 4 KiB page of them (and the zone's shared tail
 * page, allocated once). The page still works (mapped, written, read back
 * at the right address) and giving it back restores the count exactly.
 */
TEST_F_TIMEOUT(conv, hvo_frees_struct_pages_of_gib_pages, 240)
{
	int node = self->node_1g, on;
	int64_t m0, m_off, m_on, m_back;
	uint64_t memfree_off, memfree_on;
	char old[16];

	if (node < 0)
		SKIP(return, "no 1 GiB pages or no node with 2 GiB of extmem");
	if (access(HVO_SYSCTL, F_OK))
		SKIP(return, HVO_SYSCTL " missing (no CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP)");
	ASSERT_EQ(0, read_str(HVO_SYSCTL, old, sizeof(old)));
	m0 = vmstat("nr_memmap_pages");
	ASSERT_LE(0, m0);

	ASSERT_EQ(0, write_str(HVO_SYSCTL, "0\n"));
	ASSERT_EQ(0, conv_set(node, GiB, 1));
	m_off = vmstat("nr_memmap_pages") - m0;
	memfree_off = meminfo_bytes("MemFree:");
	ASSERT_EQ(0, conv_set(node, GiB, 0));
	EXPECT_EQ(m0, vmstat("nr_memmap_pages"));

	ASSERT_EQ(0, write_str(HVO_SYSCTL, "1\n"));
	/* Twice: the first allocates the zone's shared tail page. */
	for (on = 0; on < 2; on++) {
		ASSERT_EQ(0, conv_set(node, GiB, 1));
		m_on = vmstat("nr_memmap_pages") - m0;
		memfree_on = meminfo_bytes("MemFree:");
		EXPECT_EQ(0, map_and_check(self->a, self->n, node, GiB, 1));
		ASSERT_EQ(0, conv_set(node, GiB, 0));
		m_back = vmstat("nr_memmap_pages") - m0;
		EXPECT_EQ(0, m_back);
	}
	write_str(HVO_SYSCTL, old);

	TH_LOG("struct pages of one 1 GiB page: %" PRId64 " KiB with HVO off, %" PRId64
	       " KiB with HVO on; MemFree %+" PRId64 " KiB", m_off * 4, m_on * 4,
	       (int64_t)(memfree_on - memfree_off) / 1024);
	EXPECT_EQ(MEMMAP_PAGES(GiB), m_off);
	EXPECT_EQ(1, m_on);
	EXPECT_EQ(0, wait_given_back(self->a, self->n, node, self->free_1g));
	EXPECT_EQ(0, agree(_metadata, self, "given back"));
}

/* Sum of the "present" pages of @node's zones in /proc/zoneinfo, or -1. */
static int64_t zone_present(int node)
{
	char line[256], want[32];
	int64_t sum = -1, v;
	int in_node = 0;
	FILE *f = fopen("/proc/zoneinfo", "re");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "Node %d,", node);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node ", 5))
			in_node = !strncmp(line, want, strlen(want));
		else if (in_node && sscanf(line, " present %" SCNd64, &v) == 1)
			sum = (sum < 0 ? 0 : sum) + v;
	}
	fclose(f);
	return sum;
}

#define OWNED_KNOB	"/sys/kernel/debug/extmem_hugetlb/owned_range"

/*
 * Grow/shrink cycles of 1 GiB and 2 MiB pages, with HVO off and on, leave
 * nothing behind: no memory block, no "System RAM (extmem)" resource, no
 * plugged bytes, the areas' free bytes, MemTotal, the struct-page count
 * (nr_memmap_pages), the zones' present pages and the HugeTLB pool as
 * they were. Run with units onlined and offlined as extmem's own
 * (online_owned_pages(), offline_owned_pages(): the default), then, where
 * debugfs has the knob, once more the way memory hotplug does for anyone.
 */
TEST_F_TIMEOUT(conv, grow_shrink_cycles_leave_nothing, 400)
{
	int64_t m0 = vmstat("nr_memmap_pages"), nr0_1g = 0, nr0_2m, p0_1g = 0, p0_2m;
	int hvo, cycle, have_hvo = !access(HVO_SYSCTL, F_OK);
	int owned, have_knob = !access(OWNED_KNOB, W_OK);
	char old[16] = "0\n", path[128];
	uint64_t plugged = 0;

	ASSERT_LE(0, m0);
	nr0_2m = node_huge(self->node_2m, 2 * MiB, "nr_hugepages");
	p0_2m = zone_present(self->node_2m);
	ASSERT_LE(0, p0_2m);
	if (self->node_1g >= 0) {
		nr0_1g = node_huge(self->node_1g, GiB, "nr_hugepages");
		p0_1g = zone_present(self->node_1g);
	}
	if (have_hvo)
		ASSERT_EQ(0, read_str(HVO_SYSCTL, old, sizeof(old)));
	for (owned = 1; owned >= !have_knob; owned--) {
		for (hvo = 0; hvo <= have_hvo; hvo++) {
			if (have_knob)
				ASSERT_EQ(0, write_str(OWNED_KNOB, owned ? "1\n" : "0\n"));
			if (have_hvo)
				ASSERT_EQ(0, write_str(HVO_SYSCTL, hvo ? "1\n" : "0\n"));
			for (cycle = 0; cycle < (owned ? 3 : 1); cycle++) {
				if (self->node_1g >= 0) {
					ASSERT_EQ(0, conv_set(self->node_1g, GiB,
							      2 - cycle % 2));
					ASSERT_EQ(0, conv_set(self->node_1g, GiB, 0));
				}
				ASSERT_EQ(0, conv_set(self->node_2m, 2 * MiB,
						      100 + 200 * cycle));
				ASSERT_EQ(0, conv_set(self->node_2m, 2 * MiB, 0));
				EXPECT_EQ(0, blocks_in_areas(self->a, self->n));
				EXPECT_EQ(0, iomem_extmem_bytes());
				snprintf(path, sizeof(path),
					 SYSFS "/node%d/hugetlb_plugged_bytes", self->node_2m);
				EXPECT_EQ(0, read_u64(path, &plugged));
				EXPECT_EQ(0, plugged);
				EXPECT_EQ(self->free_2m,
					  node_free(self->a, self->n, self->node_2m));
				if (self->node_1g >= 0) {
					EXPECT_EQ(self->free_1g,
						  node_free(self->a, self->n, self->node_1g));
					EXPECT_EQ(nr0_1g, node_huge(self->node_1g, GiB,
								    "nr_hugepages"));
				}
				EXPECT_EQ(nr0_2m, node_huge(self->node_2m, 2 * MiB,
							    "nr_hugepages"));
				EXPECT_EQ(self->memtotal0, meminfo_bytes("MemTotal:"));
				EXPECT_EQ(p0_2m, zone_present(self->node_2m));
				if (self->node_1g >= 0)
					EXPECT_EQ(p0_1g, zone_present(self->node_1g));
				EXPECT_EQ(m0, vmstat("nr_memmap_pages"))
					TH_LOG("owned %d HVO %d cycle %d", owned, hvo, cycle);
			}
		}
	}
	if (have_knob)
		write_str(OWNED_KNOB, "1\n");
	if (have_hvo)
		write_str(HVO_SYSCTL, old);
}

#define BREAK_KNOB	"/sys/kernel/debug/extmem_hugetlb/break_owned"

/* Whether the kernel log holds @text. */
static int klog_has(const char *text)
{
	static char buf[1 << 20];
	int len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof(buf) - 1);

	if (len < 0)
		return 0;
	buf[len] = 0;
	return strstr(buf, text) != NULL;
}

/*
 * offline_owned_pages() checks each page of a unit for what extmem
 * vouches for (PageOffline(), no reference) instead of memory offlining's
 * scans. With a reference deliberately left on one page of the unit while
 * it is offlined (debugfs break_owned, used up by one removal), giving the
 * 1 GiB page back must not remove the unit: the check refuses it, the
 * usual offlining refuses it too (both logged), the unit stays extmem's,
 * and a later removal (the work item the emptied unit scheduled, or the
 * next conversion) gives everything back as it was.
 */
TEST_F_TIMEOUT(conv, owned_offline_refuses_a_page_with_a_reference, 120)
{
	int node = self->node_1g;
	uint64_t plugged = 0;
	char path[128];

	if (node < 0)
		SKIP(return, "no 1 GiB pages or no node with 2 GiB of extmem");
	if (access(BREAK_KNOB, W_OK))
		SKIP(return, BREAK_KNOB " missing");
	snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_plugged_bytes", node);
	ASSERT_EQ(0, conv_set(node, GiB, 1));
	ASSERT_EQ(0, write_str(BREAK_KNOB, "1\n"));
	ASSERT_EQ(0, conv_set(node, GiB, 0));
	EXPECT_EQ(0, conv_get(node, GiB));
	EXPECT_TRUE(klog_has("a page is not spare; offlining it the usual way"));
	EXPECT_TRUE(klog_has("yet: -16; it stays extmem's"));
	/* A later removal, without the knob, gives the unit back. */
	ASSERT_EQ(0, conv_set(node, GiB, 0));
	EXPECT_EQ(0, read_u64(path, &plugged));
	EXPECT_EQ(0, plugged);
	EXPECT_EQ(0, wait_given_back(self->a, self->n, node, self->free_1g));
	EXPECT_EQ(self->memtotal0, meminfo_bytes("MemTotal:"));
	EXPECT_EQ(0, agree(_metadata, self, "after the refused removal"));
}

/*
 * The start of a "System RAM (extmem)" range of /proc/iomem: the lowest,
 * or with @other the last listed that does not start at @not; ~0 if none.
 */
static uint64_t iomem_extmem_start(int other, uint64_t not)
{
	unsigned long long st, e;
	char line[256], name[128];
	uint64_t found = ~0ULL;
	FILE *f = fopen("/proc/iomem", "re");

	if (!f)
		return found;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %llx-%llx : %127[^\n]", &st, &e, name) != 3 ||
		    strcmp(name, "System RAM (extmem)"))
			continue;
		if (other ? st != not : st < found)
			found = st;
	}
	fclose(f);
	return found;
}

/*
 * A memory failure in a free 1 GiB page extmem made (memory_failure() by
 * writing an address of it to hard_offline_page): HugeTLB dissolves the
 * page and hands it back to extmem with the mark moved to the page hit.
 * extmem must not prepare its pages for reuse (the page checks of a debug
 * kernel would report the marked one as bad), build a page of them again or
 * give the range back to its area: the unit stays plugged and unused
 * ("quarantined in extmem"), the area keeps the GiB, a new 1 GiB page and
 * an extmem allocation come from elsewhere. Then the same for a spare page
 * of a 2 MiB unit. The last test of the boot: both units stay plugged for
 * good.
 */
TEST_F_TIMEOUT(conv, poisoned_gib_page_is_quarantined, 120)
{
	struct extmem_alloc_args al = { .size = sizeof(al), .length = GiB, .alignment = GiB };
	struct extmem_info info = { .size = sizeof(info) };
	int node = self->node_1g, i, fd, rc;
	uint64_t phys, hit, unit, plugged = 0;
	char path[128], buf[64];

	if (node < 0)
		SKIP(return, "no 1 GiB pages or no node with 2 GiB of extmem");
	if (access(MEMORY "/hard_offline_page", W_OK))
		SKIP(return, "no " MEMORY "/hard_offline_page (kernel without CONFIG_MEMORY_FAILURE)");
	snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_plugged_bytes", node);
	ASSERT_EQ(0, conv_set(node, GiB, 1));
	ASSERT_EQ(1, conv_get(node, GiB));
	phys = iomem_extmem_start(0, 0);
	ASSERT_NE(~0ULL, phys);
	hit = phys + 5 * 4096;

	snprintf(buf, sizeof(buf), "%#" PRIx64 "\n", hit);
	rc = write_str(MEMORY "/hard_offline_page", buf);
	/* EBUSY is memory_failure()'s answer when the dissolved page is not the buddy's. */
	TH_LOG("hard_offline_page %#" PRIx64 ": %d", hit, rc);
	EXPECT_EQ(0, conv_get(node, GiB));
	EXPECT_EQ(0, node_huge(node, GiB, "nr_hugepages"));
	EXPECT_TRUE(klog_has("quarantined in extmem"));

	/* Giving back has nothing to remove: the unit stays plugged, the area short of it. */
	ASSERT_EQ(0, conv_set(node, GiB, 0));
	usleep(300 * 1000);
	ASSERT_EQ(0, read_u64(path, &plugged));
	EXPECT_EQ(GiB, plugged);
	EXPECT_EQ(self->free_1g - GiB, node_free(self->a, self->n, node));

	/* A new 1 GiB page is made elsewhere and given back whole. */
	ASSERT_EQ(0, conv_set(node, GiB, 1));
	EXPECT_EQ(1, conv_get(node, GiB));
	EXPECT_EQ(2 * GiB, iomem_extmem_bytes());
	ASSERT_EQ(0, conv_set(node, GiB, 0));
	for (i = 0; i < 50 && node_free(self->a, self->n, node) != self->free_1g - GiB; i++)
		usleep(20 * 1000);
	EXPECT_EQ(self->free_1g - GiB, node_free(self->a, self->n, node));
	EXPECT_EQ(phys, iomem_extmem_start(0, 0));

	/* No allocation gets the poisoned page. */
	al.node = node;
	al.fd = -1;
	fd = ioctl(self->dev, EXTMEM_IOC_ALLOC, &al);
	ASSERT_LE(0, fd) TH_LOG("no 1 GiB allocation on node %d: %s", node, strerror(errno));
	ASSERT_EQ(0, ioctl(fd, EXTMEM_IOC_INFO, &info));
	EXPECT_FALSE(hit >= info.phys && hit < info.phys + GiB)
		TH_LOG("the poisoned page %#" PRIx64 " was handed out in %#llx", hit,
		       (unsigned long long)info.phys);
	close(fd);

	/*
	 * A memory failure at a spare page of a 2 MiB unit (a memory block,
	 * one page of it used): once the page is given back, the unit is not
	 * removed (its range would go back to the area with the poisoned page
	 * in it) and a new 2 MiB page is made in another unit.
	 */
	node = self->node_2m;
	snprintf(path, sizeof(path), SYSFS "/node%d/hugetlb_plugged_bytes", node);
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 1));
	ASSERT_EQ(0, read_u64(path, &plugged));
	ASSERT_EQ(block_size(), plugged);
	unit = iomem_extmem_start(1, phys);
	ASSERT_NE(~0ULL, unit);
	hit = unit + plugged / 2 + 7 * 4096;
	snprintf(buf, sizeof(buf), "%#" PRIx64 "\n", hit);
	rc = write_str(MEMORY "/hard_offline_page", buf);
	TH_LOG("hard_offline_page %#" PRIx64 " (spare): %d", hit, rc);
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 0));
	usleep(300 * 1000);
	ASSERT_EQ(0, read_u64(path, &plugged));
	EXPECT_EQ(block_size(), plugged) TH_LOG("the unit with the poisoned spare page was removed");
	EXPECT_TRUE(klog_has("stays plugged and unused"));
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 1));
	ASSERT_EQ(0, read_u64(path, &plugged));
	EXPECT_EQ(2 * block_size(), plugged);
	ASSERT_EQ(0, conv_set(node, 2 * MiB, 0));
}

TEST_HARNESS_MAIN
