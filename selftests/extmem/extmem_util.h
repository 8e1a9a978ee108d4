/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the extmem selftests share: the device and sysfs paths, size
 * constants, small sysfs/procfs file helpers, a seeded PRNG and a clock.
 * Header-only (static inline), so every test stays a single static binary.
 */
#ifndef EXTMEM_SELFTEST_UTIL_H
#define EXTMEM_SELFTEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEV		"/dev/extmem"
#define SYSFS		"/sys/kernel/mm/extmem"

#define KiB		(1ULL << 10)
#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)

/* Reads at most @len - 1 bytes of @path into @buf; 0 or -errno. */
static inline int read_str(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* A number (decimal, 0x hex or 0 octal) from @path; -EINVAL if none. */
static inline int read_u64(const char *path, uint64_t *val)
{
	char buf[64], *end;
	int rc = read_str(path, buf, sizeof(buf));

	if (rc)
		return rc;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	return end == buf || errno ? -EINVAL : 0;
}

/* Writes @s to @path; 0 or -errno of the write. */
static inline int write_str(const char *path, const char *s)
{
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

static inline int write_u64(const char *path, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);
	return write_str(path, buf);
}

/* /sys/kernel/mm/extmem/area<idx>/<attr>; 0 or -errno. */
static inline int area_attr(int idx, const char *attr, uint64_t *val)
{
	char path[128];

	snprintf(path, sizeof(path), SYSFS "/area%d/%s", idx, attr);
	return read_u64(path, val);
}

/* Bytes free in the areas of @node (sysfs free_bytes, summed). */
static inline uint64_t node_free_bytes(int node)
{
	uint64_t n, f, sum = 0;
	int i;

	for (i = 0; !area_attr(i, "node", &n); i++)
		if ((int)n == node && !area_attr(i, "free_bytes", &f))
			sum += f;
	return sum;
}

/* xorshift64*: a seeded stream, so a printed seed replays a run. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform enough in [0, n); 0 for n == 0. */
static inline uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Seconds on CLOCK_MONOTONIC. */
static inline double now(void)
{
	return now_ns() / 1e9;
}

/* The number in environment variable @name, or @def if unset or empty. */
static inline uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

#endif /* EXTMEM_SELFTEST_UTIL_H */
