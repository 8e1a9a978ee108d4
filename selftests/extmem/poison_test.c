// SPDX-License-Identifier: GPL-2.0
/*
 * Memory failure on extmem: a machine check at a unit of a mapped
 * allocation and at a free unit, injected by QEMU on the host.
 *
 * The test asks the host for each injection with a console line
 *
 *	# EXTMEM-MCE <id> <cpu> <bank> <status> <mcg_status> <addr> <misc>
 *
 * which scripts/vm-mce.py (started by scripts/vm.sh with VM_MCE=1) turns
 * into the monitor command "mce <cpu> <bank> <status> <mcg_status> <addr>
 * <misc>". The guest CPU of the test VM is AMD (TCG's "max", family 0xf,
 * without SUCCOR), where an uncorrected #MC always panics; so the error is
 * a *deferred* DRAM ECC error of the northbridge bank (4, extended error
 * code 8, ADDRV), AMD's action-optional kind, which QEMU leaves in the
 * bank's registers and the kernel's poll (machine_check_poll(), every
 * check_interval seconds, set to 1 here) hands to memory_failure() through
 * uc_decode_notifier(), in a worker: what a scrubber finds, not what a load
 * consumes. Every process mapping the unit gets SIGBUS BUS_MCEERR_AO with
 * its own address; a later access gets BUS_MCEERR_AR from the fault.
 *
 * Runs only with EXTMEM_MCE=1 (the boot that has the monitor and the
 * watcher); skips otherwise. With EXTMEM_POISON_KEXEC=1 (the kexec boot)
 * only fenced_after_kexec runs.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/extmem.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "extmem_util.h"
#include "gmem_vmm.h"

#define CHECK_INTERVAL	"/sys/devices/system/machinecheck/machinecheck0/check_interval"
/* VAL | ADDRV | DEFERRED, extended error code 8 (DRAM ECC) in bank 4. */
#define MCE_BANK	4
#define MCE_STATUS	0x8400100000080000ULL
#define NODE		1
#define PAGE		4096ULL

/*
 * Asks the host for a deferred memory error at @phys on CPU 0. The id is
 * unique in the run: this boot's id (kernels of a kexec run differ), pid,
 * address.
 */
static void ask_injection(uint64_t phys)
{
	char boot[40] = "";

	read_str("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
	printf("# EXTMEM-MCE %.8s%d%" PRIx64 " 0 %d 0x%llx 0x0 0x%" PRIx64 " 0x0\n", boot,
	       getpid(), phys, MCE_BANK, MCE_STATUS, phys);
	fflush(stdout);
}

/* The area holding @phys, or -1. */
static int area_of(uint64_t phys)
{
	uint64_t base, size;
	int i;

	for (i = 0; !area_attr(i, "base", &base) && !area_attr(i, "size", &size); i++)
		if (phys >= base && phys - base < size)
			return i;
	return -1;
}

/* Waits up to 30 s until area @idx counts @n poisoned units; 0 when it does. */
static int wait_poisoned(int idx, uint64_t n)
{
	uint64_t v;
	int i;

	for (i = 0; i < 300; i++) {
		if (area_attr(idx, "poisoned", &v))
			return -1;
		if (v == n)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

static int alloc_fd(int dev, uint64_t len, uint64_t align, struct extmem_info *info)
{
	struct extmem_alloc_args a = {
		.size = sizeof(a), .length = len, .alignment = align, .node = NODE, .fd = -1,
	};
	int fd;

	snprintf(a.label, sizeof(a.label), "poison");
	fd = ioctl(dev, EXTMEM_IOC_ALLOC, &a);
	if (fd < 0)
		return -errno;
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	if (ioctl(fd, EXTMEM_IOC_INFO, info) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Maps @len bytes of @fd shared at a 2 MiB-aligned address, or MAP_FAILED. */
static void *map_pmd_aligned(int fd, uint64_t len)
{
	char *va = mmap(NULL, len + 2 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *at;

	if (va == MAP_FAILED)
		return MAP_FAILED;
	at = (char *)(((uintptr_t)va + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	if (at > va)
		munmap(va, at - va);
	munmap(at + len, va + len + 2 * MiB - (at + len));
	return mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
}

static volatile sig_atomic_t bus_seen;
static void *volatile bus_addr;
static volatile int bus_code;
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_jump;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	bus_addr = si->si_addr;
	bus_code = si->si_code;
	bus_seen = 1;
	if (bus_jump) {
		bus_jump = 0;
		siglongjmp(bus_jmp, 1);
	}
}

static void catch_sigbus(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* Waits up to 10 s for a SIGBUS; 0 when one came. */
static int wait_sigbus(void)
{
	int i;

	for (i = 0; i < 1000 && !bus_seen; i++)
		usleep(10 * 1000);
	return bus_seen ? 0 : -1;
}

/* Reads @p; 0 if it read, else the si_code of the SIGBUS (address in bus_addr). */
static int probe(volatile uint64_t *p, uint64_t *val)
{
	bus_seen = 0;
	if (sigsetjmp(bus_jmp, 1))
		return bus_code;
	bus_jump = 1;
	*val = *p;
	bus_jump = 0;
	return 0;
}

static char saved_interval[32];

/* Polls the banks every second for the test (the default is 5 minutes). */
static int fast_poll(void)
{
	if (read_str(CHECK_INTERVAL, saved_interval, sizeof(saved_interval)))
		return -1;
	return write_str(CHECK_INTERVAL, "1");
}

static void slow_poll(void)
{
	if (saved_interval[0])
		write_str(CHECK_INTERVAL, saved_interval);
}

/*
 * Asks the host for a deferred error at @phys, polls the machine-check
 * banks every second until area @idx counts @n poisoned units (30 s at
 * most) and restores the poll interval; 0 when the unit was counted.
 */
static int inject(uint64_t phys, int idx, uint64_t n)
{
	int rc;

	if (fast_poll())
		return -1;
	ask_injection(phys);
	rc = wait_poisoned(idx, n);
	slow_poll();
	return rc;
}

static int mce_boot(void)
{
	const char *s = getenv("EXTMEM_MCE");

	return s && !strcmp(s, "1");
}

/* The devif boot: a monitor, and no kexec whose checks a poisoned unit would upset. */
static int mce_boot_no_kexec(void)
{
	return mce_boot() && !getenv("EXTMEM_POISON_KEXEC");
}

/*
 * Opens /dev/extmem into *@dev and allocates @len bytes, 2 MiB-aligned, on
 * NODE into *@fd, with its info, the index of its area and the area's count
 * of poisoned units; 0, or -1 with nothing left open.
 */
static int open_and_alloc(int *dev, int *fd, uint64_t len, struct extmem_info *info, int *idx,
			  uint64_t *poisoned)
{
	*dev = open(DEV, O_RDWR | O_CLOEXEC);
	if (*dev < 0)
		return -1;
	*fd = alloc_fd(*dev, len, 2 * MiB, info);
	if (*fd >= 0) {
		*idx = area_of(info->phys);
		if (*idx >= 0 && !area_attr(*idx, "poisoned", poisoned))
			return 0;
		close(*fd);
	}
	close(*dev);
	return -1;
}

/*
 * Once an allocation of @len bytes holding the poisoned unit at @phys is
 * freed: waits (2 s at most) until area @idx has @want free bytes, all of
 * it back but the unit, then allocates @len bytes 2 MiB-aligned, where first
 * fit would give the same range again, and checks it does not hold @phys.
 * 0 if all holds, else -1 (logged).
 */
static int back_but_the_unit(struct __test_metadata *_metadata, int dev, int idx,
			     uint64_t want, uint64_t len, uint64_t phys)
{
	struct extmem_info again;
	uint64_t free = 0;
	int i, fd, rc = 0;

	for (i = 0; i < 200; i++) {
		if (area_attr(idx, "free_bytes", &free))
			return -1;
		if (free == want)
			break;
		usleep(10 * 1000);
	}
	if (free != want) {
		TH_LOG("area%d has %" PRIu64 " bytes free, not %" PRIu64, idx, free, want);
		rc = -1;
	}
	fd = alloc_fd(dev, len, 2 * MiB, &again);
	if (fd < 0) {
		TH_LOG("no allocation of %" PRIu64 " bytes: %d", len, fd);
		return -1;
	}
	if (phys >= again.phys && phys < again.phys + len) {
		TH_LOG("the poisoned unit %#" PRIx64 " was handed out again in %#llx+%#llx",
		       phys, (unsigned long long)again.phys, (unsigned long long)len);
		rc = -1;
	}
	close(fd);
	return rc;
}

FIXTURE(poison)
{
	int unused;
};

FIXTURE_SETUP(poison)
{
}

FIXTURE_TEARDOWN(poison)
{
}

/*
 * A deferred error in a unit of an allocation that two processes map. The
 * one that asked for early kill (PR_MCE_KILL_EARLY, as QEMU does) gets
 * SIGBUS BUS_MCEERR_AO with its address of the unit at once; the other
 * (the default, late kill) gets BUS_MCEERR_AR with its own address when it
 * touches the unit; the unit is never mapped again, the rest of the
 * allocation keeps its data, and after the free the pool has all of it
 * back but that unit, which no new allocation contains.
 */
TEST_F_TIMEOUT(poison, mapped_unit_signals_every_mapper_and_stays_fenced, 120)
{
	const uint64_t len = 4 * MiB, hit_off = 2 * MiB + 3 * PAGE;
	uint64_t poisoned0, free0, v, i, phys;
	struct extmem_info info;
	int dev, fd, idx, pipefd[2], gofd[2], code;
	volatile uint64_t *p;
	pid_t child;
	struct {
		uint64_t map, addr;
		int code;
	} rep;

	if (!mce_boot_no_kexec())
		SKIP(return, "EXTMEM_MCE=1 is not set (no monitor to inject with), or a kexec boot");
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	fd = alloc_fd(dev, len, 2 * MiB, &info);
	ASSERT_LE(0, fd);
	idx = area_of(info.phys);
	ASSERT_LE(0, idx);
	ASSERT_EQ(0, area_attr(idx, "poisoned", &poisoned0))
		TH_LOG("no area%d/poisoned: memory failures are not tracked", idx);
	/*
	 * At a 2 MiB-aligned address, so that the fault handler maps whole
	 * PMDs and, once the unit is poisoned, must refuse one over its block.
	 */
	p = map_pmd_aligned(fd, len);
	ASSERT_NE(MAP_FAILED, (void *)p);
	for (i = 0; i < len / PAGE; i++)
		p[i * PAGE / 8] = i + 1;

	/* A second process, late kill, maps the second half on its own. */
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, pipe(gofd));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		volatile uint64_t *q;
		char go;

		prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 0, 0);
		munmap((void *)p, len);
		q = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * MiB);
		catch_sigbus();
		rep.map = (uintptr_t)q;
		rep.addr = 0;
		rep.code = 0;
		if (write(pipefd[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(1);
		(void)q[3 * PAGE / 8];
		alarm(90);
		/* The unit is poisoned: touch it. */
		if (read(gofd[0], &go, 1) != 1)
			_exit(2);
		rep.code = probe(q + 3 * PAGE / 8, &rep.addr);
		rep.addr = rep.code ? (uintptr_t)bus_addr : 0;
		_exit(write(pipefd[1], &rep, sizeof(rep)) == sizeof(rep) ? 0 : 3);
	}
	ASSERT_EQ(sizeof(rep), read(pipefd[0], &rep, sizeof(rep)));
	ASSERT_NE((uint64_t)(uintptr_t)MAP_FAILED, rep.map);

	/* This one asks to hear of it at once, as a VMM does. */
	ASSERT_EQ(0, prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0));
	catch_sigbus();
	bus_seen = 0;
	phys = info.phys + hit_off;
	ASSERT_EQ(0, inject(phys + 0x40, idx, poisoned0 + 1))
		TH_LOG("area%d/poisoned did not count the unit at %#" PRIx64, idx, phys);
	ASSERT_EQ(0, wait_sigbus()) TH_LOG("no SIGBUS for the early-kill process");
	EXPECT_EQ((uintptr_t)p + hit_off, (uintptr_t)bus_addr);
	EXPECT_EQ(BUS_MCEERR_AO, bus_code);
	ASSERT_EQ(1, write(gofd[1], "g", 1));
	ASSERT_EQ(sizeof(rep), read(pipefd[0], &rep, sizeof(rep)))
		TH_LOG("no report from the second process");
	EXPECT_EQ(BUS_MCEERR_AR, rep.code) TH_LOG("the late-kill process read the unit");
	EXPECT_EQ(rep.map + 3 * PAGE, rep.addr);
	waitpid(child, NULL, 0);

	/* The unit is not mapped again; the rest reads back. */
	code = probe(p + hit_off / 8, &v);
	EXPECT_EQ(BUS_MCEERR_AR, code);
	EXPECT_EQ((uintptr_t)p + hit_off, (uintptr_t)bus_addr);
	for (i = 0; i < len / PAGE; i++) {
		if (i * PAGE == hit_off)
			continue;
		ASSERT_EQ(0, probe(p + i * PAGE / 8, &v)) TH_LOG("page %" PRIu64, i);
		ASSERT_EQ(i + 1, v);
	}
	/* And it stays writable. */
	p[0] = 42;
	EXPECT_EQ(42, p[0]);

	/* Freed: everything but the unit comes back. */
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free0));
	munmap((void *)p, len);
	close(fd);
	EXPECT_EQ(0, back_but_the_unit(_metadata, dev, idx, free0 + len - PAGE, len, phys));
	close(dev);
}

/* A deferred error at a free unit: it is fenced, no allocation gets it. */
TEST_F_TIMEOUT(poison, free_unit_is_fenced, 120)
{
	uint64_t poisoned0, free0, free1, phys;
	struct extmem_info info;
	int dev, fd, idx, i, n = 0, fds[64];

	if (!mce_boot_no_kexec())
		SKIP(return, "EXTMEM_MCE=1 is not set (no monitor to inject with), or a kexec boot");
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	fd = alloc_fd(dev, PAGE, PAGE, &info);
	ASSERT_LE(0, fd);
	phys = info.phys;
	close(fd);
	idx = area_of(phys);
	ASSERT_LE(0, idx);
	ASSERT_EQ(0, area_attr(idx, "poisoned", &poisoned0))
		TH_LOG("no area%d/poisoned: memory failures are not tracked", idx);
	usleep(100 * 1000);
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free0));

	ASSERT_EQ(0, inject(phys, idx, poisoned0 + 1))
		TH_LOG("area%d/poisoned did not count the free unit at %#" PRIx64, idx, phys);
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free1));
	EXPECT_EQ(free0 - PAGE, free1);

	/* First fit handed out that unit a moment ago; not any more. */
	for (i = 0; i < 64; i++) {
		fds[i] = alloc_fd(dev, PAGE, PAGE, &info);
		ASSERT_LE(0, fds[i]);
		n++;
		EXPECT_NE(phys, info.phys);
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(dev);
}

/*
 * A deferred error at a unit of a 2 MiB allocation, the size the per-CPU
 * caches hand out and take back without the area's lock. Freed, the block
 * goes back around the unit, not into the CPU's cache: 2 MiB allocations
 * made at once on the same CPU (before the background zeroer, which would
 * also put it back around the unit, could get to it) never get the unit,
 * and once they are freed free_bytes has gained all of it but the unit.
 */
TEST_F_TIMEOUT(poison, freed_2m_block_is_fenced, 120)
{
	const uint64_t off = MiB + 5 * PAGE;
	uint64_t poisoned0, free0, free1, phys;
	struct extmem_info info;
	int dev, fd, idx, i, n = 0, fds[64];
	cpu_set_t cpu;

	if (!mce_boot_no_kexec())
		SKIP(return, "EXTMEM_MCE=1 is not set (no monitor to inject with), or a kexec boot");
	/* One CPU, so that the free and the allocations meet in one cache. */
	CPU_ZERO(&cpu);
	CPU_SET(0, &cpu);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpu), &cpu));
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	fd = alloc_fd(dev, 2 * MiB, 2 * MiB, &info);
	ASSERT_LE(0, fd);
	phys = info.phys + off;
	idx = area_of(info.phys);
	ASSERT_LE(0, idx);
	ASSERT_EQ(0, area_attr(idx, "poisoned", &poisoned0));

	ASSERT_EQ(0, inject(phys, idx, poisoned0 + 1))
		TH_LOG("area%d/poisoned did not count the unit at %#" PRIx64, idx, phys);

	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free0));
	close(fd);
	for (i = 0; i < 64; i++) {
		fds[i] = alloc_fd(dev, 2 * MiB, 2 * MiB, &info);
		if (fds[i] < 0)
			break;
		n++;
		EXPECT_FALSE(phys >= info.phys && phys < info.phys + 2 * MiB)
			TH_LOG("the poisoned unit %#" PRIx64 " was handed out again in %#llx",
			       phys, (unsigned long long)info.phys);
	}
	EXPECT_LE(8, n) TH_LOG("only %d blocks of 2 MiB", n);
	for (i = 0; i < n; i++)
		close(fds[i]);
	for (i = 0; i < 200; i++) {
		ASSERT_EQ(0, area_attr(idx, "free_bytes", &free1));
		if (free1 == free0 + 2 * MiB - PAGE)
			break;
		usleep(10 * 1000);
	}
	EXPECT_EQ(free0 + 2 * MiB - PAGE, free1)
		TH_LOG("the freed block did not come back around its poisoned unit");
	close(dev);
}

#define HOLD_KNOB	"/sys/kernel/debug/extmem/hold_fault"

/* The test-only knob extmem/hold_fault, or -1. */
static int hold_state(void)
{
	char buf[16];

	if (read_str(HOLD_KNOB, buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

/*
 * A memory failure that lands while a fault of its unit is between the
 * fault handler's poisoned check and its insert (held there by the
 * test-only debugfs knob extmem/hold_fault). The failure's zap runs before
 * the entry exists and finds nothing to take out; the fault must see the
 * unit poisoned once its entry is in and take the entry back. So the
 * faulting access gets SIGBUS BUS_MCEERR_AR with its address, the unit is
 * not mapped afterwards, and the rest of the block still reads.
 */
TEST_F_TIMEOUT(poison, fault_racing_a_failure_does_not_map_the_unit, 120)
{
	const uint64_t len = 2 * MiB, hit_off = 5 * PAGE;
	uint64_t poisoned0, v, i;
	struct extmem_info info;
	int dev, fd, idx, pipefd[2], code, held = -1;
	volatile uint64_t *p;
	pid_t child;
	struct {
		uint64_t addr;
		int code;
	} rep;

	if (!mce_boot_no_kexec())
		SKIP(return, "EXTMEM_MCE=1 is not set (no monitor to inject with), or a kexec boot");
	if (hold_state() < 0)
		SKIP(return, "no %s: kernel without CONFIG_EXTMEM_TEST_KNOBS", HOLD_KNOB);
	ASSERT_EQ(0, open_and_alloc(&dev, &fd, len, &info, &idx, &poisoned0));
	/* Not touched yet: the child's access is the block's first fault (a PMD's). */
	p = map_pmd_aligned(fd, len);
	ASSERT_NE(MAP_FAILED, (void *)p);
	catch_sigbus();

	/* The knob takes 0 and 1 only; 2 is the kernel's to set. */
	EXPECT_EQ(0, write_str(HOLD_KNOB, "0"));
	EXPECT_NE(0, write_str(HOLD_KNOB, "2"));
	EXPECT_NE(0, write_str(HOLD_KNOB, "4294967297"));
	EXPECT_NE(0, write_str(HOLD_KNOB, "18446744073709551615"));
	EXPECT_NE(0, write_str(HOLD_KNOB, "18446744073709551616"));
	EXPECT_EQ(0, hold_state());
	/* A WARN fails the boot's no-kernel-splat check (scripts/tally.py). */
	ASSERT_EQ(0, write_str(HOLD_KNOB, "1"));
	ASSERT_EQ(0, pipe(pipefd));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		catch_sigbus();
		alarm(90);
		rep.code = probe(p + hit_off / 8, &rep.addr);
		rep.addr = rep.code ? (uintptr_t)bus_addr : rep.addr;
		_exit(write(pipefd[1], &rep, sizeof(rep)) == sizeof(rep) ? 0 : 3);
	}
	for (i = 0; i < 1000; i++) {
		held = hold_state();
		if (held == 2)
			break;
		usleep(10 * 1000);
	}
	if (held != 2) {
		write_str(HOLD_KNOB, "0");
		waitpid(child, NULL, 0);
	}
	ASSERT_EQ(2, held) TH_LOG("the child's fault was not held");

	ASSERT_EQ(0, inject(info.phys + hit_off, idx, poisoned0 + 1))
		TH_LOG("area%d/poisoned did not count the unit", idx);
	/* The failure's zap is done a moment after the count; then let the fault go on. */
	usleep(500 * 1000);
	ASSERT_EQ(0, write_str(HOLD_KNOB, "0"));
	ASSERT_EQ(sizeof(rep), read(pipefd[0], &rep, sizeof(rep)))
		TH_LOG("no report from the faulting process");
	waitpid(child, NULL, 0);
	EXPECT_EQ(BUS_MCEERR_AR, rep.code)
		TH_LOG("the held fault mapped the poisoned unit (read %#" PRIx64 ")", rep.addr);
	if (rep.code)
		EXPECT_EQ((uintptr_t)p + hit_off, rep.addr);

	/* Not mapped here either; the rest of the block reads (zeroed). */
	code = probe(p + hit_off / 8, &v);
	EXPECT_EQ(BUS_MCEERR_AR, code);
	for (i = 0; i < len / PAGE; i++) {
		if (i * PAGE == hit_off)
			continue;
		ASSERT_EQ(0, probe(p + i * PAGE / 8, &v)) TH_LOG("page %" PRIu64, i);
		ASSERT_EQ(0, v);
	}
	munmap((void *)p, len);
	close(fd);
	close(dev);
}

/*
 * A deferred error at a unit of an allocation that is a guest_memfd's
 * memory (GUEST_MEMFD_FLAG_EXTMEM), which the guest has written whole
 * (mapped with 2 MiB entries) and no process maps. The guest's mapping of
 * the page goes: its next pass ends KVM_RUN with EHWPOISON and a
 * memory-fault exit at the page's address. A hole punched over it gives
 * back all but the unit, which is not zeroed or freed; allocating the hole
 * again takes the rest back and fails with EHWPOISON at the unit; and once
 * everything is closed the pool has all of it back but the unit, which no
 * new allocation contains.
 */
TEST_F_TIMEOUT(poison, gmem_poisoned_unit_is_refused_and_stays_held, 300)
{
	const uint64_t len = 4 * MiB, hit_off = MiB + 3 * PAGE;
	uint64_t poisoned0, free_before, free0, free1, phys;
	struct extmem_info info;
	struct vmm v;
	int dev, fd, gfd, idx;
	int64_t rc;

	if (!mce_boot_no_kexec())
		SKIP(return, "EXTMEM_MCE=1 is not set (no monitor to inject with), or a kexec boot");
	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "no /dev/kvm");
	ASSERT_EQ(0, open_and_alloc(&dev, &fd, len, &info, &idx, &poisoned0));
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));
	gfd = gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, fd);
	if (gfd == -EINVAL) {
		vmm_destroy(&v);
		close(fd);
		close(dev);
		SKIP(return, "KVM without GUEST_MEMFD_FLAG_EXTMEM");
	}
	ASSERT_LE(0, gfd) TH_LOG("%s", strerror(-gfd));
	ASSERT_EQ(0, pvm_setup(&v, gfd, len, NULL));

	ASSERT_EQ(0, run_pattern(&v, RAM_GPA, len / PAGE, 0x5a, GUEST_OP_WRITE));

	phys = info.phys + hit_off;
	ASSERT_EQ(0, inject(phys, idx, poisoned0 + 1))
		TH_LOG("area%d/poisoned did not count the unit at %#" PRIx64, idx, phys);
	rc = run_pattern(&v, RAM_GPA, len / PAGE, 0x5a, GUEST_OP_VERIFY);
	EXPECT_EQ(-EHWPOISON, rc) TH_LOG("the guest read the whole allocation (%" PRId64 ")", rc);
	if (rc == -EHWPOISON) {
		EXPECT_EQ(KVM_EXIT_MEMORY_FAULT, v.run->exit_reason);
		EXPECT_EQ(RAM_GPA + hit_off, v.run->memory_fault.gpa);
	}

	/* A hole over the unit: all of it comes back but the unit. */
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free0));
	ASSERT_EQ(0, fallocate(gfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, MiB));
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free1));
	EXPECT_EQ(free0 + MiB - PAGE, free1) TH_LOG("the hole gave back the poisoned unit");

	/* Taken back around the unit; the unit itself stays refused. */
	EXPECT_EQ(-1, fallocate(gfd, FALLOC_FL_KEEP_SIZE, MiB, MiB));
	EXPECT_EQ(EHWPOISON, errno);
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free1));
	EXPECT_EQ(free0, free1);

	/* Freed with a hole in it: everything but the unit is free again. */
	ASSERT_EQ(0, fallocate(gfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, MiB));
	ASSERT_EQ(0, area_attr(idx, "free_bytes", &free_before));
	free_before -= MiB - PAGE;
	close(gfd);
	vmm_destroy(&v);
	close(fd);
	EXPECT_EQ(0, back_but_the_unit(_metadata, dev, idx, free_before + len - PAGE, len, phys));
	close(dev);
}

/* extmem_stage=N of the kernel command line (the kexec boot), 1 if absent. */
static int kexec_stage(void)
{
	char cmdline[4096];
	const char *p;

	if (read_str("/proc/cmdline", cmdline, sizeof(cmdline)))
		return -1;
	p = strstr(cmdline, "extmem_stage=");
	return p ? atoi(p + 13) : 1;
}

/* The first area on @node, or -1. */
static int area_on(int node)
{
	uint64_t n;
	int i;

	for (i = 0; !area_attr(i, "node", &n); i++)
		if ((int)n == node)
			return i;
	return -1;
}

/*
 * Across kexec (the kexec boot, EXTMEM_POISON_KEXEC=1, before
 * extmem_kexec_test kexecs): the first kernel poisons a free unit of node
 * 1; each later kernel starts with it fenced (areaN/poisoned is 1 before
 * anything is injected there) and does not hand it out.
 */
TEST_F_TIMEOUT(poison, fenced_after_kexec, 120)
{
	uint64_t poisoned, phys = 0, base;
	struct extmem_info info;
	int stage, dev, fd, idx, i, fds[64];
	char line[512], *p;
	FILE *k;

	if (!mce_boot() || !getenv("EXTMEM_POISON_KEXEC"))
		SKIP(return, "not the kexec boot with a monitor");
	stage = kexec_stage();
	ASSERT_LE(1, stage);
	idx = area_on(NODE);
	ASSERT_LE(0, idx);
	ASSERT_EQ(0, area_attr(idx, "poisoned", &poisoned));
	dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	if (stage == 1) {
		ASSERT_EQ(0, poisoned);
		fd = alloc_fd(dev, PAGE, PAGE, &info);
		ASSERT_LE(0, fd);
		phys = info.phys;
		close(fd);
		ASSERT_EQ(0, inject(phys, idx, 1))
			TH_LOG("area%d/poisoned did not count the unit at %#" PRIx64, idx, phys);
		TH_LOG("stage 1: unit %#" PRIx64 " poisoned; the next kernel must fence it", phys);
		close(dev);
		return;
	}
	/* Carried over: nothing was injected in this kernel. */
	EXPECT_EQ(1, poisoned);
	/* The address, from this kernel's log of what it fenced. */
	k = popen("dmesg", "r");
	ASSERT_NE(NULL, k);
	while (fgets(line, sizeof(line), k))
		if ((p = strstr(line, "poisoned unit at 0x")) && strstr(line, "fenced"))
			phys = strtoull(p + 17, NULL, 16);
	pclose(k);
	ASSERT_NE(0, phys) TH_LOG("no 'poisoned unit at ... fenced' in the kernel log");
	ASSERT_EQ(0, area_attr(idx, "base", &base));
	TH_LOG("stage %d: unit %#" PRIx64 " fenced from the previous kernel", stage, phys);
	for (i = 0; i < 64; i++) {
		fds[i] = alloc_fd(dev, PAGE, PAGE, &info);
		ASSERT_LE(0, fds[i]);
		EXPECT_NE(phys, info.phys);
	}
	for (i = 0; i < 64; i++)
		close(fds[i]);
	close(dev);
}

TEST_HARNESS_MAIN
