// SPDX-License-Identifier: GPL-2.0
/*
 * extmem device interface: /dev/extmem, allocation fds and their mappings.
 *
 * Every test discovers the pool through EXTMEM_IOC_AREA_INFO and
 * /sys/kernel/mm/extmem/areaN/ and compares the pool with what it was when
 * the test started, so the tests run on any extmem= layout. They need root
 * (CAP_SYS_ADMIN); without /dev/extmem, without the privilege or without
 * an area everything skips. A test that needs more than the machine has
 * (a free, 1 GiB-aligned 1 GiB range; areas on two nodes) skips too.
 *
 * The test VM boots with two NUMA nodes of 2 GiB and "extmem=0:1G,1:1G".
 *
 * Each test runs in its own process (the harness forks), so whatever a
 * failing test leaves allocated is freed when that process exits.
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
#include <elf.h>
#include <grp.h>
#include <signal.h>
#include <linux/capability.h>
#include <linux/extmem.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "extmem_util.h"

#define MAX_AREAS	64


/* "The pool cannot satisfy this": both answers are accepted. */
#define NOSPACE(r)	((r) == -ENOMEM || (r) == -ENOSPC)
/* mmap beyond the end of an allocation. */
#define BEYOND(r)	((r) == -EINVAL || (r) == -ENXIO)

struct area {
	int node;
	uint64_t base, total, free, largest;
};

static size_t pg;

/* Areas as EXTMEM_IOC_AREA_INFO reports them; returns how many or -errno. */
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
		a[n].free = ai.free;
		a[n].largest = ai.largest_free;
	}
	return n;
}

/* One sysfs attribute of every area; missing attributes read as ~0. */
static void sysfs_all(int n, const char *attr, uint64_t *val)
{
	int i;

	for (i = 0; i < n; i++)
		if (area_attr(i, attr, &val[i]))
			val[i] = ~0ULL;
}

static uint64_t sysfs_sum(int n, const char *attr)
{
	uint64_t v, sum = 0;
	int i;

	for (i = 0; i < n; i++)
		if (!area_attr(i, attr, &v))
			sum += v;
	return sum;
}

static int has_attr(const char *attr)
{
	uint64_t v;

	return area_attr(0, attr, &v) == 0;
}

/*
 * Waits (up to 2 s) until free_bytes and largest_free_run of every area are
 * @free and @largest again: the last reference to an allocation may be
 * dropped by a task exit or by deferred work. Returns 0 when they are.
 */
static int wait_pool(int n, const uint64_t *free, const uint64_t *largest)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	uint64_t f[MAX_AREAS], l[MAX_AREAS];
	int tries, i, same;

	for (tries = 0; tries < 200; tries++) {
		sysfs_all(n, "free_bytes", f);
		sysfs_all(n, "largest_free_run", l);
		for (i = 0, same = 1; i < n; i++)
			same &= f[i] == free[i] && l[i] == largest[i];
		if (same)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void init_alloc_args(struct extmem_alloc_args *a, uint64_t length,
			    uint64_t alignment, int node, uint32_t flags)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->flags = flags;
	a->length = length;
	a->alignment = alignment;
	a->node = node;
	a->fd = -1;
}

/*
 * EXTMEM_IOC_ALLOC with @a; returns the new fd or -errno. An fd that is
 * not the ioctl's return value as well gives -EPROTO.
 */
static int alloc_args(int dev, struct extmem_alloc_args *a)
{
	int ret = ioctl(dev, EXTMEM_IOC_ALLOC, a);

	if (ret < 0)
		return -errno;
	if (ret != a->fd) {
		fprintf(stderr, "# ALLOC returned %d but args.fd is %d\n", ret, a->fd);
		close(ret);
		return -EPROTO;
	}
	return ret;
}

static int alloc_mem(int dev, uint64_t length, uint64_t alignment, int node,
		     uint32_t flags, const char *label)
{
	struct extmem_alloc_args a;

	init_alloc_args(&a, length, alignment, node, flags);
	if (label)
		snprintf(a.label, sizeof(a.label), "%s", label);
	return alloc_args(dev, &a);
}

/* ALLOC that is expected to fail: 0 (and the fd closed) if it did not. */
static int try_alloc(int dev, struct extmem_alloc_args *a)
{
	int fd = alloc_args(dev, a);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int try_alloc_simple(int dev, uint64_t length, uint64_t alignment, int node,
			    uint32_t flags)
{
	struct extmem_alloc_args a;

	init_alloc_args(&a, length, alignment, node, flags);
	return try_alloc(dev, &a);
}

static int get_info(int fd, struct extmem_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ioctl(fd, EXTMEM_IOC_INFO, info) < 0 ? -errno : 0;
}

static void *map_fd(int fd, size_t len, off_t off)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
}

/* mmap that is expected to fail: 0 (and unmapped) if it did not, else -errno. */
static int try_map(int fd, size_t len, off_t off, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, off);

	if (p == MAP_FAILED)
		return -errno;
	munmap(p, len);
	return 0;
}

/*
 * Reserves PROT_NONE address space and returns the address in it that is
 * @skew bytes past an @align-aligned address, with @len bytes after it.
 * Unmap *@res_len bytes at *@res when done.
 */
static char *reserve_va(size_t len, size_t align, size_t skew, void **res, size_t *res_len)
{
	size_t rl = len + align + skew;
	char *r = mmap(NULL, rl, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;

	if (r == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
	*res = r;
	*res_len = rl;
	return (char *)(a + skew);
}

static uint64_t pat(uint64_t seed, uint64_t off)
{
	return (off * 0x9e3779b97f4a7c15ULL) ^ seed;
}

/* Fills @len bytes at @p, which is at offset @off of its allocation. */
static void fill(void *p, size_t len, uint64_t seed, uint64_t off)
{
	uint64_t *q = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		q[i] = pat(seed, off + i * 8);
}

/* Returns the offset of the first byte that differs from fill(), or -1. */
static int64_t check(const void *p, size_t len, uint64_t seed, uint64_t off)
{
	const uint64_t *q = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (q[i] != pat(seed, off + i * 8))
			return i * 8;
	return -1;
}

/* The first word of every page only: cheap enough for 1 GiB under TCG. */
static void fill_sparse(void *p, size_t len, uint64_t seed, uint64_t off)
{
	size_t o;

	for (o = 0; o < len; o += pg)
		*(volatile uint64_t *)((char *)p + o) = pat(seed, off + o);
}

static int64_t check_sparse(const void *p, size_t len, uint64_t seed, uint64_t off)
{
	size_t o;

	for (o = 0; o < len; o += pg)
		if (*(const volatile uint64_t *)((const char *)p + o) != pat(seed, off + o))
			return o;
	return -1;
}

/* The first word of every page is zero: -1, else the offset of the page. */
static int64_t nonzero_sparse(const void *p, size_t len)
{
	size_t o;

	for (o = 0; o < len; o += pg)
		if (*(const volatile uint64_t *)((const char *)p + o))
			return o;
	return -1;
}

static int64_t first_nonzero(const void *p, size_t len)
{
	const uint64_t *q = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (q[i])
			return i * 8;
	return -1;
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Writes one byte in every page; returns the minor faults that took. */
static long touch(char *p, size_t len, char val)
{
	long before = minflt();
	size_t o;

	for (o = 0; o < len; o += pg)
		((volatile char *)p)[o] = val;
	return minflt() - before;
}

/* The VmFlags line of the mapping that starts at @addr, from smaps. */
static int vmflags(void *addr, char *out, size_t outlen)
{
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') <
		    strchr(line, ' ')) {
			found = start == (unsigned long)addr;
			continue;
		}
		if (found && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, outlen, "%s", line + 8);
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

static int has_flag(const char *flags, const char *flag)
{
	char buf[512], *tok, *save;

	snprintf(buf, sizeof(buf), "%s", flags);
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, flag))
			return 1;
	return 0;
}

/* Index of the area holding [phys, phys + len), or -1. */
static int area_of(const struct area *a, int n, uint64_t phys, uint64_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (phys >= a[i].base && phys + len <= a[i].base + a[i].total)
			return i;
	return -1;
}

/* Distinct nodes that have areas; returns how many. */
static int area_nodes(const struct area *a, int n, int *nodes)
{
	int i, j, k = 0;

	for (i = 0; i < n; i++) {
		for (j = 0; j < k && nodes[j] != a[i].node; j++)
			;
		if (j == k)
			nodes[k++] = a[i].node;
	}
	return k;
}

static int drop_cap_sys_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	int i = CAP_TO_INDEX(CAP_SYS_ADMIN);
	uint32_t m = CAP_TO_MASK(CAP_SYS_ADMIN);

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[i].effective &= ~m;
	d[i].permitted &= ~m;
	d[i].inheritable &= ~m;
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static int become_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return -errno;
	return 0;
}

/*
 * Runs @fn in a child process and returns its exit code (for the
 * privilege tests: an errno, or 0 for success; 200 and up: the child could
 * not set itself up), or -1 if it did not exit normally.
 */
static int in_child(int (*fn)(int, int), int a, int b)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(a, b));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int send_fd(int sock, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
		return -EIO;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -EBADMSG;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int put_byte(int fd, char c)
{
	return write(fd, &c, 1) == 1 ? 0 : -1;
}

static int get_byte(int fd, char want)
{
	char c;

	return read(fd, &c, 1) == 1 && c == want ? 0 : -1;
}

static int cpu_has_gbpages(void)
{
#if defined(__x86_64__)
	char line[4096];
	int has = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return 1;
	while (!has && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5))
			has = strstr(line, " pdpe1gb") != NULL;
	fclose(f);
	return has;
#else
	return 1;
#endif
}

FIXTURE(extmem)
{
	int dev;
	int n;
	struct area a[MAX_AREAS];
	uint64_t free0[MAX_AREAS], largest0[MAX_AREAS];
};

FIXTURE_SETUP(extmem)
{
	pg = sysconf(_SC_PAGESIZE);
	self->dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist (kernel without CONFIG_EXTMEM?)");
	if (self->dev < 0 && (errno == EACCES || errno == EPERM))
		SKIP(return, "opening " DEV " needs root (CAP_SYS_ADMIN)");
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", DEV, strerror(errno));
	self->n = read_areas(self->dev, self->a);
	ASSERT_LE(0, self->n) TH_LOG("EXTMEM_IOC_AREA_INFO: %s", strerror(-self->n));
	if (!self->n)
		SKIP(return, "no extmem areas (boot with extmem=)");
	sysfs_all(self->n, "free_bytes", self->free0);
	sysfs_all(self->n, "largest_free_run", self->largest0);
}

FIXTURE_TEARDOWN(extmem)
{
	if (self->dev >= 0)
		close(self->dev);
}

/* The pool is back to what it was when the test started. */
#define EXPECT_POOL_AS_AT_START() do {						\
	uint64_t _f[MAX_AREAS], _l[MAX_AREAS];					\
	int _i;									\
										\
	wait_pool(self->n, self->free0, self->largest0);			\
	sysfs_all(self->n, "free_bytes", _f);					\
	sysfs_all(self->n, "largest_free_run", _l);				\
	for (_i = 0; _i < self->n; _i++) {					\
		EXPECT_EQ(self->free0[_i], _f[_i]) TH_LOG("area%d free_bytes", _i);	\
		EXPECT_EQ(self->largest0[_i], _l[_i])				\
			TH_LOG("area%d largest_free_run", _i);			\
	}									\
} while (0)

TEST_F(extmem, device_and_area_info_match_sysfs)
{
	struct extmem_area_info ai;
	struct stat st;
	int i;

	ASSERT_EQ(0, fstat(self->dev, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);

	for (i = 0; i < self->n; i++) {
		uint64_t node, base, size, free, largest;

		TH_LOG("area%d: node %d, %" PRIu64 " MiB at %#" PRIx64 ", %" PRIu64
		       " MiB free, largest free run %" PRIu64 " MiB", i, self->a[i].node,
		       self->a[i].total >> 20, self->a[i].base, self->a[i].free >> 20,
		       self->a[i].largest >> 20);
		ASSERT_EQ(0, area_attr(i, "node", &node));
		ASSERT_EQ(0, area_attr(i, "base", &base));
		ASSERT_EQ(0, area_attr(i, "size", &size));
		ASSERT_EQ(0, area_attr(i, "free_bytes", &free));
		ASSERT_EQ(0, area_attr(i, "largest_free_run", &largest));
		EXPECT_EQ(node, self->a[i].node);
		EXPECT_EQ(base, self->a[i].base);
		EXPECT_EQ(size, self->a[i].total);
		EXPECT_EQ(free, self->a[i].free);
		EXPECT_EQ(largest, self->a[i].largest);
		EXPECT_LE(self->a[i].largest, self->a[i].free);
		EXPECT_LE(self->a[i].free, self->a[i].total);
	}
	/* No further area in sysfs either. */
	EXPECT_EQ(-ENOENT, area_attr(self->n, "node", &(uint64_t){ 0 }));

	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(ai);
	ai.index = self->n;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_EQ(ENOENT, errno);
}

/* Allocate on each node; map; memory is zero; a pattern reads back. */
TEST_F(extmem, alloc_on_each_node_map_write_read)
{
	const size_t len = 8 * MiB;
	int nodes[MAX_AREAS], nn = area_nodes(self->a, self->n, nodes), k;

	for (k = 0; k < nn; k++) {
		struct extmem_info info, i3, i4;
		char label[EXTMEM_LABEL_LEN], flags[512];
		uint64_t free_before, free_after;
		int fd, fd2, fd3, fd4, idx;
		char *p, *q;

		snprintf(label, sizeof(label), "node%d", nodes[k]);
		fd = alloc_mem(self->dev, len, 0, nodes[k], 0, label);
		ASSERT_LE(0, fd) TH_LOG("ALLOC 8 MiB on node %d: %s", nodes[k], strerror(-fd));
		EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);

		ASSERT_EQ(0, get_info(fd, &info));
		EXPECT_EQ(len, info.length);
		EXPECT_EQ(nodes[k], info.node);
		EXPECT_STREQ(label, info.label);
		EXPECT_EQ(0, info.phys % pg);
		idx = area_of(self->a, self->n, info.phys, len);
		ASSERT_LE(0, idx) TH_LOG("phys %#llx is in no area", (unsigned long long)info.phys);
		EXPECT_EQ(nodes[k], self->a[idx].node);
		TH_LOG("node %d: 8 MiB at %#llx (area%d)", nodes[k],
		       (unsigned long long)info.phys, idx);
		ASSERT_EQ(0, area_attr(idx, "free_bytes", &free_after));
		free_before = self->free0[idx];
		EXPECT_EQ(free_before - len, free_after);

		p = map_fd(fd, len, 0);
		ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
		ASSERT_EQ(0, vmflags(p, flags, sizeof(flags)));
		EXPECT_TRUE(has_flag(flags, "sh") && has_flag(flags, "pf") &&
			    has_flag(flags, "io") && has_flag(flags, "de") &&
			    has_flag(flags, "dd"))
			TH_LOG("VmFlags:%s", flags);
		EXPECT_EQ(-1, first_nonzero(p, len));
		fill(p, len, 0x1111 + k, 0);
		EXPECT_EQ(-1, check(p, len, 0x1111 + k, 0));

		/* A second mapping of the same fd is the same memory. */
		q = map_fd(fd, len, 0);
		ASSERT_NE(MAP_FAILED, q);
		EXPECT_NE(p, q);
		EXPECT_EQ(-1, check(q, len, 0x1111 + k, 0));
		EXPECT_EQ(0, munmap(q, len));

		/* Physical alignment is honoured, also after a small allocation. */
		fd2 = alloc_mem(self->dev, pg, 0, nodes[k], 0, NULL);
		ASSERT_LE(0, fd2);
		fd3 = alloc_mem(self->dev, 2 * MiB, 2 * MiB, nodes[k], 0, NULL);
		ASSERT_LE(0, fd3);
		fd4 = alloc_mem(self->dev, pg, 64 * KiB, nodes[k], 0, NULL);
		ASSERT_LE(0, fd4);
		ASSERT_EQ(0, get_info(fd3, &i3));
		ASSERT_EQ(0, get_info(fd4, &i4));
		EXPECT_EQ(0, i3.phys % (2 * MiB));
		EXPECT_EQ(0, i4.phys % (64 * KiB));
		EXPECT_EQ(nodes[k], i3.node);
		EXPECT_EQ(nodes[k], i4.node);
		close(fd4);
		close(fd3);
		close(fd2);

		EXPECT_EQ(0, close(fd));
		EXPECT_EQ(-1, check(p, len, 0x1111 + k, 0));
		EXPECT_EQ(0, munmap(p, len));
	}
	EXPECT_POOL_AS_AT_START();
}

/* Allocate, dirty, free, allocate the same range again: it is zero. */
TEST_F(extmem, memory_is_zero_on_allocation)
{
	const size_t len = 4 * MiB;
	int node = self->a[0].node, fd;
	struct extmem_info info;
	uint64_t phys, off;
	char *p;

	fd = alloc_mem(self->dev, len, 0, node, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(fd, &info));
	phys = info.phys;
	p = map_fd(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(-1, first_nonzero(p, len));
	memset(p, 0xa5, len);
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(0, wait_pool(self->n, self->free0, self->largest0)) TH_LOG("not freed");

	/* The same request normally gets the same range back. */
	fd = alloc_mem(self->dev, len, 0, node, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(fd, &info));
	off = 0;
	if (info.phys != phys) {
		struct area a[MAX_AREAS];
		int idx;

		/* If not, take all of the largest free run it was in. */
		close(fd);
		ASSERT_EQ(0, wait_pool(self->n, self->free0, self->largest0));
		ASSERT_EQ(self->n, read_areas(self->dev, a));
		idx = area_of(a, self->n, phys, len);
		ASSERT_LE(0, idx);
		fd = alloc_mem(self->dev, a[idx].largest, 0, a[idx].node, 0, NULL);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, get_info(fd, &info));
		if (phys < info.phys || phys + len > info.phys + info.length)
			SKIP(return, "could not allocate the dirtied range %#llx again",
			     (unsigned long long)phys);
		off = phys - info.phys;
	}
	TH_LOG("dirtied %#llx, allocated it again at offset %llu of %#llx",
	       (unsigned long long)phys, (unsigned long long)off,
	       (unsigned long long)info.phys);
	p = map_fd(fd, len, off);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, first_nonzero(p, len));
	munmap(p, len);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

#define PREZERO	"/sys/module/extmem/parameters/prezero"

/* extmem.prezero: 1 on, 0 off, -1 if the kernel has no such parameter. */
static int prezero_get(void)
{
	char buf[8];

	if (read_str(PREZERO, buf, sizeof(buf)))
		return -1;
	return buf[0] == 'Y' || buf[0] == '1';
}

/*
 * extmem.prezero takes whole words only: 0/1, n/y, no/yes, off/on (any
 * case, with or without a newline). Anything else, including numbers other
 * than 0 and 1, the largest u64, a negative number, a word with trailing
 * garbage and a bare newline, is refused with EINVAL and leaves the
 * setting as it was.
 */
TEST_F(extmem, prezero_takes_only_boolean_words)
{
	static const char *const bad[] = {
		"2", "18446744073709551615", "-1", "10", "01", "yak", "onn", "of",
		"1 ", " 1", "1\n\n", "banana", "\n", "0x1", "true",
	};
	static const struct { const char *in; int on; } good[] = {
		{ "0", 0 }, { "1\n", 1 }, { "N", 0 }, { "y", 1 }, { "no\n", 0 },
		{ "YES", 1 }, { "off", 0 }, { "On\n", 1 },
	};
	int was = prezero_get(), i, j;

	if (was < 0)
		SKIP(return, "no %s (kernel without background zeroing)", PREZERO);
	for (j = 0; j < 2; j++) {
		ASSERT_EQ(0, write_str(PREZERO, j ? "1" : "0"));
		for (i = 0; i < (int)ARRAY_SIZE(bad); i++) {
			EXPECT_EQ(-EINVAL, write_str(PREZERO, bad[i])) TH_LOG("'%s'", bad[i]);
			EXPECT_EQ(j, prezero_get()) TH_LOG("after '%s'", bad[i]);
		}
	}
	for (i = 0; i < (int)ARRAY_SIZE(good); i++) {
		EXPECT_EQ(0, write_str(PREZERO, good[i].in)) TH_LOG("'%s'", good[i].in);
		EXPECT_EQ(good[i].on, prezero_get()) TH_LOG("after '%s'", good[i].in);
	}
	ASSERT_EQ(0, write_str(PREZERO, was ? "1" : "0"));
}

/*
 * Freed memory is dirty until the background zeroer cleans it; an
 * allocation zeroes what it takes that is still dirty and waits for the
 * zeroer's chunk in flight. Free a patterned range and at once allocate
 * over it, again and again, with ranges of every size and alignment, while
 * the zeroer works through what was freed (and with it switched off and on
 * at run time): every byte handed out must read zero.
 */
TEST_F_TIMEOUT(extmem, free_and_realloc_race_zeroer_read_zero, 300)
{
	const size_t big = 16 * MiB;
	uint64_t seed = 0x2e50ULL, bg0, sync0, bg, sync, dirty, clean, free;
	int node = self->a[0].node, was, it, j, fd, tries;
	char *p;

	was = prezero_get();
	if (was < 0)
		SKIP(return, "no %s (kernel without background zeroing)", PREZERO);
	if (area_attr(0, "zeroed_bytes", &bg0) || area_attr(0, "sync_zeroed_bytes", &sync0))
		SKIP(return, "no zeroing counters in sysfs");
	if (self->largest0[0] < 2 * big)
		SKIP(return, "area0 has no free %zu MiB run", 2 * big >> 20);
	ASSERT_EQ(0, write_str(PREZERO, "1"));
	for (it = 0; it < 48; it++) {
		/* Every 16th round with the zeroer off: allocations zero it all. */
		if (it % 16 == 12)
			ASSERT_EQ(0, write_str(PREZERO, "0"));
		if (it % 16 == 15)
			ASSERT_EQ(0, write_str(PREZERO, "1"));
		fd = alloc_mem(self->dev, big, 0, node, 0, NULL);
		ASSERT_LE(0, fd);
		p = map_fd(fd, big, 0);
		ASSERT_NE(MAP_FAILED, p);
		ASSERT_EQ(-1, first_nonzero(p, big)) TH_LOG("round %d: big range", it);
		memset(p, 0xa5 ^ it, big);
		munmap(p, big);
		close(fd);
		for (j = 0; j < 6; j++) {
			size_t len = (1 + below(&seed, 1024)) * pg * (1 + below(&seed, 2));
			uint64_t align = pg << below(&seed, 10);
			int64_t bad;

			fd = alloc_mem(self->dev, len, align, node, 0, NULL);
			ASSERT_LE(0, fd) TH_LOG("round %d: %zu bytes aligned %llu", it, len,
						(unsigned long long)align);
			p = map_fd(fd, len, 0);
			ASSERT_NE(MAP_FAILED, p);
			bad = first_nonzero(p, len);
			ASSERT_EQ(-1, bad) TH_LOG("round %d: %zu bytes aligned %llu: byte %lld not zero",
						  it, len, (unsigned long long)align, (long long)bad);
			memset(p, 0x5a, len);
			munmap(p, len);
			close(fd);
		}
	}
	ASSERT_EQ(0, area_attr(0, "zeroed_bytes", &bg));
	ASSERT_EQ(0, area_attr(0, "sync_zeroed_bytes", &sync));
	TH_LOG("background zeroer %llu MiB, allocations %llu MiB",
	       (unsigned long long)((bg - bg0) >> 20), (unsigned long long)((sync - sync0) >> 20));
	/* Both paths ran: the race was real. */
	EXPECT_LT(bg0, bg);
	EXPECT_LT(sync0, sync);
	/* The zeroer cleans everything in the end; clean + dirty = free throughout. */
	for (tries = 0; tries < 600; tries++) {
		ASSERT_EQ(0, area_attr(0, "dirty_bytes", &dirty));
		if (!dirty)
			break;
		usleep(100 * 1000);
	}
	EXPECT_EQ(0, dirty) TH_LOG("area0 still has %llu dirty bytes", (unsigned long long)dirty);
	ASSERT_EQ(0, area_attr(0, "clean_bytes", &clean));
	ASSERT_EQ(0, area_attr(0, "free_bytes", &free));
	EXPECT_EQ(free, clean + dirty);
	write_str(PREZERO, was ? "1" : "0");
	EXPECT_POOL_AS_AT_START();
}

/*
 * Other ways to read physical memory: /dev/mem (STRICT_DEVMEM and
 * IO_STRICT_DEVMEM, as distributions build it) refuses every byte of an
 * area, read or mmap, while it holds a tenant's data.
 */
TEST_F(extmem, devmem_refuses_an_area)
{
	const size_t len = 2 * MiB;
	struct extmem_info info;
	int fd, mem, idx;
	uint64_t at[3];
	char buf[64];
	void *q;
	char *p;
	int k;

	fd = alloc_mem(self->dev, len, 0, self->a[0].node, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(fd, &info));
	idx = area_of(self->a, self->n, info.phys, len);
	ASSERT_LE(0, idx);
	p = map_fd(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, len);

	mem = open("/dev/mem", O_RDONLY | O_SYNC | O_CLOEXEC);
	ASSERT_LE(0, mem) TH_LOG("open /dev/mem: %s (the test kernel has CONFIG_DEVMEM)",
				 strerror(errno));
	at[0] = info.phys;
	at[1] = info.phys + len - sizeof(buf);
	at[2] = self->a[idx].base;
	for (k = 0; k < 3; k++) {
		ssize_t r;

		memset(buf, 0, sizeof(buf));
		errno = 0;
		r = pread(mem, buf, sizeof(buf), (off_t)at[k]);
		EXPECT_EQ(-1, r) TH_LOG("read of /dev/mem at %#llx returned %zd",
					(unsigned long long)at[k], r);
		EXPECT_TRUE(errno == EPERM || errno == EFAULT) TH_LOG("errno %d", errno);
		EXPECT_NE(0x5a, buf[0]);
		q = mmap(NULL, pg, PROT_READ, MAP_SHARED, mem, (off_t)(at[k] & ~(pg - 1)));
		EXPECT_EQ(MAP_FAILED, q) TH_LOG("mmap of /dev/mem at %#llx succeeded",
						(unsigned long long)at[k]);
		if (q != MAP_FAILED)
			munmap(q, pg);
	}
	close(mem);
	munmap(p, len);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

/*
 * /proc/kcore shows no area: none of its segments covers an area's
 * physical range, and the kernel's own (ioremap) mapping of the area,
 * which lies in the vmalloc segment, reads as a hole (zeros), not as the
 * tenant's data.
 */
TEST_F(extmem, kcore_does_not_show_an_area)
{
	const size_t len = 2 * MiB;
	uint64_t vstart = 0, vphys = 0, vsize = 0, vaddr;
	struct extmem_info info;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	char line[512], buf[64] __attribute__((aligned(8)));
	int fd, kc, i, found = 0, restrict0;
	FILE *vi, *kr;
	char *p;

	fd = alloc_mem(self->dev, len, 0, self->a[0].node, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(fd, &info));
	p = map_fd(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x5a, len);

	/*
	 * The kernel's mapping of the area holding the allocation, from
	 * /proc/vmallocinfo, whose addresses are real for root only with
	 * kptr_restrict=1 (0 hashes them).
	 */
	kr = fopen("/proc/sys/kernel/kptr_restrict", "r+e");
	ASSERT_NE(NULL, kr);
	ASSERT_EQ(1, fscanf(kr, "%d", &restrict0));
	rewind(kr);
	fprintf(kr, "1\n");
	fflush(kr);
	vi = fopen("/proc/vmallocinfo", "re");
	ASSERT_NE(NULL, vi);
	while (fgets(line, sizeof(line), vi)) {
		unsigned long long s, e, ph_;
		char *at = strstr(line, "phys=");

		if (!strstr(line, "ioremap") || !at ||
		    sscanf(line, "%llx-%llx", &s, &e) != 2 || sscanf(at, "phys=%llx", &ph_) != 1)
			continue;
		if (ph_ <= info.phys && info.phys + len <= ph_ + (e - s)) {
			vstart = s;
			vphys = ph_;
			vsize = e - s;
		}
	}
	fclose(vi);
	rewind(kr);
	fprintf(kr, "%d\n", restrict0);
	fclose(kr);
	ASSERT_NE(0, vstart) TH_LOG("no ioremap mapping of %#llx in /proc/vmallocinfo",
				    (unsigned long long)info.phys);
	vaddr = vstart + (info.phys - vphys);
	TH_LOG("allocation %#llx is mapped by the kernel at %#llx (mapping of %llu MiB)",
	       (unsigned long long)info.phys, (unsigned long long)vaddr,
	       (unsigned long long)(vsize >> 20));

	kc = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, kc) TH_LOG("open /proc/kcore: %s (the test kernel has CONFIG_PROC_KCORE)",
				strerror(errno));
	ASSERT_EQ(sizeof(eh), pread(kc, &eh, sizeof(eh), 0));
	ASSERT_EQ(0, memcmp(eh.e_ident, ELFMAG, SELFMAG));
	for (i = 0; i < eh.e_phnum; i++) {
		ASSERT_EQ(sizeof(ph), pread(kc, &ph, sizeof(ph),
					    eh.e_phoff + (off_t)i * eh.e_phentsize));
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_paddr != (Elf64_Addr)-1)
			EXPECT_TRUE(ph.p_paddr + ph.p_memsz <= info.phys ||
				    ph.p_paddr >= info.phys + len)
				TH_LOG("kcore segment %d covers physical %#llx-%#llx", i,
				       (unsigned long long)ph.p_paddr,
				       (unsigned long long)(ph.p_paddr + ph.p_memsz));
		if (ph.p_vaddr <= vaddr && vaddr + sizeof(buf) <= ph.p_vaddr + ph.p_memsz) {
			memset(buf, 0x11, sizeof(buf));
			ASSERT_EQ(sizeof(buf), pread(kc, buf, sizeof(buf),
						     ph.p_offset + (vaddr - ph.p_vaddr)));
			found = 1;
			EXPECT_EQ(-1, first_nonzero(buf, sizeof(buf)))
				TH_LOG("kcore shows the kernel's mapping of the area: %#x...",
				       (unsigned char)buf[0]);
		}
	}
	EXPECT_TRUE(found) TH_LOG("no kcore segment covers %#llx", (unsigned long long)vaddr);
	close(kc);
	munmap(p, len);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

/*
 * ALLOC zeroes the range before it returns (what the background zeroer has
 * not zeroed: here all of it, the zeroer is off); a large request is
 * killable while it waits: a task SIGKILLed during the zeroing dies
 * promptly (well before a whole zeroing, measured here first) and owns
 * nothing.
 */
TEST_F_TIMEOUT(extmem, killed_while_zeroing_owns_nothing, 120)
{
	uint64_t len = self->a[0].largest & ~(uint64_t)(2 * MiB - 1);
	double t0, full, died;
	int fd, status, was = prezero_get();
	pid_t pid;

	if (len > 1024 * MiB)
		len = 1024 * MiB;
	if (len < 256 * MiB)
		SKIP(return, "area0 has no free 256 MiB run");
	/* Without background zeroing every ALLOC here zeroes all it takes. */
	if (was > 0)
		ASSERT_EQ(0, write_str(PREZERO, "0"));
	/*
	 * The first zeroing of the range also makes the hypervisor back it
	 * (slow under emulation); time the second.
	 */
	for (int k = 0; k < 2; k++) {
		t0 = now();
		fd = alloc_mem(self->dev, len, 0, self->a[0].node, 0, NULL);
		full = now() - t0;
		ASSERT_LE(0, fd);
		close(fd);
		ASSERT_EQ(0, wait_pool(self->n, self->free0, self->largest0));
	}

	/*
	 * The kill must land while the child zeroes. Under emulation on a
	 * loaded host one zeroing can take a quarter of another's time, so a
	 * child that finished its ALLOC before the kill (it exits 0, or 1 if
	 * the ALLOC failed) is not a verdict: try again with half the delay,
	 * up to 4 times.
	 */
	for (int k = 0; k < 4; k++) {
		int go[2];
		char c = 0;

		ASSERT_EQ(0, pipe(go));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			close(go[0]);
			if (write(go[1], &c, 1) != 1)
				_exit(2);
			_exit(alloc_mem(self->dev, len, 0, self->a[0].node, 0, NULL) < 0);
		}
		close(go[1]);
		ASSERT_EQ(1, read(go[0], &c, 1));
		close(go[0]);
		t0 = now();
		usleep((useconds_t)(full * 1e6 / (4 << k)));
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		died = now() - t0;
		TH_LOG("ALLOC of %llu MiB: %.0f ms; a task killed after 1/%d of that was gone after %.0f ms",
		       (unsigned long long)(len >> 20), full * 1e3, 4 << k, died * 1e3);
		if (!WIFEXITED(status))
			break;
		TH_LOG("it had finished its ALLOC first (exit %d); again, sooner",
		       WEXITSTATUS(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
		ASSERT_EQ(0, wait_pool(self->n, self->free0, self->largest0));
	}
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	EXPECT_LT(died, full * 0.75) TH_LOG("the zeroing did not stop at the kill");
	if (was > 0)
		write_str(PREZERO, "1");
	EXPECT_POOL_AS_AT_START();
}

/*
 * A 1 GiB allocation written through a full mapping reads the same through
 * a 2 MiB window mapped at offset 512 MiB, and through smaller windows.
 */
TEST_F_TIMEOUT(extmem, gib_allocation_partial_windows, 120)
{
	const size_t len = GiB, wlen = 2 * MiB, woff = 512 * MiB;
	const size_t soff = 512 * MiB + 5 * 4096, slen = 3 * 4096;
	struct extmem_info info;
	char *full, *win, *small, *last;
	int fd, i, found = 0;

	for (i = 0; i < self->n; i++)
		found |= self->a[i].largest >= len;
	if (!found)
		SKIP(return, "no area has 1 GiB free in one piece");
	fd = alloc_mem(self->dev, len, 0, EXTMEM_NODE_ANY, 0, "gib");
	ASSERT_LE(0, fd) TH_LOG("ALLOC 1 GiB: %s", strerror(-fd));
	ASSERT_EQ(0, get_info(fd, &info));
	EXPECT_EQ(len, info.length);

	full = map_fd(fd, len, 0);
	ASSERT_NE(MAP_FAILED, full);
	TH_LOG("the kernel mapped it at %p", full);
	EXPECT_EQ(-1, nonzero_sparse(full, len));
	EXPECT_EQ(-1, first_nonzero(full + woff, wlen));
	fill_sparse(full, len, 0x2222, 0);
	fill(full + woff, wlen, 0x3333, woff);

	win = map_fd(fd, wlen, woff);
	ASSERT_NE(MAP_FAILED, win) TH_LOG("mmap 2 MiB at 512 MiB: %s", strerror(errno));
	EXPECT_NE(full + woff, win);
	EXPECT_EQ(0, memcmp(win, full + woff, wlen));
	EXPECT_EQ(-1, check(win, wlen, 0x3333, woff));

	/* Writes through the window show in the full mapping. */
	fill(win + wlen / 2, 4096, 0x4444, woff + wlen / 2);
	EXPECT_EQ(-1, check(full + woff + wlen / 2, 4096, 0x4444, woff + wlen / 2));

	/* Any page-aligned window, not only 2 MiB ones. */
	small = map_fd(fd, slen, soff);
	ASSERT_NE(MAP_FAILED, small);
	EXPECT_EQ(0, memcmp(small, full + soff, slen));
	EXPECT_EQ(-1, check(small, slen, 0x3333, soff));

	/* The last 2 MiB. */
	last = map_fd(fd, wlen, len - wlen);
	ASSERT_NE(MAP_FAILED, last);
	EXPECT_EQ(-1, check_sparse(last, wlen, 0x2222, len - wlen));

	/* Everything written through the full mapping is still there. */
	EXPECT_EQ(-1, check_sparse(full, woff, 0x2222, 0));
	EXPECT_EQ(-1, check_sparse(full + woff + wlen, len - woff - wlen, 0x2222, woff + wlen));

	munmap(last, wlen);
	munmap(small, slen);
	munmap(win, wlen);
	munmap(full, len);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

/*
 * Touching every page of a 1 GiB mapping: one PUD fault when the virtual
 * address is 1 GiB-aligned, 512 PMD faults when it is only 2 MiB-aligned.
 * A mapping that is not even 2 MiB-congruent falls back to PTEs (printed
 * only).
 */
TEST_F_TIMEOUT(extmem, fault_counts_follow_alignment, 120)
{
	const size_t len = GiB, ptelen = 64 * MiB;
	long pud_faults, pmd_faults, pte_faults;
	struct extmem_info info;
	size_t rlen;
	void *res;
	char *va;
	int fd;

	fd = alloc_mem(self->dev, len, GiB, EXTMEM_NODE_ANY, 0, "faults");
	if (NOSPACE(fd))
		SKIP(return, "no free 1 GiB-aligned 1 GiB range");
	ASSERT_LE(0, fd) TH_LOG("ALLOC 1 GiB aligned to 1 GiB: %s", strerror(-fd));
	ASSERT_EQ(0, get_info(fd, &info));
	ASSERT_EQ(0, info.phys % GiB) TH_LOG("phys %#llx", (unsigned long long)info.phys);

	/* Huge PFNMAP entries are a THP feature: not disabled for this mm. */
	if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) > 0) {
		ASSERT_EQ(0, prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0));
	}

	/*
	 * 1 GiB-aligned: PUD. touch() writes byte 0 of every page; the
	 * markers at byte 8 of the first and last page, written after the
	 * count, show that each later mapping sees the same memory.
	 */
	va = reserve_va(len, GiB, 0, &res, &rlen);
	ASSERT_NE(NULL, va);
	ASSERT_EQ(va, mmap(va, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
	pud_faults = touch(va, len, 1);
	va[8] = 'a';
	va[len - pg + 8] = 'b';
	EXPECT_EQ(0, munmap(res, rlen));

	/* 2 MiB- but not 1 GiB-aligned: PMD. */
	va = reserve_va(len, GiB, 2 * MiB, &res, &rlen);
	ASSERT_NE(NULL, va);
	ASSERT_EQ(va, mmap(va, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
	pmd_faults = touch(va, len, 2);
	EXPECT_EQ('a', va[8]);
	EXPECT_EQ('b', va[len - pg + 8]);
	va[8] = 'c';
	EXPECT_EQ(0, munmap(res, rlen));

	/* 4 KiB past a 2 MiB boundary, 64 MiB of it: PTEs. */
	va = reserve_va(ptelen, 2 * MiB, 4096, &res, &rlen);
	ASSERT_NE(NULL, va);
	ASSERT_EQ(va, mmap(va, ptelen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
	pte_faults = touch(va, ptelen, 3);
	EXPECT_EQ('c', va[8]);
	EXPECT_EQ(0, munmap(res, rlen));

	ksft_print_msg("minor faults touching every 4 KiB: 1 GiB at a 1 GiB-aligned VA: %ld, "
		       "1 GiB at a 2 MiB-aligned VA: %ld, 64 MiB at a 4 KiB-aligned VA: %ld\n",
		       pud_faults, pmd_faults, pte_faults);
	close(fd);

	ASSERT_LE(256, pmd_faults) TH_LOG("2 MiB-aligned: fewer faults than 2 MiB entries");
	ASSERT_GE(1024, pmd_faults) TH_LOG("2 MiB-aligned: no PMD mapping");
	if (!cpu_has_gbpages())
		SKIP(return, "CPU without 1 GiB pages (pdpe1gb): %ld faults at a 1 GiB-aligned VA",
		     pud_faults);
	EXPECT_GE(4, pud_faults) TH_LOG("no PUD mapping: the 1 GiB-aligned case faulted per 2 MiB");
}

/*
 * Allocate until the pool is full (128 MiB pieces, then 2 MiB, then 4 KiB,
 * after three 4 KiB ones that unalign the rest), free everything: sysfs
 * shows exactly the pool of the start.
 */
TEST_F_TIMEOUT(extmem, exhaust_pool_then_free_all, 180)
{
	static const uint64_t sizes[] = { 128 * MiB, 2 * MiB, 4 * KiB };
	int *fds = NULL, nfds = 0, cap = 0, k, i, r = 0;
	uint64_t f[MAX_AREAS], l[MAX_AREAS];
	int nodes[MAX_AREAS], nn, counted = has_attr("allocations");
	uint64_t allocs0 = 0;
	struct rlimit rl;

	if (counted)
		allocs0 = sysfs_sum(self->n, "allocations");
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_max < 65536)
		rl.rlim_max = 65536;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	for (k = -1; k < (int)(sizeof(sizes) / sizeof(sizes[0])); k++) {
		int count = 0;

		for (;;) {
			if (k == -1 && count == 3)
				break;
			if (nfds == cap) {
				cap = cap ? 2 * cap : 1024;
				ASSERT_GE(1 << 20, cap) TH_LOG("more than a million allocations");
				fds = realloc(fds, cap * sizeof(*fds));
				ASSERT_NE(NULL, fds);
			}
			r = alloc_mem(self->dev, k < 0 ? 4 * KiB : sizes[k], 0, EXTMEM_NODE_ANY,
				      0, NULL);
			if (r < 0)
				break;
			fds[nfds++] = r;
			count++;
		}
		ASSERT_TRUE(r >= 0 || NOSPACE(r)) TH_LOG("ALLOC: %s after %d allocations",
							 strerror(-r), nfds);
		TH_LOG("%d allocations of %llu KiB", count,
		       (unsigned long long)(k < 0 ? 4 : sizes[k] >> 10));
	}
	TH_LOG("pool full after %d allocations", nfds);

	sysfs_all(self->n, "free_bytes", f);
	sysfs_all(self->n, "largest_free_run", l);
	for (i = 0; i < self->n; i++) {
		EXPECT_EQ(0, f[i]) TH_LOG("area%d", i);
		EXPECT_EQ(0, l[i]) TH_LOG("area%d", i);
	}
	if (counted) {
		EXPECT_EQ(allocs0 + nfds, sysfs_sum(self->n, "allocations"));
	}
	/* Full also for node-bound requests, with or without fallback. */
	nn = area_nodes(self->a, self->n, nodes);
	for (i = 0; i < nn; i++) {
		r = try_alloc_simple(self->dev, pg, 0, nodes[i], 0);
		EXPECT_TRUE(NOSPACE(r)) TH_LOG("node %d: %d", nodes[i], r);
		r = try_alloc_simple(self->dev, pg, 0, nodes[i], EXTMEM_ALLOC_FALLBACK);
		EXPECT_TRUE(NOSPACE(r)) TH_LOG("node %d fallback: %d", nodes[i], r);
	}

	for (i = 0; i < nfds; i++)
		close(fds[i]);
	free(fds);
	EXPECT_POOL_AS_AT_START();
	if (counted && has_attr("bytes_in_use")) {
		uint64_t total = 0;

		for (i = 0; i < self->n; i++)
			total += self->a[i].total;
		EXPECT_EQ(allocs0, sysfs_sum(self->n, "allocations"));
		EXPECT_EQ(total - sysfs_sum(self->n, "free_bytes"),
			  sysfs_sum(self->n, "bytes_in_use"));
	}
}

/*
 * A node-bound request fails when its node is full; with
 * EXTMEM_ALLOC_FALLBACK it is served by another node.
 */
TEST_F_TIMEOUT(extmem, node_bound_request_does_not_spill, 120)
{
	static const uint64_t sizes[] = { 128 * MiB, 2 * MiB, 4 * KiB };
	int nodes[MAX_AREAS], nn = area_nodes(self->a, self->n, nodes);
	int *fds = NULL, nfds = 0, cap = 0, node = nodes[0], k, r = 0, fd, i;
	uint64_t failed_before = 0, failed_after = 0, v;
	struct extmem_info info;
	struct rlimit rl;

	if (nn < 2)
		SKIP(return, "extmem areas on one node only");
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_max < 65536)
		rl.rlim_max = 65536;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	for (k = 0; k < (int)(sizeof(sizes) / sizeof(sizes[0])); k++) {
		for (;;) {
			if (nfds == cap) {
				cap = cap ? 2 * cap : 1024;
				ASSERT_GE(1 << 20, cap);
				fds = realloc(fds, cap * sizeof(*fds));
				ASSERT_NE(NULL, fds);
			}
			r = alloc_mem(self->dev, sizes[k], 0, node, 0, NULL);
			if (r < 0)
				break;
			ASSERT_EQ(0, get_info(r, &info));
			ASSERT_EQ(node, info.node) TH_LOG("a node-bound request spilled");
			fds[nfds++] = r;
		}
		ASSERT_TRUE(NOSPACE(r)) TH_LOG("ALLOC on node %d: %s", node, strerror(-r));
	}
	TH_LOG("node %d full after %d allocations", node, nfds);

	for (i = 0; i < self->n; i++)
		if (self->a[i].node == node && !area_attr(i, "failed_requests", &v))
			failed_before += v;
	r = try_alloc_simple(self->dev, pg, 0, node, 0);
	EXPECT_TRUE(NOSPACE(r)) TH_LOG("4 KiB on full node %d: %d", node, r);
	for (i = 0; i < self->n; i++)
		if (self->a[i].node == node && !area_attr(i, "failed_requests", &v))
			failed_after += v;
	if (has_attr("failed_requests")) {
		EXPECT_LE(failed_before + 1, failed_after);
	}

	fd = alloc_mem(self->dev, pg, 0, node, EXTMEM_ALLOC_FALLBACK, NULL);
	ASSERT_LE(0, fd) TH_LOG("fallback: %s", strerror(-fd));
	ASSERT_EQ(0, get_info(fd, &info));
	EXPECT_NE(node, info.node);
	close(fd);

	fd = alloc_mem(self->dev, pg, 0, EXTMEM_NODE_ANY, 0, NULL);
	ASSERT_LE(0, fd) TH_LOG("any node: %s", strerror(-fd));
	ASSERT_EQ(0, get_info(fd, &info));
	EXPECT_NE(node, info.node);
	close(fd);

	for (i = 0; i < nfds; i++)
		close(fds[i]);
	free(fds);
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, sysfs_counters)
{
	uint64_t allocs0, inuse0, failed0, allocs, inuse, failed, free, largest = 0;
	int node = self->a[0].node, fd, i, r;
	struct extmem_info info;
	struct area a[MAX_AREAS];

	ASSERT_EQ(0, area_attr(0, "allocations", &allocs0)) TH_LOG("no allocations counter");
	ASSERT_EQ(0, area_attr(0, "bytes_in_use", &inuse0)) TH_LOG("no bytes_in_use counter");
	ASSERT_EQ(0, area_attr(0, "failed_requests", &failed0))
		TH_LOG("no failed_requests counter");

	fd = alloc_mem(self->dev, 2 * MiB, 0, node, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(fd, &info));
	if (area_of(self->a, self->n, info.phys, info.length) != 0) {
		close(fd);
		SKIP(return, "node %d has more than one area; the allocation went elsewhere", node);
	}
	EXPECT_EQ(self->a[0].total - self->free0[0], inuse0);
	ASSERT_EQ(0, area_attr(0, "allocations", &allocs));
	ASSERT_EQ(0, area_attr(0, "bytes_in_use", &inuse));
	ASSERT_EQ(0, area_attr(0, "free_bytes", &free));
	EXPECT_EQ(allocs0 + 1, allocs);
	EXPECT_EQ(inuse0 + 2 * MiB, inuse);
	EXPECT_EQ(self->a[0].total, inuse + free);

	/* More than any free run of the node: a failed request. */
	ASSERT_EQ(self->n, read_areas(self->dev, a));
	for (i = 0; i < self->n; i++)
		if (a[i].node == node && a[i].largest > largest)
			largest = a[i].largest;
	r = try_alloc_simple(self->dev, largest + pg, 0, node, 0);
	EXPECT_TRUE(NOSPACE(r)) TH_LOG("%d", r);
	ASSERT_EQ(0, area_attr(0, "failed_requests", &failed));
	EXPECT_EQ(failed0 + 1, failed);

	close(fd);
	EXPECT_POOL_AS_AT_START();
	ASSERT_EQ(0, area_attr(0, "allocations", &allocs));
	ASSERT_EQ(0, area_attr(0, "bytes_in_use", &inuse));
	EXPECT_EQ(allocs0, allocs);
	EXPECT_EQ(inuse0, inuse);
}

/* An fd passed over SCM_RIGHTS maps the same memory in the other process. */
static int scm_child(int sock, int len)
{
	struct extmem_info info;
	char *p;
	int fd;

	fd = recv_fd(sock);
	if (fd < 0)
		return 10;
	if (get_info(fd, &info) || info.length != (uint64_t)len)
		return 11;
	p = map_fd(fd, len, 0);
	if (p == MAP_FAILED)
		return 12;
	/* The parent wrote the first half before it sent the fd. */
	if (check(p, len / 2, 0x5555, 0) != -1)
		return 13;
	fill(p + len / 2, len / 2, 0x6666, len / 2);
	if (put_byte(sock, 'B') || get_byte(sock, 'Q'))
		return 14;
	return 0;
}

TEST_F(extmem, scm_rights_fd_maps_same_memory)
{
	const size_t len = 4 * MiB;
	int sv[2], fd, status;
	uint64_t free_held;
	pid_t pid;
	char *p;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	/* The child exists before the allocation: it can only get it by SCM_RIGHTS. */
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(self->dev);
		close(sv[0]);
		_exit(scm_child(sv[1], len));
	}
	close(sv[1]);

	fd = alloc_mem(self->dev, len, 0, EXTMEM_NODE_ANY, 0, "shared");
	ASSERT_LE(0, fd);
	p = map_fd(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len / 2, 0x5555, 0);
	ASSERT_EQ(0, send_fd(sv[0], fd));
	/* From here the parent holds only its mapping. */
	ASSERT_EQ(0, close(fd));
	free_held = sysfs_sum(self->n, "free_bytes");

	ASSERT_EQ(0, get_byte(sv[0], 'B'));
	EXPECT_EQ(-1, check(p + len / 2, len / 2, 0x6666, len / 2));
	ASSERT_EQ(0, put_byte(sv[0], 'Q'));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child failed at step %d", WEXITSTATUS(status));

	/* The child is gone; the parent's mapping still holds the memory. */
	EXPECT_EQ(free_held, sysfs_sum(self->n, "free_bytes"));
	EXPECT_EQ(-1, check(p, len / 2, 0x5555, 0));
	EXPECT_EQ(-1, check(p + len / 2, len / 2, 0x6666, len / 2));
	EXPECT_EQ(0, munmap(p, len));
	close(sv[0]);
	EXPECT_POOL_AS_AT_START();
}

/*
 * Closing the fd while mapped keeps the memory until the last munmap,
 * also when the mapping is unmapped piecewise (splitting huge entries).
 */
TEST_F(extmem, close_while_mapped_keeps_memory)
{
	const size_t len = 4 * MiB;
	uint64_t free0 = 0, free_held, allocs0 = 0;
	int fd, i, counted = has_attr("allocations");
	size_t rlen;
	void *res;
	char *p;

	for (i = 0; i < self->n; i++)
		free0 += self->free0[i];
	if (counted)
		allocs0 = sysfs_sum(self->n, "allocations");
	fd = alloc_mem(self->dev, len, 2 * MiB, EXTMEM_NODE_ANY, 0, NULL);
	ASSERT_LE(0, fd);
	/* At a 2 MiB-aligned address, so that the mapping has 2 MiB entries. */
	p = reserve_va(len, 2 * MiB, 0, &res, &rlen);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(p, mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
	fill(p, len, 0x7777, 0);
	free_held = sysfs_sum(self->n, "free_bytes");
	EXPECT_EQ(free0 - len, free_held);

	ASSERT_EQ(0, close(fd));
	EXPECT_EQ(free_held, sysfs_sum(self->n, "free_bytes"));
	if (counted) {
		EXPECT_EQ(allocs0 + 1, sysfs_sum(self->n, "allocations"));
	}
	EXPECT_EQ(-1, check(p, len, 0x7777, 0));

	/* A hole inside a 2 MiB entry, then the first MiB. */
	ASSERT_EQ(0, munmap(p + MiB, 4096));
	EXPECT_EQ(free_held, sysfs_sum(self->n, "free_bytes"));
	EXPECT_EQ(-1, check(p, MiB, 0x7777, 0));
	EXPECT_EQ(-1, check(p + MiB + 4096, len - MiB - 4096, 0x7777, MiB + 4096));
	ASSERT_EQ(0, munmap(p, MiB));
	EXPECT_EQ(free_held, sysfs_sum(self->n, "free_bytes"));
	fill(p + 3 * MiB, MiB, 0x8888, 3 * MiB);
	EXPECT_EQ(-1, check(p + MiB + 4096, 2 * MiB - 4096, 0x7777, MiB + 4096));
	EXPECT_EQ(-1, check(p + 3 * MiB, MiB, 0x8888, 3 * MiB));

	/* The last piece: now it is freed. */
	ASSERT_EQ(0, munmap(p + MiB + 4096, len - MiB - 4096));
	EXPECT_POOL_AS_AT_START();
	if (counted) {
		EXPECT_EQ(allocs0, sysfs_sum(self->n, "allocations"));
	}
	munmap(res, rlen);
}

/* fork: the child inherits fd and mapping; whoever lets go last frees it. */
TEST_F(extmem, fork_and_exit_leak_nothing)
{
	const size_t len = 4 * MiB;
	int fd, pipefd[2], status, counted = has_attr("allocations");
	uint64_t free_held, allocs0 = 0;
	pid_t pid;
	char *p;

	if (counted)
		allocs0 = sysfs_sum(self->n, "allocations");

	/* 1. The child exits first; the parent still has the memory. */
	fd = alloc_mem(self->dev, len, 0, EXTMEM_NODE_ANY, 0, NULL);
	ASSERT_LE(0, fd);
	p = map_fd(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len / 2, 0x9999, 0);
	free_held = sysfs_sum(self->n, "free_bytes");
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (check(p, len / 2, 0x9999, 0) != -1)
			_exit(1);
		fill(p + len / 2, len / 2, 0xaaaa, len / 2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(free_held, sysfs_sum(self->n, "free_bytes"));
	EXPECT_EQ(-1, check(p + len / 2, len / 2, 0xaaaa, len / 2));
	EXPECT_EQ(0, munmap(p, len));
	EXPECT_EQ(0, close(fd));
	EXPECT_POOL_AS_AT_START();

	/* 2. The parent lets go first; the child's mapping keeps the memory. */
	ASSERT_EQ(0, pipe(pipefd));
	fd = alloc_mem(self->dev, len, 0, EXTMEM_NODE_ANY, 0, NULL);
	ASSERT_LE(0, fd);
	p = map_fd(fd, len, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len, 0xbbbb, 0);
	free_held = sysfs_sum(self->n, "free_bytes");
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(fd);
		close(pipefd[1]);
		if (get_byte(pipefd[0], 'G'))
			_exit(2);
		_exit(check(p, len, 0xbbbb, 0) == -1 ? 0 : 3);
	}
	close(pipefd[0]);
	EXPECT_EQ(0, munmap(p, len));
	EXPECT_EQ(0, close(fd));
	EXPECT_EQ(free_held, sysfs_sum(self->n, "free_bytes"));
	ASSERT_EQ(0, put_byte(pipefd[1], 'G'));
	close(pipefd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_POOL_AS_AT_START();
	if (counted) {
		EXPECT_EQ(allocs0, sysfs_sum(self->n, "allocations"));
	}
}

TEST_F(extmem, unknown_ioctl_is_enotty)
{
	struct extmem_alloc_args a;
	struct extmem_area_info ai;
	struct extmem_info info;
	int fd;

	EXPECT_EQ(-1, ioctl(self->dev, _IO(EXTMEM_IOCTL_TYPE, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	init_alloc_args(&a, pg, 0, EXTMEM_NODE_ANY, 0);
	EXPECT_EQ(-1, ioctl(self->dev, _IOWR('x', 0x00, struct extmem_alloc_args), &a));
	EXPECT_EQ(ENOTTY, errno);
	/* The allocation fd's query is not a /dev/extmem ioctl. */
	EXPECT_EQ(-ENOTTY, get_info(self->dev, &info));

	fd = alloc_mem(self->dev, pg, 0, EXTMEM_NODE_ANY, 0, NULL);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, ioctl(fd, _IO(EXTMEM_IOCTL_TYPE, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOWR('x', 0x10, struct extmem_info), &info));
	EXPECT_EQ(ENOTTY, errno);
	/* /dev/extmem's ioctls are unknown on an allocation fd. */
	init_alloc_args(&a, pg, 0, EXTMEM_NODE_ANY, 0);
	EXPECT_EQ(-1, ioctl(fd, EXTMEM_IOC_ALLOC, &a));
	EXPECT_EQ(ENOTTY, errno);
	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(ai);
	EXPECT_EQ(-1, ioctl(fd, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, alloc_rejects_bad_length)
{
	uint64_t total = 0, largest = 0;
	int i, r;

	for (i = 0; i < self->n; i++) {
		total += self->a[i].total;
		if (self->a[i].total > largest)
			largest = self->a[i].total;
	}
	EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, 0, 0, EXTMEM_NODE_ANY, 0));
	EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, 1, 0, EXTMEM_NODE_ANY, 0));
	EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, pg / 2, 0, EXTMEM_NODE_ANY, 0));
	EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, pg + 1, 0, EXTMEM_NODE_ANY, 0));
	EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, 2 * MiB - 8, 0, EXTMEM_NODE_ANY, 0));

	/* Larger than any area (maybe not than all together), and than the pool. */
	r = try_alloc_simple(self->dev, largest + pg, 0, EXTMEM_NODE_ANY, 0);
	EXPECT_TRUE(NOSPACE(r)) TH_LOG("largest area + 4 KiB: %d", r);
	r = try_alloc_simple(self->dev, largest + pg, 0, self->a[0].node, EXTMEM_ALLOC_FALLBACK);
	EXPECT_TRUE(NOSPACE(r)) TH_LOG("largest area + 4 KiB, fallback: %d", r);
	r = try_alloc_simple(self->dev, total + GiB, 0, EXTMEM_NODE_ANY, 0);
	EXPECT_TRUE(NOSPACE(r)) TH_LOG("pool + 1 GiB: %d", r);
	/* Page-aligned lengths near 2^64 must not overflow anything. */
	r = try_alloc_simple(self->dev, -(uint64_t)pg, 0, EXTMEM_NODE_ANY, 0);
	EXPECT_TRUE(NOSPACE(r) || r == -EINVAL) TH_LOG("2^64 - 4 KiB: %d", r);
	r = try_alloc_simple(self->dev, -(uint64_t)GiB, GiB, EXTMEM_NODE_ANY, 0);
	EXPECT_TRUE(NOSPACE(r) || r == -EINVAL) TH_LOG("2^64 - 1 GiB, 1 GiB-aligned: %d", r);
	r = try_alloc_simple(self->dev, 1ULL << 63, 0, EXTMEM_NODE_ANY, 0);
	EXPECT_TRUE(NOSPACE(r) || r == -EINVAL) TH_LOG("2^63: %d", r);
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, alloc_rejects_bad_alignment)
{
	static const uint64_t bad[] = {
		1, 2, 2048, 3 * 4096, 4096 + 1, 12 * MiB, 2 * GiB, 4 * GiB, 1ULL << 63, ~0ULL,
	};
	int i, fd;

	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, pg, bad[i], EXTMEM_NODE_ANY, 0))
			TH_LOG("alignment %#llx", (unsigned long long)bad[i]);
	}
	/* The bounds themselves are fine. */
	fd = alloc_mem(self->dev, pg, pg, EXTMEM_NODE_ANY, 0, NULL);
	EXPECT_LE(0, fd);
	close(fd);
	fd = alloc_mem(self->dev, pg, 2 * MiB, EXTMEM_NODE_ANY, 0, NULL);
	EXPECT_LE(0, fd);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, alloc_rejects_unknown_node)
{
	int nodes[MAX_AREAS], nn = area_nodes(self->a, self->n, nodes), i, r, has63 = 0;
	static const int invalid[] = { -2, -1000, INT32_MIN, 100000, INT32_MAX };

	for (i = 0; i < (int)(sizeof(invalid) / sizeof(invalid[0])); i++) {
		EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, pg, 0, invalid[i], 0))
			TH_LOG("node %d", invalid[i]);
		EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, pg, 0, invalid[i],
						    EXTMEM_ALLOC_FALLBACK))
			TH_LOG("node %d with fallback", invalid[i]);
	}
	for (i = 0; i < nn; i++)
		has63 |= nodes[i] == 63;
	if (!has63) {
		/* A node id that may exist, but has no area. */
		r = try_alloc_simple(self->dev, pg, 0, 63, 0);
		EXPECT_TRUE(r == -ENODEV || r == -EINVAL) TH_LOG("node 63: %d", r);
	}
	/* An online node with memory but no area is ENODEV exactly. */
	for (i = 0; i < MAX_AREAS; i++) {
		char path[96];
		int j;

		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", i);
		if (access(path, F_OK))
			continue;
		for (j = 0; j < nn && nodes[j] != i; j++)
			;
		if (j < nn)
			continue;
		TH_LOG("node %d has no extmem area", i);
		EXPECT_EQ(-ENODEV, try_alloc_simple(self->dev, pg, 0, i, 0));
	}
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, alloc_rejects_reserved_and_unknown_flags)
{
	struct extmem_alloc_args a;
	static const uint32_t flags[] = { 1U << 1, 1U << 31, ~EXTMEM_ALLOC_FLAGS };
	int i;

	init_alloc_args(&a, pg, 0, EXTMEM_NODE_ANY, 0);
	a.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, try_alloc(self->dev, &a));
	init_alloc_args(&a, pg, 0, EXTMEM_NODE_ANY, 0);
	a.reserved[1] = 1ULL << 63;
	EXPECT_EQ(-EINVAL, try_alloc(self->dev, &a));
	for (i = 0; i < (int)(sizeof(flags) / sizeof(flags[0])); i++) {
		EXPECT_EQ(-EINVAL, try_alloc_simple(self->dev, pg, 0, EXTMEM_NODE_ANY, flags[i]))
			TH_LOG("flags %#x", flags[i]);
	}
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, alloc_label)
{
	struct extmem_alloc_args a;
	struct extmem_info info;
	int fd;

	/* 32 bytes without a NUL. */
	init_alloc_args(&a, pg, 0, EXTMEM_NODE_ANY, 0);
	memset(a.label, 'x', sizeof(a.label));
	EXPECT_EQ(-EINVAL, try_alloc(self->dev, &a));

	/* 31 characters and the NUL. */
	a.label[31] = '\0';
	fd = alloc_args(self->dev, &a);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(fd, &info));
	EXPECT_STREQ(a.label, info.label);
	close(fd);

	/* Empty. */
	init_alloc_args(&a, pg, 0, EXTMEM_NODE_ANY, 0);
	fd = alloc_args(self->dev, &a);
	ASSERT_LE(0, fd);
	/* Output fields need not be cleared; reserved ones must be zero. */
	memset(&info, 0x55, sizeof(info));
	info.size = sizeof(info);
	memset(info.reserved, 0, sizeof(info.reserved));
	ASSERT_EQ(0, ioctl(fd, EXTMEM_IOC_INFO, &info));
	EXPECT_STREQ("", info.label);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

/*
 * ALLOC with a buffer of @bufsz bytes, the size field set to @size, the
 * struct in front and @tail in every byte after it. 0 if an fd came back
 * (closed), else -errno.
 */
static int alloc_sized(int dev, uint32_t size, size_t bufsz, unsigned char tail)
{
	static unsigned char buf[8192];
	struct extmem_alloc_args a;
	unsigned long cmd;
	int fd;

	init_alloc_args(&a, 4096, 0, EXTMEM_NODE_ANY, 0);
	a.size = size;
	memset(buf, tail, sizeof(buf));
	memcpy(buf, &a, sizeof(a));
	/* A binary built with a larger struct has a larger size in the number. */
	cmd = _IOC(_IOC_READ | _IOC_WRITE, EXTMEM_IOCTL_TYPE, 0x00,
		   bufsz < sizeof(a) ? sizeof(a) : bufsz);
	fd = ioctl(dev, cmd, buf);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

TEST_F(extmem, alloc_struct_size)
{
	const size_t v0 = EXTMEM_ALLOC_ARGS_SIZE_VER0;
	unsigned char buf[128], big[EXTMEM_ALLOC_ARGS_SIZE_VER0 + 64];
	struct extmem_alloc_args a;
	size_t i;
	int fd;

	ASSERT_EQ(v0, sizeof(struct extmem_alloc_args));
	EXPECT_EQ(-EINVAL, alloc_sized(self->dev, 0, v0, 0));
	EXPECT_EQ(-EINVAL, alloc_sized(self->dev, 4, v0, 0));
	EXPECT_EQ(-EINVAL, alloc_sized(self->dev, v0 - 8, v0, 0));
	EXPECT_EQ(-EINVAL, alloc_sized(self->dev, v0 - 1, v0, 0));

	/* Larger: unknown bytes must be zero. */
	EXPECT_EQ(-E2BIG, alloc_sized(self->dev, v0 + 8, v0 + 8, 0xff));
	EXPECT_EQ(0, alloc_sized(self->dev, v0 + 8, v0 + 8, 0));
	EXPECT_EQ(0, alloc_sized(self->dev, v0 + 1, v0 + 1, 0));
	EXPECT_EQ(0, alloc_sized(self->dev, 4096, 4096, 0));
	EXPECT_EQ(-E2BIG, alloc_sized(self->dev, 4096, 4096, 0x01));
	/* Only the very last byte set. */
	init_alloc_args(&a, 4096, 0, EXTMEM_NODE_ANY, 0);
	a.size = sizeof(big);
	memset(big, 0, sizeof(big));
	memcpy(big, &a, sizeof(a));
	big[sizeof(big) - 1] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, _IOC(_IOC_READ | _IOC_WRITE, EXTMEM_IOCTL_TYPE, 0x00,
					    sizeof(big)), big));
	EXPECT_EQ(E2BIG, errno);
	/* Above a page: E2BIG, whatever the tail holds. */
	EXPECT_EQ(-E2BIG, alloc_sized(self->dev, 4097, 4097, 0));
	EXPECT_EQ(-E2BIG, alloc_sized(self->dev, 8192, 8192, 0));
	EXPECT_EQ(-E2BIG, alloc_sized(self->dev, UINT32_MAX, v0, 0));

	/* The kernel writes back at most @size bytes. */
	init_alloc_args(&a, pg, 0, EXTMEM_NODE_ANY, 0);
	memset(buf, 0xaa, sizeof(buf));
	memcpy(buf, &a, sizeof(a));
	fd = ioctl(self->dev, EXTMEM_IOC_ALLOC, buf);
	ASSERT_LE(0, fd);
	memcpy(&a, buf, sizeof(a));
	EXPECT_EQ(fd, a.fd);
	for (i = sizeof(a); i < sizeof(buf); i++) {
		EXPECT_EQ(0xaa, buf[i]) TH_LOG("byte %zu", i);
	}
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, area_info_bad_input)
{
	struct extmem_area_info ai;
	unsigned char buf[EXTMEM_AREA_INFO_SIZE_VER0 + 8];

	ASSERT_EQ(EXTMEM_AREA_INFO_SIZE_VER0, sizeof(ai));
	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(ai);
	ai.index = UINT32_MAX;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_EQ(ENOENT, errno);

	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(ai) - 1;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_EQ(EINVAL, errno);
	ai.size = 0;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_EQ(EINVAL, errno);

	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(ai);
	ai.reserved0 = 1;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_EQ(EINVAL, errno);
	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(ai);
	ai.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_EQ(EINVAL, errno);

	/* Larger, with a zero tail: works and says the same. */
	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(buf);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &ai, sizeof(ai));
	EXPECT_EQ(0, ioctl(self->dev, _IOC(_IOC_READ | _IOC_WRITE, EXTMEM_IOCTL_TYPE, 0x01,
					   sizeof(buf)), buf));
	memcpy(&ai, buf, sizeof(ai));
	EXPECT_EQ(self->a[0].base, ai.base);
	EXPECT_EQ(self->a[0].total, ai.total);
	/* ... and with a non-zero tail: E2BIG. */
	memset(&ai, 0, sizeof(ai));
	ai.size = sizeof(buf);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &ai, sizeof(ai));
	buf[sizeof(buf) - 1] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, _IOC(_IOC_READ | _IOC_WRITE, EXTMEM_IOCTL_TYPE, 0x01,
					    sizeof(buf)), buf));
	EXPECT_EQ(E2BIG, errno);
}

TEST_F(extmem, info_bad_input)
{
	unsigned char buf[EXTMEM_INFO_SIZE_VER0 + 8];
	struct extmem_info info;
	int fd;

	ASSERT_EQ(EXTMEM_INFO_SIZE_VER0, sizeof(info));
	fd = alloc_mem(self->dev, pg, 0, EXTMEM_NODE_ANY, 0, "info");
	ASSERT_LE(0, fd);

	memset(&info, 0, sizeof(info));
	info.size = sizeof(info) - 1;
	EXPECT_EQ(-1, ioctl(fd, EXTMEM_IOC_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	info.size = 0;
	EXPECT_EQ(-1, ioctl(fd, EXTMEM_IOC_INFO, &info));
	EXPECT_EQ(EINVAL, errno);

	memset(&info, 0, sizeof(info));
	info.size = sizeof(buf);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &info, sizeof(info));
	EXPECT_EQ(0, ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, EXTMEM_IOCTL_TYPE, 0x10,
				    sizeof(buf)), buf));
	memcpy(&info, buf, sizeof(info));
	EXPECT_EQ(pg, info.length);
	EXPECT_STREQ("info", info.label);

	memset(&info, 0, sizeof(info));
	info.size = sizeof(buf);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &info, sizeof(info));
	buf[sizeof(buf) - 1] = 1;
	EXPECT_EQ(-1, ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, EXTMEM_IOCTL_TYPE, 0x10,
				     sizeof(buf)), buf));
	EXPECT_EQ(E2BIG, errno);
	close(fd);
}

TEST_F(extmem, mmap_rejects_bad_requests)
{
	const size_t len = 4 * MiB;
	int fd, r;
	char *p, *q;

	fd = alloc_mem(self->dev, len, 0, EXTMEM_NODE_ANY, 0, NULL);
	ASSERT_LE(0, fd);

	r = try_map(fd, pg, len, MAP_SHARED);
	EXPECT_TRUE(BEYOND(r)) TH_LOG("offset = length: %d", r);
	r = try_map(fd, len + pg, 0, MAP_SHARED);
	EXPECT_TRUE(BEYOND(r)) TH_LOG("length + 4 KiB: %d", r);
	r = try_map(fd, 2 * pg, len - pg, MAP_SHARED);
	EXPECT_TRUE(BEYOND(r)) TH_LOG("last page + 1: %d", r);
	r = try_map(fd, pg, 1ULL << 40, MAP_SHARED);
	EXPECT_TRUE(BEYOND(r)) TH_LOG("offset 1 TiB: %d", r);
	EXPECT_EQ(-EINVAL, try_map(fd, pg, 100, MAP_SHARED));
	EXPECT_EQ(-EINVAL, try_map(fd, len, 0, MAP_PRIVATE));
	EXPECT_EQ(-EINVAL, try_map(fd, pg, pg, MAP_PRIVATE));
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	if (p != MAP_FAILED)
		munmap(p, len);

	/* The last page alone is inside. */
	p = map_fd(fd, pg, len - pg);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	/* VM_DONTEXPAND: a mapping cannot grow past what was mapped. */
	q = mremap(p, pg, 2 * pg, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, q);
	if (q != MAP_FAILED)
		p = q;
	munmap(p, pg);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

static int open_without_cap(int unused1, int unused2)
{
	int fd;

	if (drop_cap_sys_admin())
		return 200;
	fd = open(DEV, O_RDWR);
	return fd < 0 ? errno : 0;
}

static int open_as_nobody(int unused1, int unused2)
{
	int fd;

	if (become_nobody())
		return 200;
	fd = open(DEV, O_RDWR);
	return fd < 0 ? errno : 0;
}

static int alloc_without_cap(int dev, int nobody)
{
	struct extmem_alloc_args a;
	int fd;

	if (nobody ? become_nobody() : drop_cap_sys_admin())
		return 200;
	init_alloc_args(&a, 4096, 0, EXTMEM_NODE_ANY, 0);
	fd = ioctl(dev, EXTMEM_IOC_ALLOC, &a);
	return fd < 0 ? errno : 0;
}

/* What an unprivileged holder of an allocation fd (say a VMM) can do. */
static int use_without_cap(int fd, int nobody)
{
	struct extmem_info info;
	char *p;

	if (nobody ? become_nobody() : drop_cap_sys_admin())
		return 200;
	if (get_info(fd, &info))
		return 201;
	if (info.phys != 0)
		return 202;
	if (info.length != 2 * MiB || strcmp(info.label, "unpriv"))
		return 203;
	p = map_fd(fd, 2 * MiB, 0);
	if (p == MAP_FAILED)
		return 204;
	if (check(p, 2 * MiB, 0xcccc, 0) != -1)
		return 205;
	return 0;
}

TEST_F(extmem, open_needs_cap_sys_admin)
{
	int r;

	r = in_child(open_without_cap, 0, 0);
	EXPECT_EQ(EPERM, r) TH_LOG("root without CAP_SYS_ADMIN: %d (%s)", r,
				   r > 0 && r < 200 ? strerror(r) : "?");
	r = in_child(open_as_nobody, 0, 0);
	EXPECT_TRUE(r == EACCES || r == EPERM) TH_LOG("uid 65534: %d (%s)", r,
						      r > 0 && r < 200 ? strerror(r) : "?");
}

TEST_F(extmem, alloc_needs_cap_sys_admin)
{
	int r;

	r = in_child(alloc_without_cap, self->dev, 0);
	EXPECT_EQ(EPERM, r) TH_LOG("open, drop CAP_SYS_ADMIN, ALLOC: %d", r);
	r = in_child(alloc_without_cap, self->dev, 1);
	EXPECT_EQ(EPERM, r) TH_LOG("open, become uid 65534, ALLOC: %d", r);
	EXPECT_POOL_AS_AT_START();
}

TEST_F(extmem, info_hides_phys_without_cap)
{
	struct extmem_info info;
	int fd, r;
	char *p;

	fd = alloc_mem(self->dev, 2 * MiB, 0, EXTMEM_NODE_ANY, 0, "unpriv");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_info(fd, &info));
	EXPECT_NE(0, info.phys);
	p = map_fd(fd, 2 * MiB, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, 2 * MiB, 0xcccc, 0);
	r = in_child(use_without_cap, fd, 0);
	EXPECT_EQ(0, r) TH_LOG("without CAP_SYS_ADMIN: step %d", r);
	r = in_child(use_without_cap, fd, 1);
	EXPECT_EQ(0, r) TH_LOG("as uid 65534: step %d", r);
	munmap(p, 2 * MiB);
	close(fd);
	EXPECT_POOL_AS_AT_START();
}

/*
 * A /dev/extmem descriptor passed to a process without CAP_SYS_ADMIN: it
 * sees the areas but no physical address; as nobody, sysfs's base cannot
 * even be opened.
 */
static int area_info_without_cap(int dev, int nobody)
{
	struct extmem_area_info ai = { .size = sizeof(ai), .index = 0 };
	char path[96];
	int fd;

	if (nobody ? become_nobody() : drop_cap_sys_admin())
		return 200;
	if (ioctl(dev, EXTMEM_IOC_AREA_INFO, &ai))
		return 201;
	if (ai.base != 0)
		return 202;
	if (ai.total == 0)
		return 203;
	snprintf(path, sizeof(path), SYSFS "/area0/base");
	fd = open(path, O_RDONLY);
	if (nobody && (fd >= 0 || errno != EACCES))
		return 204;
	if (fd >= 0)
		close(fd);
	return 0;
}

TEST_F(extmem, area_info_hides_base_without_cap)
{
	struct extmem_area_info ai = { .size = sizeof(ai), .index = 0 };
	int r;

	ASSERT_EQ(0, ioctl(self->dev, EXTMEM_IOC_AREA_INFO, &ai));
	EXPECT_NE(0, ai.base);
	r = in_child(area_info_without_cap, self->dev, 0);
	EXPECT_EQ(0, r) TH_LOG("without CAP_SYS_ADMIN: step %d", r);
	r = in_child(area_info_without_cap, self->dev, 1);
	EXPECT_EQ(0, r) TH_LOG("as uid 65534: step %d", r);
}

TEST_HARNESS_MAIN
