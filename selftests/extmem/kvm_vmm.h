/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal VMM for the extmem KVM selftests: the KVM ioctls directly, one
 * vCPU in flat 32-bit protected mode (no paging, 4 GiB segments), so that
 * a guest reaches every byte of a memslot below 4 GiB. Guest programs are
 * position-independent 32-bit code assembled into this binary (".code32"
 * blocks below) and copied into guest memory; they take their arguments
 * in registers and report through port I/O:
 *
 *   GUEST_PORT_DONE  OUT: a program finished; EAX = 0 (success) or the
 *                    1-based index of the first bad page
 *   GUEST_PORT_TICK  OUT: the counter program is alive; EAX = counter
 *   GUEST_PORT_CHECK OUT: the counter program re-verified its data area;
 *                    EAX = 0 (intact) or 1
 *
 * The pattern program writes or checks two 32-bit words per 4 KiB page,
 * at offsets 0 and 4092: pattern_word() below is the same function, so
 * the host checks what the guest wrote and the reverse.
 *
 * Header-only (static inline), so every test stays a single static binary.
 */
#ifndef EXTMEM_KVM_VMM_H
#define EXTMEM_KVM_VMM_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/extmem.h>
#include <linux/kvm.h>

#define GUEST_PORT_DONE		0x10
#define GUEST_PORT_TICK		0x12
#define GUEST_PORT_CHECK	0x13

/* The pattern program's operations (EDI). */
#define GUEST_OP_WRITE		1
#define GUEST_OP_VERIFY		2

/*
 * The counter program's page (a guest physical address in the slot; the
 * program takes it in ESI). All fields are little-endian 32-bit words.
 */
#define CTR_COUNT_LO	0x00	/* the counter, 64 bits */
#define CTR_COUNT_HI	0x04
#define CTR_REQUEST	0x08	/* non-zero: re-verify the data area, then 0 */
#define CTR_SUM		0x0c	/* checksum of the data area, set at start */
#define CTR_DATA	0x10	/* guest physical address of the data area */
#define CTR_DATA_LEN	0x14	/* its length in bytes, a multiple of 4 */
#define CTR_SEED	0x18	/* the seed its contents came from */

/* 32-bit words: pattern_word(seed, i) and its complement in page i. */
static inline uint32_t pattern_word(uint32_t seed, uint32_t page)
{
	return (page * 0x9e3779b1u) ^ seed;
}

/*
 * The guest programs. pattern: ESI = first page, ECX = pages, EDX = seed,
 * EDI = GUEST_OP_*; reports on GUEST_PORT_DONE and halts. counter: ESI =
 * its page; fills the data area from the seed (a 32-bit LCG) when
 * CTR_SUM's page asks for it (EDI = 1), stores the checksum (rotate-xor of
 * every word), then counts forever: every 2^16 counts a tick, and a check
 * when CTR_REQUEST is set.
 */
extern const uint8_t guest_pattern[], guest_pattern_end[];
extern const uint8_t guest_counter[], guest_counter_end[];

asm(".pushsection .rodata\n"
    ".code32\n"
    ".globl guest_pattern, guest_pattern_end\n"
    "guest_pattern:\n"
    "	xorl %ebx, %ebx\n"
    "1:	cmpl %ecx, %ebx\n"
    "	jae 4f\n"
    "	imull $0x9e3779b1, %ebx, %eax\n"
    "	xorl %edx, %eax\n"
    "	cmpl $1, %edi\n"
    "	jne 2f\n"
    "	movl %eax, (%esi)\n"
    "	notl %eax\n"
    "	movl %eax, 4092(%esi)\n"
    "	jmp 3f\n"
    "2:	cmpl %eax, (%esi)\n"
    "	jne 5f\n"
    "	notl %eax\n"
    "	cmpl %eax, 4092(%esi)\n"
    "	jne 5f\n"
    "3:	addl $4096, %esi\n"
    "	incl %ebx\n"
    "	jmp 1b\n"
    "4:	xorl %eax, %eax\n"
    "	jmp 6f\n"
    "5:	leal 1(%ebx), %eax\n"
    "6:	outl %eax, $0x10\n"
    "	hlt\n"
    "	jmp 6b\n"
    "guest_pattern_end:\n"
    ".globl guest_counter, guest_counter_end\n"
    "guest_counter:\n"
    "	cmpl $1, %edi\n"
    "	jne 20f\n"
    /* Fill the data area: x = x * 1664525 + 1013904223 per word. */
    "	movl 0x10(%esi), %ebx\n"
    "	movl 0x14(%esi), %ecx\n"
    "	shrl $2, %ecx\n"
    "	movl 0x18(%esi), %eax\n"
    "10:	testl %ecx, %ecx\n"
    "	jz 11f\n"
    "	imull $1664525, %eax, %eax\n"
    "	addl $1013904223, %eax\n"
    "	movl %eax, (%ebx)\n"
    "	addl $4, %ebx\n"
    "	decl %ecx\n"
    "	jmp 10b\n"
    "11:	call 30f\n"
    "	movl %eax, 0x0c(%esi)\n"
    "20:	addl $1, 0x00(%esi)\n"
    "	adcl $0, 0x04(%esi)\n"
    "	testl $0xffff, 0x00(%esi)\n"
    "	jnz 20b\n"
    "	movl 0x00(%esi), %eax\n"
    "	outl %eax, $0x12\n"
    "	cmpl $0, 0x08(%esi)\n"
    "	je 20b\n"
    "	call 30f\n"
    "	cmpl 0x0c(%esi), %eax\n"
    "	setne %al\n"
    "	movzbl %al, %eax\n"
    "	movl $0, 0x08(%esi)\n"
    "	outl %eax, $0x13\n"
    "	jmp 20b\n"
    /* EAX = rotate-xor checksum of the data area; clobbers EBX, ECX, EDX. */
    "30:	movl 0x10(%esi), %ebx\n"
    "	movl 0x14(%esi), %ecx\n"
    "	shrl $2, %ecx\n"
    "	xorl %eax, %eax\n"
    "31:	testl %ecx, %ecx\n"
    "	jz 32f\n"
    "	roll $5, %eax\n"
    "	xorl (%ebx), %eax\n"
    "	addl $4, %ebx\n"
    "	decl %ecx\n"
    "	jmp 31b\n"
    "32:	ret\n"
    "guest_counter_end:\n"
    ".code64\n"
    ".popsection\n");

/* /dev/extmem, opened once; -1 if it cannot be opened. */
static inline int extmem_dev(void)
{
	static int fd = -1;

	if (fd < 0)
		fd = open("/dev/extmem", O_RDWR | O_CLOEXEC);
	return fd;
}

/* An allocation fd of @len bytes aligned to @align on @node, or -errno. */
static inline int extmem_alloc(uint64_t len, uint64_t align, int node, const char *label)
{
	struct extmem_alloc_args a = {
		.size = sizeof(a), .length = len, .alignment = align, .node = node,
	};
	int fd;

	snprintf(a.label, sizeof(a.label), "%s", label);
	fd = ioctl(extmem_dev(), EXTMEM_IOC_ALLOC, &a);
	return fd < 0 ? -errno : fd;
}

/* Pages whose two pattern words differ from @seed's; the host's view. */
static inline uint64_t host_check(const void *hva, uint64_t pages, uint32_t seed)
{
	const uint32_t *p = hva;
	uint64_t i, bad = 0;

	for (i = 0; i < pages; i++) {
		uint32_t w = pattern_word(seed, i);

		bad += p[i * 1024] != w || p[i * 1024 + 1023] != ~w;
	}
	return bad;
}

/* Writes @seed's pattern words into @pages pages, as the guest would. */
static inline void host_fill(void *hva, uint64_t pages, uint32_t seed)
{
	uint32_t *p = hva;
	uint64_t i;

	for (i = 0; i < pages; i++) {
		uint32_t w = pattern_word(seed, i);

		p[i * 1024] = w;
		p[i * 1024 + 1023] = ~w;
	}
}

/* The same checksum on the host, over the data area's host mapping. */
static inline uint32_t counter_checksum(const uint32_t *data, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < len / 4; i++)
		sum = ((sum << 5) | (sum >> 27)) ^ data[i];
	return sum;
}

struct vmm {
	int kvm, vm, vcpu, stats, vcpu_stats;
	struct kvm_run *run;
	size_t run_size;
};

/* 0 or -errno; on failure nothing is left open. */
static inline int vmm_create(struct vmm *v, unsigned long type)
{
	int rc;

	memset(v, 0, sizeof(*v));
	v->vm = v->vcpu = v->stats = v->vcpu_stats = -1;
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0)
		return -errno;
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, type);
	if (v->vm < 0)
		goto err;
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0)
		goto err;
	rc = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (rc < 0)
		goto err;
	v->run_size = rc;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		goto err;
	}
	return 0;
err:
	rc = -errno;
	if (v->vcpu >= 0)
		close(v->vcpu);
	if (v->vm >= 0)
		close(v->vm);
	close(v->kvm);
	v->kvm = v->vm = v->vcpu = -1;
	return rc;
}

static inline void vmm_destroy(struct vmm *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->stats >= 0)
		close(v->stats);
	if (v->vcpu_stats >= 0)
		close(v->vcpu_stats);
	if (v->vcpu >= 0)
		close(v->vcpu);
	if (v->vm >= 0)
		close(v->vm);
	if (v->kvm >= 0)
		close(v->kvm);
	memset(v, 0, sizeof(*v));
	v->kvm = v->vm = v->vcpu = v->stats = v->vcpu_stats = -1;
}

/* KVM_SET_USER_MEMORY_REGION2; size 0 deletes the slot. 0 or -errno. */
static inline int vmm_slot(struct vmm *v, uint32_t slot, uint64_t gpa, uint64_t size,
			   void *hva)
{
	struct kvm_userspace_memory_region2 r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return ioctl(v->vm, KVM_SET_USER_MEMORY_REGION2, &r) ? -errno : 0;
}

/* Flat 32-bit protected mode: CR0.PE, 4 GiB code and data segments. */
static inline int vmm_flat32(struct vmm *v)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_sregs sregs;

	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs))
		return -errno;
	data.selector = 0x10;
	data.type = 0x3;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.cr0 = 0x11;	/* PE | ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	return ioctl(v->vcpu, KVM_SET_SREGS, &sregs) ? -errno : 0;
}

/* Start at @rip with stack pointer @rsp and the given argument registers. */
static inline int vmm_start(struct vmm *v, uint64_t rip, uint64_t rsp, uint32_t esi,
			    uint32_t ecx, uint32_t edx, uint32_t edi)
{
	struct kvm_regs regs = {
		.rip = rip, .rflags = 0x2, .rsp = rsp,
		.rsi = esi, .rcx = ecx, .rdx = edx, .rdi = edi,
	};
	int rc = vmm_flat32(v);

	if (rc)
		return rc;
	return ioctl(v->vcpu, KVM_SET_REGS, &regs) ? -errno : 0;
}

/* The 32-bit value of an OUT exit; 0 if the exit is not a 4-byte OUT. */
static inline uint32_t vmm_out_value(const struct vmm *v)
{
	const struct kvm_run *r = v->run;
	uint32_t val = 0;

	if (r->exit_reason == KVM_EXIT_IO && r->io.direction == KVM_EXIT_IO_OUT &&
	    r->io.size == 4)
		memcpy(&val, (const char *)r + r->io.data_offset, 4);
	return val;
}

/* One KVM_RUN: the exit reason, or -errno. */
static inline int vmm_run(struct vmm *v)
{
	if (ioctl(v->vcpu, KVM_RUN, 0))
		return -errno;
	return v->run->exit_reason;
}

/*
 * Runs the guest to its next exit: 0 and *value = EAX if it wrote to
 * GUEST_PORT_DONE, -errno of KVM_RUN, or -EIO on any other exit (*value =
 * exit reason; the pattern program makes no other).
 */
static inline int vmm_run_to_done(struct vmm *v, uint32_t *value)
{
	int rc = vmm_run(v);

	if (rc < 0)
		return rc;
	if (rc == KVM_EXIT_IO && v->run->io.port == GUEST_PORT_DONE) {
		*value = vmm_out_value(v);
		return 0;
	}
	*value = rc;
	return -EIO;
}

/*
 * Completes the pending exit without running the guest (KVM_RUN with
 * immediate_exit: KVM finishes the I/O and returns EINTR), so that the
 * registers read next are the ones the guest resumes from.
 */
static inline int vmm_pause(struct vmm *v)
{
	int rc;

	v->run->immediate_exit = 1;
	rc = ioctl(v->vcpu, KVM_RUN, 0) ? -errno : 0;
	v->run->immediate_exit = 0;
	return rc == -EINTR ? 0 : (rc ? rc : -EIO);
}

/* A statistic from a KVM binary stats fd @fd: 0 or -errno. */
static inline int kvm_stat_read(int fd, const char *name, uint64_t *value)
{
	struct kvm_stats_header h;
	struct kvm_stats_desc *d;
	size_t dsize;
	char *descs;
	uint32_t i;
	int rc = -ENOENT;

	if (pread(fd, &h, sizeof(h), 0) != sizeof(h))
		return -EIO;
	dsize = sizeof(*d) + h.name_size;
	descs = calloc(h.num_desc, dsize);
	if (!descs)
		return -ENOMEM;
	if (pread(fd, descs, h.num_desc * dsize, h.desc_offset) !=
	    (ssize_t)(h.num_desc * dsize)) {
		free(descs);
		return -EIO;
	}
	for (i = 0; i < h.num_desc; i++) {
		d = (struct kvm_stats_desc *)(descs + i * dsize);
		if (strncmp(d->name, name, h.name_size))
			continue;
		rc = pread(fd, value, sizeof(*value), h.data_offset + d->offset) ==
			sizeof(*value) ? 0 : -EIO;
		break;
	}
	free(descs);
	return rc;
}

/* A VM statistic (pages_4k, pages_2m, pages_1g, ...): 0 or -errno. */
static inline int vmm_stat(struct vmm *v, const char *name, uint64_t *value)
{
	if (v->stats < 0) {
		v->stats = ioctl(v->vm, KVM_GET_STATS_FD, NULL);
		if (v->stats < 0)
			return -errno;
	}
	return kvm_stat_read(v->stats, name, value);
}

/* A vCPU statistic (exits, pf_taken, ...): 0 or -errno. */
static inline int vmm_vcpu_stat(struct vmm *v, const char *name, uint64_t *value)
{
	if (v->vcpu_stats < 0) {
		v->vcpu_stats = ioctl(v->vcpu, KVM_GET_STATS_FD, NULL);
		if (v->vcpu_stats < 0)
			return -errno;
	}
	return kvm_stat_read(v->vcpu_stats, name, value);
}

/* The stage-2 leaf counts KVM reports. */
struct vmm_levels {
	uint64_t p4k, p2m, p1g;
};

static inline int vmm_levels(struct vmm *v, struct vmm_levels *l)
{
	int rc = vmm_stat(v, "pages_4k", &l->p4k);

	if (!rc)
		rc = vmm_stat(v, "pages_2m", &l->p2m);
	if (!rc)
		rc = vmm_stat(v, "pages_1g", &l->p1g);
	return rc;
}

/*
 * Maps @len bytes of @fd from @off at an address that is @align-aligned
 * plus @skew (so @skew = 0 gives an @align-aligned mapping, @skew = 4096 a
 * deliberately misaligned one). MAP_FAILED and errno on failure.
 */
static inline void *map_aligned(int fd, uint64_t len, uint64_t off, uint64_t align,
				uint64_t skew)
{
	uint64_t span = len + align + skew;
	char *res, *at, *p;

	res = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	at = (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1)) + skew;
	p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		int e = errno;

		munmap(res, span);
		errno = e;
		return MAP_FAILED;
	}
	if (at > res)
		munmap(res, at - res);
	if (res + span > at + len)
		munmap(at + len, res + span - (at + len));
	return p;
}

#endif /* EXTMEM_KVM_VMM_H */
