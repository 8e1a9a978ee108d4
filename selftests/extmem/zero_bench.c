// SPDX-License-Identifier: GPL-2.0
/*
 * extmem pre-zeroing benchmark: what background zeroing saves an
 * allocation, and how fast the background zeroer is, measured in one run
 * against the synchronous zeroing it replaces.
 *
 *   alloc_clean        EXTMEM_IOC_ALLOC of the range (default 1 GiB) while
 *                      it is clean (the background zeroer has cleaned it)
 *   alloc_sync_zero    the same allocation while all of the range is dirty
 *                      and extmem.prezero=0: the allocation zeroes it
 *                      itself, one CPU running memset() in 2 MiB steps
 *   zeroer             the background zeroer cleaning the range after it
 *                      was freed: wall time from "prezero=1" until the
 *                      area's dirty_bytes reads 0 (polled every 1 ms),
 *                      and its own busy time (zeroing_ns)
 *   memset_user        memset(0) of the mapped range from userspace, one
 *                      CPU, after the first touch (a second reference)
 *
 * Each run: wait until the area is clean; prezero=0; allocate and free the
 * range (it is now dirty); time the dirty allocation (checks the area's
 * sync_zeroed_bytes grew by the whole range); memset it from userspace
 * twice (times the second); free it; prezero=1 and time the zeroer; time
 * the clean allocation (checks nothing was zeroed synchronously and that
 * the memory reads zero). Medians over the runs; "BENCH {json}" lines.
 *
 *   extmem_zero_bench [-s MiB] [-r runs]     (default: 1024 MiB, 7 runs)
 *
 * EXTMEM_BENCH_MIB and EXTMEM_BENCH_RUNS in the environment set the same.
 * Needs node 0's first area to have the range free; exits 4 (skip) without
 * /dev/extmem, the prezero parameter or the room.
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
#include <linux/extmem.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "extmem_util.h"

#define PREZERO		"/sys/module/extmem/parameters/prezero"
#define MAX_RUNS	32
#define KSFT_SKIP	4

static int dev = -1, area;
static size_t size = GiB;

static int alloc(uint64_t *ns)
{
	struct extmem_alloc_args a = {
		.size = sizeof(a), .length = size, .node = 0,
	};
	uint64_t t = now_ns();
	int fd = ioctl(dev, EXTMEM_IOC_ALLOC, &a);

	*ns = now_ns() - t;
	return fd < 0 ? -errno : fd;
}

static uint64_t attr(const char *name)
{
	uint64_t v = ~0ULL;

	area_attr(area, name, &v);
	return v;
}

/* Waits until the area has no dirty bytes; the wait in ns, or ~0 after 120 s. */
static uint64_t wait_clean(void)
{
	uint64_t t = now_ns();
	struct timespec ts = { 0, 1000 * 1000 };

	while (attr("dirty_bytes")) {
		if (now_ns() - t > 120ULL * 1000 * 1000 * 1000)
			return ~0ULL;
		nanosleep(&ts, NULL);
	}
	return now_ns() - t;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double gibs(uint64_t ns)
{
	return ns ? (double)size / GiB / (ns / 1e9) : 0;
}

int main(int argc, char **argv)
{
	uint64_t clean[MAX_RUNS], sync[MAX_RUNS], wall[MAX_RUNS], busy[MAX_RUNS], user[MAX_RUNS];
	uint64_t ratio[MAX_RUNS];
	int runs = 7, opt, r, fd, bad = 0, i;
	char pz[8];

	if (getenv("EXTMEM_BENCH_MIB"))
		size = strtoull(getenv("EXTMEM_BENCH_MIB"), NULL, 0) * MiB;
	if (getenv("EXTMEM_BENCH_RUNS"))
		runs = atoi(getenv("EXTMEM_BENCH_RUNS"));
	while ((opt = getopt(argc, argv, "s:r:")) != -1) {
		if (opt == 's')
			size = strtoull(optarg, NULL, 0) * MiB;
		else if (opt == 'r')
			runs = atoi(optarg);
		else
			return 2;
	}
	if (!size || size % (2 * MiB) || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "size must be a non-zero multiple of 2 MiB, runs 1..%d\n", MAX_RUNS);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("extmem pre-zeroing benchmark: %zu MiB, median of %d runs\n", size >> 20, runs);
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0 || read_str(PREZERO, pz, sizeof(pz))) {
		printf("skipped: no %s or no %s\n", DEV, PREZERO);
		return KSFT_SKIP;
	}
	for (area = 0; area < 64; area++) {
		uint64_t node = ~0ULL;

		if (area_attr(area, "node", &node) || node == 0)
			break;
	}
	if (attr("size") == ~0ULL) {
		printf("skipped: no extmem area on node 0\n");
		return KSFT_SKIP;
	}
	if (attr("largest_free_run") < size) {
		printf("skipped: area%d has no free %zu MiB run\n", area, size >> 20);
		return KSFT_SKIP;
	}
	for (r = 0; r < runs; r++) {
		uint64_t s0, s1, b0, ns, t;
		char *p;

		write_str(PREZERO, "1");
		if (wait_clean() == ~0ULL) {
			printf("FAIL: area%d never became clean\n", area);
			return 1;
		}
		write_str(PREZERO, "0");
		fd = alloc(&ns);
		if (fd < 0) {
			printf("FAIL: allocation: %s\n", strerror(-fd));
			return 1;
		}
		close(fd);
		/* The range is dirty now: the allocation must zero all of it. */
		s0 = attr("sync_zeroed_bytes");
		fd = alloc(&sync[r]);
		s1 = attr("sync_zeroed_bytes");
		if (fd < 0 || s1 - s0 != size) {
			printf("FAIL: dirty allocation: fd %d, zeroed %" PRIu64 " of %zu bytes\n",
			       fd, s1 - s0, size);
			return 1;
		}
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			printf("FAIL: mmap: %s\n", strerror(errno));
			return 1;
		}
		memset(p, 0x5a, size);
		t = now_ns();
		memset(p, 0, size);
		user[r] = now_ns() - t;
		memset(p, 0xa5, size);
		munmap(p, size);
		close(fd);
		/* The background zeroer cleans what was freed. */
		b0 = attr("zeroing_ns");
		t = now_ns();
		write_str(PREZERO, "1");
		if (wait_clean() == ~0ULL) {
			printf("FAIL: the zeroer did not clean the area\n");
			return 1;
		}
		wall[r] = now_ns() - t;
		busy[r] = attr("zeroing_ns") - b0;
		s0 = attr("sync_zeroed_bytes");
		fd = alloc(&clean[r]);
		s1 = attr("sync_zeroed_bytes");
		if (fd < 0 || s1 != s0) {
			printf("FAIL: clean allocation: fd %d, zeroed %" PRIu64 " bytes itself\n",
			       fd, s1 - s0);
			return 1;
		}
		p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			for (i = 0; i < (int)(size / 4096); i++)
				bad += *(volatile uint64_t *)(p + (size_t)i * 4096) != 0;
			munmap(p, size);
		}
		close(fd);
		/* Per run: zeroer bandwidth / synchronous bandwidth, in 1/1000. */
		ratio[r] = wall[r] ? sync[r] * 1000 / wall[r] : 0;
		printf("run %d: clean %.1f us, dirty %.1f ms, zeroer %.1f ms (busy %.1f ms), "
		       "user memset %.1f ms\n", r, clean[r] / 1e3, sync[r] / 1e6, wall[r] / 1e6,
		       busy[r] / 1e6, user[r] / 1e6);
	}
	write_str(PREZERO, pz[0] == 'N' || pz[0] == '0' ? "0" : "1");
	if (bad) {
		printf("FAIL: %d pages of a clean allocation not zero\n", bad);
		return 1;
	}
	{
		uint64_t c = median(clean, runs), s = median(sync, runs), w = median(wall, runs);
		uint64_t b = median(busy, runs), u = median(user, runs);
		uint64_t q = median(ratio, runs);

		printf("\n%-44s %12s %10s\n", "", "median", "GiB/s");
		printf("%-44s %9.1f us\n", "ALLOC, clean pool", c / 1e3);
		printf("%-44s %9.1f ms %10.2f\n", "ALLOC, dirty pool (synchronous zeroing)", s / 1e6, gibs(s));
		printf("%-44s %9.1f ms %10.2f\n", "background zeroer, wall", w / 1e6, gibs(w));
		printf("%-44s %9.1f ms %10.2f\n", "background zeroer, busy", b / 1e6, gibs(b));
		printf("%-44s %9.1f ms %10.2f\n", "memset from userspace (reference)", u / 1e6, gibs(u));
		printf("ALLOC clean vs synchronous zeroing: %.0fx faster (target >= 100x)\n",
		       c ? (double)s / c : 0);
		printf("zeroer wall bandwidth vs synchronous (kernel memset, one CPU): %.2f "
		       "(target >= 0.70); median of the runs' ratios %.2f\n", w ? (double)s / w : 0,
		       q / 1000.0);
		printf("BENCH {\"bench\":\"prezero_alloc\",\"bytes\":%zu,\"alloc_clean_ns\":%" PRIu64
		       ",\"alloc_sync_zero_ns\":%" PRIu64 ",\"ratio\":%.1f}\n", size, c, s,
		       c ? (double)s / c : 0);
		printf("BENCH {\"bench\":\"prezero_zeroer\",\"bytes\":%zu,\"zeroer_wall_ns\":%" PRIu64
		       ",\"zeroer_busy_ns\":%" PRIu64 ",\"memset_kernel_ns\":%" PRIu64
		       ",\"memset_user_ns\":%" PRIu64 ",\"ratio_wall_vs_kernel_memset\":%.3f"
		       ",\"ratio_wall_vs_user_memset\":%.3f,\"median_run_ratio_vs_kernel_memset\":%.3f}\n",
		       size, w, b, s, u, w ? (double)s / w : 0, w ? (double)u / w : 0, q / 1000.0);
	}
	return 0;
}
