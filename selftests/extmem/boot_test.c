// SPDX-License-Identifier: GPL-2.0
/*
 * extmem boot carve-out: what extmem= made of this boot.
 *
 * The expectations come from the environment, set per boot by the VM
 * runner (selftests/vm/run.sh):
 *   EXTMEM_EXPECT       areas as <node>:<MiB>[@<hex phys>], comma-separated
 *                       (empty: no areas)
 *   EXTMEM_BASELINE     <node>:<MemTotal kB>,... of a boot without extmem=
 *   EXTMEM_EXPECT_LOG   '|'-separated strings the kernel log must contain
 *   EXTMEM_EXPECT_ALIGN alignment (K, M or G suffix) that every area of at
 *                       least that size must have (the boot's nodes have
 *                       room for aligned areas, whatever KASLR did)
 *   EXTMEM_EXPECT_PREZERO  Y or N: what /sys/module/extmem/parameters/prezero
 *                       must read (the boot gave extmem.prezero= a bad value,
 *                       which must leave the default)
 *   EXTMEM_EXPECT_UNMAPPED index of the area whose write-back mapping the boot
 *                       made fail (extmem.test_fail_map=, a test-kernel knob):
 *                       it must be quarantined with the reason, refuse every
 *                       allocation, and leave the other areas working
 *   EXTMEM_EXPECT_FAIL_MAP what /sys/module/extmem/parameters/test_fail_map
 *                       must read after the boot gave it bad values and, last,
 *                       an index no area has: no area may be quarantined
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <linux/extmem.h>

#include "kselftest_harness.h"
#include "extmem_util.h"

#define MAX_AREAS 16

struct area {
	int node;
	uint64_t base, size;
	int fixed;
};

/* Reads the areas sysfs shows; returns how many. */
static int sysfs_areas(struct area *a)
{
	uint64_t node;
	int n;

	for (n = 0; n < MAX_AREAS; n++) {
		if (area_attr(n, "node", &node))
			break;
		a[n].node = (int)node;
		if (area_attr(n, "base", &a[n].base) ||
		    area_attr(n, "size", &a[n].size))
			return -1;
	}
	return n;
}

static int expected_areas(struct area *a)
{
	const char *s = getenv("EXTMEM_EXPECT");
	int n = 0;

	while (s && *s && n < MAX_AREAS) {
		char *end;
		unsigned long long mib;

		a[n].node = (int)strtol(s, &end, 10);
		if (*end != ':')
			return -1;
		mib = strtoull(end + 1, &end, 10);
		a[n].size = (uint64_t)mib << 20;
		a[n].fixed = *end == '@';
		a[n].base = a[n].fixed ? strtoull(end + 1, &end, 16) : 0;
		n++;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

static uint64_t node_memtotal_kb(int node)
{
	char path[96], line[256];
	uint64_t kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo",
		 node);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Node %*d MemTotal: %" SCNu64, &kb) == 1)
			break;
	fclose(f);
	return kb;
}

TEST(areas_match_what_extmem_asked_for)
{
	struct area want[MAX_AREAS], got[MAX_AREAS];
	int nw = expected_areas(want), ng = sysfs_areas(got), i, j;
	int used[MAX_AREAS] = { 0 };

	ASSERT_LE(0, nw) TH_LOG("bad EXTMEM_EXPECT");
	ASSERT_LE(0, ng);
	for (i = 0; i < ng; i++)
		TH_LOG("area%d: node %d, %" PRIu64 " MiB at %#" PRIx64, i,
		       got[i].node, got[i].size >> 20, got[i].base);
	ASSERT_EQ(nw, ng);
	for (i = 0; i < nw; i++) {
		for (j = 0; j < ng; j++) {
			if (used[j] || got[j].node != want[i].node ||
			    got[j].size != want[i].size)
				continue;
			if (want[i].fixed && got[j].base != want[i].base)
				continue;
			used[j] = 1;
			break;
		}
		EXPECT_LT(j, ng) TH_LOG("no area for expected entry %d (node %d, %" PRIu64 " MiB)",
					i, want[i].node, want[i].size >> 20);
	}
}

/* The physical address of the kernel's code, from /proc/iomem (root). */
static uint64_t kernel_code_phys(void)
{
	unsigned long long start = 0, end;
	char line[256];
	FILE *f = fopen("/proc/iomem", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "Kernel code") &&
		    sscanf(line, " %llx-%llx", &start, &end) == 2)
			break;
	if (f)
		fclose(f);
	return start;
}

TEST(large_areas_are_aligned_whatever_kaslr_did)
{
	const char *s = getenv("EXTMEM_EXPECT_ALIGN");
	struct area a[MAX_AREAS];
	char cmd[4096], *end;
	uint64_t align;
	FILE *f;
	int n, i;

	if (!s || !*s)
		SKIP(return, "no EXTMEM_EXPECT_ALIGN for this boot");
	align = strtoull(s, &end, 10);
	align <<= *end == 'G' ? 30 : *end == 'M' ? 20 : *end == 'K' ? 10 : 0;
	ASSERT_NE(0, align);
	n = sysfs_areas(a);
	ASSERT_LE(0, n);
	f = fopen("/proc/cmdline", "r");
	if (!f || !fgets(cmd, sizeof(cmd), f))
		cmd[0] = '\0';
	if (f)
		fclose(f);
	TH_LOG("kernel code at %#" PRIx64 ", KASLR %s", kernel_code_phys(),
	       strstr(cmd, "nokaslr") ? "off" : "on");
	for (i = 0; i < n; i++) {
		if (a[i].size < align)
			continue;
		EXPECT_EQ(0, a[i].base % align)
			TH_LOG("area%d: node %d at %#" PRIx64 " is not %" PRIu64 " MiB-aligned", i,
			       a[i].node, a[i].base, align >> 20);
	}
}

TEST(areas_are_extmem_in_iomem_and_not_system_ram)
{
	struct area a[MAX_AREAS];
	int n = sysfs_areas(a), i;
	char line[256];

	ASSERT_LE(0, n);
	for (i = 0; i < n; i++) {
		uint64_t end = a[i].base + a[i].size - 1;
		int found = 0;
		FILE *f = fopen("/proc/iomem", "r");

		ASSERT_NE(NULL, f);
		while (fgets(line, sizeof(line), f)) {
			unsigned long long s, e;
			int indent = 0, off = 0;

			while (line[indent] == ' ')
				indent++;
			if (sscanf(line + indent, "%llx-%llx : %n", &s, &e, &off) != 2 || !off)
				continue;
			if (!indent && s == a[i].base && e == end &&
			    strstr(line + indent + off, "extmem"))
				found = 1;
			if (strncmp(line + indent + off, "System RAM", 10) == 0 &&
			    strstr(line + indent + off, "extmem") == NULL)
				EXPECT_TRUE(e < a[i].base || s > end)
					TH_LOG("System RAM %llx-%llx overlaps area%d", s, e, i);
		}
		fclose(f);
		EXPECT_TRUE(found) TH_LOG("area%d %#" PRIx64 "-%#" PRIx64 " is not an extmem resource",
					  i, a[i].base, end);
	}
}

TEST(areas_are_all_free_at_boot)
{
	struct area a[MAX_AREAS];
	int n = sysfs_areas(a), i;
	uint64_t free, largest;

	ASSERT_LE(0, n);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, area_attr(i, "free_bytes", &free));
		ASSERT_EQ(0, area_attr(i, "largest_free_run", &largest));
		EXPECT_EQ(a[i].size, free);
		EXPECT_EQ(a[i].size, largest);
	}
}

/*
 * Each node's MemTotal drops by what extmem took from it, less the memory
 * map the carved memory no longer needs (64 bytes per 4 KiB page): that
 * saving is the point of having no struct page.
 */
TEST(node_memtotal_drops_by_the_carved_size)
{
	const char *s = getenv("EXTMEM_BASELINE");
	struct area a[MAX_AREAS];
	int n = sysfs_areas(a), i;

	if (!s || !*s)
		SKIP(return, "no baseline boot given");
	ASSERT_LE(0, n);
	while (*s) {
		char *end;
		int node = (int)strtol(s, &end, 10);
		uint64_t base_kb = strtoull(end + 1, &end, 10), carved = 0;
		uint64_t now = node_memtotal_kb(node), memmap;
		int64_t drop;

		for (i = 0; i < n; i++)
			if (a[i].node == node)
				carved += a[i].size >> 10;
		memmap = carved / 64;
		drop = (int64_t)base_kb - (int64_t)now;
		TH_LOG("node %d: MemTotal %" PRIu64 " kB -> %" PRIu64 " kB, carved %" PRIu64
		       " kB, memmap saved ~%" PRIu64 " kB", node, base_kb, now, carved, memmap);
		EXPECT_LE(drop, (int64_t)carved);
		EXPECT_GE(drop, (int64_t)(carved - memmap) - 2048);
		s = *end == ',' ? end + 1 : end;
	}
}

TEST(every_rejected_entry_is_logged)
{
	const char *want = getenv("EXTMEM_EXPECT_LOG");
	static char log[1 << 20];
	char item[256];
	int len;

	if (!want || !*want)
		SKIP(return, "no log lines expected");
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, sizeof(log) - 1);
	ASSERT_LT(0, len);
	log[len] = '\0';
	while (*want) {
		size_t n = strcspn(want, "|");

		snprintf(item, sizeof(item), "%.*s", (int)n, want);
		EXPECT_NE(NULL, strstr(log, item)) TH_LOG("missing log line: %s", item);
		want += n + (want[n] == '|');
	}
}

TEST(bad_prezero_value_leaves_the_default)
{
	const char *want = getenv("EXTMEM_EXPECT_PREZERO");
	char buf[8] = "";

	if (!want || !*want)
		SKIP(return, "no extmem.prezero expectation");
	ASSERT_EQ(0, read_str("/sys/module/extmem/parameters/prezero", buf, sizeof(buf)));
	EXPECT_EQ(want[0], buf[0]) TH_LOG("prezero reads %s", buf);
}

/*
 * extmem.test_fail_map= given values the kernel's parameter parser refuses
 * (logged by the boot's EXTMEM_EXPECT_LOG) and, last, an area index the boot
 * does not have: the index is what was last accepted, and no area is
 * quarantined for it.
 */
TEST(fail_map_out_of_range_quarantines_nothing)
{
	const char *want = getenv("EXTMEM_EXPECT_FAIL_MAP");
	char buf[32] = "", path[128], why[128];
	struct area a[MAX_AREAS];
	int n, i;

	if (!want || !*want)
		SKIP(return, "no extmem.test_fail_map expectation");
	if (access("/sys/module/extmem/parameters/test_fail_map", F_OK))
		SKIP(return, "kernel without CONFIG_EXTMEM_TEST_KNOBS");
	ASSERT_EQ(0, read_str("/sys/module/extmem/parameters/test_fail_map", buf, sizeof(buf)));
	buf[strcspn(buf, "\n")] = 0;
	EXPECT_STREQ(want, buf);
	n = sysfs_areas(a);
	ASSERT_LT(0, n);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), SYSFS "/area%d/quarantined", i);
		ASSERT_EQ(0, read_str(path, why, sizeof(why)));
		EXPECT_EQ(0, strncmp(why, "none", 4)) TH_LOG("area %d quarantined: %s", i, why);
	}
}

/* ALLOC of @len bytes on @node (no fallback): the fd, or -errno. */
static int boot_alloc(int dev, uint64_t len, int node)
{
	struct extmem_alloc_args a;
	int ret;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.length = len;
	a.node = node;
	a.fd = -1;
	ret = ioctl(dev, EXTMEM_IOC_ALLOC, &a);
	return ret < 0 ? -errno : ret;
}

TEST(unmappable_area_is_quarantined_and_hands_nothing_out)
{
	const char *want = getenv("EXTMEM_EXPECT_UNMAPPED");
	uint64_t node, other_node, free, size, v;
	char path[128], why[128] = "";
	int idx, other, dev, fd, i;

	if (!want || !*want)
		SKIP(return, "no area made unmappable");
	if (access("/sys/module/extmem/parameters/test_fail_map", F_OK))
		SKIP(return, "kernel without CONFIG_EXTMEM_TEST_KNOBS");
	idx = atoi(want);
	ASSERT_EQ(0, area_attr(idx, "node", &node));
	ASSERT_EQ(0, area_attr(idx, "size", &size));
	snprintf(path, sizeof(path), SYSFS "/area%d/quarantined", idx);
	ASSERT_EQ(0, read_str(path, why, sizeof(why)));
	EXPECT_EQ(0, strncmp(why, "cannot be mapped write-back", 27)) TH_LOG("quarantined: %s", why);
	/* The area's memory still counts as free: nothing was handed out. */
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free));
	EXPECT_EQ(size, free);
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	/* Every size on its node is refused; the area stays untouched. */
	for (i = 0; i < 3; i++) {
		uint64_t len = i == 0 ? 4 * KiB : i == 1 ? 2 * MiB : size;

		fd = boot_alloc(dev, len, (int)node);
		if (fd >= 0)
			close(fd);
		EXPECT_EQ(-ENOMEM, fd) TH_LOG("ALLOC of %llu bytes on node %llu",
					      (unsigned long long)len, (unsigned long long)node);
	}
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &v));
	EXPECT_EQ(size, v);
	ASSERT_EQ(0, area_attr(idx, "allocations", &v));
	EXPECT_EQ(0, v);
	/* Another area, on another node, works. */
	for (other = 0; !area_attr(other, "node", &other_node); other++)
		if (other != idx && other_node != node)
			break;
	if (area_attr(other, "node", &other_node)) {
		close(dev);
		SKIP(return, "no area on another node to compare with");
	}
	fd = boot_alloc(dev, 2 * MiB, (int)other_node);
	EXPECT_LE(0, fd) TH_LOG("ALLOC on area %d (node %llu): %d", other,
				(unsigned long long)other_node, fd);
	if (fd >= 0)
		close(fd);
	close(dev);
}

TEST_HARNESS_MAIN
