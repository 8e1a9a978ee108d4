// SPDX-License-Identifier: GPL-2.0
/*
 * A guest's private memory (guest_memfd over extmem) across a host kexec.
 *
 * Stage 1: a KVM_X86_SW_PROTECTED_VM whose private memory is a guest_memfd
 * over a 4 MiB allocation on node 1 (GUEST_MEMFD_FLAG_EXTMEM); the guest
 * writes the pattern into it and verifies it. The VM and the guest_memfd
 * go; the allocation fd, private for good, is preserved in the
 * /dev/liveupdate session "extmem-gmem", held until the kexec.
 * Stage 2: the allocation is retrieved, a new protected VM gets a
 * guest_memfd over it, and its guest verifies the pattern: the private
 * data is intact. Then everything is closed and the memory is free again.
 * Later stages: nothing. KTAP output.
 *
 * In the kexec boot, between extmem_kvm_kexec and extmem_kexec_test, which
 * leaves node 1's preserved memory out of its free-byte checks
 * (EXTMEM_KEXEC_NODE1_OTHERS counts these 4 MiB in the first kernel).
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
#include <unistd.h>
#include <linux/extmem.h>

#include "extmem_util.h"
#include "kvm_vmm.h"
#include "gmem_vmm.h"
#include "luo_util.h"

#define SESSION		"extmem-gmem"
#define TOKEN		0x676d656d01ULL
#define LEN		(4 * MiB)
#define NODE		1
#define SEED		0x6b657865

/* A protected VM on a guest_memfd over @fd; runs @op over all of it. */
static int64_t guest(int fd, int op, const char *what)
{
	int64_t rc = -1;
	struct vmm v;
	int gfd;

	if (vmm_create(&v, KVM_X86_SW_PROTECTED_VM)) {
		result(0, "%s-create-vm # %s", what, strerror(errno));
		return -1;
	}
	gfd = gmem_create(&v, LEN, GUEST_MEMFD_FLAG_EXTMEM, fd);
	result(gfd >= 0, "%s-guest-memfd-over-the-allocation # %s", what,
	       gfd < 0 ? strerror(-gfd) : "ok");
	if (gfd >= 0) {
		rc = pvm_setup(&v, gfd, LEN, NULL);
		if (!rc)
			rc = run_pattern(&v, RAM_GPA, LEN / (4 * KiB), SEED, op);
		close(gfd);
	}
	vmm_destroy(&v);
	return rc;
}

static void first_stage(void)
{
	int fd = extmem_alloc(LEN, 2 * MiB, NODE, "gmem-kexec"), s, rc;

	result(fd >= 0, "alloc-4m-node%d # %s", NODE, fd < 0 ? strerror(-fd) : "ok");
	if (fd < 0)
		return;
	result(guest(fd, GUEST_OP_WRITE, "write") == 0, "guest-wrote-private-memory");
	result(guest(fd, GUEST_OP_VERIFY, "verify") == 0, "guest-verified-it-in-a-new-vm");
	result(mmap(NULL, LEN, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED,
	       "allocation-not-mappable-after-guest-memfd");
	s = session_create(SESSION);
	rc = s < 0 ? s : preserve(s, fd, TOKEN);
	result(rc == 0, "preserve-in-session # %s", rc ? strerror(-rc) : SESSION);
	close(fd);
	if (rc)
		return;
	rc = hold_session(s);
	result(rc > 0, "session-held-until-the-kexec # pid %d", rc);
}

static void second_stage(void)
{
	uint64_t free0 = node_free_bytes(NODE);
	int s, fd;

	s = session_retrieve(SESSION);
	result(s >= 0, "retrieve-session # %s", s < 0 ? strerror(-s) : SESSION);
	if (s < 0)
		return;
	fd = retrieve(s, TOKEN);
	result(fd >= 0, "retrieve-allocation # %s", fd < 0 ? strerror(-fd) : "ok");
	if (fd >= 0) {
		void *p = mmap(NULL, LEN, PROT_READ, MAP_SHARED, fd, 0);

		/* Private before any guest_memfd binds it in this kernel. */
		result(p == MAP_FAILED, "retrieved-allocation-stays-private # %s",
		       p == MAP_FAILED ? strerror(errno) : "mapped!");
		if (p != MAP_FAILED)
			munmap(p, LEN);
		result(guest(fd, GUEST_OP_VERIFY, "resume") == 0,
		       "new-vm-sees-the-private-data-intact");
		close(fd);
	}
	result(finish(s) == 0, "finish-session");
	close(s);
	result(node_free_bytes(NODE) == free0 + LEN, "memory-free-again # %" PRIu64 " MiB back",
	       (node_free_bytes(NODE) - free0) >> 20);
}

int main(void)
{
	char cmdline[4096];
	int stage = kernel_stage(cmdline, sizeof(cmdline));

	ktap.prefix = "gmem";
	ktap.stage = stage;
	printf("TAP version 13\n");
	note("guest_memfd over extmem across kexec, stage %d", stage);
	if (stage < 0 || access("/dev/kvm", R_OK | W_OK) || access(DEV, R_OK | W_OK) ||
	    luo_fd() < 0) {
		printf("not ok 1 gmem-stage%d # no /dev/kvm, /dev/extmem or /dev/liveupdate\n",
		       stage);
		return 1;
	}
	if (stage == 1)
		first_stage();
	else if (stage == 2)
		second_stage();
	else
		result(1, "nothing-to-do");
	printf("1..%d\n", ktap.n);
	return ktap.failed ? 1 : 0;
}
