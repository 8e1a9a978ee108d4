// SPDX-License-Identifier: GPL-2.0
/*
 * extmem-alloc: allocate from /dev/extmem, map and touch the memory, then
 * run a command while holding it, the way a VMM holds guest memory.
 *
 *   extmem-alloc SIZE NODE|any ALIGN LABEL [-- COMMAND...]
 *
 * SIZE and ALIGN take K/M/G suffixes (ALIGN 0: page size). COMMAND gets the
 * allocation's physical address in EXTMEM_PHYS. With EXTMEM_ALLOC_RECHECK=1
 * every page is read again after COMMAND, and the pages that cannot be read
 * (SIGBUS: a memory failure took them out) are reported.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/extmem.h>

static unsigned long long parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10;
	}
	return v;
}

static const char *human(unsigned long long b, char *buf)
{
	if (b >= (1ULL << 30) && !(b & ((1ULL << 30) - 1)))
		sprintf(buf, "%llu GiB", b >> 30);
	else
		sprintf(buf, "%llu MiB", b >> 20);
	return buf;
}

static sigjmp_buf bus_jmp;
static volatile int bus_code;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	bus_code = si->si_code;
	siglongjmp(bus_jmp, 1);
}

/* Reads every page of @p again; prints the ones that raise SIGBUS. */
static void recheck(const char *label, volatile unsigned char *p, unsigned long long len)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	unsigned long long i, bad = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	for (i = 0; i < len; i += 4096) {
		if (sigsetjmp(bus_jmp, 1)) {
			printf("  %s: page at offset %#llx: SIGBUS (%s)\n", label, i,
			       bus_code == BUS_MCEERR_AR ? "BUS_MCEERR_AR, memory failure" : "other");
			bad++;
			continue;
		}
		if (p[i] != (unsigned char)i) {
			printf("  %s: page at offset %#llx changed\n", label, i);
			bad++;
		}
	}
	printf("  %s: read again: %llu of %llu pages intact\n", label, len / 4096 - bad, len / 4096);
}

int main(int argc, char **argv)
{
	struct extmem_alloc_args a = { .size = sizeof(a) };
	struct extmem_info info = { .size = sizeof(info) };
	struct rusage r0, r1;
	struct timespec t0, t1;
	char b1[32], b2[32];
	unsigned long long len, i;
	unsigned char *p, *map;
	int dev, fd;

	if (argc < 5) {
		fprintf(stderr, "usage: %s SIZE NODE|any ALIGN LABEL [-- COMMAND...]\n", argv[0]);
		return 2;
	}
	len = parse_size(argv[1]);
	a.length = len;
	a.node = strcmp(argv[2], "any") ? atoi(argv[2]) : EXTMEM_NODE_ANY;
	a.alignment = parse_size(argv[3]);
	snprintf(a.label, sizeof(a.label), "%s", argv[4]);

	dev = open("/dev/extmem", O_RDWR);
	if (dev < 0) {
		perror("open /dev/extmem");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = ioctl(dev, EXTMEM_IOC_ALLOC, &a);
	if (fd < 0) {
		fprintf(stderr, "extmem-alloc: %s on node %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	ioctl(fd, EXTMEM_IOC_INFO, &info);
	/* Reserve twice the size so the mapping can start on a 1 GiB (or 2 MiB) boundary. */
	map = mmap(NULL, len + (1ULL << 30), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	p = (unsigned char *)(((unsigned long)map + (1ULL << 30) - 1) & ~((1ULL << 30) - 1));
	p = mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	getrusage(RUSAGE_SELF, &r0);
	for (i = 0; i < len; i += 4096)
		p[i] = (unsigned char)i;
	getrusage(RUSAGE_SELF, &r1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("  %-12s %8s on node %d at phys %#llx, mapped at %p: %ld page faults for %llu pages (%.0f ms to allocate, zero, map and touch)\n",
	       info.label, human(info.length, b1), info.node, (unsigned long long)info.phys, p,
	       r1.ru_minflt - r0.ru_minflt, len / 4096,
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	close(fd);	/* the mapping keeps the allocation alive */
	fflush(stdout);
	if (argc > 6 && !strcmp(argv[5], "--")) {
		pid_t pid = fork();

		if (pid == 0) {
			snprintf(b2, sizeof(b2), "%#llx", (unsigned long long)info.phys);
			setenv("EXTMEM_PHYS", b2, 1);
			execvp(argv[6], argv + 6);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
	}
	if (getenv("EXTMEM_ALLOC_RECHECK") && !strcmp(getenv("EXTMEM_ALLOC_RECHECK"), "1"))
		recheck(info.label, p, len);
	munmap(p, len);
	return 0;
}
