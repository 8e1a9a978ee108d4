// SPDX-License-Identifier: GPL-2.0
/*
 * extmem HugeTLB conversion benchmark: the time to add N HugeTLB pages to
 * a node's pool and to give them back,
 *   - through extmem (nodeN/hugetlb_{1G,2M}: hot-plug, online, take the
 *     range, build folios; and back: dissolve, offline, remove), versus
 *   - from the buddy allocator (the node's nr_hugepages),
 * for 1 GiB and 2 MiB pages, in the same boot, each measured RUNS times.
 * Prints a table (median of the runs) and one "BENCH {json}" line per row
 * with every run's time.
 *
 * Environment: EXTMEM_BENCH_NODE (default: the highest node with an extmem
 * area), EXTMEM_BENCH_N1G (default 2), EXTMEM_BENCH_N2M (default 512),
 * EXTMEM_BENCH_RUNS (default 3), EXTMEM_BENCH_HVO (0 or 1: set
 * vm.hugetlb_optimize_vmemmap for both paths; default: leave it).
 *
 * Rows "extmem-none", "extmem-raw", "extmem-range" and "extmem-scan" run
 * the extmem path with some of its speed-ups switched off through debugfs
 * (extmem_hugetlb/raw_gib, range_blocks, owned_range; "extmem-scan" is
 * every one but owned_range, the path before it), and each extmem row's
 * BENCH line carries extmem's phase profile (extmem_hugetlb/profile), ns
 * per run.
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

#include "extmem_util.h"

#define NODES		"/sys/devices/system/node"
#define DEBUGFS		"/sys/kernel/debug/extmem_hugetlb"
#define PROFILE		DEBUGFS "/profile"
#define MAX_RUNS	16

struct row {
	const char *page, *method;
	int n;
	/* extmem's debugfs knobs for this row: -1 leaves one as it is. */
	int raw_gib, range_blocks, owned_range;
	int runs, ok;
	char why[256];
	uint64_t grow[MAX_RUNS], shrink[MAX_RUNS];
	char profile[1024];	/* extmem's phase profile, ns per run, as JSON */
};

/*
 * extmem's phase profile (debugfs) summed over @runs runs, as JSON
 * members "phase_ns":{...} of ns per run, into @out; empty if there is none.
 */
static void read_profile(char *out, size_t len, int runs)
{
	char name[64], buf[4096], *p = buf;
	unsigned long long v;
	size_t off = 0;
	int n;

	out[0] = 0;
	if (read_str(PROFILE, buf, sizeof(buf)))
		return;
	off += snprintf(out + off, len - off, ",\"phase_ns\":{");
	while (sscanf(p, "%63s %llu%n", name, &v, &n) == 2 && off < len) {
		p += n;
		if (!strcmp(name, "grows") || !strcmp(name, "shrinks"))
			continue;
		off += snprintf(out + off, len - off, "%s\"%s\":%llu",
				out[off - 1] == '{' ? "" : ",", name, v / runs);
	}
	if (off < len)
		snprintf(out + off, len - off, "}");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median_ms(const uint64_t *v, int n)
{
	uint64_t s[MAX_RUNS];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	return (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) / 1e6;
}

/* A page count from sysfs, or -errno. */
static int64_t count_of(const char *path)
{
	uint64_t v;
	int rc = read_u64(path, &v);

	return rc ? rc : (int64_t)v;
}

/*
 * One run: write @n to @set, check that @count reads @base + @n, write
 * @base back and check again.
 */
static int run_once(struct row *r, int i, const char *set, const char *count,
		    uint64_t base)
{
	uint64_t t0, t1;
	int64_t c;
	int rc;

	t0 = now_ns();
	rc = write_u64(set, base + r->n);
	t1 = now_ns();
	c = count_of(count);
	if (rc || c != (int64_t)(base + r->n)) {
		snprintf(r->why, sizeof(r->why), "got %" PRId64 " of %d pages (%s)",
			 c - (int64_t)base, r->n, rc ? strerror(-rc) : "short");
		write_u64(set, base);
		return -1;
	}
	r->grow[i] = t1 - t0;
	t0 = now_ns();
	rc = write_u64(set, base);
	t1 = now_ns();
	c = count_of(count);
	if (rc || c != (int64_t)base) {
		snprintf(r->why, sizeof(r->why), "giving back left %" PRId64 " pages (%s)",
			 c - (int64_t)base, rc ? strerror(-rc) : "short");
		return -1;
	}
	r->shrink[i] = t1 - t0;
	return 0;
}

static void bench(struct row *r, int node, uint64_t kb, const char *name)
{
	char set[160], count[160];
	int64_t base;
	int i;

	if (strcmp(r->method, "buddy")) {
		/* The variants of the extmem path, where the kernel has the knobs. */
		if (r->raw_gib >= 0 && write_str(DEBUGFS "/raw_gib", r->raw_gib ? "1\n" : "0\n")) {
			snprintf(r->why, sizeof(r->why), "no knob raw_gib");
			return;
		}
		if (r->range_blocks >= 0 &&
		    write_str(DEBUGFS "/range_blocks", r->range_blocks ? "1\n" : "0\n")) {
			snprintf(r->why, sizeof(r->why), "no knob range_blocks");
			return;
		}
		if (r->owned_range >= 0 &&
		    write_str(DEBUGFS "/owned_range", r->owned_range ? "1\n" : "0\n")) {
			snprintf(r->why, sizeof(r->why), "no knob owned_range");
			return;
		}
		snprintf(set, sizeof(set), SYSFS "/node%d/hugetlb_%s", node, name);
		snprintf(count, sizeof(count), "%s", set);
	} else {
		snprintf(set, sizeof(set), NODES "/node%d/hugepages/hugepages-%" PRIu64
			 "kB/nr_hugepages", node, kb);
		snprintf(count, sizeof(count), "%s", set);
	}
	base = count_of(count);
	/* Reset the profile: it then covers this row's runs only. */
	write_str(PROFILE, "0\n");
	if (base < 0) {
		snprintf(r->why, sizeof(r->why), "%s: %s", count, strerror(-base));
		return;
	}
	for (i = 0; i < r->runs; i++)
		if (run_once(r, i, set, count, base))
			return;
	r->ok = 1;
	if (strcmp(r->method, "buddy"))
		read_profile(r->profile, sizeof(r->profile), r->runs);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : def;
}

int main(void)
{
	int n1g = env_int("EXTMEM_BENCH_N1G", 2), n2m = env_int("EXTMEM_BENCH_N2M", 512);
	int runs = env_int("EXTMEM_BENCH_RUNS", 3), node = env_int("EXTMEM_BENCH_NODE", -1);
	int hvo = env_int("EXTMEM_BENCH_HVO", -1);
	/*
	 * "extmem" and "buddy" first for each size (the ratio lines compare
	 * them), "extmem" with every speed-up on; then the extmem path with
	 * each speed-up off, to show what each brings in the same boot.
	 */
	struct row rows[] = {
		{ "1G", "extmem", n1g, 1, 1, 1 }, { "1G", "buddy", n1g, -1, -1, -1 },
		{ "2M", "extmem", n2m, 1, 1, 1 }, { "2M", "buddy", n2m, -1, -1, -1 },
		{ "1G", "extmem-scan", n1g, 1, 1, 0 },
		{ "1G", "extmem-none", n1g, 0, 0, 0 }, { "1G", "extmem-raw", n1g, 1, 0, 0 },
		{ "1G", "extmem-range", n1g, 0, 1, 0 }, { "2M", "extmem-scan", n2m, 1, 1, 0 },
		{ "2M", "extmem-none", n2m, 0, 0, 0 },
	};
	const int nrows = sizeof(rows) / sizeof(rows[0]);
	char path[128];
	int i, j;

	if (runs < 1 || runs > MAX_RUNS)
		runs = 3;
	/* EXTMEM_BENCH_HVO=0/1: HugeTLB's vmemmap optimisation for both paths. */
	if (hvo >= 0 && write_str("/proc/sys/vm/hugetlb_optimize_vmemmap", hvo ? "1\n" : "0\n"))
		printf("cannot set vm.hugetlb_optimize_vmemmap\n");
	if (node < 0)
		for (i = 0; i < 64; i++) {
			snprintf(path, sizeof(path), SYSFS "/node%d", i);
			if (!access(path, F_OK))
				node = i;
		}
	if (node < 0) {
		printf("skipped: no %s/nodeN (boot with extmem=)\n", SYSFS);
		return 4;
	}
	printf("extmem HugeTLB conversion benchmark: node %d, %d x 1 GiB and %d x 2 MiB pages, "
	       "median of %d runs\n", node, n1g, n2m, runs);
	/*
	 * One untimed round of each 1 GiB path first: the first conversion
	 * of a boot touches memory QEMU has not backed yet (the memory map's
	 * pages), which the buddy allocator's memory map, touched at boot,
	 * never pays for.
	 */
	for (i = 0; i < 2; i++) {
		struct row warm = rows[i];

		warm.runs = 1;
		bench(&warm, node, 1048576, warm.page);
	}
	for (i = 0; i < nrows; i++) {
		rows[i].runs = runs;
		bench(&rows[i], node, rows[i].page[0] == '1' ? 1048576 : 2048, rows[i].page);
	}
	/* Leave the knobs on. */
	write_str(DEBUGFS "/raw_gib", "1\n");
	write_str(DEBUGFS "/range_blocks", "1\n");
	write_str(DEBUGFS "/owned_range", "1\n");

	printf("\n%-6s %-13s %6s %12s %12s %14s %14s\n", "page", "method", "N", "grow ms",
	       "give back ms", "grow ms/page", "back ms/page");
	for (i = 0; i < nrows; i++) {
		struct row *r = &rows[i];

		if (!r->ok) {
			printf("%-6s %-13s %6d skipped: %s\n", r->page, r->method, r->n, r->why);
			continue;
		}
		printf("%-6s %-13s %6d %12.2f %12.2f %14.3f %14.3f\n", r->page, r->method, r->n,
		       median_ms(r->grow, runs), median_ms(r->shrink, runs),
		       median_ms(r->grow, runs) / r->n, median_ms(r->shrink, runs) / r->n);
	}
	for (i = 0; i < 4; i += 2) {
		struct row *e = &rows[i], *b = &rows[i + 1];

		if (e->ok && b->ok)
			printf("%s: extmem/buddy time ratio: grow %.2f, give back %.2f\n", e->page,
			       median_ms(e->grow, runs) / median_ms(b->grow, runs),
			       median_ms(e->shrink, runs) / median_ms(b->shrink, runs));
	}
	printf("\n");
	for (i = 0; i < nrows; i++) {
		struct row *r = &rows[i];

		if (!r->ok)
			continue;
		printf("BENCH {\"bench\":\"hugetlb_conv\",\"page\":\"%s\",\"method\":\"%s\","
		       "\"node\":%d,\"n\":%d,\"grow_ns\":[", r->page, r->method, node, r->n);
		for (j = 0; j < runs; j++)
			printf("%s%" PRIu64, j ? "," : "", r->grow[j]);
		printf("],\"shrink_ns\":[");
		for (j = 0; j < runs; j++)
			printf("%s%" PRIu64, j ? "," : "", r->shrink[j]);
		printf("]%s}\n", r->profile);
	}
	for (i = 0; i < 4; i += 2) {
		struct row *e = &rows[i], *b = &rows[i + 1];

		if (e->ok && b->ok)
			printf("BENCH {\"bench\":\"hugetlb_conv_ratio\",\"page\":\"%s\","
			       "\"n\":%d,\"extmem_grow_ms\":%.3f,\"buddy_grow_ms\":%.3f,"
			       "\"grow_ratio\":%.3f,\"extmem_shrink_ms\":%.3f,"
			       "\"buddy_shrink_ms\":%.3f,\"shrink_ratio\":%.3f}\n",
			       e->page, e->n, median_ms(e->grow, runs), median_ms(b->grow, runs),
			       median_ms(e->grow, runs) / median_ms(b->grow, runs),
			       median_ms(e->shrink, runs), median_ms(b->shrink, runs),
			       median_ms(e->shrink, runs) / median_ms(b->shrink, runs));
	}
	return 0;
}
