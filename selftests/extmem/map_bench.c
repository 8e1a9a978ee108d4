// SPDX-License-Identifier: GPL-2.0
/*
 * extmem map benchmark: what it costs to get 1 GiB of memory into a
 * process and touch all of it, through extmem and through the two usual
 * alternatives, measured in one run so the ratios compare like with like.
 *
 *   extmem      EXTMEM_IOC_ALLOC (1 GiB-aligned), mmap at a 1 GiB-aligned
 *               address: one PUD entry. Also at a 2 MiB-aligned address
 *               (512 PMD entries), to show what the address costs.
 *   hugetlb     a 1 GiB HugeTLB page from hugetlbfs (memfd_create with
 *               MFD_HUGETLB | MFD_HUGE_1GB, else MAP_HUGETLB), MAP_SHARED
 *               as a VMM maps guest memory.
 *   anonymous   MAP_PRIVATE | MAP_ANONYMOUS with MADV_NOHUGEPAGE: 4 KiB
 *               pages. (Not PR_SET_THP_DISABLE: that would also keep
 *               extmem's mappings from using huge entries.)
 *
 * Each run times the set-up (allocation and mmap), the touch (one write
 * per 4 KiB page) and the tear-down (munmap and close) with
 * CLOCK_MONOTONIC and counts the minor faults (getrusage) of set-up and
 * touch. The table shows the median of each over the runs and the ratio
 * of the total (set-up + touch) to extmem's. Each row is also printed as a
 * "BENCH {json}" line.
 *
 *   extmem_map_bench [-s MiB] [-r runs]     (default: 1024 MiB, 5 runs)
 *
 * The VM's init runs programs without arguments: EXTMEM_BENCH_MIB and
 * EXTMEM_BENCH_RUNS in the environment set the same two things.
 *
 * The VM boot for it adds "hugepagesz=1G hugepages=1". Without a free 1 GiB
 * HugeTLB page that row is skipped. If there is not enough free memory
 * for the anonymous row, the benchmark gives its 1 GiB HugeTLB pages back
 * to the page allocator first (after the hugetlb row, and says so), then
 * skips the row if memory is still short. Exits 4 (skip) without
 * /dev/extmem or without a free 1 GiB-aligned extmem range.
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
#include <linux/memfd.h>
#include <linux/mman.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define DEV		"/dev/extmem"
#define HUGE_1G		"/sys/kernel/mm/hugepages/hugepages-1048576kB"
#define MiB		((size_t)1 << 20)
#define GiB		((size_t)1 << 30)
#define MAX_RUNS	64
#define KSFT_SKIP	4

struct sample {
	uint64_t setup_ns, touch_ns, teardown_ns;
	long faults;
};

struct row {
	const char *name;	/* in the table */
	const char *key;	/* in the BENCH line */
	int (*run)(struct sample *s, const void *arg);
	const void *arg;
	int done;
	char why[160];		/* why it was skipped */
	struct sample med;
	uint64_t total_ns[MAX_RUNS];
};

static size_t size = GiB;
static int runs = 5;
static int dev = -1;
static size_t pg;
static const char *hugetlb_how = "memfd";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static void touch(char *p, size_t len)
{
	size_t o;

	for (o = 0; o < len; o += pg)
		((volatile char *)p)[o] = 1;
}

static int read_long(const char *path, long *val)
{
	char buf[64];
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -EIO;
	buf[len] = '\0';
	*val = strtol(buf, NULL, 10);
	return 0;
}

static int write_long(const char *path, long val)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), len, ret;

	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%ld\n", val);
	ret = write(fd, buf, len) == len ? 0 : -errno;
	close(fd);
	return ret;
}

static uint64_t mem_available(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb << 10;
}

static void print_file(const char *label, const char *path)
{
	char buf[256];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		printf("%s: %s\n", label, buf);
	}
	fclose(f);
}

/*
 * extmem: ALLOC, then mmap at @arg bytes past a 1 GiB-aligned address
 * (reserved as PROT_NONE first, the way a VMM places guest memory).
 */
static int run_extmem(struct sample *s, const void *arg)
{
	size_t skew = *(const size_t *)arg, rlen = size + GiB + skew;
	struct extmem_alloc_args a;
	uint64_t t0, t1, t2, t3;
	long f0;
	char *r, *va;
	int fd;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.length = size;
	a.alignment = size >= GiB ? GiB : 2 * MiB;
	a.node = EXTMEM_NODE_ANY;
	snprintf(a.label, sizeof(a.label), "map_bench");

	f0 = minflt();
	t0 = now_ns();
	fd = ioctl(dev, EXTMEM_IOC_ALLOC, &a);
	if (fd < 0)
		return -errno;
	r = mmap(NULL, rlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED) {
		close(fd);
		return -errno;
	}
	va = (char *)((((uintptr_t)r + GiB - 1) & ~(uintptr_t)(GiB - 1)) + skew);
	if (mmap(va, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != va) {
		int err = -errno;

		munmap(r, rlen);
		close(fd);
		return err;
	}
	t1 = now_ns();
	touch(va, size);
	t2 = now_ns();
	s->faults = minflt() - f0;
	munmap(r, rlen);
	close(fd);
	t3 = now_ns();
	s->setup_ns = t1 - t0;
	s->touch_ns = t2 - t1;
	s->teardown_ns = t3 - t2;
	return 0;
}

/* A 1 GiB HugeTLB page, shared, from hugetlbfs. */
static int run_hugetlb(struct sample *s, const void *arg)
{
	uint64_t t0, t1, t2, t3;
	int fd = -1;
	long f0;
	char *p;

	f0 = minflt();
	t0 = now_ns();
	if (!strcmp(hugetlb_how, "memfd")) {
		fd = syscall(SYS_memfd_create, "map_bench", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_1GB);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, size)) {
			int err = -errno;

			close(fd);
			return err;
		}
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	} else {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB, -1, 0);
	}
	if (p == MAP_FAILED) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		return err;
	}
	t1 = now_ns();
	touch(p, size);
	t2 = now_ns();
	s->faults = minflt() - f0;
	munmap(p, size);
	if (fd >= 0)
		close(fd);
	t3 = now_ns();
	s->setup_ns = t1 - t0;
	s->touch_ns = t2 - t1;
	s->teardown_ns = t3 - t2;
	return 0;
}

/* Anonymous memory in 4 KiB pages. */
static int run_anon(struct sample *s, const void *arg)
{
	uint64_t t0, t1, t2, t3;
	long f0;
	char *p;

	f0 = minflt();
	t0 = now_ns();
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	if (madvise(p, size, MADV_NOHUGEPAGE)) {
		int err = -errno;

		munmap(p, size);
		return err;
	}
	t1 = now_ns();
	touch(p, size);
	t2 = now_ns();
	s->faults = minflt() - f0;
	munmap(p, size);
	t3 = now_ns();
	s->setup_ns = t1 - t0;
	s->touch_ns = t2 - t1;
	s->teardown_ns = t3 - t2;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	uint64_t tmp[MAX_RUNS];

	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), cmp_u64);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void measure(struct row *r)
{
	uint64_t setup[MAX_RUNS], tch[MAX_RUNS], down[MAX_RUNS], flt[MAX_RUNS];
	struct sample s;
	int i, err;

	for (i = 0; i < runs; i++) {
		memset(&s, 0, sizeof(s));
		err = r->run(&s, r->arg);
		if (err) {
			snprintf(r->why, sizeof(r->why), "run %d failed: %s", i, strerror(-err));
			return;
		}
		setup[i] = s.setup_ns;
		tch[i] = s.touch_ns;
		down[i] = s.teardown_ns;
		flt[i] = s.faults;
		r->total_ns[i] = s.setup_ns + s.touch_ns;
	}
	r->med.setup_ns = median(setup, runs);
	r->med.touch_ns = median(tch, runs);
	r->med.teardown_ns = median(down, runs);
	r->med.faults = median(flt, runs);
	r->done = 1;
}

static double ms(uint64_t ns)
{
	return ns / 1e6;
}

static void report(struct row *rows, int n)
{
	uint64_t base = 0;
	int i, j;

	for (i = 0; i < n; i++)
		if (rows[i].done && !base)
			base = median(rows[i].total_ns, runs);

	printf("\n%-36s %10s %10s %10s %12s %12s %9s\n", "method", "setup ms", "touch ms",
	       "total ms", "teardown ms", "minor flt", "vs extmem");
	for (i = 0; i < n; i++) {
		struct row *r = &rows[i];
		uint64_t total;

		if (!r->done) {
			printf("%-36s skipped: %s\n", r->name, r->why);
			continue;
		}
		total = median(r->total_ns, runs);
		printf("%-36s %10.1f %10.1f %10.1f %12.1f %12ld %9.2f\n", r->name,
		       ms(r->med.setup_ns), ms(r->med.touch_ns), ms(total),
		       ms(r->med.teardown_ns), r->med.faults, (double)total / base);
	}
	printf("\n");
	for (i = 0; i < n; i++) {
		struct row *r = &rows[i];
		uint64_t total;

		if (!r->done)
			continue;
		total = median(r->total_ns, runs);
		printf("BENCH {\"bench\":\"map_touch\",\"method\":\"%s\",\"bytes\":%zu,"
		       "\"runs\":%d,\"setup_ns\":%" PRIu64 ",\"touch_ns\":%" PRIu64
		       ",\"total_ns\":%" PRIu64 ",\"teardown_ns\":%" PRIu64
		       ",\"minor_faults\":%ld,\"total_vs_extmem\":%.3f,\"total_ns_runs\":[",
		       r->key, size, runs, r->med.setup_ns, r->med.touch_ns, total,
		       r->med.teardown_ns, r->med.faults, (double)total / base);
		for (j = 0; j < runs; j++)
			printf("%s%" PRIu64, j ? "," : "", r->total_ns[j]);
		printf("]}\n");
	}
}

int main(int argc, char **argv)
{
	static const size_t skew_1g = 0, skew_2m = 2 * MiB;
	struct row rows[] = {
		{ "extmem, 1 GiB-aligned VA (PUD)", "extmem", run_extmem, &skew_1g },
		{ "extmem, 2 MiB-aligned VA (PMD)", "extmem_2m_va", run_extmem, &skew_2m },
		{ "hugetlb, one 1 GiB page", "hugetlb_1g", run_hugetlb, NULL },
		{ "anonymous, 4 KiB pages (THP off)", "anon_4k", run_anon, NULL },
	};
	long free_huge = 0, nr_huge = -1;
	int opt, released = 0;

	if (getenv("EXTMEM_BENCH_MIB"))
		size = strtoull(getenv("EXTMEM_BENCH_MIB"), NULL, 0) * MiB;
	if (getenv("EXTMEM_BENCH_RUNS"))
		runs = atoi(getenv("EXTMEM_BENCH_RUNS"));
	while ((opt = getopt(argc, argv, "s:r:")) != -1) {
		switch (opt) {
		case 's':
			size = strtoull(optarg, NULL, 0) * MiB;
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-s MiB] [-r runs]\n", argv[0]);
			return 2;
		}
	}
	if (!size || size % (2 * MiB) || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "size must be a non-zero multiple of 2 MiB, runs 1..%d\n", MAX_RUNS);
		return 2;
	}
	pg = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("extmem map benchmark: set up + touch (one write per 4 KiB) %zu MiB, "
	       "median of %d runs\n", size >> 20, runs);
	print_file("kernel", "/proc/sys/kernel/osrelease");
	print_file("THP", "/sys/kernel/mm/transparent_hugepage/enabled");

	dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		printf("skipped: cannot open %s: %s\n", DEV, strerror(errno));
		return KSFT_SKIP;
	}
	/* Huge PFNMAP entries are a THP feature; make sure it is on for us. */
	if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) > 0)
		prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);

	measure(&rows[0]);
	if (!rows[0].done) {
		printf("skipped: extmem: %s (needs a free, 1 GiB-aligned %zu MiB extmem range)\n",
		       rows[0].why, size >> 20);
		return KSFT_SKIP;
	}
	measure(&rows[1]);

	if (size % GiB) {
		snprintf(rows[2].why, sizeof(rows[2].why), "size is not a multiple of 1 GiB");
	} else if (read_long(HUGE_1G "/free_hugepages", &free_huge) ||
		   (uint64_t)free_huge < size / GiB) {
		snprintf(rows[2].why, sizeof(rows[2].why),
			 "%ld free 1 GiB HugeTLB pages, need %zu (boot with hugepagesz=1G "
			 "hugepages=%zu)", free_huge, size / GiB, size / GiB);
	} else {
		int fd = syscall(SYS_memfd_create, "probe", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_1GB);

		if (fd < 0)
			hugetlb_how = "MAP_HUGETLB";
		else
			close(fd);
		printf("hugetlb: %ld free 1 GiB pages, mapped through %s\n", free_huge,
		       hugetlb_how);
		measure(&rows[2]);
	}

	if (mem_available() < size + 128 * MiB && !read_long(HUGE_1G "/nr_hugepages", &nr_huge) &&
	    nr_huge > 0) {
		printf("anonymous: MemAvailable %" PRIu64 " MiB is short of %zu MiB; "
		       "releasing %ld 1 GiB HugeTLB pages\n", mem_available() >> 20,
		       (size >> 20) + 128, nr_huge);
		released = !write_long(HUGE_1G "/nr_hugepages", 0);
	}
	if (mem_available() < size + 128 * MiB)
		snprintf(rows[3].why, sizeof(rows[3].why),
			 "MemAvailable %" PRIu64 " MiB, need %zu MiB", mem_available() >> 20,
			 (size >> 20) + 128);
	else
		measure(&rows[3]);
	if (released) {
		long now = 0;

		write_long(HUGE_1G "/nr_hugepages", nr_huge);
		read_long(HUGE_1G "/nr_hugepages", &now);
		printf("hugetlb: asked for %ld 1 GiB pages back, got %ld\n", nr_huge, now);
	}

	report(rows, sizeof(rows) / sizeof(rows[0]));
	close(dev);
	return 0;
}
