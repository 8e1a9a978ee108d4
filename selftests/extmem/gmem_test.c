// SPDX-License-Identifier: GPL-2.0
/*
 * guest_memfd backed by extmem (GUEST_MEMFD_FLAG_EXTMEM, patches/0013):
 * private guest memory of a KVM_X86_SW_PROTECTED_VM that is an extmem
 * allocation (kvm_vmm.h is the VMM).
 *
 * - 1 GiB private: the guest writes and verifies it; KVM maps it with one
 *   1 GiB stage-2 entry, printed next to a stock guest_memfd of 1 GiB in
 *   the same run (4 KiB entries), with exits and wall time (a BENCH line
 *   each). A 2 MiB-aligned range gets 2 MiB entries.
 * - Private stays private: an allocation that is mapped cannot be bound,
 *   a bound one cannot be mapped; the memslot's shared backing (another
 *   allocation, VM_PFNMAP) never shows the private bytes.
 * - Conversion with KVM_SET_MEMORY_ATTRIBUTES, as private_mem_conversions_
 *   test does it: private and shared are separate memory, each keeps its
 *   contents across conversions (guest_memfd in 7.3 converts nothing in
 *   place).
 * - PUNCH_HOLE gives the range back to extmem (sysfs) and reads as zeroes
 *   when the guest touches it again; closing the guest_memfd and the VM
 *   gives everything back (sysfs exact).
 * - A guest_memfd over node 1's allocation takes node 1's extmem.
 * - Bad input: each a documented errno, nothing leaked.
 *
 * The VM boots with "extmem=0:1G,1:1G" on two nodes of 3 GiB (the devif
 * boot); root, /dev/kvm, /dev/extmem and the VM type are needed, else skip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/extmem.h>
#include <linux/falloc.h>

#include "kselftest_harness.h"
#include "extmem_util.h"
#include "kvm_vmm.h"
#include "gmem_vmm.h"

static int skip_reason(char *why, size_t len)
{
	int kvm;

	if (extmem_dev() < 0) {
		snprintf(why, len, "no /dev/extmem");
		return 1;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		snprintf(why, len, "no /dev/kvm");
		return 1;
	}
	if (!(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES) &
	      (1 << KVM_X86_SW_PROTECTED_VM))) {
		close(kvm);
		snprintf(why, len, "no KVM_X86_SW_PROTECTED_VM");
		return 1;
	}
	if (!(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS) &
	      GUEST_MEMFD_FLAG_EXTMEM)) {
		close(kvm);
		snprintf(why, len, "no GUEST_MEMFD_FLAG_EXTMEM");
		return 1;
	}
	close(kvm);
	return 0;
}

#define NEED() do {						\
	char why_[64];						\
	if (skip_reason(why_, sizeof(why_)))			\
		SKIP(return, "%s", why_);			\
} while (0)

struct run {
	double setup_ms, ms;
	uint64_t exits;
	struct vmm_levels l;
};

/*
 * A 1 GiB private guest on guest_memfd @gfd (created on @v by the caller):
 * the guest writes the pattern over every page (the timed, populating
 * pass), then verifies it.
 */
static void private_run(struct __test_metadata *_metadata, struct vmm *v, int gfd,
			uint64_t len, const char *name, struct run *r)
{
	uint64_t pages = len / (4 * KiB), t0;

	ASSERT_EQ(0, pvm_setup(v, gfd, len, NULL));
	t0 = now_ns();
	ASSERT_EQ(0, run_pattern(v, RAM_GPA, pages, 0x9e300001, GUEST_OP_WRITE));
	r->ms = (now_ns() - t0) / 1e6;
	ASSERT_EQ(0, vmm_vcpu_stat(v, "exits", &r->exits));
	ASSERT_EQ(0, vmm_levels(v, &r->l));
	EXPECT_EQ(0, run_pattern(v, RAM_GPA, pages, 0x9e300001, GUEST_OP_VERIFY));
	ksft_print_msg("%s: %" PRIu64 " MiB private, set-up %.1f ms, populate+touch %.1f ms,"
		       " exits %" PRIu64 ", stage-2 pages_1g=%" PRIu64 " pages_2m=%" PRIu64
		       " pages_4k=%" PRIu64 " (the program's slot: <= 16 x 4k)\n", name,
		       len >> 20, r->setup_ms, r->ms, r->exits, r->l.p1g, r->l.p2m, r->l.p4k);
	printf("BENCH {\"bench\":\"gmem-populate\",\"mib\":%" PRIu64 ",\"backing\":\"%s\","
	       "\"setup_ms\":%.1f,\"ms\":%.1f,\"exits\":%" PRIu64 ",\"pages_1g\":%" PRIu64
	       ",\"pages_2m\":%" PRIu64 ",\"pages_4k\":%" PRIu64 "}\n", len >> 20, name,
	       r->setup_ms, r->ms, r->exits, r->l.p1g, r->l.p2m, r->l.p4k);
	fflush(stdout);
}

/* No state: a fixture only for TEST_F_TIMEOUT (262144 faults of the stock one). */
FIXTURE(cmp) {};
FIXTURE_SETUP(cmp) {}
FIXTURE_TEARDOWN(cmp) {}

TEST_F_TIMEOUT(cmp, private_1g_one_1g_entry_vs_stock, 900)
{
	uint64_t free0, t0, stock_len = GiB;
	struct run x, s;
	struct vmm v;
	int fd, gfd;

	NEED();
	free0 = node_free_bytes(0);
	t0 = now_ns();
	fd = extmem_alloc(GiB, GiB, 0, "gmem-1g");
	ASSERT_LE(0, fd) TH_LOG("1 GiB-aligned 1 GiB on node 0: %s", strerror(-fd));
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));
	gfd = gmem_create(&v, GiB, GUEST_MEMFD_FLAG_EXTMEM, fd);
	ASSERT_LE(0, gfd) TH_LOG("extmem guest_memfd: %s", strerror(-gfd));
	x.setup_ms = (now_ns() - t0) / 1e6;
	/* The guest_memfd holds the allocation now. */
	close(fd);
	private_run(_metadata, &v, gfd, GiB, "extmem", &x);
	EXPECT_EQ(1, x.l.p1g);
	EXPECT_EQ(0, x.l.p2m);
	EXPECT_GE(16, x.l.p4k);
	close(gfd);
	vmm_destroy(&v);
	EXPECT_EQ(free0, node_free_bytes(0));

	/*
	 * The debug kernel (it has kmemleak) makes 262144 stage-2 faults
	 * take minutes: a 64 MiB stock guest_memfd there.
	 */
	if (!access("/sys/kernel/debug/kmemleak", F_OK))
		stock_len = 64 * MiB;
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));
	t0 = now_ns();
	gfd = gmem_create(&v, stock_len, 0, -1);
	s.setup_ms = (now_ns() - t0) / 1e6;
	ASSERT_LE(0, gfd) TH_LOG("stock guest_memfd: %s", strerror(-gfd));
	private_run(_metadata, &v, gfd, stock_len, "stock", &s);
	EXPECT_EQ(0, s.l.p1g);
	EXPECT_EQ(0, s.l.p2m);
	EXPECT_LE(stock_len / (4 * KiB), s.l.p4k);
	close(gfd);
	vmm_destroy(&v);
	ksft_print_msg("stock/extmem: populate+touch %.1fx, with set-up %.2fx, exits %.1fx,"
		       " stage-2 entries %" PRIu64 " vs %" PRIu64 "\n", s.ms / x.ms,
		       (s.setup_ms + s.ms) / (x.setup_ms + x.ms), (double)s.exits / x.exits,
		       s.l.p1g + s.l.p2m + s.l.p4k, x.l.p1g + x.l.p2m + x.l.p4k);
}

TEST(private_2m_aligned_2m_entries)
{
	uint64_t len = 8 * MiB, pages = len / (4 * KiB), free0;
	struct vmm_levels l;
	struct vmm v;
	int fd, gfd;

	NEED();
	free0 = node_free_bytes(0);
	fd = extmem_alloc(len, 2 * MiB, 0, "gmem-2m");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));
	gfd = gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, fd);
	ASSERT_LE(0, gfd) TH_LOG("%s", strerror(-gfd));
	ASSERT_EQ(0, pvm_setup(&v, gfd, len, NULL));
	ASSERT_EQ(0, run_pattern(&v, RAM_GPA, pages, 0x2a, GUEST_OP_WRITE));
	EXPECT_EQ(0, run_pattern(&v, RAM_GPA, pages, 0x2a, GUEST_OP_VERIFY));
	ASSERT_EQ(0, vmm_levels(&v, &l));
	ksft_print_msg("extmem 8 MiB, 2 MiB-aligned: pages_1g=%" PRIu64 " pages_2m=%" PRIu64
		       " pages_4k=%" PRIu64 "\n", l.p1g, l.p2m, l.p4k);
	EXPECT_EQ(0, l.p1g);
	EXPECT_EQ(4, l.p2m);
	close(gfd);
	close(fd);
	vmm_destroy(&v);
	EXPECT_EQ(free0, node_free_bytes(0));
}

/*
 * The memslot's shared backing is another allocation, mapped VM_PFNMAP
 * (an allocation fd's mmap); private and shared are separate memory.
 */
TEST(private_not_visible_shared_is_pfnmap)
{
	uint64_t len = 2 * MiB, pages = len / (4 * KiB);
	struct vmm v;
	int a, b, gfd;
	void *p, *shared;

	NEED();
	a = extmem_alloc(len, 2 * MiB, 0, "gmem-private");
	b = extmem_alloc(len, 2 * MiB, 0, "gmem-shared");
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));

	/* Mapped: it cannot become private. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-EBUSY, gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, a));
	munmap(p, len);
	gfd = gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, a);
	ASSERT_LE(0, gfd) TH_LOG("%s", strerror(-gfd));
	/* Private: the allocation can no longer be mapped, nor the guest_memfd. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ, MAP_SHARED, a, 0));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ, MAP_SHARED, gfd, 0));

	shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	ASSERT_NE(MAP_FAILED, shared);
	ASSERT_EQ(0, pvm_setup(&v, gfd, len, shared));
	ASSERT_EQ(0, run_pattern(&v, RAM_GPA, pages, 0x77, GUEST_OP_WRITE));
	/* The host's view of the slot is the shared backing: still zeroes. */
	EXPECT_EQ(pages, host_check(shared, pages, 0x77));
	EXPECT_EQ(0, ((uint32_t *)shared)[0]);
	close(gfd);
	vmm_destroy(&v);
	/* Once private, always private: closed guest_memfd, still no mapping. */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ, MAP_SHARED, a, 0));
	munmap(shared, len);
	close(a);
	close(b);
}

/*
 * private_mem_conversions_test's sequence, with the program exiting to
 * the host between steps: private written, converted to shared (the
 * shared backing's contents), written there, back to private (the private
 * contents as they were). Then PUNCH_HOLE: the range returns to extmem and
 * reads as zeroes when the guest touches it again.
 */
TEST(conversion_and_punch_hole)
{
	uint64_t len = 4 * MiB, pages = len / (4 * KiB), free0, f;
	struct vmm v;
	int a, b, gfd;
	void *shared;

	NEED();
	free0 = node_free_bytes(0);
	a = extmem_alloc(len, 2 * MiB, 0, "gmem-conv-private");
	b = extmem_alloc(len, 2 * MiB, 0, "gmem-conv-shared");
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));
	gfd = gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, a);
	ASSERT_LE(0, gfd) TH_LOG("%s", strerror(-gfd));
	close(a);
	shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	ASSERT_NE(MAP_FAILED, shared);
	ASSERT_EQ(0, pvm_setup(&v, gfd, len, shared));

	ASSERT_EQ(0, run_pattern(&v, RAM_GPA, pages, 0x1001, GUEST_OP_WRITE));
	ASSERT_EQ(0, set_private(&v, RAM_GPA, len, 0));
	host_fill(shared, pages, 0x1002);
	EXPECT_EQ(0, run_pattern(&v, RAM_GPA, pages, 0x1002, GUEST_OP_VERIFY));
	ASSERT_EQ(0, run_pattern(&v, RAM_GPA, pages, 0x1003, GUEST_OP_WRITE));
	EXPECT_EQ(0, host_check(shared, pages, 0x1003));
	ASSERT_EQ(0, set_private(&v, RAM_GPA, len, 1));
	EXPECT_EQ(0, run_pattern(&v, RAM_GPA, pages, 0x1001, GUEST_OP_VERIFY));
	/* Half shared, half private: each half its own memory. */
	ASSERT_EQ(0, set_private(&v, RAM_GPA + len / 2, len / 2, 0));
	EXPECT_EQ(0, run_pattern(&v, RAM_GPA, pages / 2, 0x1001, GUEST_OP_VERIFY));
	ASSERT_EQ(0, set_private(&v, RAM_GPA, len, 1));

	/* 1 MiB punched out at 1 MiB: back in the pool, zero for the guest. */
	f = node_free_bytes(0);
	ASSERT_EQ(0, fallocate(gfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, MiB));
	EXPECT_EQ(f + MiB, node_free_bytes(0));
	EXPECT_EQ(0, run_pattern(&v, RAM_GPA, 256, 0x1001, GUEST_OP_VERIFY));
	/* The first punched page reads zero: the program reports page 257. */
	EXPECT_EQ(257, run_pattern(&v, RAM_GPA, pages, 0x1001, GUEST_OP_VERIFY));
	EXPECT_EQ(f, node_free_bytes(0));
	ASSERT_EQ(0, fallocate(gfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, len));
	EXPECT_EQ(f + len, node_free_bytes(0));

	close(gfd);
	vmm_destroy(&v);
	munmap(shared, len);
	close(b);
	EXPECT_EQ(free0, node_free_bytes(0));
}

TEST(node1_gmem_takes_node1_extmem)
{
	uint64_t len = 2 * MiB, f0 = node_free_bytes(0), f1 = node_free_bytes(1);
	struct extmem_info i = { .size = sizeof(i) };
	struct vmm v;
	int fd, gfd;

	NEED();
	fd = extmem_alloc(len, 2 * MiB, 1, "gmem-node1");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, EXTMEM_IOC_INFO, &i));
	EXPECT_EQ(1, i.node);
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));
	gfd = gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, fd);
	ASSERT_LE(0, gfd);
	close(fd);
	ASSERT_EQ(0, pvm_setup(&v, gfd, len, NULL));
	ASSERT_EQ(0, run_pattern(&v, RAM_GPA, 512, 0x11, GUEST_OP_WRITE));
	EXPECT_EQ(0, run_pattern(&v, RAM_GPA, 512, 0x11, GUEST_OP_VERIFY));
	EXPECT_EQ(f1 - len, node_free_bytes(1));
	EXPECT_EQ(f0, node_free_bytes(0));
	close(gfd);
	vmm_destroy(&v);
	EXPECT_EQ(f1, node_free_bytes(1));
}

TEST(bad_input_errno_nothing_leaked)
{
	uint64_t len = 2 * MiB, free0 = node_free_bytes(0);
	struct gmem_args args = { .size = len, .flags = GUEST_MEMFD_FLAG_EXTMEM };
	struct vmm v, plain;
	int fd, gfd, null;

	NEED();
	fd = extmem_alloc(len, 2 * MiB, 0, "gmem-bad");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmm_create(&v, KVM_X86_SW_PROTECTED_VM));
	null = open("/dev/null", O_RDWR);
	ASSERT_LE(0, null);

	/* The flag without an allocation fd. */
	EXPECT_EQ(-EBADF, gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, -1));
	/* An fd that is not an allocation: /dev/null, /dev/extmem itself. */
	EXPECT_EQ(-EINVAL, gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, null));
	EXPECT_EQ(-EINVAL, gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, extmem_dev()));
	/* A size that is not the allocation's: smaller, larger, unaligned. */
	EXPECT_EQ(-EINVAL, gmem_create(&v, len / 2, GUEST_MEMFD_FLAG_EXTMEM, fd));
	EXPECT_EQ(-EINVAL, gmem_create(&v, 2 * len, GUEST_MEMFD_FLAG_EXTMEM, fd));
	EXPECT_EQ(-EINVAL, gmem_create(&v, len - 1, GUEST_MEMFD_FLAG_EXTMEM, fd));
	/* Mappable flags, reserved fields. */
	EXPECT_EQ(-EINVAL, gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM | GUEST_MEMFD_FLAG_MMAP,
				       fd));
	args.extmem_fd = fd;
	args.reserved[4] = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(v.vm, KVM_CREATE_GUEST_MEMFD, &args));
	EXPECT_EQ(EINVAL, errno);
	/* A VM type without private memory. */
	ASSERT_EQ(0, vmm_create(&plain, 0));
	EXPECT_EQ(-EINVAL, gmem_create(&plain, len, GUEST_MEMFD_FLAG_EXTMEM, fd));
	vmm_destroy(&plain);
	/* An allocation already backing a guest_memfd, even of another VM. */
	gfd = gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, fd);
	ASSERT_LE(0, gfd);
	EXPECT_EQ(-EBUSY, gmem_create(&v, len, GUEST_MEMFD_FLAG_EXTMEM, fd));
	ASSERT_EQ(0, vmm_create(&plain, KVM_X86_SW_PROTECTED_VM));
	EXPECT_EQ(-EBUSY, gmem_create(&plain, len, GUEST_MEMFD_FLAG_EXTMEM, fd));
	/* Once that guest_memfd is gone the allocation can back another. */
	close(gfd);
	gfd = gmem_create(&plain, len, GUEST_MEMFD_FLAG_EXTMEM, fd);
	EXPECT_LE(0, gfd);
	/* PUNCH_HOLE outside the file, unaligned. */
	EXPECT_EQ(-1, fallocate(gfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 100));
	EXPECT_EQ(EINVAL, errno);
	close(gfd);
	vmm_destroy(&plain);
	vmm_destroy(&v);
	close(null);
	close(fd);
	EXPECT_EQ(free0, node_free_bytes(0));
}

TEST_HARNESS_MAIN
