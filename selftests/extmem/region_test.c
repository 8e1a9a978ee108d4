// SPDX-License-Identifier: GPL-2.0
/*
 * extmem regions: EXTMEM_IOC_REGION_CREATE / _DESTROY on /dev/extmem, the
 * device nodes /dev/extmem_region/<name> and their sysfs attributes.
 *
 * Three ways to run it:
 *
 *   extmem_region_test               the kselftest cases below (needs root;
 *                                    they create regions named "t-*" and
 *                                    leave the pool as they found it)
 *   extmem_region_test kexec         (or EXTMEM_REGION_MODE=kexec in the
 *                                    environment) one stage of the kexec boot (stage from
 *                                    extmem_stage= on the command line): stage
 *                                    1 makes a sticky region "keep" and a
 *                                    plain one "drop" on node 1 and fills
 *                                    them; stages 2 and 3 check that "keep"
 *                                    is back with its contents, name, owner
 *                                    and mode and that "drop" is gone; stage
 *                                    3 destroys "keep". KTAP lines are
 *                                    printed as they happen (the kexec test
 *                                    that runs next starts the next kernel).
 *   extmem_region_test fill PATH SEED | check PATH SEED
 *                                    map the region at PATH and write (or
 *                                    verify) a pattern, for the shell tests
 *                                    and the QEMU test (check also accepts
 *                                    "guest" as SEED: count the 4 KiB pages
 *                                    the QEMU guest filled with its pattern)
 *   extmem_region_test runas UID PROGRAM ARGS...
 *                                    run PROGRAM as UID (and GID UID) without
 *                                    any capability (the QEMU test's VMM)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/extmem.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "extmem_util.h"

#define REGION_DEV	"/dev/extmem_region"
#define REGION_SYSFS	"/sys/class/extmem_region"
#define GUEST_MAGIC	"EXTMEM-QEMU-GUEST-PATTERN-v1\n"

static uint64_t pat(uint64_t seed, uint64_t off)
{
	return (seed ^ (off * 0x9e3779b97f4a7c15ULL)) | 1;
}

/* Fills (or counts mismatches in) one word of every 512 bytes, and the last. */
static uint64_t pattern(volatile uint64_t *p, uint64_t len, uint64_t seed, int fill)
{
	uint64_t i, bad = 0, n = len / 8;

	for (i = 0; i < n; i += 64) {
		if (fill)
			p[i] = pat(seed, i);
		else if (p[i] != pat(seed, i))
			bad++;
	}
	if (fill)
		p[n - 1] = pat(seed, n - 1);
	else if (p[n - 1] != pat(seed, n - 1))
		bad++;
	return bad;
}

static void region_args(struct extmem_region_args *a, const char *name, uint64_t len,
			uint64_t align, int node, uint32_t mode)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->length = len;
	a->alignment = align;
	a->node = node;
	a->mode = mode;
	snprintf(a->name, sizeof(a->name), "%s", name);
}

static int create_args(int dev, struct extmem_region_args *a)
{
	return ioctl(dev, EXTMEM_IOC_REGION_CREATE, a) ? -errno : 0;
}

static int create(int dev, const char *name, uint64_t len, uint64_t align, int node,
		  uint32_t mode, uint32_t flags)
{
	struct extmem_region_args a;

	region_args(&a, name, len, align, node, mode);
	a.flags = flags;
	return create_args(dev, &a);
}

static int destroy(int dev, const char *name)
{
	struct extmem_region_args a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	snprintf(a.name, sizeof(a.name), "%s", name);
	return ioctl(dev, EXTMEM_IOC_REGION_DESTROY, &a) ? -errno : 0;
}

/* Reads an attribute of a region, without its newline. */
static int region_attr(const char *name, const char *attr, char *buf, size_t len)
{
	char path[256];
	int r;

	snprintf(path, sizeof(path), REGION_SYSFS "/%s/%s", name, attr);
	r = read_str(path, buf, len);
	if (!r)
		buf[strcspn(buf, "\n")] = '\0';
	return r;
}

static uint64_t region_u64(const char *name, const char *attr)
{
	char buf[64];

	if (region_attr(name, attr, buf, sizeof(buf)))
		return UINT64_MAX;
	return strtoull(buf, NULL, 0);
}

/* Sum of free_bytes over every area. */
static uint64_t pool_free(void)
{
	uint64_t sum = 0, v;
	int i;

	for (i = 0; !area_attr(i, "free_bytes", &v); i++)
		sum += v;
	return sum;
}

static int node_has_area(int node)
{
	uint64_t v;
	int i;

	for (i = 0; !area_attr(i, "node", &v); i++)
		if ((int)v == node)
			return 1;
	return 0;
}

/* Opens the region's node and maps all of it; returns the mapping or NULL. */
static void *map_region(const char *path, int flags, uint64_t *len, int *fdp)
{
	struct stat st;
	void *p;
	int fd = open(path, flags | O_CLOEXEC);
	off_t size;

	if (fd < 0)
		return NULL;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || fstat(fd, &st)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | ((flags & O_ACCMODE) == O_RDWR ? PROT_WRITE : 0),
		 MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	*len = size;
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return p;
}

/* The "fill" / "check" helpers: 0 on success, 1 on a mismatch, 2 on an error. */
static int helper(const char *op, const char *path, const char *seed_s)
{
	uint64_t len, bad, seed;
	void *p = map_region(path, !strcmp(op, "fill") ? O_RDWR : O_RDONLY, &len, NULL);

	if (!p) {
		fprintf(stderr, "%s: cannot map: %s\n", path, strerror(errno));
		return 2;
	}
	if (!strcmp(op, "check") && !strcmp(seed_s, "guest")) {
		uint64_t o, pages = 0, m = strlen(GUEST_MAGIC);

		for (o = 0; o + 4096 <= len; o += 4096)
			pages += !memcmp((char *)p + o, GUEST_MAGIC, m) &&
				 !memcmp((char *)p + o + 4096 - m, GUEST_MAGIC, m);
		printf("%llu\n", (unsigned long long)pages);
		return pages ? 0 : 1;
	}
	seed = strtoull(seed_s, NULL, 0);
	if (!strcmp(op, "fill")) {
		pattern(p, len, seed, 1);
		return 0;
	}
	bad = pattern(p, len, seed, 0);
	if (bad)
		fprintf(stderr, "%s: %llu words differ\n", path, (unsigned long long)bad);
	return bad ? 1 : 0;
}

static int drop_privileges(uid_t uid)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		return -errno;
	/* setresuid() away from 0 clears the capabilities; make sure. */
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/* kexec mode: KTAP lines with the stage in their names. */
static int ktest, kfail, kstage = 1;

static void kresult(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d region-stage%d-", ok ? "" : "not ", ++ktest, kstage);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	kfail += !ok;
}

#define KEEP_LEN	(64 * MiB)
#define DROP_LEN	(32 * MiB)
#define KEEP_SEED	0x6b656570ULL

static int kexec_mode(void)
{
	char cmdline[4096] = "", buf[64], *p;
	struct stat st;
	uint64_t len = 0;
	int dev, fd;
	void *m;

	if (!read_str("/proc/cmdline", cmdline, sizeof(cmdline)) &&
	    (p = strstr(cmdline, "extmem_stage=")))
		kstage = atoi(p + 13);
	printf("# extmem region kexec test, stage %d\n", kstage);
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0 || !node_has_area(1)) {
		printf("not ok 1 region-stage%d # no %s or no area on node 1\n", kstage, DEV);
		return 1;
	}
	if (kstage == 1) {
		struct extmem_region_args a;

		region_args(&a, "keep", KEEP_LEN, 2 * MiB, 1, 0640);
		a.flags = EXTMEM_REGION_STICKY;
		a.uid = 1000;
		a.gid = 1001;
		kresult(!create_args(dev, &a), "create-sticky-keep");
		kresult(!create(dev, "drop", DROP_LEN, 0, 1, 0600, 0), "create-plain-drop");
		kresult(!helper("fill", REGION_DEV "/keep", "0x6b656570"), "fill-keep");
		kresult(!helper("fill", REGION_DEV "/drop", "0x64726f70"), "fill-drop");
		kresult(region_u64("keep", "sticky") == 1 && region_u64("drop", "sticky") == 0,
			"sysfs-sticky-flags");
		return kfail ? 1 : 0;
	}
	kresult(!stat(REGION_DEV "/keep", &st) && S_ISCHR(st.st_mode),
		"keep-device-node-is-back");
	kresult((st.st_mode & 07777) == 0640 && st.st_uid == 1000 && st.st_gid == 1001,
		"keep-mode-and-owner-intact # %o %u:%u", st.st_mode & 07777, st.st_uid,
		st.st_gid);
	kresult(region_u64("keep", "size") == KEEP_LEN && region_u64("keep", "sticky") == 1 &&
		region_u64("keep", "target_node") == 1 && region_u64("keep", "align") == 2 * MiB,
		"keep-sysfs-size-node-align-sticky");
	kresult(!region_attr("keep", "mode", buf, sizeof(buf)) && !strcmp(buf, "0640"),
		"keep-sysfs-mode");
	m = map_region(REGION_DEV "/keep", O_RDWR, &len, &fd);
	kresult(m && len == KEEP_LEN && !pattern(m, len, KEEP_SEED, 0),
		"keep-contents-intact");
	kresult(access(REGION_DEV "/drop", F_OK) && errno == ENOENT &&
		region_u64("drop", "size") == UINT64_MAX, "plain-region-gone");
	kresult(destroy(dev, "keep") == -EBUSY, "destroy-refused-while-mapped");
	if (m) {
		munmap(m, len);
		close(fd);
	}
	if (kstage >= 3) {
		uint64_t before = pool_free();

		kresult(!destroy(dev, "keep"), "destroy-keep");
		kresult(pool_free() == before + KEEP_LEN, "destroy-frees-its-memory");
		kresult(access(REGION_DEV "/keep", F_OK) && errno == ENOENT, "keep-node-removed");
	}
	return kfail ? 1 : 0;
}

FIXTURE(region)
{
	int dev;
	uint64_t free0;
};

FIXTURE_SETUP(region)
{
	self->dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist");
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", DEV, strerror(errno));
	if (!node_has_area(0))
		SKIP(return, "no extmem area on node 0");
	self->free0 = pool_free();
}

FIXTURE_TEARDOWN(region)
{
	static const char *const names[] = { "t-life", "t-perm", "t-busy", "t-attr",
					     "t-huge", "t-bad" };
	size_t i;

	if (self->dev < 0)
		return;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[64];

		snprintf(path, sizeof(path), REGION_DEV "/%s", names[i]);
		if (!access(path, F_OK))
			destroy(self->dev, names[i]);
	}
	EXPECT_EQ(self->free0, pool_free()) TH_LOG("the pool is not whole again");
	close(self->dev);
}

/* Writer and reader are separate processes; the memory outlives both. */
TEST_F(region, create_open_map_write_exit_then_another_process_reads)
{
	struct stat st;
	pid_t pid;
	int status;

	ASSERT_EQ(0, create(self->dev, "t-life", 64 * MiB, 0, 0, 0600, 0));
	EXPECT_EQ(self->free0 - 64 * MiB, pool_free());
	ASSERT_EQ(0, stat(REGION_DEV "/t-life", &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(helper("fill", REGION_DEV "/t-life", "0x1234"));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(helper("check", REGION_DEV "/t-life", "0x1234"));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("the second process did not see the data");
	EXPECT_EQ(0, destroy(self->dev, "t-life"));
	EXPECT_EQ(-1, access(REGION_DEV "/t-life", F_OK));
	EXPECT_EQ(self->free0, pool_free());
}

TEST_F(region, sysfs_attributes_info_and_lseek)
{
	struct extmem_region_args a;
	struct extmem_info info = { .size = sizeof(info) };
	char buf[64];
	int fd;

	region_args(&a, "t-attr", 8 * MiB, 4096, 0, 0644);
	a.uid = 1000;
	a.gid = 100;
	ASSERT_EQ(0, create_args(self->dev, &a));
	EXPECT_EQ(8 * MiB, region_u64("t-attr", "size"));
	EXPECT_EQ(4096, region_u64("t-attr", "align"));
	EXPECT_EQ(0, region_u64("t-attr", "target_node"));
	EXPECT_EQ(0, region_u64("t-attr", "sticky"));
	EXPECT_EQ(1000, region_u64("t-attr", "uid"));
	EXPECT_EQ(100, region_u64("t-attr", "gid"));
	ASSERT_EQ(0, region_attr("t-attr", "mode", buf, sizeof(buf)));
	EXPECT_STREQ("0644", buf);
	EXPECT_NE(UINT64_MAX, region_u64("t-attr", "resource"));
	fd = open(REGION_DEV "/t-attr", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(8 * MiB, lseek(fd, 0, SEEK_END));
	ASSERT_EQ(0, ioctl(fd, EXTMEM_IOC_INFO, &info));
	EXPECT_EQ(8 * MiB, info.length);
	EXPECT_EQ(0, info.node);
	EXPECT_EQ(region_u64("t-attr", "resource"), info.phys);
	EXPECT_STREQ("t-attr", info.label);
	close(fd);
}

/* 2 MiB alignment and a 2 MiB-aligned mapping: one fault per 2 MiB. */
TEST_F(region, maps_with_pmd_entries)
{
	const uint64_t len = 64 * MiB;
	struct rusage r0, r1;
	char *res, *p;
	uint64_t o;
	int fd;

	ASSERT_EQ(0, create(self->dev, "t-huge", len, 2 * MiB, 0, 0600, 0));
	fd = open(REGION_DEV "/t-huge", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	res = mmap(NULL, len + 2 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	p = (char *)(((uintptr_t)res + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	ASSERT_EQ(p, mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
	getrusage(RUSAGE_SELF, &r0);
	for (o = 0; o < len; o += 4096)
		((volatile char *)p)[o] = 1;
	getrusage(RUSAGE_SELF, &r1);
	EXPECT_GE(len / (2 * MiB) + 4, (uint64_t)(r1.ru_minflt - r0.ru_minflt))
		TH_LOG("%ld faults for %llu MiB", r1.ru_minflt - r0.ru_minflt,
		       (unsigned long long)(len >> 20));
	EXPECT_EQ(-1, mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? -1 : 0)
		TH_LOG("a private (copy-on-write) mapping must be refused");
	munmap(res, len + 2 * MiB);
	close(fd);
}

/* Destroy is refused while a file or a mapping is left, and works after. */
TEST_F(region, destroy_waits_for_users)
{
	uint64_t len;
	void *p;
	int fd;

	ASSERT_EQ(0, create(self->dev, "t-busy", 4 * MiB, 0, 0, 0600, 0));
	p = map_region(REGION_DEV "/t-busy", O_RDWR, &len, &fd);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(-EBUSY, destroy(self->dev, "t-busy"));
	close(fd);
	EXPECT_EQ(-EBUSY, destroy(self->dev, "t-busy")) TH_LOG("the mapping holds the file");
	munmap(p, len);
	EXPECT_EQ(0, destroy(self->dev, "t-busy"));
}

static int open_as(uid_t uid, const char *path)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		uint64_t len;
		void *p;

		if (drop_privileges(uid))
			_exit(200);
		p = map_region(path, O_RDWR, &len, NULL);
		if (!p)
			_exit(errno);
		memset(p, 0x5a, 4096);
		_exit(((volatile char *)p)[4095] == 0x5a ? 0 : 201);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int create_without_cap(int dev)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (!pid) {
		struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

		/* Keep the open /dev/extmem, lose every capability, stay uid 0. */
		if (syscall(SYS_capset, &h, d))
			_exit(200);
		_exit(-create(dev, "t-nocap", 4 * MiB, 0, 0, 0600, 0));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Owned by uid 1000, mode 0600: uid 1000 maps it without capabilities, 1001 cannot. */
TEST_F(region, owner_uses_it_without_capabilities_others_refused)
{
	struct extmem_region_args a;

	region_args(&a, "t-perm", 4 * MiB, 0, 0, 0600);
	a.uid = 1000;
	a.gid = 1000;
	ASSERT_EQ(0, create_args(self->dev, &a));
	EXPECT_EQ(0, open_as(1000, REGION_DEV "/t-perm"));
	EXPECT_EQ(EACCES, open_as(1001, REGION_DEV "/t-perm"));
	EXPECT_EQ(EPERM, create_without_cap(self->dev));
	EXPECT_EQ(-1, access(REGION_DEV "/t-nocap", F_OK));
	EXPECT_EQ(0, destroy(self->dev, "t-perm"));
}

/* Each bad request: its errno, and the pool and /dev unchanged. */
TEST_F(region, bad_requests_change_nothing)
{
	struct extmem_region_args a;
	char big[64];
	int i;

	ASSERT_EQ(0, create(self->dev, "t-bad", 4 * MiB, 0, 0, 0600, 0));
	EXPECT_EQ(-EEXIST, create(self->dev, "t-bad", 4 * MiB, 0, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "a/b", 4 * MiB, 0, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "", 4 * MiB, 0, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, ".hidden", 4 * MiB, 0, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 0, 0, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 3 * MiB, 2 * MiB, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 3 * MiB, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 0, 0, 04755, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 0, 0, 0600, 0x80));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 0, 4096, 0600, 0));
	EXPECT_EQ(-ENOMEM, create(self->dev, "t-x", 512ULL * GiB, 0, 0, 0600, 0));
	/* The edges of length, alignment and mode. */
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 1, 0, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", UINT64_MAX, 0, 0, 0600, 0));
	EXPECT_EQ(-ENOMEM, create(self->dev, "t-x", UINT64_MAX & ~(2 * MiB - 1), 0, 0, 0600, 0));
	EXPECT_EQ(-ENOMEM, create(self->dev, "t-x", UINT64_MAX & ~(GiB - 1), GiB, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * GiB, 2 * GiB, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, UINT64_MAX, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 1ULL << 63, 0, 0600, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 0, 0, 01000, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 0, 0, UINT32_MAX, 0));
	EXPECT_EQ(-EINVAL, create(self->dev, "t-x", 4 * MiB, 0, 0, 0600, UINT32_MAX));
	for (i = 0; i < 64 && node_has_area(i); i++)
		;
	if (i < 4) {
		int r = create(self->dev, "t-x", 4 * MiB, 0, i, 0600, 0);

		/* A node that exists without an area, or one that does not exist. */
		EXPECT_TRUE(r == -ENODEV || r == -EINVAL) TH_LOG("node %d: %d", i, r);
	}
	region_args(&a, "t-x", 4 * MiB, 0, 0, 0600);
	a.reserved[1] = 1;
	EXPECT_EQ(-EINVAL, create_args(self->dev, &a));
	memset(a.name, 'x', sizeof(a.name));
	a.reserved[1] = 0;
	EXPECT_EQ(-EINVAL, create_args(self->dev, &a)) TH_LOG("a name without NUL");
	EXPECT_EQ(-ENOENT, destroy(self->dev, "t-nosuch"));
	region_args(&a, "t-bad", 4 * MiB, 0, 0, 0600);
	EXPECT_EQ(-EINVAL, ioctl(self->dev, EXTMEM_IOC_REGION_DESTROY, &a) ? -errno : 0)
		TH_LOG("destroy takes only a name");
	EXPECT_EQ(self->free0 - 4 * MiB, pool_free());
	EXPECT_EQ(-1, access(REGION_DEV "/t-x", F_OK));
	EXPECT_EQ(-1, access(REGION_DEV "/a", F_OK));
	snprintf(big, sizeof(big), "%s", REGION_DEV "/t-bad");
	EXPECT_EQ(0, access(big, F_OK));
	EXPECT_EQ(0, destroy(self->dev, "t-bad"));
}

int main(int argc, char **argv)
{
	const char *mode = getenv("EXTMEM_REGION_MODE");

	if ((argc > 1 && !strcmp(argv[1], "kexec")) || (mode && !strcmp(mode, "kexec")))
		return kexec_mode();
	if (argc > 3 && (!strcmp(argv[1], "fill") || !strcmp(argv[1], "check")))
		return helper(argv[1], argv[2], argv[3]);
	if (argc > 3 && !strcmp(argv[1], "runas")) {
		if (drop_privileges(atoi(argv[2]))) {
			perror("runas");
			return 126;
		}
		execv(argv[3], argv + 3);
		perror(argv[3]);
		return 127;
	}
	return test_harness_run(argc, argv);
}
