/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the extmem kexec selftests share: /dev/liveupdate sessions, the
 * kernel log, the stage of a multi-kernel run (extmem_stage=N on the
 * command line, 1 when absent) and loading the next kernel (/kernel and
 * /initrd.img, which scripts/vm.sh nests into the initramfs) with
 * extmem_stage=N+1. Header-only, like extmem_util.h.
 */
#ifndef EXTMEM_SELFTEST_LUO_UTIL_H
#define EXTMEM_SELFTEST_LUO_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/liveupdate.h>

/*
 * KTAP results of a multi-kernel test, printed as they happen (the console
 * outlives the kernel): "ok N PREFIX-stageS-NAME", or for an operator
 * (ktap.demo) "  ok      NAME".
 */
static struct {
	const char *prefix;
	int stage, n, failed, demo;
} ktap;

static inline void __attribute__((format(printf, 2, 3)))
result(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ktap.demo)
		printf("  %-7s ", ok ? "ok" : "FAILED");
	else
		printf("%sok %d %s-stage%d-", ok ? "" : "not ", ++ktap.n, ktap.prefix, ktap.stage);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		ktap.failed++;
}

/* A diagnostic line ("# ..."), or an operator's line in demo mode. */
static inline void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;

	printf(ktap.demo ? "  " : "# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* /dev/liveupdate, opened once: it has one opener at a time. */
static int luo_dev = -1;

static inline int luo_fd(void)
{
	if (luo_dev < 0)
		luo_dev = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
	return luo_dev;
}

/* A new session's fd, or -errno. */
static inline int session_create(const char *name)
{
	struct liveupdate_ioctl_create_session a = { .size = sizeof(a) };

	snprintf((char *)a.name, sizeof(a.name), "%s", name);
	return ioctl(luo_fd(), LIVEUPDATE_IOCTL_CREATE_SESSION, &a) ? -errno : a.fd;
}

/* The fd of a session the previous kernel preserved, or -errno. */
static inline int session_retrieve(const char *name)
{
	struct liveupdate_ioctl_retrieve_session a = { .size = sizeof(a) };

	snprintf((char *)a.name, sizeof(a.name), "%s", name);
	return ioctl(luo_fd(), LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a) ? -errno : a.fd;
}

static inline int preserve(int session, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };

	return ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &a) ? -errno : 0;
}

/* The retrieved file's new fd, or -errno. */
static inline int retrieve(int session, uint64_t token)
{
	struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .token = token };

	return ioctl(session, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) ? -errno : a.fd;
}

static inline int finish(int session)
{
	struct liveupdate_session_finish a = { .size = sizeof(a) };

	return ioctl(session, LIVEUPDATE_SESSION_FINISH, &a) ? -errno : 0;
}

/*
 * Whether the kernel log holds @needle; with @copy, the rest of that line
 * is copied there.
 */
static inline int klog_has(const char *needle, char *copy, size_t copylen)
{
	static char log[1 << 20];
	int n = klogctl(3, log, sizeof(log) - 1);
	char *hit, *end;

	if (n <= 0)
		return 0;
	log[n] = '\0';
	hit = strstr(log, needle);
	if (hit && copy) {
		end = strchr(hit, '\n');
		snprintf(copy, copylen, "%.*s", end ? (int)(end - hit) : 200, hit);
	}
	return hit != NULL;
}

/* /proc/cmdline into @buf; the stage it names (1 when absent), or -1. */
static inline int kernel_stage(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cmdline", "r");
	char *p;

	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	p = strstr(buf, "extmem_stage=");
	return p ? atoi(p + 13) : 1;
}

/*
 * kexec_file_load() of /kernel and /initrd.img with @cmdline, its
 * extmem_stage= replaced by @stage + 1. 0 or -errno; the caller then
 * reboots with LINUX_REBOOT_CMD_KEXEC.
 */
static inline int kexec_load_next(const char *cmdline, int stage)
{
	char next[4200], *p;
	int kfd, ifd, rc = 0;

	snprintf(next, sizeof(next), "%s", cmdline);
	p = strstr(next, " extmem_stage=");
	if (p)
		*p = '\0';
	snprintf(next + strlen(next), sizeof(next) - strlen(next), " extmem_stage=%d",
		 stage + 1);
	kfd = open("/kernel", O_RDONLY | O_CLOEXEC);
	ifd = open("/initrd.img", O_RDONLY | O_CLOEXEC);
	if (kfd < 0 || ifd < 0)
		rc = -ENOENT;
	else if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(next) + 1, next, 0UL))
		rc = -errno;
	if (kfd >= 0)
		close(kfd);
	if (ifd >= 0)
		close(ifd);
	return rc;
}

/*
 * Keeps session @s open in a child process that lives until the kexec (a
 * session ends when its last fd closes), as a VMM does while the host's
 * update agent reboots the machine. The caller's copy is closed, and its
 * /dev/liveupdate should be closed too (by exiting) so that the agent can
 * open it. The child's pid, or -errno.
 */
static inline int hold_session(int s)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* Others of the run open /dev/liveupdate; the session is enough. */
		if (luo_dev >= 0)
			close(luo_dev);
		setsid();
		close(0);
		close(1);
		close(2);
		for (;;)
			pause();
	}
	close(s);
	return pid < 0 ? -errno : pid;
}

#endif /* EXTMEM_SELFTEST_LUO_UTIL_H */
