/* SPDX-License-Identifier: GPL-2.0 */
/*
 * guest_memfd over extmem for the KVM selftests (gmem_test.c,
 * gmem_kexec.c), on kvm_vmm.h: a KVM_X86_SW_PROTECTED_VM whose slot 1 at
 * RAM_GPA is a guest_memfd, the pattern program in a shared slot 0.
 * Header-only (static inline), like kvm_vmm.h.
 */
#ifndef EXTMEM_GMEM_VMM_H
#define EXTMEM_GMEM_VMM_H

#include "extmem_util.h"
#include "kvm_vmm.h"

/* From patches/0013 (include/uapi/linux/kvm.h), in case the header predates it. */
#ifndef GUEST_MEMFD_FLAG_EXTMEM
#define GUEST_MEMFD_FLAG_EXTMEM		(1ULL << 2)
#endif
struct gmem_args {
	uint64_t size;
	uint64_t flags;
	uint32_t extmem_fd;
	uint32_t pad;
	uint64_t reserved[5];
};
_Static_assert(sizeof(struct gmem_args) == sizeof(struct kvm_create_guest_memfd),
	       "KVM_CREATE_GUEST_MEMFD's argument");

#define CODE_GPA	0x1000ULL
#define CODE_SLOT_LEN	(64 * KiB)
#define RAM_GPA		GiB

/* KVM_CREATE_GUEST_MEMFD: the fd or -errno. */
static inline int gmem_create(struct vmm *v, uint64_t size, uint64_t flags, int extmem_fd)
{
	struct gmem_args a = { .size = size, .flags = flags, .extmem_fd = extmem_fd };
	int fd = ioctl(v->vm, KVM_CREATE_GUEST_MEMFD, &a);

	return fd < 0 ? -errno : fd;
}

static inline int set_private(struct vmm *v, uint64_t gpa, uint64_t len, int private)
{
	struct kvm_memory_attributes a = {
		.address = gpa, .size = len,
		.attributes = private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};

	return ioctl(v->vm, KVM_SET_MEMORY_ATTRIBUTES, &a) ? -errno : 0;
}

/*
 * A protected VM with the pattern program in slot 0 (anonymous, shared)
 * and slot 1 at RAM_GPA: @len bytes of guest_memfd @gfd, shared backing
 * @shared (a 1 GiB-aligned anonymous reservation if NULL), all private.
 */
static inline int pvm_setup(struct vmm *v, int gfd, uint64_t len, void *shared)
{
	struct kvm_userspace_memory_region2 r = {
		.slot = 1, .flags = KVM_MEM_GUEST_MEMFD, .guest_phys_addr = RAM_GPA,
		.memory_size = len, .guest_memfd = gfd,
	};
	uint8_t *code;
	int rc;

	code = mmap(NULL, CODE_SLOT_LEN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED)
		return -errno;
	memcpy(code + CODE_GPA, guest_pattern, guest_pattern_end - guest_pattern);
	rc = vmm_slot(v, 0, 0, CODE_SLOT_LEN, code);
	if (rc)
		return rc;
	if (!shared) {
		/*
		 * Never touched, but KVM allows huge stage-2 entries in a slot
		 * only if userspace_addr is aligned like the guest address.
		 */
		shared = mmap(NULL, len + GiB, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (shared == MAP_FAILED)
			return -errno;
		shared = (void *)(((uintptr_t)shared + GiB - 1) & ~(uintptr_t)(GiB - 1));
	}
	r.userspace_addr = (uintptr_t)shared;
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION2, &r))
		return -errno;
	return set_private(v, RAM_GPA, len, 1);
}

static inline int64_t run_pattern(struct vmm *v, uint64_t gpa, uint64_t pages, uint32_t seed,
				  int op)
{
	uint32_t val;
	int rc = vmm_start(v, CODE_GPA, 0, gpa, pages, seed, op);

	if (!rc)
		rc = vmm_run_to_done(v, &val);
	return rc ? rc : (int64_t)val;
}

#endif /* EXTMEM_GMEM_VMM_H */
