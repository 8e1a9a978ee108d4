// SPDX-License-Identifier: GPL-2.0
/*
 * KVM guests whose RAM is extmem: an allocation fd mapped MAP_SHARED and
 * registered with KVM_SET_USER_MEMORY_REGION2 (kvm_vmm.h is the VMM).
 *
 * - KVM maps 1 GiB of guest RAM with one 1 GiB stage-2 entry when the
 *   guest-physical and host-virtual addresses are both 1 GiB-aligned, with
 *   2 MiB entries when the host address is only 2 MiB-aligned, with 4 KiB
 *   entries when it is misaligned, and the guest and the host see the same
 *   bytes in each case (KVM's pages_1g/pages_2m/pages_4k are printed).
 * - Two VMs at once, one per node, each on its node's extmem.
 * - Lifetime: the memory belongs to the mapping, not to KVM: closing the
 *   allocation fd under a live memslot changes nothing, deleting the slot
 *   frees nothing, unmapping frees the range (sysfs exact); an allocation
 *   made while a guest runs never overlaps its memory; a VMM killed in
 *   KVM_RUN leaks nothing.
 * - Bad input: a memslot larger than its mapping (EFAULT from KVM_RUN, as
 *   KVM documents for memory it cannot fault in), a mapping offset past the
 *   allocation (EINVAL or ENXIO, as extmem documents), a guest access
 *   outside every memslot (KVM_EXIT_MMIO).
 *
 * The test VM boots with node 0 and node 1 of 3 GiB and
 * "extmem=0:1G,1:1G"; the tests need root, /dev/kvm and /dev/extmem and
 * skip without them. Each test runs in its own process (the harness forks).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/extmem.h>

#include "kselftest_harness.h"
#include "extmem_util.h"
#include "kvm_vmm.h"

/* Guest-physical layout: the program in a small slot at 0, RAM at 1 GiB. */
#define CODE_GPA	0x1000ULL
#define CODE_SLOT_LEN	(64 * KiB)
#define RAM_GPA		GiB

static int info(int fd, struct extmem_info *i)
{
	memset(i, 0, sizeof(*i));
	i->size = sizeof(*i);
	return ioctl(fd, EXTMEM_IOC_INFO, i) ? -errno : 0;
}

static int skip_reason(char *why, size_t len)
{
	if (access("/dev/kvm", R_OK | W_OK)) {
		snprintf(why, len, "no /dev/kvm");
		return 1;
	}
	if (extmem_dev() < 0) {
		snprintf(why, len, "no /dev/extmem");
		return 1;
	}
	return 0;
}

#define NEED_KVM_AND_EXTMEM() do {				\
	char why_[64];						\
	if (skip_reason(why_, sizeof(why_)))			\
		SKIP(return, "%s", why_);			\
} while (0)

/*
 * A VM with the pattern program in slot 0 (anonymous memory) and @len
 * bytes at @hva as slot 1 at RAM_GPA. The code slot's memory is leaked to
 * the process on purpose (the harness's process ends with the test).
 */
static int guest_setup(struct vmm *v, void *hva, uint64_t len)
{
	uint8_t *code;
	int rc = vmm_create(v, 0);

	if (rc)
		return rc;
	code = mmap(NULL, CODE_SLOT_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED)
		return -errno;
	memcpy(code + CODE_GPA, guest_pattern, guest_pattern_end - guest_pattern);
	memcpy(code + CODE_GPA + 0x800, guest_counter, guest_counter_end - guest_counter);
	rc = vmm_slot(v, 0, 0, CODE_SLOT_LEN, code);
	if (!rc)
		rc = vmm_slot(v, 1, RAM_GPA, len, hva);
	return rc;
}

/* Runs the pattern program over @pages pages from @gpa; its report or -errno. */
static int64_t guest_pattern_run(struct vmm *v, uint64_t gpa, uint64_t pages, uint32_t seed,
				 int op)
{
	uint32_t val;
	int rc = vmm_start(v, CODE_GPA, 0, gpa, pages, seed, op);

	if (!rc)
		rc = vmm_run_to_done(v, &val);
	return rc ? rc : (int64_t)val;
}

struct level_case {
	const char *name;
	uint64_t len, skew;
	/* What KVM must report for slot 1 (checked as "at least" for 4 KiB). */
	uint64_t p1g, p2m, p4k_min;
};

/*
 * One 1 GiB-aligned allocation on node 0, mapped at a 1 GiB-aligned host
 * address plus @c->skew: the guest writes the pattern over every page and
 * the host checks it, the host writes another and the guest checks it;
 * then KVM's stage-2 counts for the run are compared with @c.
 */
static void level_run(struct __test_metadata *_metadata, const struct level_case *c)
{
	uint64_t pages = c->len / (4 * KiB), free0 = node_free_bytes(0), t0;
	struct vmm_levels l;
	struct vmm v;
	void *hva;
	int fd;

	fd = extmem_alloc(GiB, GiB, 0, c->name);
	ASSERT_LE(0, fd) TH_LOG("1 GiB-aligned 1 GiB on node 0: %s", strerror(-fd));
	hva = map_aligned(fd, c->len, 0, GiB, c->skew);
	ASSERT_NE(MAP_FAILED, hva);
	ASSERT_EQ(0, guest_setup(&v, hva, c->len));

	t0 = now_ns();
	ASSERT_EQ(0, guest_pattern_run(&v, RAM_GPA, pages, 0x5eed0001, GUEST_OP_WRITE));
	ksft_print_msg("%s: guest wrote %" PRIu64 " pages in %.1f ms\n", c->name, pages,
		       (now_ns() - t0) / 1e6);
	EXPECT_EQ(0, host_check(hva, pages, 0x5eed0001));
	host_fill(hva, pages, 0x5eed0002);
	t0 = now_ns();
	EXPECT_EQ(0, guest_pattern_run(&v, RAM_GPA, pages, 0x5eed0002, GUEST_OP_VERIFY));
	ksft_print_msg("%s: guest checked them in %.1f ms\n", c->name, (now_ns() - t0) / 1e6);

	ASSERT_EQ(0, vmm_levels(&v, &l));
	/* The code slot is 16 small pages at most. */
	ksft_print_msg("%s: %" PRIu64 " MiB at GPA %#llx, HVA %p: stage-2 pages_1g=%" PRIu64
		       " pages_2m=%" PRIu64 " pages_4k=%" PRIu64 " (the program's slot: <= 16 x 4k)\n",
		       c->name, c->len >> 20, RAM_GPA, hva, l.p1g, l.p2m, l.p4k);
	EXPECT_EQ(c->p1g, l.p1g);
	EXPECT_EQ(c->p2m, l.p2m);
	EXPECT_LE(c->p4k_min, l.p4k);
	EXPECT_GE(c->p4k_min + 16, l.p4k);

	ASSERT_EQ(0, vmm_slot(&v, 1, RAM_GPA, 0, hva));
	vmm_destroy(&v);
	munmap(hva, c->len);
	close(fd);
	EXPECT_EQ(free0, node_free_bytes(0));
}

TEST(guest_1g_aligned_one_1g_entry)
{
	const struct level_case c = { "aligned-1g", GiB, 0, 1, 0, 0 };

	NEED_KVM_AND_EXTMEM();
	level_run(_metadata, &c);
}

TEST(guest_2m_aligned_hva_2m_entries)
{
	const struct level_case c = { "aligned-2m", GiB, 2 * MiB, 0, 512, 0 };

	NEED_KVM_AND_EXTMEM();
	level_run(_metadata, &c);
}

/* 4 KiB entries cost one stage-2 fault each: 64 MiB is 16384 of them. */
TEST(guest_misaligned_hva_4k_entries)
{
	const struct level_case c = { "misaligned", 64 * MiB, 4 * KiB, 0, 0, 16384 };

	NEED_KVM_AND_EXTMEM();
	level_run(_metadata, &c);
}

struct node_vm {
	int node, fd, rc;
	uint64_t len, phys, bad;
	void *hva;
};

static void *node_vm_run(void *arg)
{
	struct node_vm *n = arg;
	uint64_t pages = n->len / (4 * KiB);
	uint32_t seed = 0xa0000000u + n->node;
	struct vmm v;
	int64_t r;

	n->rc = guest_setup(&v, n->hva, n->len);
	if (n->rc)
		return NULL;
	r = guest_pattern_run(&v, RAM_GPA, pages, seed, GUEST_OP_WRITE);
	n->bad = host_check(n->hva, pages, seed);
	if (!r) {
		host_fill(n->hva, pages, seed + 1);
		r = guest_pattern_run(&v, RAM_GPA, pages, seed + 1, GUEST_OP_VERIFY);
	}
	n->rc = (int)r;
	vmm_destroy(&v);
	return NULL;
}

TEST(two_vms_one_per_node)
{
	struct node_vm n[2];
	pthread_t t[2];
	struct extmem_info in;
	int i;

	NEED_KVM_AND_EXTMEM();
	for (i = 0; i < 2; i++) {
		n[i] = (struct node_vm){ .node = i, .len = 256 * MiB };
		n[i].fd = extmem_alloc(n[i].len, 2 * MiB, i, i ? "vm-node1" : "vm-node0");
		ASSERT_LE(0, n[i].fd) TH_LOG("256 MiB on node %d: %s", i, strerror(-n[i].fd));
		ASSERT_EQ(0, info(n[i].fd, &in));
		EXPECT_EQ(i, in.node);
		n[i].phys = in.phys;
		n[i].hva = map_aligned(n[i].fd, n[i].len, 0, 2 * MiB, 0);
		ASSERT_NE(MAP_FAILED, n[i].hva);
	}
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, node_vm_run, &n[i]));
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, n[i].rc) TH_LOG("VM on node %d", i);
		EXPECT_EQ(0, n[i].bad);
		ksft_print_msg("VM %d: 256 MiB of node %d's extmem at %#" PRIx64 ", guest and host agree\n",
			       i, i, n[i].phys);
	}
	/* Different nodes, different memory. */
	EXPECT_TRUE(n[0].phys + n[0].len <= n[1].phys || n[1].phys + n[1].len <= n[0].phys);
}

struct spinner {
	struct vmm v;
	volatile int stop, ticks, rc;
};

/* Runs the counter program until asked to stop; ticks counts its reports. */
static void *spin(void *arg)
{
	struct spinner *s = arg;

	while (!s->stop) {
		int rc = vmm_run(&s->v);

		if (rc != KVM_EXIT_IO || s->v.run->io.port != GUEST_PORT_TICK) {
			s->rc = rc < 0 ? rc : -EIO;
			return NULL;
		}
		s->ticks++;
	}
	return NULL;
}

/*
 * The memory of a guest belongs to the mapping: with the allocation fd
 * closed the guest runs on; while it runs, new allocations land elsewhere;
 * deleting the slot frees nothing; unmapping frees exactly the range.
 */
TEST(lifetime_follows_the_mapping)
{
	const uint64_t len = 64 * MiB, ctr = RAM_GPA;
	uint64_t free0 = node_free_bytes(1), phys;
	struct extmem_info in;
	struct spinner s = { 0 };
	pthread_t t;
	uint32_t *page;
	void *hva;
	int fd, i, others[8];

	NEED_KVM_AND_EXTMEM();
	fd = extmem_alloc(len, 2 * MiB, 1, "lifetime");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, info(fd, &in));
	phys = in.phys;
	hva = map_aligned(fd, len, 0, 2 * MiB, 0);
	ASSERT_NE(MAP_FAILED, hva);
	ASSERT_EQ(0, close(fd));
	EXPECT_EQ(free0 - len, node_free_bytes(1));

	/* The counter program: its page at the start of RAM, data after it. */
	page = hva;
	page[CTR_DATA / 4] = ctr + 4 * KiB;
	page[CTR_DATA_LEN / 4] = 64 * KiB;
	page[CTR_SEED / 4] = 1;
	ASSERT_EQ(0, guest_setup(&s.v, hva, len));
	ASSERT_EQ(0, vmm_start(&s.v, CODE_GPA + 0x800, ctr + 4 * KiB, ctr, 0, 0, 1));
	ASSERT_EQ(0, pthread_create(&t, NULL, spin, &s));
	while (s.ticks < 3 && !s.rc)
		usleep(1000);
	ASSERT_EQ(0, s.rc);

	/* Allocations made while it runs: none overlaps the guest's memory. */
	for (i = 0; i < 8; i++) {
		others[i] = extmem_alloc(2 * MiB, 0, 1, "beside");
		ASSERT_LE(0, others[i]);
		ASSERT_EQ(0, info(others[i], &in));
		EXPECT_TRUE(in.phys + in.length <= phys || phys + len <= in.phys)
			TH_LOG("%#llx overlaps the guest at %#llx", (unsigned long long)in.phys,
			       (unsigned long long)phys);
	}
	for (i = 0; i < 8; i++)
		close(others[i]);
	i = s.ticks;
	while (s.ticks < i + 3 && !s.rc)
		usleep(1000);
	s.stop = 1;
	pthread_join(t, NULL);
	EXPECT_EQ(0, s.rc);
	ksft_print_msg("guest counted to %u with its allocation fd closed\n", page[0]);
	EXPECT_LT(3U << 16, page[0]);
	EXPECT_EQ(counter_checksum((uint32_t *)((char *)hva + 4 * KiB), 64 * KiB),
		  page[CTR_SUM / 4]);

	ASSERT_EQ(0, vmm_slot(&s.v, 1, RAM_GPA, 0, hva));
	EXPECT_EQ(free0 - len, node_free_bytes(1)) TH_LOG("the slot's deletion freed the memory");
	vmm_destroy(&s.v);
	EXPECT_EQ(free0 - len, node_free_bytes(1)) TH_LOG("the VM's end freed the mapped memory");
	ASSERT_EQ(0, munmap(hva, len));
	EXPECT_EQ(free0, node_free_bytes(1));
}

/* A VMM killed while its guest runs leaves the pool as it found it. */
TEST(vmm_killed_in_kvm_run_leaks_nothing)
{
	uint64_t free0 = node_free_bytes(1);
	int pfd[2], status;
	char c;
	pid_t pid;

	NEED_KVM_AND_EXTMEM();
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct spinner s = { 0 };
		uint32_t *page;
		void *hva;
		int fd = extmem_alloc(32 * MiB, 2 * MiB, 1, "killed");

		if (fd < 0)
			_exit(1);
		hva = map_aligned(fd, 32 * MiB, 0, 2 * MiB, 0);
		if (hva == MAP_FAILED || guest_setup(&s.v, hva, 32 * MiB))
			_exit(2);
		page = hva;
		page[CTR_DATA / 4] = RAM_GPA + 4 * KiB;
		page[CTR_DATA_LEN / 4] = 4 * KiB;
		if (vmm_start(&s.v, CODE_GPA + 0x800, RAM_GPA + 4 * KiB, RAM_GPA, 0, 0, 1))
			_exit(3);
		if (vmm_run(&s.v) != KVM_EXIT_IO)
			_exit(4);
		if (write(pfd[1], "r", 1) != 1)
			_exit(5);
		for (;;)
			vmm_run(&s.v);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	EXPECT_EQ(free0 - 32 * MiB, node_free_bytes(1));
	usleep(20000);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(free0, node_free_bytes(1));
}

/*
 * A slot larger than its mapping: KVM accepts it (it checks only the
 * address range), and the guest's first access past the mapping makes
 * KVM_RUN fail with EFAULT (KVM_EXIT_MEMORY_FAULT names the address).
 */
/*
 * A VM whose slot 1 is @slot_len bytes over the first @map_len bytes of a
 * new @alloc_len-byte allocation on node 1 (2 MiB-aligned): the fd, or
 * -errno.
 */
static int small_vm(struct vmm *v, void **hva, uint64_t alloc_len, uint64_t map_len,
		    uint64_t slot_len, const char *label)
{
	int fd = extmem_alloc(alloc_len, 2 * MiB, 1, label), rc;

	if (fd < 0)
		return fd;
	*hva = map_aligned(fd, map_len, 0, 2 * MiB, 0);
	if (*hva == MAP_FAILED) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = guest_setup(v, *hva, slot_len);
	return rc ? rc : fd;
}

TEST(slot_larger_than_mapping_efault)
{
	uint64_t free0 = node_free_bytes(1);
	struct vmm v;
	void *hva;
	int64_t r;
	int fd;

	NEED_KVM_AND_EXTMEM();
	fd = small_vm(&v, &hva, 4 * MiB, 2 * MiB, 4 * MiB, "short-map");
	ASSERT_LE(0, fd);
	r = guest_pattern_run(&v, RAM_GPA, 1024, 7, GUEST_OP_WRITE);
	EXPECT_EQ(-EFAULT, r);
	if (v.run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
		ksft_print_msg("KVM_EXIT_MEMORY_FAULT at GPA %#llx\n",
			       (unsigned long long)v.run->memory_fault.gpa);
		EXPECT_EQ(RAM_GPA + 2 * MiB, v.run->memory_fault.gpa & ~(4 * KiB - 1));
	}
	/* What the guest wrote before the fault is in the allocation. */
	EXPECT_EQ(0, host_check(hva, 512, 7));
	vmm_destroy(&v);
	munmap(hva, 2 * MiB);
	close(fd);
	EXPECT_EQ(free0, node_free_bytes(1));
}

TEST(map_offset_past_allocation_refused)
{
	void *p;
	int fd;

	NEED_KVM_AND_EXTMEM();
	fd = extmem_alloc(2 * MiB, 0, 1, "offset");
	ASSERT_LE(0, fd);
	p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * MiB);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_TRUE(errno == EINVAL || errno == ENXIO) TH_LOG("errno %d", errno);
	p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 1 * MiB);
	EXPECT_EQ(MAP_FAILED, p);
	close(fd);
}

/* An access outside every memslot is an MMIO exit with its address. */
TEST(guest_beyond_its_slot_mmio_exit)
{
	struct vmm v;
	void *hva;
	int64_t r;
	int fd;

	NEED_KVM_AND_EXTMEM();
	fd = small_vm(&v, &hva, 2 * MiB, 2 * MiB, 2 * MiB, "beyond");
	ASSERT_LE(0, fd);
	r = guest_pattern_run(&v, RAM_GPA, 513, 9, GUEST_OP_WRITE);
	EXPECT_EQ(-EIO, r);
	EXPECT_EQ(KVM_EXIT_MMIO, v.run->exit_reason);
	EXPECT_EQ(RAM_GPA + 2 * MiB, v.run->mmio.phys_addr);
	EXPECT_TRUE(v.run->mmio.is_write);
	vmm_destroy(&v);
	munmap(hva, 2 * MiB);
	close(fd);
}

TEST_HARNESS_MAIN
