// SPDX-License-Identifier: GPL-2.0
/*
 * extmem HugeTLB conversion benchmark: the time to add N HugeTLB pages to
 * a node's pool and to give them back,
 *   - through extmem (nodeN/hugetlb_{1G,2M}: hot-plug, online, take the
 *     range, build folios; and back: dissolve, offline, remove), versus
 *   - from the buddy allocator (the node's nr_hugepages),
 * for 1 GiB and 2 MiB pages, in the same boot, each measured RUNS times,
 * run by run (run 1 of every row of a page size, then run 2, ...), after
 * one untimed run of each row.
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

#define MAX_PHASES	32

struct row {
	const char *page, *method;
	int n;
	/* extmem's debugfs knobs for this row: -1 leaves one as it is. */
	int raw_gib, range_blocks, owned_range;
	int runs, ok, failed;
	char why[256];
	char set[160], count[160];
	int64_t base;
	uint64_t grow[MAX_RUNS], shrink[MAX_RUNS];
	/* extmem's phase profile (debugfs), summed over the row's runs */
	int nr_phases;
	char phase[MAX_PHASES][32];
	unsigned long long phase_ns[MAX_PHASES];
};

/* Adds extmem's phase profile (debugfs) since it was reset to @r's sums. */
static void add_profile(struct row *r)
{
	char name[32], buf[4096], *p = buf;
	unsigned long long v;
	int n, i;

	if (read_str(PROFILE, buf, sizeof(buf)))
		return;
	while (sscanf(p, "%31s %llu%n", name, &v, &n) == 2) {
		p += n;
		if (!strcmp(name, "grows") || !strcmp(name, "shrinks"))
			continue;
		for (i = 0; i < r->nr_phases && strcmp(r->phase[i], name); i++)
			;
		if (i == r->nr_phases) {
			if (i == MAX_PHASES)
				continue;
			snprintf(r->phase[i], sizeof(r->phase[i]), "%s", name);
			r->phase_ns[i] = 0;
			r->nr_phases++;
		}
		r->phase_ns[i] += v;
	}
}

/* The row's phase profile as JSON members "phase_ns":{...}, ns per run. */
static void print_profile(const struct row *r)
{
	int i;

	if (!r->nr_phases)
		return;
	printf(",\"phase_ns\":{");
	for (i = 0; i < r->nr_phases; i++)
		printf("%s\"%s\":%llu", i ? "," : "", r->phase[i], r->phase_ns[i] / r->runs);
	printf("}");
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
 * Run @i of row @r: write @n to its count, check that it reads base + @n,
 * write base back and check again.
 */
static int run_once(struct row *r, int i)
{
	uint64_t t0, t1;
	int64_t c;
	int rc;

	t0 = now_ns();
	rc = write_u64(r->set, r->base + r->n);
	t1 = now_ns();
	c = count_of(r->count);
	if (rc || c != r->base + r->n) {
		snprintf(r->why, sizeof(r->why), "got %" PRId64 " of %d pages (%s)",
			 c - r->base, r->n, rc ? strerror(-rc) : "short");
		write_u64(r->set, r->base);
		return -1;
	}
	r->grow[i] = t1 - t0;
	t0 = now_ns();
	rc = write_u64(r->set, r->base);
	t1 = now_ns();
	c = count_of(r->count);
	if (rc || c != r->base) {
		snprintf(r->why, sizeof(r->why), "giving back left %" PRId64 " pages (%s)",
			 c - r->base, rc ? strerror(-rc) : "short");
		return -1;
	}
	r->shrink[i] = t1 - t0;
	return 0;
}

static int is_extmem(const struct row *r)
{
	return strcmp(r->method, "buddy") != 0;
}

/* The row's paths and base count; -1 (and why) if it cannot run. */
static int row_setup(struct row *r, int node)
{
	const char *name = r->page;
	uint64_t kb = r->page[0] == '1' ? 1048576 : 2048;

	if (is_extmem(r))
		snprintf(r->set, sizeof(r->set), SYSFS "/node%d/hugetlb_%s", node, name);
	else
		snprintf(r->set, sizeof(r->set), NODES "/node%d/hugepages/hugepages-%" PRIu64
			 "kB/nr_hugepages", node, kb);
	snprintf(r->count, sizeof(r->count), "%s", r->set);
	r->base = count_of(r->count);
	if (r->base < 0) {
		snprintf(r->why, sizeof(r->why), "%s: %s", r->count, strerror(-r->base));
		return -1;
	}
	return 0;
}

/* Sets extmem's debugfs knobs as row @r wants them; -1 (and why) if one is missing. */
static int set_knobs(struct row *r)
{
	static const char * const knob[] = { "raw_gib", "range_blocks", "owned_range" };
	int want[] = { r->raw_gib, r->range_blocks, r->owned_range }, k;
	char path[128];

	if (!is_extmem(r))
		return 0;
	for (k = 0; k < 3; k++) {
		if (want[k] < 0)
			continue;
		snprintf(path, sizeof(path), DEBUGFS "/%s", knob[k]);
		if (write_str(path, want[k] ? "1\n" : "0\n")) {
			snprintf(r->why, sizeof(r->why), "no knob %s", knob[k]);
			return -1;
		}
	}
	return 0;
}

/*
 * Run @i of row @r, with its knobs, its phase profile added to the row's.
 * Marks the row failed (and says why) if the run or its set-up fails.
 */
static void bench_run(struct row *r, int i)
{
	if (r->failed)
		return;
	if (set_knobs(r)) {
		r->failed = 1;
		return;
	}
	/* Reset the profile: it then covers this run only. */
	if (is_extmem(r))
		write_str(PROFILE, "0\n");
	if (run_once(r, i)) {
		r->failed = 1;
		return;
	}
	if (is_extmem(r))
		add_profile(r);
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
	int i, j, g;

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
	for (i = 0; i < nrows; i++) {
		rows[i].runs = runs;
		rows[i].failed = row_setup(&rows[i], node) != 0;
	}
	/*
	 * The 1 GiB rows, then the 2 MiB rows (the buddy allocator finds
	 * 1 GiB pages on the node before 2 MiB pages have come and gone).
	 * Each group first runs each of its rows once untimed: the first
	 * conversions of a boot touch memory QEMU has not backed yet (the
	 * memory maps extmem allocates), which the buddy allocator's memory
	 * map, touched at boot, never pays for. Then run by run, every row
	 * of the group in turn: on a loaded machine, a slow spell falls on
	 * all rows alike rather than on the rows measured in it.
	 */
	for (g = 0; g < 2; g++) {
		const char *page = g ? "2M" : "1G";

		for (i = 0; i < nrows; i++) {
			struct row warm = rows[i];

			if (strcmp(rows[i].page, page) || rows[i].failed)
				continue;
			warm.runs = 1;
			warm.nr_phases = 0;
			bench_run(&warm, 0);
		}
		for (j = 0; j < runs; j++)
			for (i = 0; i < nrows; i++)
				if (!strcmp(rows[i].page, page))
					bench_run(&rows[i], j);
	}
	for (i = 0; i < nrows; i++)
		rows[i].ok = !rows[i].failed;
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
		printf("]");
		print_profile(r);
		printf("}\n");
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
