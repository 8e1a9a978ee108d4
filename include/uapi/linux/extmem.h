/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * extmem: the userspace ABI of /dev/extmem, of extmem allocation fds and of
 * regions (/dev/extmem_region/<name>).
 *
 * Every argument structure starts with a __u32 size that the caller sets to
 * sizeof() the structure it was compiled with. The kernel accepts any size
 * from the first published one (..._SIZE_VER0) up: bytes it does not know
 * must be zero (as for struct clone_args), and it writes back at most
 * @size bytes. Reserved fields must be zero. The ioctl numbers carry the
 * current size, but the kernel matches them on type, number and direction
 * (_IOWR) only, not on the size, so an older or newer binary keeps working;
 * a command with another direction is ENOTTY.
 *
 * See Documentation/userspace-api/extmem.rst.
 */
#ifndef _UAPI_LINUX_EXTMEM_H
#define _UAPI_LINUX_EXTMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define EXTMEM_IOCTL_TYPE	0xBB

/* Node value for "any node". */
#define EXTMEM_NODE_ANY		(-1)

/* struct extmem_alloc_args.flags */
/* A node-bound request may spill to other nodes when its node is full. */
#define EXTMEM_ALLOC_FALLBACK	(1U << 0)
#define EXTMEM_ALLOC_FLAGS	(EXTMEM_ALLOC_FALLBACK)

#define EXTMEM_LABEL_LEN	32

/**
 * struct extmem_alloc_args - EXTMEM_IOC_ALLOC on /dev/extmem
 * @size: sizeof(struct extmem_alloc_args)
 * @flags: EXTMEM_ALLOC_*
 * @length: bytes to allocate, a non-zero multiple of the page size
 * @alignment: physical alignment in bytes: 0 (the page size) or a power of
 *	two from the page size up to 1 GiB
 * @node: NUMA node, or EXTMEM_NODE_ANY
 * @fd: out: a new close-on-exec file descriptor that is the allocation
 * @label: NUL-terminated name shown by EXTMEM_IOC_INFO (may be empty)
 * @reserved: must be zero
 *
 * The memory is zeroed. It is freed when the last file descriptor, the
 * last mapping of it and the last VFIO DMA mapping of it are gone.
 */
struct extmem_alloc_args {
	__u32 size;
	__u32 flags;
	__u64 length;
	__u64 alignment;
	__s32 node;
	__s32 fd;
	char label[EXTMEM_LABEL_LEN];
	__u64 reserved[2];
};
#define EXTMEM_ALLOC_ARGS_SIZE_VER0	80

/**
 * struct extmem_area_info - EXTMEM_IOC_AREA_INFO on /dev/extmem
 * @size: sizeof(struct extmem_area_info)
 * @index: in: area index, from 0; ENOENT past the last area
 * @node: out: NUMA node of the area
 * @reserved0: must be zero
 * @base: out: physical base address, or 0 unless the caller has
 *	CAP_SYS_ADMIN
 * @total: out: bytes in the area
 * @free: out: bytes not allocated
 * @largest_free: out: bytes in the largest contiguous free range
 * @reserved: must be zero
 */
struct extmem_area_info {
	__u32 size;
	__u32 index;
	__s32 node;
	__u32 reserved0;
	__u64 base;
	__u64 total;
	__u64 free;
	__u64 largest_free;
	__u64 reserved[2];
};
#define EXTMEM_AREA_INFO_SIZE_VER0	64

/**
 * struct extmem_info - EXTMEM_IOC_INFO on an allocation fd
 * @size: sizeof(struct extmem_info)
 * @node: out: NUMA node of the memory
 * @length: out: bytes
 * @phys: out: physical base address, or 0 unless the caller has
 *	CAP_SYS_ADMIN
 * @label: out: the label given at allocation
 * @reserved: must be zero
 */
struct extmem_info {
	__u32 size;
	__s32 node;
	__u64 length;
	__u64 phys;
	char label[EXTMEM_LABEL_LEN];
	__u64 reserved[2];
};
#define EXTMEM_INFO_SIZE_VER0		72

/**
 * struct extmem_hugetlb_args - EXTMEM_IOC_HUGETLB on /dev/extmem
 * @size: sizeof(struct extmem_hugetlb_args)
 * @flags: must be zero
 * @node: NUMA node whose extmem areas back the pages
 * @reserved0: must be zero
 * @page_size: HugeTLB page size in bytes: 2 MiB or 1 GiB (EINVAL for any
 *	other size, EOPNOTSUPP for 1 GiB on a CPU without 1 GiB pages)
 * @target: in: how many HugeTLB pages of @page_size on @node extmem should
 *	back, or EXTMEM_HUGETLB_QUERY to change nothing
 * @count: out: how many it backs after the call, also written when the
 *	call fails with EBUSY
 * @reserved: must be zero
 *
 * Growing is all or nothing: if the node's areas cannot give the memory
 * the call fails with ENOSPC and converts nothing. Shrinking gives back the
 * free pages (emptiest memory blocks first); if pages in use (or reserved)
 * keep @count above @target, the call fails with EBUSY after giving back
 * what it could.
 */
struct extmem_hugetlb_args {
	__u32 size;
	__u32 flags;
	__s32 node;
	__u32 reserved0;
	__u64 page_size;
	__u64 target;
	__u64 count;
	__u64 reserved[2];
};
#define EXTMEM_HUGETLB_ARGS_SIZE_VER0	56

/* struct extmem_hugetlb_args.target: only report the count. */
#define EXTMEM_HUGETLB_QUERY	(~0ULL)

/* Bytes of a region's name, NUL included. */
#define EXTMEM_REGION_NAME_LEN	32

/* struct extmem_region_args.flags */
/* The region survives kexec on its own (kexec handover), with its contents. */
#define EXTMEM_REGION_STICKY	(1U << 0)
#define EXTMEM_REGION_FLAGS	(EXTMEM_REGION_STICKY)

/**
 * struct extmem_region_args - EXTMEM_IOC_REGION_CREATE and
 *	EXTMEM_IOC_REGION_DESTROY on /dev/extmem
 * @size: sizeof(struct extmem_region_args)
 * @flags: EXTMEM_REGION_*
 * @length: bytes, a non-zero multiple of @alignment
 * @alignment: physical alignment in bytes: 0 (2 MiB) or a power of two
 *	from the page size up to 1 GiB
 * @node: NUMA node, or EXTMEM_NODE_ANY; ENODEV for a node without areas
 * @uid: owner of the device node, in the caller's user namespace
 * @gid: group of the device node, in the caller's user namespace
 * @mode: permission bits of the device node (at most 0777; 0 means 0600)
 * @name: NUL-terminated name: 1 to 31 characters of [A-Za-z0-9._-], not
 *	starting with '.'; the device node is /dev/extmem_region/@name
 * @reserved: must be zero
 *
 * CREATE (CAP_SYS_ADMIN) takes @length bytes from one area, zeroes them
 * and makes the character device /dev/extmem_region/@name owned by
 * @uid:@gid with @mode. Any process the mode allows opens it and maps it
 * MAP_SHARED, as an allocation fd. The memory stays, with its contents,
 * until DESTROY, whether or not anyone has it open; with
 * EXTMEM_REGION_STICKY it also survives kexec (the next kernel makes the
 * same region again). EEXIST if the name is taken.
 *
 * DESTROY (CAP_SYS_ADMIN) reads only @size and @name (every other field
 * must be zero): it removes the device and frees the memory. ENOENT for an
 * unknown name, EBUSY while the region is open or mapped (a VFIO DMA
 * mapping of it counts).
 */
struct extmem_region_args {
	__u32 size;
	__u32 flags;
	__u64 length;
	__u64 alignment;
	__s32 node;
	__u32 uid;
	__u32 gid;
	__u32 mode;
	char name[EXTMEM_REGION_NAME_LEN];
	__u64 reserved[2];
};
#define EXTMEM_REGION_ARGS_SIZE_VER0	88

#define EXTMEM_IOC_ALLOC	_IOWR(EXTMEM_IOCTL_TYPE, 0x00, struct extmem_alloc_args)
#define EXTMEM_IOC_AREA_INFO	_IOWR(EXTMEM_IOCTL_TYPE, 0x01, struct extmem_area_info)
#define EXTMEM_IOC_HUGETLB	_IOWR(EXTMEM_IOCTL_TYPE, 0x02, struct extmem_hugetlb_args)
#define EXTMEM_IOC_REGION_CREATE	_IOWR(EXTMEM_IOCTL_TYPE, 0x03, struct extmem_region_args)
#define EXTMEM_IOC_REGION_DESTROY	_IOWR(EXTMEM_IOCTL_TYPE, 0x04, struct extmem_region_args)
#define EXTMEM_IOC_INFO		_IOWR(EXTMEM_IOCTL_TYPE, 0x10, struct extmem_info)

#endif /* _UAPI_LINUX_EXTMEM_H */
