/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interfaces between extmem's C files and its Rust crate (extmem.rs).
 * The functions declared here that Rust defines carry #[export], which checks
 * the Rust signature against the declaration here (bindgen reads this file).
 */
#ifndef _MM_EXTMEM_INTERNAL_H
#define _MM_EXTMEM_INTERNAL_H

#include <linux/extmem.h>
#include <linux/anon_inodes.h>
#include <linux/kexec_handover.h>
#include <linux/liveupdate.h>
#include <linux/ktime.h>
#include <linux/mm_types.h>
#include <linux/mmzone.h>
#include <linux/uaccess.h>
#include <linux/types.h>
#include <uapi/linux/extmem.h>

/*
 * Sizes and fixed addresses in extmem= are multiples of the memory section
 * size (128 MiB on x86_64): the memory map is built a section at a time,
 * so an area never shares a section with memory the page allocator owns,
 * and a memory block (a whole number of sections) can later be hot-plugged
 * over part of an area without touching its neighbours.
 */
#define EXTMEM_GRANULE		(1ULL << SECTION_SIZE_BITS)

/**
 * struct extmem_request - one area to carve: an accepted extmem= entry, or an
 * area of the state the previous kernel handed over
 * @size: size in bytes
 * @phys: physical base address if @fixed, otherwise 0
 * @nid: NUMA node
 * @index: position of the entry in extmem=, or of the area in the handed-over
 *	state, for log lines
 * @fixed: @phys is the address to carve
 * @handover: the area comes from the handed-over state
 */
struct extmem_request {
	u64 size;
	u64 phys;
	u32 nid;
	u32 index;
	bool fixed;
	bool handover;
};

/*
 * Validates the state the previous kernel handed over (@len bytes at @blob,
 * the "extmem" KHO subtree) and stores its areas in @out as fixed requests
 * with @handover set and @index the area's index in the state. Returns the
 * number of areas, or a negative errno after logging why the state was
 * rejected. Defined in extmem/restore.rs.
 */
int extmem_handover_areas(const void *blob, size_t len, u32 max_nodes,
			  u64 granule, struct extmem_request *out, u32 max);

/*
 * Validates the previous kernel's area record (@len bytes at @blob, the
 * EXTMEM_KHO_AREAS_NODE KHO subtree), read when its state was rejected, and
 * stores its areas in @out as fixed requests with @handover set. Returns the
 * number of areas, or a negative errno after logging why the record was
 * rejected. Defined in extmem/kho.rs.
 */
int extmem_handover_area_record(const void *blob, size_t len, u32 max_nodes,
				u64 granule, struct extmem_request *out, u32 max);

/*
 * The handed-over state, the index of an area in it (-1 if the area does
 * not come from it) and why a handed-over area must be quarantined because
 * this kernel's layout differs (NULL if it need not), for the pool; in
 * boot.c.
 */
const void *extmem_handover_state(size_t *len);
int extmem_area_handover_index(unsigned int idx);
const char *extmem_area_handover_mismatch(unsigned int idx);

/*
 * Words of u64 the allocator of an area of @units 4 KiB units needs, 0 if
 * it cannot have one. Defined in extmem/wrappers/c_entry.rs.
 */
size_t extmem_meta_words(u64 units);

/*
 * The storage boot.c reserved for area @idx's allocator, not initialised,
 * with its length in words in @words; NULL if there is none or it was taken
 * before (only the first call returns it). In boot.c.
 */
u64 *extmem_area_meta(unsigned int idx, size_t *words);

/*
 * Parses an extmem= string of @len bytes (not NUL-terminated), logs one
 * line for each rejected entry and stores up to @max accepted entries in
 * @out. Returns the number stored. Defined in extmem/boot.rs.
 */
u32 extmem_parse_param(const char *s, size_t len, u32 max_nodes, u64 granule,
		       struct extmem_request *out, u32 max);

/* What sysfs shows of an area's allocator. */
struct extmem_area_stats {
	bool ready;		/* false before the pool is up (all figures 0) */
	u64 free_bytes;		/* bytes not allocated */
	u64 largest_free;	/* bytes in the largest free run */
	u64 bytes_in_use;	/* bytes allocated */
	u64 allocations;	/* live allocations */
	u64 failed_requests;	/* requests the area could not satisfy */
	u64 poisoned;		/* units fenced after a memory failure */
};

/*
 * Returns the allocator's view of area @idx; .ready is false before the pool
 * is up. Defined in extmem/sysfs.rs.
 */
struct extmem_area_stats extmem_area_usage(u32 idx);

/* How area @idx became ready, for sysfs. */
struct extmem_area_ready {
	bool ready;		/* false before the pool is up (all figures 0) */
	u64 ready_us;		/* time the area took to become ready (without map_us) */
	u64 metadata_bytes;	/* bytes of its allocator's bitmap and summaries */
	bool mapped;		/* its write-back mapping is made (or failed) */
	u64 map_us;		/* time that took, after the pool was ready */
};

/* Area @idx's readiness figures. Defined in extmem/sysfs.rs. */
struct extmem_area_ready extmem_area_readiness(u32 idx);

/*
 * Why area @idx is quarantined (its handed-over state was rejected, or it
 * could not be mapped write-back; none of it is handed out), or NULL. Defined in extmem/sysfs.rs.
 */
const char *extmem_area_quarantined(u32 idx);

/* What /sys/kernel/mm/extmem/handover/ shows. */
struct extmem_handover_stats {
	bool enabled;			/* a buffer for the next kernel exists */
	u64 preserved_allocations;	/* in LUO sessions, for the next kernel */
	u64 sticky_regions;		/* for the next kernel */
	u64 incoming_allocations;	/* the previous kernel's, not yet retrieved */
};

/* The handover figures; all zero before the pool is up. In extmem/sysfs.rs. */
struct extmem_handover_stats extmem_handover_stats(void);

/* What sysfs shows of an area's zeroing; see extmem/pool.rs. */
struct extmem_zero_stats {
	bool ready;		/* false before the pool is up (all figures 0) */
	u64 clean_bytes;	/* free bytes that read zero */
	u64 dirty_bytes;	/* free bytes that may hold old contents */
	u64 zeroed_bytes;	/* bytes the background zeroer zeroed */
	u64 zeroing_ns;		/* time it spent zeroing them */
	u64 sync_zeroed_bytes;	/* bytes allocations zeroed themselves */
	u64 sync_zeroing_ns;	/* time they spent zeroing them */
};

/* Area @idx's zeroing figures. In extmem/zero.rs. */
struct extmem_zero_stats extmem_area_zero_stats(u32 idx);

/*
 * The background zeroer of area @idx, one step: zeroes up to 2 MiB of its
 * dirty free memory; false if there was none. In extmem/zero.rs.
 */
bool extmem_zero_step(u32 idx);

/*
 * Maps area @idx write-back (reserving the WB memory type) and wakes whoever
 * waits for the mapping; a no-op once done. Called once per area after the
 * pool is published, by its zeroer thread or, without one, by
 * extmem_zeroers_start(). May sleep. Defined in extmem/zero.rs.
 */
void extmem_area_map(u32 idx);

/*
 * True if the test-only knob extmem.test_fail_map (CONFIG_EXTMEM_TEST_KNOBS)
 * names area @idx: its write-back mapping is to fail. In extmem/zero.c.
 */
bool extmem_test_fail_map(u32 idx);

/* True if area @idx has dirty free memory. In extmem/zero.rs. */
bool extmem_zero_pending(u32 idx);

/* In extmem/zero.c. */
/* Starts one zeroer kthread per area, on the area's node. */
void extmem_zeroers_start(u32 n);
/* Wakes area @idx's zeroer (no-op with extmem.prezero=0 or before the start). */
void extmem_zeroer_wake(u32 idx);
/* Zeroes @len bytes at @addr, rescheduling between 2 MiB chunks; ignores signals. */
void extmem_zero_range(void *addr, size_t len);

/*
 * In extmem/kho.rs, for the kexec reboot notifier: logs what the outgoing
 * handover buffer (the "extmem" KHO subtree, kept current from the pool's
 * build on) holds, rewriting it if stale; bytes used, or -errno (-ENODEV
 * without a buffer).
 */
long extmem_handover_write(void);

/*
 * In devif/luo.c: the test-only knobs (CONFIG_EXTMEM_TEST_KNOBS) for the
 * state written at a kexec: damage area 0's allocator state, fail, or damage
 * the header's checksum (the next kernel rejects the whole state).
 */
#define EXTMEM_KNOB_CORRUPT	1U
#define EXTMEM_KNOB_FAIL	2U
#define EXTMEM_KNOB_CORRUPT_HEADER	4U
u32 extmem_handover_test_knobs(void);
/*
 * In devif/luo.c, test only (debugfs extmem/hold_fault): called by the fault
 * handler of extmem mappings between its poisoned check and its insert;
 * holds the fault there while the knob asks for it. May sleep.
 */
void extmem_test_hold_fault(void);


/* In devif/helpers.c. */
/*
 * Zeroes @len bytes at @addr, rescheduling between 2 MiB chunks; -EINTR
 * (part zeroed) if the task has a fatal signal pending, else 0.
 */
int extmem_clear(void *addr, size_t len);
/* Maps an area write-back, encrypted as user and KVM mappings are. */
void *extmem_map_wb(phys_addr_t phys, size_t len);
/* _PAGE_ENC of the kernel mapping of @addr (U64_MAX: not mapped). */
u64 extmem_kernel_map_enc(const void *addr);
/* _PAGE_ENC of a shared read-write user mapping's protection. */
u64 extmem_user_prot_enc(void);
/* True if any byte of the range is busy System RAM (the page allocator's). */
bool extmem_range_has_ram(phys_addr_t start, size_t len);
/* True if the CPU can map 1 GiB pages (PUD leaves). */
bool extmem_has_gbpages(void);
/*
 * A file that holds a reference to @target and calls @released(@owner) when
 * its last reference goes (before it drops @target): what a PFN-map VMA's
 * pfnmap_hold returns, so that its owner counts the holds of devices. A live
 * hold of the same @owner and @target is returned again (a new reference,
 * *@made false); else a new one is made (*@made true). ERR_PTR(-ENOMEM) on
 * failure (nothing taken, @released not called).
 */
struct file;
struct file *extmem_dma_hold(struct file *target, const void *owner,
			     void (*released)(const void *owner), bool *made);
struct vm_area_desc;
/* True if it is a copy-on-write mapping (private, may be written). */
bool extmem_vma_desc_is_cow(struct vm_area_desc *desc);
/* Sets VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP on it. */
void extmem_vma_desc_set_pfnmap(struct vm_area_desc *desc);

/* Memory failure on extmem pfns, in extmem/poison.c. */
struct file;
/*
 * Registers area @idx ([@base, @base + @size)) for memory_failure() with
 * register_pfn_address_space(); 0 or a negative errno.
 */
int extmem_mf_register(unsigned int idx, u64 base, u64 size);
/*
 * Gives @file, new and not yet visible to anyone, the address_space of area
 * @idx, so that its VMAs are found on a memory failure. No-op if the area is
 * not registered.
 */
void extmem_mf_attach(struct file *file, unsigned int idx);
/*
 * The previous kernel's poison record (EXTMEM_KHO_POISON_NODE) and its length
 * in @len, or NULL; extmem frees it with kho_restore_free() once read.
 */
const void *extmem_mf_incoming(size_t *len);
/* Fences the unit of area @idx at @pfn after a memory failure. In extmem/poison.rs. */
void extmem_area_pfn_failed(u32 idx, unsigned long pfn);
/*
 * Stores the physical range of the allocation a VMA of extmem maps (its
 * vm_private_data) in @phys and @len. In extmem/wrappers/c_entry.rs.
 */
void extmem_vma_allocation_range(const void *allocation, u64 *phys, u64 *len);

/* Regions' character devices, in devif/region.c. */
/* Most regions at once (minor numbers of the "extmem_region" major). */
#define EXTMEM_MAX_REGIONS	256

/* What /sys/class/extmem_region/<name>/ shows; fixed for a region's life. */
struct extmem_region_node {
	u64 size;		/* bytes */
	u64 align;		/* physical alignment in bytes */
	u64 phys;		/* physical base address */
	s32 nid;		/* NUMA node */
	u32 uid;		/* owner of the device node, in init_user_ns */
	u32 gid;		/* group of the device node, in init_user_ns */
	u32 mode;		/* permission bits of the device node */
	bool sticky;		/* survives kexec */
};

struct extmem_region_dev;
struct file_operations;
struct inode;
/*
 * Maps @uid and @gid of the current user namespace to init_user_ns in
 * @kuid and @kgid; -EINVAL if either has no mapping.
 */
int extmem_region_ids(u32 uid, u32 gid, u32 *kuid, u32 *kgid);
/*
 * Creates the device @name of the class "extmem_region" with the devtmpfs
 * node extmem_region/@name (owner, group and mode from @node) whose files
 * use @fops. @data is for @fops's open (extmem_region_dev_data()); the
 * device calls @drop_data(@data) when it is freed, also when this fails.
 * Returns the device or an ERR_PTR (-EEXIST: the name is taken, -ENOSPC:
 * EXTMEM_MAX_REGIONS reached).
 */
struct extmem_region_dev *
extmem_region_dev_add(const char *name, const struct extmem_region_node *node,
		      const struct file_operations *fops, void *data,
		      void (*drop_data)(void *data));
/* Removes the device; its data is dropped once nothing holds the device. */
void extmem_region_dev_del(struct extmem_region_dev *rd);
/* The @data of the region device whose node @inode is (in fops->open). */
void *extmem_region_dev_data(struct inode *inode);

/* HugeTLB conversion, in hugetlb_conv/conv.c; see there. */
struct kobject;
/*
 * Sets how many HugeTLB pages of @page_size bytes on @nid extmem backs and
 * stores the resulting count in @count (also on -EBUSY). Returns 0,
 * -EINVAL (not 2 MiB or 1 GiB, bad node), -EOPNOTSUPP (no such hstate),
 * -ENODEV (no area on @nid), -ENOSPC (not enough extmem; nothing changed),
 * -EBUSY (pages in use stayed), or a memory hotplug error.
 */
int extmem_hugetlb_set(int nid, u64 page_size, u64 target, u64 *count);
/* Stores in @count how many HugeTLB pages of @page_size on @nid extmem backs. */
int extmem_hugetlb_count(int nid, u64 page_size, u64 *count);
/* Creates /sys/kernel/mm/extmem/nodeN/ for each node with an area. */
int extmem_hugetlb_sysfs_init(struct kobject *parent);
/*
 * Allocates @len bytes aligned to @align from an area of @nid for the
 * conversion. Returns the physical address, -ENODEV (no area on @nid),
 * -ENOMEM (no such free range) or -EINVAL (bad @len or @align). Defined in
 * hugetlb_conv/glue.rs.
 */
s64 extmem_conv_alloc(int nid, u64 len, u64 align);
/* Frees a range extmem_conv_alloc() returned. Defined in hugetlb_conv/glue.rs. */
void extmem_conv_free(u64 phys, u64 len);

/*
 * Runs @fn(@data, i) for i in 0..n on n kthreads at once, thread i bound to
 * the i-th online CPU (n at most num_online_cpus()), and waits for all of
 * them. Returns n, or 0 if the threads could not be created (then @fn did
 * not run). May sleep. In extmem/cpus.c, for the KUnit cases.
 */
u32 extmem_run_on_cpus(u32 n, void (*fn)(void *data, u32 i), void *data);
/* num_online_cpus(), which is inline. In extmem/cpus.c. */
u32 extmem_nr_online_cpus(void);

#endif /* _MM_EXTMEM_INTERNAL_H */
