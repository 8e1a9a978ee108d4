// SPDX-License-Identifier: GPL-2.0
/*
 * extmem ioctl/mmap fuzzer.
 *
 * Several threads (EXTMEM_FUZZ_THREADS, default 4) throw random requests at
 * /dev/extmem and at allocation fds for a bounded time (EXTMEM_FUZZ_SECONDS,
 * default 60): EXTMEM_IOC_ALLOC / AREA_INFO / INFO / REGION_CREATE /
 * REGION_DESTROY (and mapping the regions made) with random struct
 * contents, size fields (tiny, exact, larger with zero or non-zero tails,
 * over a page, ~0), argument pointers (NULL, kernel addresses, read-only
 * pages, structs that run into an unmapped guard page), random ioctl numbers
 * (extmem type with random dir/nr/size, and anything), random fds (the
 * device, allocation fds, a pipe, /dev/null, closed and never-opened
 * numbers), mmap with random offsets/lengths/prot/flags, touching what got
 * mapped, partial munmap, MADV_DONTNEED, fork, and closing fds at random,
 * all on one fd table shared by the threads.
 *
 * Requests on the permanent /dev/extmem fd with an argument buffer whose
 * readable extent is known go through an oracle that computes the errno the
 * ABI (include/uapi/linux/extmem.h) promises; any other answer is a
 * failure. A SIGSEGV/SIGBUS while touching a mapping that mmap() granted is
 * a failure too.
 *
 * At the end every fd is closed and every mapping unmapped, and sysfs must
 * show every area exactly as free as at the start, with no allocation left.
 *
 * The seed is printed; EXTMEM_FUZZ_SEED=<seed> replays the same per-thread
 * request streams (the interleaving of the threads differs from run to run,
 * so a replay is close, not exact; EXTMEM_FUZZ_THREADS=1 makes it exact).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "extmem_util.h"

#define DEV		"/dev/extmem"
#define MAX_AREAS	64
#define MAX_THREADS	16
#define NSLOTS		48	/* the shared fd table */
#define NMAPS		8	/* mappings each thread keeps */
#define NSTALE		16	/* recently closed fd numbers */


static size_t pg;

/* expect_copy() relies on these: no struct has grown yet. */
_Static_assert(EXTMEM_ALLOC_ARGS_SIZE_VER0 == sizeof(struct extmem_alloc_args), "VER0");
_Static_assert(EXTMEM_AREA_INFO_SIZE_VER0 == sizeof(struct extmem_area_info), "VER0");
_Static_assert(EXTMEM_INFO_SIZE_VER0 == sizeof(struct extmem_info), "VER0");
_Static_assert(EXTMEM_REGION_ARGS_SIZE_VER0 == sizeof(struct extmem_region_args), "VER0");

/* ---- small helpers ---------------------------------------------------- */

static int chance(uint64_t *s, unsigned int percent)
{
	return below(s, 100) < percent;
}

static int count_areas(void)
{
	uint64_t v;
	int n = 0;

	while (n < MAX_AREAS && area_attr(n, "size", &v) == 0)
		n++;
	return n;
}

/* nr_node_ids: one more than the highest possible node. */
static int nr_node_ids(void)
{
	FILE *f = fopen("/sys/devices/system/node/possible", "r");
	char buf[256], *p;
	int last = 0;

	if (!f)
		return 1;
	if (fgets(buf, sizeof(buf), f)) {
		p = buf + strlen(buf);
		while (p > buf && (p[-1] < '0' || p[-1] > '9'))
			p--;
		while (p > buf && p[-1] >= '0' && p[-1] <= '9')
			p--;
		last = atoi(p);
	}
	fclose(f);
	return last + 1;
}

/* ---- shared state ----------------------------------------------------- */

enum kind { K_EMPTY, K_DEV, K_ALLOC, K_PIPE, K_NULL };

struct slot {
	int fd;
	enum kind kind;
	uint64_t len;
};

static struct slot slots[NSLOTS];
static int stale[NSTALE];
static unsigned int stale_next;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static int devfd;		/* never closed while the threads run */
static int nodes;		/* nr_node_ids */
static int nareas;
static double deadline;

/* Totals, summed from the threads. */
static atomic_ulong n_ops, n_bad, n_allocs, n_maps, n_touch, n_forks,
	n_mismatch, n_faults, n_closed;

struct thread {
	pthread_t tid;
	int id;
	uint64_t rng;
	/* Argument buffers: [rw rw none] and one read-only page. */
	char *buf;
	char *ro;
	struct {
		char *p;
		size_t len;
		int prot;
	} maps[NMAPS];
};

static __thread sigjmp_buf touch_env;
static __thread volatile int touching;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (touching) {
		touching = 0;
		siglongjmp(touch_env, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void table_put(int fd, enum kind kind, uint64_t len, uint64_t *rng)
{
	int i, start = below(rng, NSLOTS), victim;

	pthread_mutex_lock(&table_lock);
	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &slots[(start + i) % NSLOTS];

		if (s->kind == K_EMPTY) {
			s->fd = fd;
			s->kind = kind;
			s->len = len;
			pthread_mutex_unlock(&table_lock);
			return;
		}
	}
	/* Full: the new fd replaces a random one. */
	victim = start;
	close(slots[victim].fd);
	stale[stale_next++ % NSTALE] = slots[victim].fd;
	slots[victim].fd = fd;
	slots[victim].kind = kind;
	slots[victim].len = len;
	pthread_mutex_unlock(&table_lock);
	atomic_fetch_add(&n_closed, 1);
}

static void table_close_random(uint64_t *rng)
{
	struct slot *s = &slots[below(rng, NSLOTS)];

	pthread_mutex_lock(&table_lock);
	if (s->kind != K_EMPTY) {
		close(s->fd);
		stale[stale_next++ % NSTALE] = s->fd;
		s->kind = K_EMPTY;
		s->fd = -1;
		atomic_fetch_add(&n_closed, 1);
	}
	pthread_mutex_unlock(&table_lock);
}

/* A random fd: from the table, the device, or one that is not open. */
static int pick_fd(uint64_t *rng, enum kind *kind, uint64_t *len)
{
	unsigned int r = below(rng, 100);
	struct slot s;

	*kind = K_EMPTY;
	*len = 0;
	if (r < 75) {
		pthread_mutex_lock(&table_lock);
		s = slots[below(rng, NSLOTS)];
		pthread_mutex_unlock(&table_lock);
		if (s.kind != K_EMPTY) {
			*kind = s.kind;
			*len = s.len;
			return s.fd;
		}
	}
	if (r < 88) {
		*kind = K_DEV;
		return devfd;
	}
	switch (below(rng, 4)) {
	case 0:
		return -1;
	case 1:
		return 1000 + below(rng, 24);	/* never opened */
	case 2:
		return INT32_MAX;
	default:
		pthread_mutex_lock(&table_lock);
		r = stale[below(rng, NSTALE)];
		pthread_mutex_unlock(&table_lock);
		/* Never stdio: random ioctls on the console are not the point. */
		return r > 2 ? (int)r : -1;
	}
}

/* ---- argument generation ---------------------------------------------- */

static uint64_t rand_length(uint64_t *rng)
{
	switch (below(rng, 16)) {
	case 0:
		return 0;
	case 1:
		return 1 + below(rng, pg - 1);			/* unaligned */
	case 2:
		return pg * (1 + below(rng, 1024)) + 1 + below(rng, pg - 1);
	case 3:
		return 2 * MiB;
	case 4:
		return (1 + below(rng, 8)) * 2 * MiB;
	case 5:
		/* Rare: zeroing hundreds of MiB is slow under TCG. */
		if (chance(rng, 80))
			return 64 * MiB;
		return chance(rng, 30) ? GiB : 512 * MiB;
	case 6:
		return ~0ULL - below(rng, 2) * (pg - 1);	/* ~0 and page-aligned top */
	case 7:
		return 1ULL << (12 + below(rng, 52));		/* 4K .. 2^63 */
	case 8:
		return rnd(rng);
	case 9:
		return 3 * GiB;
	default:
		return pg * (1 + below(rng, 256));		/* the common, valid case */
	}
}

static uint64_t rand_align(uint64_t *rng)
{
	switch (below(rng, 10)) {
	case 0:
	case 1:
		return 0;
	case 2:
		return 1ULL << below(rng, 64);
	case 3:
		return 2 * GiB;
	case 4:
		return rnd(rng);
	case 5:
		return pg + pg / 2;
	default:
		return 1ULL << (12 + below(rng, 19));	/* 4K .. 1G, valid */
	}
}

static int32_t rand_node(uint64_t *rng)
{
	switch (below(rng, 10)) {
	case 0:
		return -2;
	case 1:
		return INT32_MIN;
	case 2:
		return INT32_MAX;
	case 3:
		return nodes + below(rng, 64);
	case 4:
		return (int32_t)rnd(rng);
	case 5:
	case 6:
		return EXTMEM_NODE_ANY;
	default:
		return below(rng, nodes);
	}
}

/* The struct size field: mostly exact, often odd. */
static uint32_t rand_size(uint64_t *rng, uint32_t known)
{
	switch (below(rng, 12)) {
	case 0:
		return 0;
	case 1:
		return below(rng, known);
	case 2:
		return known + 1 + below(rng, 64);
	case 3:
		return known + 8 * (1 + below(rng, 2 * pg / 8));
	case 4:
		return pg;
	case 5:
		return pg + 1 + below(rng, 2);
	case 6:
		return ~0U;
	case 7:
		return (uint32_t)rnd(rng);
	default:
		return known;
	}
}

/*
 * Where the argument lives. Returns the pointer and sets *avail to the
 * bytes readable from it (SIZE_MAX if unknown) and *writable.
 */
enum where { W_BUF, W_EDGE, W_RO, W_NULL, W_KERNEL, W_WILD };

static char *rand_ptr(struct thread *t, size_t need, enum where *w, size_t *avail,
		      int *writable)
{
	uint64_t *rng = &t->rng;
	unsigned int r = below(rng, 100);

	*writable = 1;
	if (r < 72) {
		*w = W_BUF;
		*avail = 2 * pg;
		return t->buf;
	}
	if (r < 84) {
		/* The struct runs into the guard page after a few bytes. */
		size_t left = below(rng, need + 8);

		*w = W_EDGE;
		*avail = left;
		return t->buf + 2 * pg - left;
	}
	if (r < 92) {
		*w = W_RO;
		*avail = pg;
		*writable = 0;
		return t->ro;
	}
	*avail = 0;
	*writable = 0;
	switch (below(rng, 3)) {
	case 0:
		*w = W_NULL;
		return NULL;
	case 1:
		*w = W_KERNEL;
		return (char *)(0xffff888000000000ULL + below(rng, 1 << 20) * 8);
	default:
		/* Non-canonical: never a mapping of ours. */
		*w = W_WILD;
		return (char *)(uintptr_t)(0x800000000000ULL | (rnd(rng) & 0x7fffffffffffULL));
	}
}

/*
 * Copies @len bytes of @src to @dst, the argument location, which has
 * @avail readable bytes (the read-only page is written through its alias).
 */
static void place_arg(struct thread *t, char *dst, enum where w, const void *src,
		      size_t len, size_t avail)
{
	if (w == W_RO) {
		mprotect(t->ro, pg, PROT_READ | PROT_WRITE);
		memset(t->ro, 0, pg);
		memcpy(t->ro, src, len < pg ? len : pg);
		mprotect(t->ro, pg, PROT_READ);
		return;
	}
	/*
	 * Zero what the kernel may read besides the struct: a tail left by
	 * an earlier request would turn a zero-tail case into E2BIG.
	 */
	if (w == W_BUF)
		memset(t->buf, 0, 2 * pg);
	if (w == W_EDGE)
		memset(dst, 0, avail);
	if (w == W_BUF || w == W_EDGE)
		memcpy(dst, src, len < avail ? len : avail);
}

/*
 * The errno the ABI promises for a request at @p with @avail readable
 * bytes, caller's size @size, known struct size @known, a non-zero byte in
 * the tail (within what is readable) if @tail_nonzero, and field checks
 * @fields_ok. Returns a bit mask of acceptable results: bit 0 is success,
 * bit e is errno e.
 */
#define OK_BIT		1ULL
#define E(e)		(1ULL << (e))

static uint64_t expect_copy(size_t avail, uint32_t size, size_t known, int tail_nonzero)
{
	if (avail < 4)
		return E(EFAULT);
	if (size < known)	/* ..._SIZE_VER0 == sizeof() for every struct so far */
		return E(EINVAL);
	if (size > pg)
		return E(E2BIG);
	if (size > known) {
		if (tail_nonzero)
			return size > avail ? E(E2BIG) | E(EFAULT) : E(E2BIG);
		/*
		 * Past @avail the memory may still be mapped (it is only
		 * unmapped at a guard page), and what is there decides
		 * between "not zero" and "not readable".
		 */
		if (size > avail)
			return E(EFAULT) | E(E2BIG);
	}
	if (known > avail)
		return E(EFAULT);
	return 0;
}

/* ---- the operations ---------------------------------------------------- */

static int mismatch(struct thread *t, const char *what, int ret, uint64_t want)
{
	int e = ret < 0 ? errno : 0;

	if (e < 64 && (want & (e ? E(e) : OK_BIT)))
		return 0;
	if (atomic_fetch_add(&n_mismatch, 1) < 20)
		printf("# thread %d: %s: got %s, want mask %#" PRIx64 "\n", t->id, what,
		       e ? strerror(e) : "success", want);
	return 1;
}

static void op_alloc(struct thread *t)
{
	uint64_t *rng = &t->rng;
	struct extmem_alloc_args a;
	size_t avail, known = sizeof(a), i;
	enum where w;
	int writable, fields_ok, tail_nonzero = 0, fd, ret, sane;
	uint64_t want, align;
	char *p;

	memset(&a, 0, sizeof(a));
	a.size = rand_size(rng, known);
	a.flags = chance(rng, 85) ? (chance(rng, 50) ? EXTMEM_ALLOC_FALLBACK : 0)
				  : (uint32_t)rnd(rng);
	a.length = rand_length(rng);
	a.alignment = rand_align(rng);
	a.node = rand_node(rng);
	a.fd = chance(rng, 90) ? -1 : (int32_t)rnd(rng);
	if (chance(rng, 90))
		snprintf(a.label, sizeof(a.label), "fuzz%d-%" PRIu64, t->id, below(rng, 1000));
	else
		memset(a.label, 'A' + below(rng, 26), sizeof(a.label));	/* no NUL */
	if (chance(rng, 5))
		a.reserved[below(rng, 2)] = rnd(rng) | 1;

	/*
	 * Two requests in five are valid but for at most one field, so that
	 * allocations happen and the mmap side has something to work on.
	 */
	sane = chance(rng, 40);
	if (sane) {
		struct extmem_alloc_args r = a;

		memset(&a, 0, sizeof(a));
		a.size = known;
		a.flags = chance(rng, 50) ? EXTMEM_ALLOC_FALLBACK : 0;
		a.length = chance(rng, 80) ? pg * (1 + below(rng, 512)) : 2 * MiB * (1 + below(rng, 8));
		a.alignment = chance(rng, 50) ? 0 : pg << below(rng, 10);
		a.node = chance(rng, 30) ? EXTMEM_NODE_ANY : (int32_t)below(rng, nodes);
		a.fd = -1;
		snprintf(a.label, sizeof(a.label), "sane%d", t->id);
		if (chance(rng, 30)) {
			switch (below(rng, 7)) {
			case 0: a.size = r.size; break;
			case 1: a.flags = r.flags; break;
			case 2: a.length = r.length; break;
			case 3: a.alignment = r.alignment; break;
			case 4: a.node = r.node; break;
			case 5: memcpy(a.label, r.label, sizeof(a.label)); break;
			default: memcpy(a.reserved, r.reserved, sizeof(a.reserved)); break;
			}
		}
	}

	if (sane && chance(rng, 90)) {
		w = W_BUF;
		avail = 2 * pg;
		writable = 1;
		p = t->buf;
	} else {
		p = rand_ptr(t, known, &w, &avail, &writable);
	}
	place_arg(t, p, w, &a, known, avail);
	if (a.size > known && chance(rng, 30) && (w == W_BUF || w == W_EDGE)) {
		size_t at = known + below(rng, a.size - known);

		if (at < avail) {
			p[at] = 1 + below(rng, 255);
			tail_nonzero = 1;
		}
	}

	align = a.alignment ? a.alignment : pg;
	fields_ok = !a.reserved[0] && !a.reserved[1] && !(a.flags & ~EXTMEM_ALLOC_FLAGS) &&
		    a.length && !(a.length % pg) && !(align & (align - 1)) &&
		    align >= pg && align <= GiB && a.node >= EXTMEM_NODE_ANY && a.node < nodes;
	for (i = 0, ret = 0; i < sizeof(a.label); i++)
		ret |= a.label[i] == 0;
	fields_ok &= ret;

	fd = ioctl(devfd, EXTMEM_IOC_ALLOC, p);
	atomic_fetch_add(&n_ops, 1);
	if (fd < 0)
		atomic_fetch_add(&n_bad, 1);

	if (w == W_BUF || w == W_EDGE || w == W_RO) {
		want = expect_copy(avail, a.size, known, tail_nonzero);
		if (!want)
			want = !fields_ok ? E(EINVAL) :
			       (writable ? OK_BIT : E(EFAULT)) | E(ENOMEM) | E(ENODEV);
	} else {
		want = E(EFAULT);
	}
	mismatch(t, "ALLOC", fd, want);
	if (fd < 0)
		return;
	atomic_fetch_add(&n_allocs, 1);
	if (fd <= 2) {
		/* Cannot happen: stdio is open. Keep the console intact anyway. */
		close(fd);
		return;
	}
	table_put(fd, K_ALLOC, a.length, rng);
}

static void op_area_info(struct thread *t)
{
	uint64_t *rng = &t->rng;
	struct extmem_area_info ai;
	size_t avail, known = sizeof(ai);
	enum where w;
	int writable, ret, tail_nonzero = 0;
	uint64_t want;
	char *p;

	memset(&ai, 0, sizeof(ai));
	ai.size = rand_size(rng, known);
	ai.index = chance(rng, 70) ? below(rng, nareas + 2) : (uint32_t)rnd(rng);
	if (chance(rng, 10))
		ai.reserved0 = rnd(rng) | 1;
	if (chance(rng, 5))
		ai.reserved[below(rng, 2)] = rnd(rng) | 1;
	if (chance(rng, 20))	/* out fields with junk: must be ignored */
		ai.base = ai.total = ai.free = rnd(rng);

	p = rand_ptr(t, known, &w, &avail, &writable);
	place_arg(t, p, w, &ai, known, avail);
	if (ai.size > known && chance(rng, 30) && (w == W_BUF || w == W_EDGE)) {
		size_t at = known + below(rng, ai.size - known);

		if (at < avail) {
			p[at] = 1 + below(rng, 255);
			tail_nonzero = 1;
		}
	}
	ret = ioctl(devfd, EXTMEM_IOC_AREA_INFO, p);
	atomic_fetch_add(&n_ops, 1);
	if (ret < 0)
		atomic_fetch_add(&n_bad, 1);
	if (w == W_BUF || w == W_EDGE || w == W_RO) {
		want = expect_copy(avail, ai.size, known, tail_nonzero);
		if (!want) {
			if (ai.reserved0 || ai.reserved[0] || ai.reserved[1])
				want = E(EINVAL);
			else if (ai.index >= (uint32_t)nareas)
				want = E(ENOENT);
			else
				want = writable ? OK_BIT : E(EFAULT);
		}
	} else {
		want = E(EFAULT);
	}
	mismatch(t, "AREA_INFO", ret, want);
}

static void op_info(struct thread *t)
{
	uint64_t *rng = &t->rng;
	struct extmem_info in;
	size_t avail;
	enum where w;
	enum kind kind;
	uint64_t len;
	int writable, fd, ret;
	char *p;

	memset(&in, 0, sizeof(in));
	in.size = rand_size(rng, sizeof(in));
	if (chance(rng, 5))
		in.reserved[below(rng, 2)] = rnd(rng) | 1;
	fd = pick_fd(rng, &kind, &len);
	p = rand_ptr(t, sizeof(in), &w, &avail, &writable);
	place_arg(t, p, w, &in, sizeof(in), avail);
	ret = ioctl(fd, EXTMEM_IOC_INFO, p);
	atomic_fetch_add(&n_ops, 1);
	if (ret < 0)
		atomic_fetch_add(&n_bad, 1);
	/* INFO on /dev/extmem itself is not a command of the device. */
	if (fd == devfd)
		mismatch(t, "INFO on " DEV, ret, E(ENOTTY));
}

static void op_random_ioctl(struct thread *t)
{
	uint64_t *rng = &t->rng;
	enum kind kind;
	enum where w;
	uint64_t len, want;
	unsigned int cmd, dir, nr;
	size_t avail;
	int writable, fd, ret;
	char *p;

	if (chance(rng, 70)) {
		dir = below(rng, 4);
		nr = chance(rng, 50) ? below(rng, 0x20) : below(rng, 256);
		cmd = _IOC(dir, EXTMEM_IOCTL_TYPE, nr, below(rng, 1 << 14));
	} else {
		cmd = (unsigned int)rnd(rng);
		/* Not the generic FIFREEZE/FITHAW family ('X'). */
		if (_IOC_TYPE(cmd) == 'X')
			cmd ^= ('X' ^ EXTMEM_IOCTL_TYPE) << _IOC_TYPESHIFT;
	}
	fd = pick_fd(rng, &kind, &len);
	p = rand_ptr(t, 256, &w, &avail, &writable);
	if (w == W_BUF) {
		size_t i;

		for (i = 0; i < 256; i += 8)
			*(uint64_t *)(p + i) = chance(rng, 50) ? 0 : rnd(rng);
	}
	ret = ioctl(fd, cmd, p);
	atomic_fetch_add(&n_ops, 1);
	if (ret < 0)
		atomic_fetch_add(&n_bad, 1);
	else if (_IOC_TYPE(cmd) == EXTMEM_IOCTL_TYPE && _IOC_NR(cmd) == 0 && ret > 2)
		close(ret);	/* a random-looking ALLOC that worked */
	if (fd != devfd || _IOC_TYPE(cmd) != EXTMEM_IOCTL_TYPE)
		return;
	/*
	 * On the device: ALLOC, AREA_INFO, HUGETLB, REGION_CREATE and
	 * REGION_DESTROY, in read-write form.
	 */
	dir = _IOC_DIR(cmd);
	nr = _IOC_NR(cmd);
	if (dir != (_IOC_READ | _IOC_WRITE) || nr > 4)
		want = E(ENOTTY);
	else
		want = ~0ULL;	/* a real command with random bytes */
	mismatch(t, "random ioctl on " DEV, ret, want);
}

static void touch(struct thread *t, char *p, size_t len, int prot)
{
	uint64_t *rng = &t->rng;
	volatile uint64_t *q;
	int i, n = 1 + below(rng, 4);

	if (!(prot & (PROT_READ | PROT_WRITE)))
		return;
	for (i = 0; i < n; i++) {
		q = (volatile uint64_t *)(p + (below(rng, len / pg) * pg) +
					  below(rng, pg / 8) * 8);
		touching = 1;
		if (sigsetjmp(touch_env, 1)) {
			if (atomic_fetch_add(&n_faults, 1) < 10)
				printf("# thread %d: fault touching %p (mapping %p+%#zx prot %d)\n",
				       t->id, (void *)q, p, len, prot);
			return;
		}
		if (prot & PROT_WRITE)
			*q = rnd(rng);
		else
			(void)*q;
		touching = 0;
		atomic_fetch_add(&n_touch, 1);
	}
}

/* A region name is 1-31 of [A-Za-z0-9._-], not starting with '.', NUL-terminated. */
static int region_name_ok(const char *name, size_t len)
{
	size_t i;

	if (!name[0] || name[0] == '.')
		return 0;
	for (i = 0; i < len && name[i]; i++)
		if (!(isalnum((unsigned char)name[i]) || strchr("._-", name[i])))
			return 0;
	return i < len;
}

/*
 * Regions: REGION_CREATE with random or sane arguments (names of this
 * thread only, so EEXIST is this thread's doing), sometimes opening,
 * mapping and touching the new region through its node, then
 * REGION_DESTROY, also with random arguments. The oracle: every field rule
 * of the ABI is EINVAL; a valid request succeeds or meets EEXIST, ENOMEM,
 * ENODEV or ENOSPC; a valid destroy succeeds, or ENOENT, or EBUSY while a
 * child of op_fork() holds a copy of the region's fd.
 */
static void op_region(struct thread *t)
{
	static const uint64_t aligns[] = { 0, 4096, 2 * MiB };
	uint64_t *rng = &t->rng, want, align;
	struct extmem_region_args a;
	size_t avail, known = sizeof(a);
	int writable, ret, fields_ok, tail_nonzero = 0;
	char *p, path[64];
	enum where w;

	memset(&a, 0, sizeof(a));
	a.size = chance(rng, 70) ? known : rand_size(rng, known);
	snprintf(a.name, sizeof(a.name), "fz%d-%d", t->id, (int)below(rng, 3));
	switch (below(rng, 12)) {
	case 0: snprintf(a.name, sizeof(a.name), "a/b"); break;
	case 1: a.name[0] = '.'; break;
	case 2: memset(a.name, 'x', sizeof(a.name)); break;	/* no NUL */
	case 3: a.name[0] = '\0'; break;
	case 4: a.name[1] = 1 + below(rng, 255); break;
	default: break;
	}
	a.flags = chance(rng, 90) ? (chance(rng, 30) ? EXTMEM_REGION_STICKY : 0) :
				    (uint32_t)rnd(rng);
	a.alignment = chance(rng, 80) ? aligns[below(rng, 3)] : rand_align(rng);
	align = a.alignment ? a.alignment : 2 * MiB;
	a.length = chance(rng, 80) ? align * (1 + below(rng, 8)) : rand_length(rng);
	if (a.length > 64 * MiB && chance(rng, 95))	/* zeroing is slow under TCG */
		a.length = 64 * MiB;
	a.node = chance(rng, 85) ? (chance(rng, 30) ? EXTMEM_NODE_ANY : (int32_t)below(rng, nodes)) :
				   rand_node(rng);
	a.mode = chance(rng, 90) ? 0600 : (uint32_t)rnd(rng);
	a.uid = chance(rng, 95) ? below(rng, 2000) : ~0U;	/* ~0: no such uid */
	a.gid = chance(rng, 95) ? below(rng, 2000) : ~0U;
	if (chance(rng, 5))
		a.reserved[below(rng, 2)] = rnd(rng) | 1;

	p = rand_ptr(t, known, &w, &avail, &writable);
	place_arg(t, p, w, &a, known, avail);
	if (a.size > known && chance(rng, 30) && (w == W_BUF || w == W_EDGE)) {
		size_t at = known + below(rng, a.size - known);

		if (at < avail) {
			p[at] = 1 + below(rng, 255);
			tail_nonzero = 1;
		}
	}
	fields_ok = region_name_ok(a.name, sizeof(a.name)) && !a.reserved[0] && !a.reserved[1] &&
		    !(a.flags & ~EXTMEM_REGION_FLAGS) && !(align & (align - 1)) &&
		    align >= pg && align <= GiB && a.length && !(a.length % align) &&
		    a.node >= EXTMEM_NODE_ANY && a.node < nodes && !(a.mode & ~0777) &&
		    a.uid != ~0U && a.gid != ~0U;
	ret = ioctl(devfd, EXTMEM_IOC_REGION_CREATE, p);
	atomic_fetch_add(&n_ops, 1);
	if (ret < 0)
		atomic_fetch_add(&n_bad, 1);
	if (w == W_BUF || w == W_EDGE || w == W_RO) {
		/* Nothing is written back: a read-only argument is fine. */
		want = expect_copy(avail, a.size, known, tail_nonzero);
		if (!want)
			want = !fields_ok ? E(EINVAL) :
			       OK_BIT | E(EEXIST) | E(ENOMEM) | E(ENODEV) | E(ENOSPC);
	} else {
		want = E(EFAULT);
	}
	mismatch(t, "REGION_CREATE", ret, want);
	if (ret == 0 && chance(rng, 60)) {
		int fd;

		snprintf(path, sizeof(path), "/dev/extmem_region/%s", a.name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			mismatch(t, "open region", -1, OK_BIT);
		} else {
			size_t len = chance(rng, 50) ? pg : a.length;
			char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

			if (m == MAP_FAILED) {
				mismatch(t, "mmap region", -1, OK_BIT);
			} else {
				touch(t, m, len, PROT_READ | PROT_WRITE);
				atomic_fetch_add(&n_maps, 1);
				munmap(m, len);
			}
			close(fd);
		}
	}
	if (!chance(rng, 70))
		return;
	/* Destroy, with a valid request most of the time. */
	if (chance(rng, 80)) {
		char name[sizeof(a.name)];

		memcpy(name, a.name, sizeof(name));
		memset(&a, 0, sizeof(a));
		a.size = known;
		memcpy(a.name, name, sizeof(name));
		if (chance(rng, 10))
			a.length = 1;
	}
	p = rand_ptr(t, known, &w, &avail, &writable);
	place_arg(t, p, w, &a, known, avail);
	fields_ok = region_name_ok(a.name, sizeof(a.name)) && !a.flags && !a.length &&
		    !a.alignment && !a.node && !a.uid && !a.gid && !a.mode && !a.reserved[0] &&
		    !a.reserved[1];
	ret = ioctl(devfd, EXTMEM_IOC_REGION_DESTROY, p);
	atomic_fetch_add(&n_ops, 1);
	if (ret < 0)
		atomic_fetch_add(&n_bad, 1);
	if (w == W_BUF || w == W_EDGE || w == W_RO) {
		want = expect_copy(avail, a.size, known, 0);
		if (!want)
			want = !fields_ok ? E(EINVAL) : OK_BIT | E(ENOENT) | E(EBUSY);
	} else {
		want = E(EFAULT);
	}
	mismatch(t, "REGION_DESTROY", ret, want);
}

static void op_mmap(struct thread *t)
{
	static const int prots[] = {
		PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ, PROT_WRITE,
		PROT_NONE, PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC,
	};
	uint64_t *rng = &t->rng;
	enum kind kind;
	uint64_t len, off, mlen;
	int fd, prot, flags, slot, i;
	void *p;

	/* Mostly allocation fds: the other kinds refuse mmap quickly. */
	for (i = 0; i < 6; i++) {
		fd = pick_fd(rng, &kind, &len);
		if (kind == K_ALLOC || chance(rng, 15))
			break;
	}
	if (kind != K_ALLOC || !len)
		len = pg * (1 + below(rng, 512));
	switch (below(rng, 8)) {
	case 0:
		off = below(rng, 2) ? len : len + pg * below(rng, 4);	/* at/after the end */
		break;
	case 1:
		off = rnd(rng) & ~(pg - 1);
		break;
	case 2:
		off = 1 + below(rng, pg - 1);				/* unaligned */
		break;
	default:
		off = below(rng, len / pg) * pg;
		break;
	}
	switch (below(rng, 8)) {
	case 0:
		mlen = 0;
		break;
	case 1:
		mlen = len - off + pg * (1 + below(rng, 4));		/* past the end */
		break;
	case 2:
		mlen = 1ULL << (20 + below(rng, 27));			/* 1 MiB .. 64 TiB */
		break;
	case 3:
		mlen = 1 + below(rng, 3 * pg);				/* unaligned */
		break;
	default:
		mlen = off < len ? pg * (1 + below(rng, (len - off) / pg)) : pg;
		break;
	}
	prot = prots[below(rng, sizeof(prots) / sizeof(prots[0]))];
	flags = chance(rng, 88) ? MAP_SHARED : MAP_PRIVATE;
	if (chance(rng, 10))
		flags |= MAP_POPULATE;
	if (chance(rng, 5))
		flags |= MAP_NORESERVE;
	if (chance(rng, 3))
		flags = MAP_SHARED_VALIDATE | (chance(rng, 50) ? MAP_SYNC : 0);
	p = mmap(NULL, mlen, prot, flags, fd, off);
	atomic_fetch_add(&n_ops, 1);
	if (p == MAP_FAILED) {
		atomic_fetch_add(&n_bad, 1);
		return;
	}
	atomic_fetch_add(&n_maps, 1);
	mlen = (mlen + pg - 1) & ~(pg - 1);
	touch(t, p, mlen, prot);
	slot = below(rng, NMAPS);
	if (chance(rng, 50) || t->maps[slot].p) {
		munmap(p, mlen);
		return;
	}
	t->maps[slot].p = p;
	t->maps[slot].len = mlen;
	t->maps[slot].prot = prot;
}

/* Work on a mapping kept from earlier: touch, zap, cut, unmap. */
static void op_kept(struct thread *t)
{
	uint64_t *rng = &t->rng;
	int i = below(rng, NMAPS);
	size_t pages, from, n;
	char *p = t->maps[i].p;

	if (!p)
		return;
	pages = t->maps[i].len / pg;
	atomic_fetch_add(&n_ops, 1);
	switch (below(rng, 5)) {
	case 0:
	case 1:
		touch(t, p, t->maps[i].len, t->maps[i].prot);
		break;
	case 2:
		from = below(rng, pages);
		n = 1 + below(rng, pages - from);
		if (madvise(p + from * pg, n * pg, MADV_DONTNEED))
			atomic_fetch_add(&n_bad, 1);
		break;
	case 3:
		/* Cut the head or the tail off: splits huge entries. */
		if (pages < 2)
			break;
		n = 1 + below(rng, pages - 1);
		if (chance(rng, 50)) {
			munmap(p, n * pg);
			t->maps[i].p = p + n * pg;
		} else {
			munmap(p + (pages - n) * pg, n * pg);
		}
		t->maps[i].len = (pages - n) * pg;
		break;
	default:
		munmap(p, t->maps[i].len);
		t->maps[i].p = NULL;
		break;
	}
}

static void op_open(struct thread *t)
{
	uint64_t *rng = &t->rng;
	enum kind kind;
	uint64_t len;
	int fd, pfd[2];

	atomic_fetch_add(&n_ops, 1);
	switch (below(rng, 5)) {
	case 0:
		if (pipe2(pfd, O_CLOEXEC))
			return;
		table_put(pfd[0], K_PIPE, 0, rng);
		table_put(pfd[1], K_PIPE, 0, rng);
		return;
	case 1:
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			table_put(fd, K_NULL, 0, rng);
		return;
	case 2:
		fd = open(DEV, O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			table_put(fd, K_DEV, 0, rng);
		return;
	default:
		/* A second fd of the same file. */
		fd = pick_fd(rng, &kind, &len);
		if (kind != K_ALLOC)
			return;
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (fd >= 0)
			table_put(fd, K_ALLOC, len, rng);
		else
			atomic_fetch_add(&n_bad, 1);
		return;
	}
}

/* fork: the child touches inherited mappings and fds, then exits. */
static void op_fork(struct thread *t)
{
	uint64_t *rng = &t->rng;
	int i = below(rng, NMAPS), status;
	pid_t pid;

	atomic_fetch_add(&n_ops, 1);
	atomic_fetch_add(&n_forks, 1);
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		volatile uint64_t *q;

		if (t->maps[i].p && (t->maps[i].prot & PROT_WRITE)) {
			q = (volatile uint64_t *)(t->maps[i].p +
						  below(rng, t->maps[i].len / pg) * pg);
			*q = 0x666;
		}
		_exit(0);
	}
	if (waitpid(pid, &status, 0) == pid && (!WIFEXITED(status) || WEXITSTATUS(status)))
		if (atomic_fetch_add(&n_faults, 1) < 10)
			printf("# thread %d: forked child died with status %#x\n", t->id, status);
}

static void *fuzz_thread(void *arg)
{
	struct thread *t = arg;
	unsigned int r;
	int i;

	while (now() < deadline) {
		for (i = 0; i < 16; i++) {
			r = below(&t->rng, 1000);
			if (r < 250)
				op_alloc(t);
			else if (r < 330)
				op_area_info(t);
			else if (r < 420)
				op_info(t);
			else if (r < 510)
				op_random_ioctl(t);
			else if (r < 550)
				op_region(t);
			else if (r < 740)
				op_mmap(t);
			else if (r < 850)
				op_kept(t);
			else if (r < 930)
				table_close_random(&t->rng);
			else if (r < 995)
				op_open(t);
			else
				op_fork(t);
		}
	}
	for (i = 0; i < NMAPS; i++)
		if (t->maps[i].p)
			munmap(t->maps[i].p, t->maps[i].len);
	return NULL;
}

/* ---- the test ---------------------------------------------------------- */

FIXTURE(fuzz)
{
	int n;
	uint64_t free0[MAX_AREAS], allocs0[MAX_AREAS];
};

FIXTURE_SETUP(fuzz)
{
	int i;

	pg = sysconf(_SC_PAGESIZE);
	devfd = open(DEV, O_RDWR | O_CLOEXEC);
	if (devfd < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist (kernel without CONFIG_EXTMEM?)");
	if (devfd < 0 && (errno == EACCES || errno == EPERM))
		SKIP(return, "opening " DEV " needs root (CAP_SYS_ADMIN)");
	ASSERT_LE(0, devfd) TH_LOG("open %s: %s", DEV, strerror(errno));
	self->n = nareas = count_areas();
	if (!self->n)
		SKIP(return, "no extmem areas (boot with extmem=)");
	nodes = nr_node_ids();
	for (i = 0; i < self->n; i++) {
		ASSERT_EQ(0, area_attr(i, "free_bytes", &self->free0[i]));
		ASSERT_EQ(0, area_attr(i, "allocations", &self->allocs0[i]));
	}
}

FIXTURE_TEARDOWN(fuzz)
{
	if (devfd >= 0)
		close(devfd);
}

TEST_F_TIMEOUT(fuzz, random_requests_then_pool_is_whole, 3600)
{
	uint64_t seconds = env_u64("EXTMEM_FUZZ_SECONDS", 60);
	uint64_t nthreads = env_u64("EXTMEM_FUZZ_THREADS", 4);
	uint64_t seed = env_u64("EXTMEM_FUZZ_SEED", 0);
	uint64_t f[MAX_AREAS], al[MAX_AREAS], lost = 0, left = 0;
	struct thread th[MAX_THREADS];
	struct sigaction sa;
	double start;
	int i, tries;

	if (!seed)
		seed = ((uint64_t)time(NULL) << 20) ^ getpid();
	if (nthreads < 1 || nthreads > MAX_THREADS)
		nthreads = 4;
	printf("# seed %" PRIu64 " (replay: EXTMEM_FUZZ_SEED=%" PRIu64 "), %" PRIu64
	       " threads, %" PRIu64 " s, %d areas, %d nodes\n",
	       seed, seed, nthreads, seconds, self->n, nodes);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < NSLOTS; i++)
		slots[i] = (struct slot){ .fd = -1, .kind = K_EMPTY };
	for (i = 0; i < NSTALE; i++)
		stale[i] = -1;

	start = now();
	deadline = start + seconds;
	memset(th, 0, sizeof(th));
	for (i = 0; i < (int)nthreads; i++) {
		th[i].id = i;
		th[i].rng = (seed + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)(i + 1) << 32);
		th[i].buf = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		th[i].ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, th[i].buf);
		ASSERT_NE(MAP_FAILED, th[i].ro);
		ASSERT_EQ(0, mprotect(th[i].buf + 2 * pg, pg, PROT_NONE));
		ASSERT_EQ(0, pthread_create(&th[i].tid, NULL, fuzz_thread, &th[i]));
	}
	for (i = 0; i < (int)nthreads; i++)
		pthread_join(th[i].tid, NULL);

	/* Close everything. */
	for (i = 0; i < NSLOTS; i++)
		if (slots[i].kind != K_EMPTY)
			close(slots[i].fd);
	/*
	 * Regions op_region() left, or one a random ioctl made (a name of
	 * random bytes almost never is valid): destroy them.
	 */
	{
		struct extmem_region_args ra;
		struct dirent *e;
		DIR *d = opendir("/dev/extmem_region");

		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			memset(&ra, 0, sizeof(ra));
			ra.size = sizeof(ra);
			memcpy(ra.name, e->d_name, strnlen(e->d_name, sizeof(ra.name) - 1));
			if (ioctl(devfd, EXTMEM_IOC_REGION_DESTROY, &ra))
				printf("# destroying leftover region %s: %s\n", e->d_name,
				       strerror(errno));
		}
		if (d)
			closedir(d);
	}
	for (i = 0; i < (int)nthreads; i++) {
		munmap(th[i].buf, 3 * pg);
		munmap(th[i].ro, pg);
	}

	/* The last reference may go with deferred work: wait up to 5 s. */
	for (tries = 0; tries < 500; tries++) {
		int same = 1;

		for (i = 0; i < self->n; i++) {
			if (area_attr(i, "free_bytes", &f[i]) || area_attr(i, "allocations", &al[i]))
				f[i] = al[i] = ~0ULL;
			same &= f[i] == self->free0[i] && al[i] == self->allocs0[i];
		}
		if (same)
			break;
		usleep(10000);
	}
	for (i = 0; i < self->n; i++) {
		lost += self->free0[i] - f[i];
		left += al[i] - self->allocs0[i];
	}

	printf("# operations %lu\n", atomic_load(&n_ops));
	printf("# bad inputs %lu (requests that returned an error)\n", atomic_load(&n_bad));
	printf("# allocations %lu, mappings %lu, touches %lu, forks %lu, fds closed %lu\n",
	       atomic_load(&n_allocs), atomic_load(&n_maps), atomic_load(&n_touch),
	       atomic_load(&n_forks), atomic_load(&n_closed));
	printf("# errno mismatches %lu, faults %lu\n", atomic_load(&n_mismatch),
	       atomic_load(&n_faults));
	printf("# bytes not returned %" PRIu64 ", allocations left %" PRIu64 "\n", lost, left);
	printf("# run time %.1f s\n", now() - start);

	EXPECT_EQ(0, atomic_load(&n_mismatch));
	EXPECT_EQ(0, atomic_load(&n_faults));
	for (i = 0; i < self->n; i++) {
		EXPECT_EQ(self->free0[i], f[i]) TH_LOG("area%d free_bytes", i);
		EXPECT_EQ(self->allocs0[i], al[i]) TH_LOG("area%d allocations", i);
	}
	EXPECT_GT(atomic_load(&n_allocs), 0);
}

TEST_HARNESS_MAIN
