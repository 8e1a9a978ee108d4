// SPDX-License-Identifier: GPL-2.0
/*
 * extmem concurrency stress.
 *
 * EXTMEM_STRESS_THREADS threads per node that has an area (default 2) run
 * for EXTMEM_STRESS_SECONDS (default 30). Each keeps up to eight
 * allocations of its own on its node, of random sizes (4 KiB to 64 MiB)
 * and alignments (4 KiB to 1 GiB), and in a random order:
 *
 *  - allocates, reads the physical range with EXTMEM_IOC_INFO (root) and
 *    checks it lies in an area of the right node and overlaps no other live
 *    allocation of any thread (one table of live ranges for the process);
 *  - maps it, checks it is zero (first word of every page, all of one
 *    sampled page), and writes the allocation's unique tag into the first
 *    word of every page and every word of one sampled page;
 *  - later re-checks the tag (another allocation written over the same
 *    memory would show here), unmaps, and closes the fd.
 *
 * At the end everything is freed and sysfs must show each area exactly as
 * free, and with as many allocations, as at the start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/extmem.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "extmem_util.h"

#define DEV		"/dev/extmem"
#define MAX_AREAS	64
#define MAX_THREADS	64
#define PER_THREAD	8
#define MAX_LIVE	(MAX_THREADS * PER_THREAD)


static size_t pg;

/* ---- shared state ---------------------------------------------------- */

struct area {
	int node;
	uint64_t base, total;
};

static struct area areas[MAX_AREAS];
static int nareas;
static int devfd;
static double deadline;

/* Every live allocation of every thread, by physical range. */
static struct {
	uint64_t phys, len, tag;
} live[MAX_LIVE];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_ulong next_tag = 1;
static atomic_ulong n_alloc, n_free, n_nomem, n_overlap, n_badtag, n_notzero,
	n_badinfo, n_errors, n_bytes, n_huge;

#define COMPLAIN(counter, fmt, ...) do {					\
	if (atomic_fetch_add(&(counter), 1) < 10)				\
		printf("# " fmt "\n", ##__VA_ARGS__);				\
} while (0)

/* Adds [phys, phys + len) to the live table; returns the overlapping tag or 0. */
static uint64_t live_add(uint64_t phys, uint64_t len, uint64_t tag)
{
	uint64_t hit = 0;
	int i, free_slot = -1;

	pthread_mutex_lock(&live_lock);
	for (i = 0; i < MAX_LIVE; i++) {
		if (!live[i].len) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (phys < live[i].phys + live[i].len && live[i].phys < phys + len)
			hit = live[i].tag;
	}
	if (free_slot >= 0) {
		live[free_slot].phys = phys;
		live[free_slot].len = len;
		live[free_slot].tag = tag;
	}
	pthread_mutex_unlock(&live_lock);
	return hit;
}

static void live_del(uint64_t tag)
{
	int i;

	pthread_mutex_lock(&live_lock);
	for (i = 0; i < MAX_LIVE; i++)
		if (live[i].len && live[i].tag == tag)
			live[i].len = 0;
	pthread_mutex_unlock(&live_lock);
}

struct mine {
	int fd;
	char *p;
	uint64_t len, phys, tag;
	size_t sample;	/* the page written in full */
};

struct thread {
	pthread_t tid;
	int id, node;
	uint64_t rng;
	struct mine m[PER_THREAD];
};

static uint64_t word(uint64_t tag, size_t i)
{
	return tag * 0x9e3779b97f4a7c15ULL + i;
}

static void write_tag(struct mine *a)
{
	uint64_t *s = (uint64_t *)(a->p + a->sample * pg);
	size_t o, i;

	for (o = 0; o < a->len; o += pg)
		*(volatile uint64_t *)(a->p + o) = a->tag;
	for (i = 1; i < pg / 8; i++)
		s[i] = word(a->tag, i);
}

/* Returns the byte offset of the first wrong word, or -1. */
static int64_t check_tag(const struct mine *a)
{
	const uint64_t *s = (const uint64_t *)(a->p + a->sample * pg);
	size_t o, i;

	for (o = 0; o < a->len; o += pg)
		if (*(volatile uint64_t *)(a->p + o) != a->tag)
			return o;
	for (i = 1; i < pg / 8; i++)
		if (s[i] != word(a->tag, i))
			return a->sample * pg + i * 8;
	return -1;
}

static int64_t check_zero(const struct mine *a)
{
	const uint64_t *s = (const uint64_t *)(a->p + a->sample * pg);
	size_t o, i;

	for (o = 0; o < a->len; o += pg)
		if (*(volatile uint64_t *)(a->p + o))
			return o;
	for (i = 0; i < pg / 8; i++)
		if (s[i])
			return a->sample * pg + i * 8;
	return -1;
}

static uint64_t rand_len(uint64_t *rng)
{
	switch (below(rng, 10)) {
	case 0:
		return (1 + below(rng, 32)) * MiB;	/* up to 32 MiB */
	case 1:
		return 64 * MiB;
	case 2:
	case 3:
		return 2 * MiB * (1 + below(rng, 4));
	default:
		return pg * (1 + below(rng, 256));	/* up to 1 MiB */
	}
}

static uint64_t rand_align(uint64_t *rng)
{
	unsigned int r = below(rng, 20);

	if (r == 0)
		return GiB;
	if (r < 6)
		return 2 * MiB;
	if (r < 12)
		return 0;
	return pg << below(rng, 9);	/* 4 KiB .. 1 MiB */
}

static void do_alloc(struct thread *t, struct mine *a)
{
	struct extmem_alloc_args args;
	struct extmem_info info;
	uint64_t align = rand_align(&t->rng), hit, end;
	int64_t bad;
	int fd, i, in_area = 0;

	memset(&args, 0, sizeof(args));
	args.size = sizeof(args);
	args.length = rand_len(&t->rng);
	args.alignment = align;
	args.node = t->node;
	snprintf(args.label, sizeof(args.label), "stress%d", t->id);
	fd = ioctl(devfd, EXTMEM_IOC_ALLOC, &args);
	if (fd < 0) {
		if (errno == ENOMEM)
			atomic_fetch_add(&n_nomem, 1);
		else
			COMPLAIN(n_errors, "thread %d: ALLOC %#" PRIx64 " align %#" PRIx64 ": %s",
				 t->id, (uint64_t)args.length, align, strerror(errno));
		return;
	}
	atomic_fetch_add(&n_alloc, 1);
	a->fd = fd;
	a->len = args.length;
	a->tag = atomic_fetch_add(&next_tag, 1);
	a->sample = below(&t->rng, a->len / pg);

	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	if (ioctl(fd, EXTMEM_IOC_INFO, &info)) {
		COMPLAIN(n_errors, "thread %d: INFO: %s", t->id, strerror(errno));
		info.phys = 0;
	}
	a->phys = info.phys;
	if (info.length != a->len || info.node != t->node || !info.phys ||
	    (align && info.phys % align))
		COMPLAIN(n_badinfo, "thread %d: INFO node %d len %#" PRIx64 " phys %#" PRIx64
			 " for node %d len %#" PRIx64 " align %#" PRIx64,
			 t->id, info.node, (uint64_t)info.length, (uint64_t)info.phys, t->node,
			 a->len, align);
	end = a->phys + a->len;
	for (i = 0; i < nareas; i++)
		in_area |= areas[i].node == t->node && a->phys >= areas[i].base &&
			   end <= areas[i].base + areas[i].total;
	if (!in_area)
		COMPLAIN(n_badinfo, "thread %d: %#" PRIx64 "+%#" PRIx64 " is in no area of node %d",
			 t->id, a->phys, a->len, t->node);
	hit = live_add(a->phys, a->len, a->tag);
	if (hit)
		COMPLAIN(n_overlap, "thread %d: allocation %" PRIu64 " at %#" PRIx64 "+%#" PRIx64
			 " overlaps live allocation %" PRIu64, t->id, a->tag, a->phys, a->len, hit);

	a->p = mmap(NULL, a->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a->p == MAP_FAILED) {
		COMPLAIN(n_errors, "thread %d: mmap %#" PRIx64 ": %s", t->id, a->len,
			 strerror(errno));
		a->p = NULL;
		return;
	}
	if (a->len >= 2 * MiB)
		atomic_fetch_add(&n_huge, 1);
	bad = check_zero(a);
	if (bad >= 0)
		COMPLAIN(n_notzero, "thread %d: allocation %" PRIu64 " (phys %#" PRIx64
			 ") not zero at +%#" PRIx64, t->id, a->tag, a->phys, (uint64_t)bad);
	write_tag(a);
	atomic_fetch_add(&n_bytes, a->len / pg * 8 + pg);
}

static void do_free(struct thread *t, struct mine *a)
{
	int64_t bad;

	if (a->p) {
		bad = check_tag(a);
		if (bad >= 0)
			COMPLAIN(n_badtag, "thread %d: allocation %" PRIu64 " (phys %#" PRIx64
				 "): wrong tag at +%#" PRIx64, t->id, a->tag, a->phys,
				 (uint64_t)bad);
		munmap(a->p, a->len);
	}
	/* Unregister before the memory can be handed out again. */
	live_del(a->tag);
	close(a->fd);
	atomic_fetch_add(&n_free, 1);
	memset(a, 0, sizeof(*a));
	a->fd = -1;
}

static void *stress_thread(void *arg)
{
	struct thread *t = arg;
	struct mine *a;
	int i;

	for (i = 0; i < PER_THREAD; i++)
		t->m[i].fd = -1;
	while (now() < deadline) {
		a = &t->m[below(&t->rng, PER_THREAD)];
		if (a->fd < 0) {
			do_alloc(t, a);
		} else if (below(&t->rng, 3) == 0 && a->p) {
			int64_t bad = check_tag(a);

			if (bad >= 0)
				COMPLAIN(n_badtag, "thread %d: allocation %" PRIu64
					 ": wrong tag at +%#" PRIx64, t->id, a->tag,
					 (uint64_t)bad);
		} else {
			do_free(t, a);
		}
	}
	for (i = 0; i < PER_THREAD; i++)
		if (t->m[i].fd >= 0)
			do_free(t, &t->m[i]);
	return NULL;
}

FIXTURE(stress)
{
	uint64_t free0[MAX_AREAS], allocs0[MAX_AREAS];
};

FIXTURE_SETUP(stress)
{
	int i;

	pg = sysconf(_SC_PAGESIZE);
	devfd = open(DEV, O_RDWR | O_CLOEXEC);
	if (devfd < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist (kernel without CONFIG_EXTMEM?)");
	if (devfd < 0 && (errno == EACCES || errno == EPERM))
		SKIP(return, "opening " DEV " needs root (CAP_SYS_ADMIN)");
	ASSERT_LE(0, devfd) TH_LOG("open %s: %s", DEV, strerror(errno));
	for (nareas = 0; nareas < MAX_AREAS; nareas++) {
		struct extmem_area_info ai;

		memset(&ai, 0, sizeof(ai));
		ai.size = sizeof(ai);
		ai.index = nareas;
		if (ioctl(devfd, EXTMEM_IOC_AREA_INFO, &ai))
			break;
		areas[nareas].node = ai.node;
		areas[nareas].base = ai.base;
		areas[nareas].total = ai.total;
	}
	if (!nareas)
		SKIP(return, "no extmem areas (boot with extmem=)");
	if (!areas[0].base)
		SKIP(return, "EXTMEM_IOC_AREA_INFO hides addresses (not root?)");
	for (i = 0; i < nareas; i++) {
		ASSERT_EQ(0, area_attr(i, "free_bytes", &self->free0[i]));
		ASSERT_EQ(0, area_attr(i, "allocations", &self->allocs0[i]));
	}
}

FIXTURE_TEARDOWN(stress)
{
	if (devfd >= 0)
		close(devfd);
}

TEST_F_TIMEOUT(stress, alloc_map_tag_verify_free, 3600)
{
	uint64_t seconds = env_u64("EXTMEM_STRESS_SECONDS", 30);
	uint64_t per_node = env_u64("EXTMEM_STRESS_THREADS", 2);
	uint64_t seed = env_u64("EXTMEM_STRESS_SEED", 0);
	uint64_t f[MAX_AREAS], al[MAX_AREAS], lost = 0, left = 0;
	static struct thread th[MAX_THREADS];
	int i, j, n = 0, seen[MAX_AREAS], nnodes = 0, tries;
	double start;

	if (!seed)
		seed = ((uint64_t)time(NULL) << 20) ^ getpid();
	/* One group of threads per node that has an area. */
	for (i = 0; i < nareas; i++) {
		for (j = 0; j < nnodes && seen[j] != areas[i].node; j++)
			;
		if (j == nnodes)
			seen[nnodes++] = areas[i].node;
	}
	if (per_node < 1 || per_node * nnodes > MAX_THREADS)
		per_node = 2;
	printf("# seed %" PRIu64 ", %" PRIu64 " threads on each of %d nodes, %" PRIu64 " s\n",
	       seed, per_node, nnodes, seconds);

	start = now();
	deadline = start + seconds;
	for (j = 0; j < nnodes; j++) {
		for (i = 0; i < (int)per_node; i++, n++) {
			th[n].id = n;
			th[n].node = seen[j];
			th[n].rng = (seed + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)(n + 1) << 32);
			ASSERT_EQ(0, pthread_create(&th[n].tid, NULL, stress_thread, &th[n]));
		}
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i].tid, NULL);

	for (tries = 0; tries < 500; tries++) {
		int same = 1;

		for (i = 0; i < nareas; i++) {
			if (area_attr(i, "free_bytes", &f[i]) || area_attr(i, "allocations", &al[i]))
				f[i] = al[i] = ~0ULL;
			same &= f[i] == self->free0[i] && al[i] == self->allocs0[i];
		}
		if (same)
			break;
		usleep(10000);
	}
	for (i = 0; i < nareas; i++) {
		lost += self->free0[i] - f[i];
		left += al[i] - self->allocs0[i];
	}

	printf("# allocations %lu, frees %lu, ENOMEM %lu, 2 MiB+ mappings %lu\n",
	       atomic_load(&n_alloc), atomic_load(&n_free), atomic_load(&n_nomem),
	       atomic_load(&n_huge));
	printf("# operations %lu (ALLOC, INFO, mmap, close per allocation; failed ALLOCs)\n",
	       atomic_load(&n_alloc) * 4 + atomic_load(&n_nomem));
	printf("# tag bytes written %lu\n", atomic_load(&n_bytes));
	printf("# overlaps %lu, wrong tags %lu, not zeroed %lu, bad INFO %lu, errors %lu\n",
	       atomic_load(&n_overlap), atomic_load(&n_badtag), atomic_load(&n_notzero),
	       atomic_load(&n_badinfo), atomic_load(&n_errors));
	printf("# bytes not returned %" PRIu64 ", allocations left %" PRIu64 "\n", lost, left);
	printf("# run time %.1f s\n", now() - start);

	EXPECT_EQ(0, atomic_load(&n_overlap));
	EXPECT_EQ(0, atomic_load(&n_badtag));
	EXPECT_EQ(0, atomic_load(&n_notzero));
	EXPECT_EQ(0, atomic_load(&n_badinfo));
	EXPECT_EQ(0, atomic_load(&n_errors));
	EXPECT_EQ(atomic_load(&n_alloc), atomic_load(&n_free));
	EXPECT_GT(atomic_load(&n_alloc), 0);
	for (i = 0; i < nareas; i++) {
		EXPECT_EQ(self->free0[i], f[i]) TH_LOG("area%d free_bytes", i);
		EXPECT_EQ(self->allocs0[i], al[i]) TH_LOG("area%d allocations", i);
	}
}

TEST_HARNESS_MAIN
