// SPDX-License-Identifier: GPL-2.0
/*
 * A KVM guest that keeps running across host kexecs, on extmem.
 *
 * The guest (kvm_vmm.h's counter program) fills a 4 MiB data area from a
 * seed, keeps its checksum, and counts in its own memory. Its RAM is an
 * extmem allocation mapped MAP_SHARED at guest-physical 0, at a host
 * address aligned like its size (1 GiB RAM: one 1 GiB stage-2 entry).
 *
 * Stage 1 (the first kernel) starts the guest, lets it run, pauses the
 * vCPU (KVM_RUN with immediate_exit), stores the vCPU's registers and
 * segment state in a second, 4 KiB extmem allocation and preserves both
 * allocation fds in the /dev/liveupdate session "extmem-kvm". Each later
 * stage retrieves them, builds a new VM on the same memory, restores the
 * vCPU, asks the guest to re-verify its data area, checks the counter went
 * on from where it stopped, and (before the last stage) pauses and
 * preserves again.
 *
 * EXTMEM_KVM_MODE:
 *   background  the VMM leaves a process holding the session and returns;
 *               another program (extmem_kexec_test) kexecs. As on a real
 *               host, where the VMM is not what reboots the machine.
 *   solo        the VMM kexecs itself (the demo and the blackout benchmark).
 *   refused     stage 2 expects the guest's RAM to be unretrievable (the
 *               previous kernel damaged node 0's handover state on purpose):
 *               the VMM says why and does not resume; the memory stays out
 *               of the page allocator (extmem_kexec_test checks that).
 *   demo        solo, printed for an operator.
 * EXTMEM_KVM_RAM (bytes, default 1 GiB), EXTMEM_KVM_NODE (default 1),
 * EXTMEM_KVM_STATE_NODE (the vCPU state's node, default EXTMEM_KVM_NODE),
 * EXTMEM_KVM_STAGES (kernels of the guest's run, default 3; a later kernel
 * of a longer run skips), EXTMEM_KVM_RUN_MS
 * (how long the guest runs in each stage, default 500).
 *
 * The blackout (pause to resume) is measured on the TSC, which a kexec
 * does not reset, and split into pause, preserve, kexec and boot up to the
 * VMM's start, retrieve, rebuild (VM, memslot, vCPU state). KTAP output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <unistd.h>
#include <x86intrin.h>
#include <linux/extmem.h>
#include <linux/reboot.h>

#include "extmem_util.h"
#include "kvm_vmm.h"
#include "luo_util.h"

#define SESSION		"extmem-kvm"
#define TOKEN_RAM	0x6b766d01ULL
#define TOKEN_STATE	0x6b766d02ULL
#define STATE_MAGIC	0x65786d656d6b766dULL	/* "exmemkvm" */
#define STATE_VERSION	1

/* Guest-physical layout inside the RAM slot at 0. */
#define G_CODE		0x1000ULL
#define G_CTR		0x2000ULL
#define G_STACK		0x3000ULL
#define G_DATA		0x100000ULL
#define G_DATA_LEN	(4 * MiB)

/* What the VMM keeps in its 4 KiB state allocation across a kexec. */
struct saved {
	uint64_t magic;
	uint32_t version, stage;
	uint64_t ram_len;
	uint64_t counter;		/* at the pause */
	uint32_t sum;			/* the guest's checksum of its data */
	uint32_t pad;
	uint64_t tsc_pause, tsc_preserved;
	double tsc_hz;
	double ms_pause, ms_preserve;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
};

static int stage, stages;
static const char *mode;
static char cmdline[4096];

/* TSC ticks per second, against CLOCK_MONOTONIC over 20 ms. */
static double tsc_hz(void)
{
	uint64_t t0 = now_ns(), c0 = __rdtsc(), t1, c1;

	usleep(20000);
	t1 = now_ns();
	c1 = __rdtsc();
	return (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
}

static double ms_since(uint64_t t0)
{
	return (now_ns() - t0) / 1e6;
}

static uint64_t tsc_ms(uint64_t from, uint64_t to, double hz)
{
	return (uint64_t)((double)(to - from) * 1e3 / hz);
}

static int ext_alloc(uint64_t len, uint64_t align, int node, const char *label)
{
	struct extmem_alloc_args a = {
		.size = sizeof(a), .length = len, .alignment = align, .node = node,
	};
	int dev = open(DEV, O_RDWR | O_CLOEXEC), rc;

	if (dev < 0)
		return -errno;
	snprintf(a.label, sizeof(a.label), "%s", label);
	rc = ioctl(dev, EXTMEM_IOC_ALLOC, &a);
	if (rc < 0)
		rc = -errno;
	close(dev);
	return rc;
}

static uint64_t ram_align(uint64_t len)
{
	return len >= GiB ? GiB : len >= 2 * MiB ? 2 * MiB : 4 * KiB;
}

struct guest {
	int ram_fd, state_fd;
	uint64_t ram_len;
	uint8_t *ram;
	struct saved *st;
	struct vmm v;
};

static volatile uint32_t *ctr(struct guest *g)
{
	return (volatile uint32_t *)(g->ram + G_CTR);
}

static uint64_t counter(struct guest *g)
{
	return ctr(g)[0] | (uint64_t)ctr(g)[1] << 32;
}

/* A VM over the guest's RAM (slot 0 at GPA 0); 0 or -errno. */
static int build_vm(struct guest *g)
{
	int rc = vmm_create(&g->v, 0);

	if (!rc)
		rc = vmm_slot(&g->v, 0, 0, g->ram_len, g->ram);
	return rc;
}

/*
 * Runs the guest for @ms milliseconds (to the next tick after that),
 * handling ticks and a check report: the check's value in *check (-1
 * if none came). 0, or -errno / -EIO on an unexpected exit.
 */
static int run_for(struct guest *g, unsigned int ms, int *check, uint64_t *tsc_first)
{
	uint64_t end = now_ns() + ms * 1000000ULL;
	int rc;

	*check = -1;
	do {
		if (tsc_first && !*tsc_first)
			*tsc_first = __rdtsc();
		rc = vmm_run(&g->v);
		if (rc < 0)
			return rc;
		if (rc != KVM_EXIT_IO) {
			note("unexpected exit %d", rc);
			return -EIO;
		}
		if (g->v.run->io.port == GUEST_PORT_CHECK)
			*check = (int)vmm_out_value(&g->v);
		else if (g->v.run->io.port != GUEST_PORT_TICK)
			return -EIO;
	} while (now_ns() < end || (*check < 0 && ctr(g)[2]));
	return 0;
}

/* Pause the vCPU and store its state; preserve both fds. */
static int pause_and_preserve(struct guest *g, double hz)
{
	uint64_t t0 = now_ns(), t1;
	int s, rc;

	g->st->tsc_pause = __rdtsc();
	rc = vmm_pause(&g->v);
	if (!rc && ioctl(g->v.vcpu, KVM_GET_REGS, &g->st->regs))
		rc = -errno;
	if (!rc && ioctl(g->v.vcpu, KVM_GET_SREGS, &g->st->sregs))
		rc = -errno;
	result(rc == 0, "pause-vcpu-and-save-state # %s", rc ? strerror(-rc) : "ok");
	if (rc)
		return rc;
	g->st->magic = STATE_MAGIC;
	g->st->version = STATE_VERSION;
	g->st->stage = stage;
	g->st->ram_len = g->ram_len;
	g->st->counter = counter(g);
	g->st->sum = ctr(g)[CTR_SUM / 4];
	g->st->tsc_hz = hz;
	g->st->ms_pause = ms_since(t0);
	t1 = now_ns();
	s = session_create(SESSION);
	result(s >= 0, "create-session # %s", s < 0 ? strerror(-s) : SESSION);
	if (s < 0)
		return s;
	rc = preserve(s, g->ram_fd, TOKEN_RAM);
	result(rc == 0, "preserve-guest-ram # %s", rc ? strerror(-rc) : "ok");
	if (!rc) {
		rc = preserve(s, g->state_fd, TOKEN_STATE);
		result(rc == 0, "preserve-vcpu-state # %s", rc ? strerror(-rc) : "ok");
	}
	g->st->ms_preserve = ms_since(t1);
	g->st->tsc_preserved = __rdtsc();
	note("paused at count %" PRIu64 " (%.2f ms), preserved in %.2f ms", g->st->counter,
	     g->st->ms_pause, g->st->ms_preserve);
	if (rc)
		return rc;
	/* The VM goes; the session holds the memory until the next kernel. */
	vmm_destroy(&g->v);
	munmap(g->ram, g->ram_len);
	munmap(g->st, 4 * KiB);
	close(g->ram_fd);
	close(g->state_fd);
	return s;
}

/* Hand the session to a process that outlives this one, or kexec. */
static void hand_over(int s)
{
	pid_t pid;
	int rc;

	if (!strcmp(mode, "background") || !strcmp(mode, "refused")) {
		pid = hold_session(s);
		result(pid > 0, "session-held-by-pid-%d-until-the-kexec", (int)pid);
		return;
	}
	rc = kexec_load_next(cmdline, stage);
	result(rc == 0, "kexec-file-load # %s", rc ? strerror(-rc) : "loaded");
	if (ktap.demo)
		printf("\n  ... the host kexecs into a new kernel; the guest is paused ...\n\n");
	fflush(stdout);
	sync();
	if (!rc)
		reboot(LINUX_REBOOT_CMD_KEXEC);
	result(0, "reboot-kexec # %s", strerror(errno));
}

static int map_all(struct guest *g)
{
	g->ram = map_aligned(g->ram_fd, g->ram_len, 0, ram_align(g->ram_len), 0);
	if (!g->st)
		g->st = mmap(NULL, 4 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, g->state_fd, 0);
	if (g->ram == MAP_FAILED || g->st == MAP_FAILED)
		return -errno;
	return 0;
}

static void print_levels(struct guest *g)
{
	struct vmm_levels l;

	if (vmm_levels(&g->v, &l) == 0)
		note("stage-2 entries: %" PRIu64 " x 1 GiB, %" PRIu64 " x 2 MiB, %" PRIu64 " x 4 KiB",
		     l.p1g, l.p2m, l.p4k);
}

static void first_stage(uint64_t len, int node, unsigned int run_ms, double hz)
{
	struct guest g = { .ram_len = len };
	int check, rc, s;

	g.ram_fd = ext_alloc(len, ram_align(len), node, "kvm-guest-ram");
	g.state_fd = ext_alloc(4 * KiB, 0, (int)env_u64("EXTMEM_KVM_STATE_NODE", node),
			       "kvm-vcpu-state");
	result(g.ram_fd >= 0 && g.state_fd >= 0, "alloc-guest-ram-%" PRIu64 "MiB-node%d # %s",
	       len >> 20, node, g.ram_fd < 0 ? strerror(-g.ram_fd) : "ok");
	if (g.ram_fd < 0 || g.state_fd < 0 || map_all(&g))
		return;
	memcpy(g.ram + G_CODE, guest_counter, guest_counter_end - guest_counter);
	ctr(&g)[CTR_DATA / 4] = G_DATA;
	ctr(&g)[CTR_DATA_LEN / 4] = G_DATA_LEN;
	ctr(&g)[CTR_SEED / 4] = 0x12345678;
	rc = build_vm(&g);
	if (!rc)
		rc = vmm_start(&g.v, G_CODE, G_STACK, G_CTR, 0, 0, 1);
	result(rc == 0, "vm-with-ram-from-extmem # %s", rc ? strerror(-rc) : "ok");
	if (rc)
		return;
	rc = run_for(&g, run_ms, &check, NULL);
	result(rc == 0 && counter(&g) > 0, "guest-counts # %" PRIu64, counter(&g));
	result(ctr(&g)[CTR_SUM / 4] ==
	       counter_checksum((uint32_t *)(g.ram + G_DATA), G_DATA_LEN),
	       "guest-data-checksum-matches-the-host-view # %08x", ctr(&g)[CTR_SUM / 4]);
	print_levels(&g);
	s = pause_and_preserve(&g, hz);
	if (s >= 0)
		hand_over(s);
}

static void later_stage(unsigned int run_ms, double hz)
{
	uint64_t t_start = now_ns(), tsc_start = __rdtsc(), tsc_resume = 0, t0, before;
	struct guest g = { 0 };
	double ms_retrieve, ms_rebuild;
	char why[300];
	int s, rc, check;

	s = session_retrieve(SESSION);
	result(s >= 0, "retrieve-session # %s", s < 0 ? strerror(-s) : SESSION);
	if (s < 0)
		return;
	g.ram_fd = retrieve(s, TOKEN_RAM);
	g.state_fd = retrieve(s, TOKEN_STATE);
	ms_retrieve = ms_since(t_start);
	if (!strcmp(mode, "refused")) {
		why[0] = '\0';
		klog_has("quarantined", why, sizeof(why));
		result(g.ram_fd < 0, "guest-ram-not-retrievable # %s",
		       g.ram_fd < 0 ? strerror(-g.ram_fd) : "retrieved!");
		note("VMM: cannot resume the guest: its RAM is not retrievable (%s); kernel: %s",
		     g.ram_fd < 0 ? strerror(-g.ram_fd) : "?", why[0] ? why : "no reason logged");
		result(finish(s) == 0, "finish-session");
		return;
	}
	result(g.ram_fd >= 0 && g.state_fd >= 0, "retrieve-ram-and-state # %s",
	       g.ram_fd < 0 ? strerror(-g.ram_fd) : g.state_fd < 0 ? strerror(-g.state_fd) : "ok");
	if (g.ram_fd < 0 || g.state_fd < 0)
		return;
	g.st = mmap(NULL, 4 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, g.state_fd, 0);
	if (g.st == MAP_FAILED) {
		result(0, "map-state # %s", strerror(errno));
		return;
	}
	result(g.st->magic == STATE_MAGIC && g.st->version == STATE_VERSION &&
	       g.st->stage == (uint32_t)stage - 1, "vcpu-state-intact # from stage %u", g.st->stage);
	if (g.st->magic != STATE_MAGIC)
		return;
	g.ram_len = g.st->ram_len;
	if (map_all(&g)) {
		result(0, "map-guest-ram # %s", strerror(errno));
		return;
	}
	result(counter(&g) == g.st->counter, "guest-ram-intact-counter-as-paused # %" PRIu64,
	       counter(&g));
	t0 = now_ns();
	rc = build_vm(&g);
	if (!rc && ioctl(g.v.vcpu, KVM_SET_SREGS, &g.st->sregs))
		rc = -errno;
	if (!rc && ioctl(g.v.vcpu, KVM_SET_REGS, &g.st->regs))
		rc = -errno;
	ms_rebuild = ms_since(t0);
	result(rc == 0, "new-vm-on-the-same-memory-vcpu-restored # %s",
	       rc ? strerror(-rc) : "ok");
	if (rc)
		return;
	before = counter(&g);
	ctr(&g)[CTR_REQUEST / 4] = 1;
	rc = run_for(&g, run_ms, &check, &tsc_resume);
	result(rc == 0 && check == 0, "guest-re-verified-its-data-area # report %d", check);
	result(counter(&g) > before, "counter-continues # %" PRIu64 " -> %" PRIu64, before,
	       counter(&g));
	print_levels(&g);
	note("blackout %" PRIu64 " ms for %" PRIu64 " MiB: pause %.1f ms, preserve %.1f ms, "
	     "kexec and boot to the VMM %" PRIu64 " ms, retrieve %.1f ms, rebuild %.1f ms",
	     tsc_ms(g.st->tsc_pause, tsc_resume, hz), g.ram_len >> 20, g.st->ms_pause,
	     g.st->ms_preserve, tsc_ms(g.st->tsc_preserved, tsc_start, hz), ms_retrieve,
	     ms_rebuild);
	if (!ktap.demo)
		printf("BENCH {\"bench\":\"kvm-blackout\",\"ram_mib\":%" PRIu64 ",\"total_ms\":%" PRIu64
		       ",\"pause_ms\":%.2f,\"preserve_ms\":%.2f,\"kexec_boot_ms\":%" PRIu64
		       ",\"retrieve_ms\":%.2f,\"rebuild_ms\":%.2f,\"mode\":\"%s\"}\n",
		       g.ram_len >> 20, tsc_ms(g.st->tsc_pause, tsc_resume, hz), g.st->ms_pause,
		       g.st->ms_preserve, tsc_ms(g.st->tsc_preserved, tsc_start, hz), ms_retrieve,
		       ms_rebuild, mode);
	result(finish(s) == 0, "finish-session");
	if (stage < stages) {
		s = pause_and_preserve(&g, hz);
		if (s >= 0)
			hand_over(s);
		return;
	}
	/* The last kernel: the guest ends, and all its memory goes back. */
	{
		struct extmem_info in = { .size = sizeof(in) };
		int node = ioctl(g.ram_fd, EXTMEM_IOC_INFO, &in) ? -1 : in.node;
		uint64_t free0 = node_free_bytes(node), freed;

		vmm_destroy(&g.v);
		munmap(g.ram, g.ram_len);
		munmap(g.st, 4 * KiB);
		close(g.ram_fd);
		close(g.state_fd);
		freed = node_free_bytes(node) - free0;
		result(freed == g.ram_len + 4 * KiB,
		       "guest-ended-its-memory-is-free # %" PRIu64 " MiB back to node %d",
		       freed >> 20, node);
	}
}

int main(void)
{
	uint64_t len = env_u64("EXTMEM_KVM_RAM", GiB);
	int node = (int)env_u64("EXTMEM_KVM_NODE", 1);
	unsigned int run_ms = (unsigned int)env_u64("EXTMEM_KVM_RUN_MS", 500);
	double hz;

	mode = getenv("EXTMEM_KVM_MODE");
	if (!mode || !*mode)
		mode = "solo";
	ktap.demo = !strcmp(mode, "demo");
	stages = (int)env_u64("EXTMEM_KVM_STAGES", 3);
	stage = kernel_stage(cmdline, sizeof(cmdline));
	ktap.prefix = "kvm";
	ktap.stage = stage;
	if (!ktap.demo) {
		printf("TAP version 13\n");
		note("extmem KVM guest across kexec, mode %s, stage %d of %d", mode, stage, stages);
	}
	if (stage > stages) {
		/* A later kernel of a longer run (kexec-corrupt): the guest ended. */
		printf("ok 1 kvm-stage%d # SKIP the guest's run ended at stage %d\n", stage,
		       stages);
		printf("1..1\n");
		return 4;
	}
	if (stage < 0 || access("/dev/kvm", R_OK | W_OK) || access(DEV, R_OK | W_OK) ||
	    luo_fd() < 0) {
		printf("not ok 1 kvm-stage%d # no /dev/kvm, /dev/extmem or /dev/liveupdate\n", stage);
		return 1;
	}
	hz = tsc_hz();
	if (stage == 1)
		first_stage(len, node, run_ms, hz);
	else
		later_stage(run_ms, hz);
	if (!ktap.demo)
		printf("1..%d\n", ktap.n);
	return ktap.failed ? 1 : 0;
}
