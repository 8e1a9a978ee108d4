// SPDX-License-Identifier: GPL-2.0
/*
 * A KVM guest touching 1 GiB of RAM (kvm_vmm.h's pattern program writes
 * two words in every 4 KiB page) backed by:
 *
 *   extmem   a 1 GiB-aligned allocation, mapped at a 1 GiB-aligned address
 *   hugetlb  a 1 GiB HugeTLB page (MAP_HUGETLB | MAP_HUGE_1GB; the boot
 *            reserves one with hugepagesz=1G hugepages=1)
 *   thp      anonymous memory with transparent huge pages, 2 MiB-aligned
 *
 * For each: the host's set-up (allocate and map; extmem zeroes at ALLOC,
 * HugeTLB and THP when the guest first touches a page), the first touch
 * (stage-2 faults, and host faults for HugeTLB and THP), a second touch
 * (everything mapped), the stage-2 entries KVM installed (pages_1g,
 * pages_2m, pages_4k), and the vCPU's exits and stage-2 faults taken
 * (exits, pf_taken), each with its ratio to extmem's from the same run.
 * Prints a table and one "BENCH {json}" line per backing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/extmem.h>

#include "extmem_util.h"
#include "kvm_vmm.h"

#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB	(30 << 26)
#endif

#define CODE_GPA	0x1000ULL
#define RAM_GPA		GiB
#define LEN		GiB

struct result {
	const char *name;
	int ok;
	double setup_ms, touch_ms, retouch_ms;
	uint64_t p1g, p2m, p4k, exits, pf_taken;
};

static void *map_backing(const char *name, int *fd)
{
	struct extmem_alloc_args a = {
		.size = sizeof(a), .length = LEN, .alignment = GiB, .node = EXTMEM_NODE_ANY,
	};
	char *p;
	int dev;

	*fd = -1;
	if (!strcmp(name, "extmem")) {
		dev = open(DEV, O_RDWR | O_CLOEXEC);
		*fd = dev < 0 ? -1 : ioctl(dev, EXTMEM_IOC_ALLOC, &a);
		if (dev >= 0)
			close(dev);
		if (*fd < 0)
			return MAP_FAILED;
		return map_aligned(*fd, LEN, 0, GiB, 0);
	}
	if (!strcmp(name, "hugetlb"))
		return mmap(NULL, LEN, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB, -1, 0);
	/* THP: an anonymous range, 2 MiB-aligned, THP asked for. */
	p = mmap(NULL, LEN + 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return p;
	p = (char *)(((uintptr_t)p + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	madvise(p, LEN, MADV_HUGEPAGE);
	return p;
}

static int touch(struct vmm *v, double *ms)
{
	uint64_t t0 = now_ns();
	uint32_t val;
	int rc = vmm_start(v, CODE_GPA, 0, RAM_GPA, LEN / (4 * KiB), 0x600d, GUEST_OP_WRITE);

	if (!rc)
		rc = vmm_run_to_done(v, &val);
	*ms = (now_ns() - t0) / 1e6;
	return rc ? rc : (int)val;
}

static void run(struct result *r)
{
	uint64_t t0 = now_ns();
	struct vmm v;
	uint8_t *code;
	void *hva;
	int fd;

	hva = map_backing(r->name, &fd);
	r->setup_ms = (now_ns() - t0) / 1e6;
	if (hva == MAP_FAILED) {
		printf("# %s: no backing: %s\n", r->name, strerror(errno));
		return;
	}
	code = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED || vmm_create(&v, 0))
		return;
	memcpy(code + CODE_GPA, guest_pattern, guest_pattern_end - guest_pattern);
	if (vmm_slot(&v, 0, 0, 64 * KiB, code) || vmm_slot(&v, 1, RAM_GPA, LEN, hva))
		goto out;
	if (touch(&v, &r->touch_ms) || touch(&v, &r->retouch_ms))
		goto out;
	r->ok = !vmm_stat(&v, "pages_1g", &r->p1g) && !vmm_stat(&v, "pages_2m", &r->p2m) &&
		!vmm_stat(&v, "pages_4k", &r->p4k) && !vmm_vcpu_stat(&v, "exits", &r->exits) &&
		!vmm_vcpu_stat(&v, "pf_taken", &r->pf_taken);
out:
	vmm_destroy(&v);
	munmap(hva, LEN);
	munmap(code, 64 * KiB);
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	struct result r[3] = { { .name = "extmem" }, { .name = "hugetlb" }, { .name = "thp" } };
	const struct result *e = &r[0];
	int i;

	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("1..0 # SKIP no /dev/kvm\n");
		return 4;
	}
	printf("TAP version 13\n1..3\n");
	for (i = 0; i < 3; i++)
		run(&r[i]);
	printf("# A guest writing every 4 KiB page of 1 GiB; the ratio is to extmem's, same run.\n");
	printf("# %-8s %10s %10s %10s %8s %8s %8s %8s %9s  %s\n", "backing", "setup ms",
	       "touch ms", "again ms", "1G", "2M", "4K", "exits", "pf_taken",
	       "touch (setup+touch) ratio");
	for (i = 0; i < 3; i++) {
		const struct result *x = &r[i];

		if (!x->ok)
			continue;
		printf("# %-8s %10.1f %10.1f %10.1f %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
		       " %9" PRIu64 "  %.2fx (%.2fx)\n", x->name, x->setup_ms, x->touch_ms,
		       x->retouch_ms, x->p1g, x->p2m, x->p4k, x->exits, x->pf_taken,
		       e->ok ? x->touch_ms / e->touch_ms : 0,
		       e->ok ? (x->setup_ms + x->touch_ms) / (e->setup_ms + e->touch_ms) : 0);
	}
	for (i = 0; i < 3; i++) {
		const struct result *x = &r[i];

		printf("BENCH {\"bench\":\"kvm-touch-1g\",\"backing\":\"%s\",\"ok\":%d,"
		       "\"setup_ms\":%.2f,\"touch_ms\":%.2f,\"retouch_ms\":%.2f,\"pages_1g\":%" PRIu64
		       ",\"pages_2m\":%" PRIu64 ",\"pages_4k\":%" PRIu64 ",\"exits\":%" PRIu64
		       ",\"pf_taken\":%" PRIu64 ",\"touch_ratio_to_extmem\":%.3f}\n", x->name, x->ok,
		       x->setup_ms, x->touch_ms, x->retouch_ms, x->p1g, x->p2m, x->p4k, x->exits,
		       x->pf_taken, e->ok && x->ok ? x->touch_ms / e->touch_ms : 0);
		printf("%sok %d %s\n", x->ok ? "" : "not ", i + 1, x->name);
	}
	return r[0].ok && r[1].ok && r[2].ok ? 0 : 1;
}
