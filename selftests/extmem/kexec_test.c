// SPDX-License-Identifier: GPL-2.0
/*
 * extmem allocations across kexec: preserve, kexec, retrieve, verify.
 *
 * One program for every kernel of a run; the stage comes from
 * extmem_stage=N on the kernel command line (1 when absent), and the next
 * kernel is started with kexec_file_load() of /kernel and /initrd.img (the
 * VM runner nests them) with extmem_stage=N+1. EXTMEM_KEXEC_MODE selects:
 *
 *   hops     stage 1 preserves three allocations (1 GiB on node 0, 2 MiB and
 *            4 KiB on node 1) and allocates a fourth that it does not
 *            preserve; stage 2 retrieves and checks them, checks the fourth is
 *            free again, preserves them again with a fifth; stage 3 checks
 *            them again, leaves the fifth unretrieved and checks that finishing
 *            the session frees it.
 *   corrupt  stage 1 preserves 1 GiB on node 0 and 2 MiB on node 1 and sets the
 *            test knob that damages area 0's handed-over state; stage 2 checks
 *            area 0 is quarantined, its allocation cannot be retrieved, the
 *            page allocator did not get its memory, and node 1's allocation
 *            is intact. Before that, it sets the knob that makes the
 *            state's final write fail and checks reboot(KEXEC) is refused
 *            with a reason logged. Stage 2 then preserves 2 MiB on node 1
 *            and sets the knob that damages the state's header: stage 3
 *            rejects the whole state and must fail closed, with every area
 *            of the separate area record carved and quarantined (none of
 *            it reaches the page allocator) and the allocation lost.
 *   scale    two areas of very different sizes (1 GiB on node
 *            EXTMEM_SCALE_SMALL, default 0; 1000 GiB on node
 *            EXTMEM_SCALE_LARGE, default 1, of a VM whose 1 TiB node QEMU
 *            backs only where it is touched): each must be ready in about
 *            the same time. Stage 1 checks the fresh boot (areaN/ready_us,
 *            the larger area within EXTMEM_SCALE_RATIO (default 2) times
 *            the smaller), preserves the same EXTMEM_SCALE_N (default 1000)
 *            allocations of 4 KiB in each area, each aligned to
 *            EXTMEM_SCALE_ALIGN (default 8 KiB: 1000 separate runs within
 *            8 MiB, so that the allocations' zeroing touches few of QEMU's
 *            2 MiB pages), and kexecs; stage 2 checks the same ratio for
 *            the restored areas, and the allocations are held. An area
 *            built before both (the run puts one on another node first)
 *            takes the first-execution costs (TCG translates code the
 *            first time it runs) that would otherwise fall on the first.
 *            BENCH lines carry the times and the metadata sizes.
 *   memfd    (no extmem= in stage 1) stage 1 preserves a 64 MiB memfd and
 *            kexecs with an extmem=<node>:128M@<phys> whose window holds
 *            some of its pages; stage 2 checks the entry was refused with a
 *            reason (no area) and the memfd comes back intact.
 *
 * Results are KTAP, printed as they happen (the console outlives the kernel).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/extmem.h>
#include <linux/reboot.h>

#include "extmem_util.h"
#include "luo_util.h"

#ifndef MPOL_BIND
#define MPOL_BIND	2
#endif
#define SZ_4K	(4096ULL)
#define SZ_2M	(2ULL << 20)
#define SZ_1G	(1ULL << 30)

static int stage = 1;
static char cmdline[4096];

struct spec {
	const char *label;
	uint64_t len, align;
	int node;
	uint64_t token;
};

static const struct spec A = { "vm-a", SZ_1G, SZ_1G, 0, 1 };
static const struct spec B = { "vm-b", SZ_2M, SZ_2M, 1, 2 };
static const struct spec C = { "vm-c", SZ_4K, 0, 1, 3 };
static const struct spec D = { "not-preserved", 8 * SZ_2M / 2, 0, 1, 0 };
static const struct spec E = { "never-retrieved", 4 * SZ_4K, 0, 1, 4 };
static const struct spec F = { "in-a-rejected-state", SZ_2M, SZ_2M, 1, 5 };

static uint64_t seed_of(const char *label)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*label)
		h = (h ^ (unsigned char)*label++) * 0x100000001b3ULL;
	return h;
}

/* Fills (or checks) every 8-byte word with a pattern of the label. */
static uint64_t pattern(uint64_t *p, uint64_t len, const char *label, int fill)
{
	uint64_t s = seed_of(label), bad = 0, i;

	for (i = 0; i < len / 8; i++) {
		uint64_t v = s ^ (i * 0x9e3779b97f4a7c15ULL);

		if (fill)
			p[i] = v;
		else if (p[i] != v)
			bad++;
	}
	return bad;
}

static int dev_fd(void)
{
	static int fd = -1;

	if (fd < 0)
		fd = open("/dev/extmem", O_RDWR);
	return fd;
}

static int alloc(const struct spec *s)
{
	struct extmem_alloc_args a = {
		.size = sizeof(a), .length = s->len, .alignment = s->align,
		.node = s->node,
	};

	snprintf(a.label, sizeof(a.label), "%s", s->label);
	return ioctl(dev_fd(), EXTMEM_IOC_ALLOC, &a);
}

static void *map(int fd, uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint64_t sysfs_u64(int area, const char *attr)
{
	char path[128];
	unsigned long long v = ~0ULL;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/mm/extmem/area%d/%s", area, attr);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lli", &v) != 1)
			v = ~0ULL;
		fclose(f);
	}
	return v;
}

static void sysfs_str(int area, const char *attr, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/mm/extmem/area%d/%s", area, attr);
	buf[0] = '\0';
	f = fopen(path, "r");
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

/* The area on @node (the VM has one per node). */
static int area_of(int node)
{
	int i;

	for (i = 0; i < 16; i++)
		if ((int)sysfs_u64(i, "node") == node)
			return i;
	return -1;
}

static uint64_t node_memtotal(int node)
{
	char path[96], line[256];
	unsigned long long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Node %*d MemTotal: %llu", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Allocates, fills and (with a token) preserves one allocation; returns its fd. */
static int make(const struct spec *s, int session)
{
	int fd = alloc(s);
	void *p;

	if (fd < 0) {
		result(0, "alloc-%s # %s", s->label, strerror(errno));
		return -1;
	}
	p = map(fd, s->len);
	pattern(p, s->len, s->label, 1);
	munmap(p, s->len);
	if (s->token)
		result(preserve(session, fd, s->token) == 0, "preserve-%s", s->label);
	else
		result(1, "alloc-%s-unpreserved", s->label);
	return fd;
}

/* Retrieves one allocation and checks what it is and holds; returns its fd. */
static int check(const struct spec *s, int session)
{
	struct extmem_info info = { .size = sizeof(info) };
	int fd = retrieve(session, s->token);
	uint64_t bad;
	void *p;

	if (fd < 0) {
		result(0, "retrieve-%s # %s", s->label, strerror(-fd));
		return -1;
	}
	result(ioctl(fd, EXTMEM_IOC_INFO, &info) == 0 && info.length == s->len &&
	       info.node == s->node && !strcmp(info.label, s->label),
	       "retrieve-%s-size-node-label", s->label);
	p = map(fd, s->len);
	bad = p ? pattern(p, s->len, s->label, 0) : ~0ULL;
	result(bad == 0, "contents-%s # %llu of %llu words differ", s->label,
	       (unsigned long long)bad, (unsigned long long)(s->len / 8));
	if (p)
		munmap(p, s->len);
	return fd;
}

static void kexec_next(int session)
{
	int ret;

	/* EXTMEM_KEXEC_HOLD=1: another program kexecs (make demo). */
	if (env_u64("EXTMEM_KEXEC_HOLD", 0)) {
		ret = hold_session(session);
		result(ret > 0, "session-held-by-pid-%d-until-the-kexec", ret);
		return;
	}
	ret = kexec_load_next(cmdline, stage);

	result(ret == 0, "kexec-file-load # %s", ret ? strerror(-ret) : "loaded");
	if (ktap.demo)
		printf("\n  ... kexec into the new kernel ...\n\n");
	else
		printf("# stage %d done: %d failed; kexec into stage %d\n", stage, ktap.failed, stage + 1);
	fflush(stdout);
	sync();
	if (ret == 0)
		reboot(LINUX_REBOOT_CMD_KEXEC);
	result(0, "reboot-kexec # %s", strerror(errno));
}

static void log_restore_time(void)
{
	char line[300];

	if (klog_has("extmem: restored", line, sizeof(line)))
		note("%s", line);
	if (klog_has("extmem: pool of", line, sizeof(line)))
		note("%s", line);
}

/*
 * EXTMEM_KEXEC_NODE1_OTHERS="B1 B2 ...": bytes that other programs of the
 * run hold on node 1 while this one runs in stage 1, 2, ... (a KVM guest
 * preserved beside this test's allocations), left out of the free-bytes
 * checks.
 */
static uint64_t others_on_node1(void)
{
	const char *p = getenv("EXTMEM_KEXEC_NODE1_OTHERS");
	uint64_t v = 0;
	char *end;
	int i;

	for (i = 1; p && *p && i <= stage; i++) {
		v = strtoull(p, &end, 0);
		if (end == p)
			return 0;
		p = end;
	}
	return i > stage ? v : 0;
}

/*
 * Bytes of the regions on @node (/sys/class/extmem_region/): the region
 * test, which runs before this one in the kexec boot, keeps a sticky region
 * there, which the free-byte checks below leave out.
 */
static uint64_t region_bytes(int node)
{
	char path[300], buf[64];
	struct dirent *e;
	uint64_t sum = 0;
	DIR *d = opendir("/sys/class/extmem_region");

	while (d && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/extmem_region/%s/target_node", e->d_name);
		f = fopen(path, "r");
		if (!f || !fgets(buf, sizeof(buf), f) || atoi(buf) != node) {
			if (f)
				fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/sys/class/extmem_region/%s/size", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f))
			sum += strtoull(buf, NULL, 0);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return sum;
}

static void freed_memory_reads_zero(void);

static void hops(int last)
{
	int a1 = area_of(1), s, fa, fb, fc, fd;
	/* What the allocations here can use of node 1's area. */
	uint64_t size1 = sysfs_u64(a1, "size") - region_bytes(1) - others_on_node1();

	if (stage == 1) {
		s = session_create("extmem-test");
		result(s >= 0, "create-session # %s", s < 0 ? strerror(-s) : "ok");
		log_restore_time();
		make(&A, s);
		make(&B, s);
		make(&C, s);
		fd = make(&D, s);	/* not preserved: free after the kexec */
		if (fd >= 0) {
			struct extmem_info info = { .size = sizeof(info) };

			/*
			 * Stage 2 checks that D's bytes read zero when allocated
			 * again, with background zeroing off so that the allocation
			 * itself must zero them: the clean state does not cross a
			 * kexec, all free memory is dirty.
			 */
			if (strstr(cmdline, " extmem_stage="))
				*strstr(cmdline, " extmem_stage=") = '\0';
			if (ioctl(fd, EXTMEM_IOC_INFO, &info) == 0)
				snprintf(cmdline + strlen(cmdline), sizeof(cmdline) - strlen(cmdline),
					 " extmem.prezero=0 extmem_zero_phys=%llu",
					 (unsigned long long)info.phys);
		}
		kexec_next(s);
		return;
	}
	log_restore_time();
	if (stage == 2)
		freed_memory_reads_zero();
	s = session_retrieve("extmem-test");
	result(s >= 0, "retrieve-session # %s", s < 0 ? strerror(-s) : "ok");
	if (stage == last && last > 2)
		result(sysfs_u64(a1, "free_bytes") == size1 - B.len - C.len - E.len,
		       "node1-free-before-finish-excludes-unretrieved");
	else
		result(sysfs_u64(a1, "free_bytes") == size1 - B.len - C.len,
		       "node1-free-is-size-minus-preserved # the unpreserved allocation is free again");
	result(sysfs_u64(area_of(0), "free_bytes") == 0, "node0-holds-the-1GiB-allocation");
	fa = check(&A, s);
	fb = check(&B, s);
	fc = check(&C, s);
	result(finish(s) == 0, "finish-session");
	result(sysfs_u64(a1, "free_bytes") == size1 - B.len - C.len,
	       "node1-free-after-finish # %llu", (unsigned long long)sysfs_u64(a1, "free_bytes"));
	if (stage == last) {
		if (last > 2)
			result(klog_has("was not retrieved; freed", NULL, 0),
			       "unretrieved-allocation-freed-and-logged");
		return;
	}
	s = session_create("extmem-test");
	result(s >= 0, "create-session-again");
	result(preserve(s, fa, A.token) == 0, "preserve-again-%s", A.label);
	result(preserve(s, fb, B.token) == 0, "preserve-again-%s", B.label);
	result(preserve(s, fc, C.token) == 0, "preserve-again-%s", C.label);
	fd = make(&E, s);
	(void)fd;
	kexec_next(s);
}

static int knob(const char *name, const char *val)
{
	char path[128];
	FILE *k;

	snprintf(path, sizeof(path), "/sys/kernel/debug/extmem/%s", name);
	k = fopen(path, "w");
	return k && fputs(val, k) >= 0 && fclose(k) == 0;
}

/* A failed write of the handover state refuses the kexec, and says why. */
static void refused_kexec(void)
{
	char line[300] = "";
	int rc, err;

	result(knob("fail_handover", "Y"), "set-fail-knob");
	rc = kexec_load_next(cmdline, stage);
	result(rc == 0, "kexec-file-load-to-be-refused # %s", rc ? strerror(-rc) : "loaded");
	fflush(stdout);
	sync();
	rc = reboot(LINUX_REBOOT_CMD_KEXEC);
	err = errno;
	result(rc < 0, "failed-handover-write-refuses-the-kexec # %s",
	       rc < 0 ? strerror(err) : "reboot returned 0");
	result(klog_has("kexec refused: cannot write the handover state", line, sizeof(line)),
	       "refusal-logged # %s", line);
	result(knob("fail_handover", "N"), "clear-fail-knob");
}

/* The number after @key (" key=N") on this kernel's command line, or 0. */
static uint64_t cmdline_u64(const char *key)
{
	const char *p = strstr(cmdline, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/*
 * Stage 2 of hops: the previous kernel wrote a pattern into D and kexeced
 * with D allocated but not preserved, and with extmem.prezero=0 for this
 * kernel. All free memory must count as dirty here, and D's range must read
 * zero when allocated again (zeroed by the allocation). Then background
 * zeroing is switched back on.
 */
static void freed_memory_reads_zero(void)
{
	uint64_t phys = cmdline_u64(" extmem_zero_phys="), sync0, sync1, bad = 0, i;
	struct extmem_info info = { .size = sizeof(info) };
	struct spec again = { "freed-before-kexec", D.len, 0, D.node, 0 };
	int a1 = area_of(D.node), fd, prezero_off;
	char pz[8] = "";
	uint64_t *p;

	if (!phys) {
		note("no extmem_zero_phys= on the command line: nothing to check");
		return;
	}
	{
		FILE *f = fopen("/sys/module/extmem/parameters/prezero", "r");

		if (f) {
			if (!fgets(pz, sizeof(pz), f))
				pz[0] = '\0';
			fclose(f);
		}
	}
	prezero_off = pz[0] == 'N' || pz[0] == '0';
	result(prezero_off, "prezero-off-by-the-command-line # %s", pz);
	if (prezero_off)
		result(sysfs_u64(a1, "dirty_bytes") == sysfs_u64(a1, "free_bytes") &&
		       sysfs_u64(a1, "clean_bytes") == 0,
		       "all-free-memory-dirty-after-kexec # dirty %llu free %llu",
		       (unsigned long long)sysfs_u64(a1, "dirty_bytes"),
		       (unsigned long long)sysfs_u64(a1, "free_bytes"));
	sync0 = sysfs_u64(a1, "sync_zeroed_bytes");
	fd = alloc(&again);
	if (fd >= 0 && ioctl(fd, EXTMEM_IOC_INFO, &info) == 0 &&
	    (info.phys > phys || info.phys + info.length < phys + D.len)) {
		/* Elsewhere: take the largest free run, which must hold D's range. */
		close(fd);
		again.len = sysfs_u64(a1, "largest_free_run");
		fd = alloc(&again);
		if (fd < 0 || ioctl(fd, EXTMEM_IOC_INFO, &info) ||
		    info.phys > phys || info.phys + info.length < phys + D.len) {
			result(0, "allocate-the-freed-range-again # %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			return;
		}
	}
	if (fd < 0) {
		result(0, "allocate-the-freed-range-again # %s", strerror(errno));
		return;
	}
	sync1 = sysfs_u64(a1, "sync_zeroed_bytes");
	p = mmap(NULL, D.len, PROT_READ, MAP_SHARED, fd, phys - info.phys);
	result(p != MAP_FAILED, "map-the-freed-range");
	if (p != MAP_FAILED) {
		for (i = 0; i < D.len / 8; i++)
			bad += p[i] != 0;
		munmap(p, D.len);
	}
	result(p != MAP_FAILED && bad == 0,
	       "memory-freed-before-kexec-reads-zero # %llu of %llu words not zero",
	       (unsigned long long)bad, (unsigned long long)(D.len / 8));
	if (prezero_off)
		result(sync1 - sync0 >= D.len, "the-allocation-zeroed-it # %llu bytes",
		       (unsigned long long)(sync1 - sync0));
	close(fd);
	{
		FILE *f = fopen("/sys/module/extmem/parameters/prezero", "w");

		result(f && fputs("1", f) >= 0 && fclose(f) == 0, "prezero-back-on");
	}
}

/*
 * Stage 3 of corrupt: stage 2 damaged the header of the whole state. Its
 * areas must come from the area record, all quarantined: none of their
 * memory in the page allocator, none handed out, the allocation lost.
 */
static void state_rejected_as_a_whole(void)
{
	char line[300] = "", q[128], key[64];
	uint64_t before, area_kb, mt;
	int node, a, s, fd;

	result(klog_has("the previous kernel's state is rejected", line, sizeof(line)),
	       "state-rejected # %s", line);
	line[0] = '\0';
	result(klog_has("quarantining the", line, sizeof(line)) && strstr(line, "area record"),
	       "areas-carved-from-the-area-record # %s", line);
	for (node = 0; node < 2; node++) {
		a = area_of(node);
		sysfs_str(a, "quarantined", q, sizeof(q));
		result(a >= 0 && q[0] && strcmp(q, "none"), "node%d-area-quarantined # %s",
		       node, a >= 0 ? q : "no area");
		result(a >= 0 && sysfs_u64(a, "free_bytes") == 0,
		       "node%d-area-hands-out-nothing", node);
		snprintf(key, sizeof(key), "extmem_s2_memtotal%d=", node);
		before = cmdline_u64(key);
		snprintf(key, sizeof(key), "extmem_s2_area_kb%d=", node);
		area_kb = cmdline_u64(key);
		mt = node_memtotal(node);
		/* Half the area: other boot-to-boot differences stay well below it. */
		result(before && area_kb && mt < before + area_kb / 2,
		       "node%d-page-allocator-did-not-get-the-area # MemTotal %llu kB, before %llu kB, area %llu kB",
		       node, (unsigned long long)mt, (unsigned long long)before,
		       (unsigned long long)area_kb);
	}
	s = session_retrieve("extmem-rejected");
	fd = s >= 0 ? retrieve(s, F.token) : -1;
	result(fd < 0, "allocation-of-the-rejected-state-not-retrievable # %s",
	       fd < 0 ? "not retrievable" : "retrieved!");
	if (s >= 0)
		finish(s);
}

static void corrupt(void)
{
	int s, fd, a0 = area_of(0);
	char q[128], line[300];
	uint64_t mt, before;

	if (stage == 1) {
		FILE *k;

		s = session_create("extmem-test");
		result(s >= 0, "create-session");
		make(&A, s);
		make(&B, s);
		refused_kexec();
		k = fopen("/sys/kernel/debug/extmem/corrupt_handover", "w");
		result(k && fputs("Y", k) >= 0 && fclose(k) == 0, "set-corrupt-knob");
		snprintf(cmdline + strlen(cmdline), sizeof(cmdline) - strlen(cmdline),
			 " extmem_memtotal0=%llu", (unsigned long long)node_memtotal(0));
		kexec_next(s);
		return;
	}
	if (stage == 3) {
		state_rejected_as_a_whole();
		return;
	}
	sysfs_str(a0, "quarantined", q, sizeof(q));
	result(q[0] && strcmp(q, "none"), "area0-quarantined # %s", q);
	result(sysfs_u64(a0, "free_bytes") == 0, "area0-hands-out-nothing");
	result(klog_has("quarantined", line, sizeof(line)), "reason-logged # %s", line);
	s = session_retrieve("extmem-test");
	result(s >= 0, "retrieve-session");
	fd = retrieve(s, A.token);
	result(fd < 0, "quarantined-allocation-not-retrievable # %s",
	       fd < 0 ? strerror(-fd) : "retrieved!");
	check(&B, s);
	finish(s);
	before = 0;
	if (strstr(cmdline, "extmem_memtotal0="))
		before = strtoull(strstr(cmdline, "extmem_memtotal0=") + 17, NULL, 10);
	mt = node_memtotal(0);
	/* Half the area: other boot-to-boot differences stay well below it. */
	result(before && mt < before + (sysfs_u64(a0, "size") >> 10) / 2,
	       "page-allocator-did-not-get-the-area # node0 MemTotal %llu kB, before %llu kB",
	       (unsigned long long)mt, (unsigned long long)before);

	/* Next: a state damaged as a whole (header checksum). */
	s = session_create("extmem-rejected");
	result(s >= 0, "create-session-for-a-rejected-state");
	make(&F, s);
	result(knob("corrupt_handover_header", "Y"), "set-corrupt-header-knob");
	/* kexec_load_next() cuts what follows extmem_stage= and appends it anew. */
	if (strstr(cmdline, " extmem_stage="))
		*strstr(cmdline, " extmem_stage=") = '\0';
	for (int node = 0; node < 2; node++)
		snprintf(cmdline + strlen(cmdline), sizeof(cmdline) - strlen(cmdline),
			 " extmem_s2_memtotal%d=%llu extmem_s2_area_kb%d=%llu", node,
			 (unsigned long long)node_memtotal(node), node,
			 (unsigned long long)(sysfs_u64(area_of(node), "size") >> 10));
	kexec_next(s);
}

/*
 * The areas' readiness (ready_us, metadata_bytes and map_us from sysfs, the
 * breakdown from the log line): one BENCH line per area, and the larger
 * area's whole readiness within EXTMEM_SCALE_RATIO times the smaller's. The
 * write-back mapping (one 1 GiB page-table entry per GiB) is made after the
 * area is ready, by its zeroer thread, and everything that needs it waits
 * for it: it is not part of ready_us, and is reported as mapping_us.
 */
static void scale_ready(const char *when)
{
	double limit = (double)env_u64("EXTMEM_SCALE_RATIO", 2);
	uint64_t us[2], meta[2], size[2], map[2];
	char line[300], key[64];
	int i, tries, a[2] = { area_of((int)env_u64("EXTMEM_SCALE_SMALL", 0)),
			       area_of((int)env_u64("EXTMEM_SCALE_LARGE", 1)) };

	for (i = 0; i < 2; i++) {
		us[i] = sysfs_u64(a[i], "ready_us");
		meta[i] = sysfs_u64(a[i], "metadata_bytes");
		size[i] = sysfs_u64(a[i], "size");
		/* EBUSY while the zeroer thread is still mapping the area. */
		for (tries = 0; tries < 100; tries++) {
			map[i] = sysfs_u64(a[i], "map_us");
			if (map[i] != ~0ULL)
				break;
			usleep(10000);
		}
		snprintf(key, sizeof(key), "extmem: area %d: %llu MiB ready", a[i],
			 (unsigned long long)(size[i] >> 20));
		if (klog_has(key, line, sizeof(line)))
			note("%s", line);
		snprintf(key, sizeof(key), "extmem: area %d: mapped write-back", a[i]);
		if (klog_has(key, line, sizeof(line)))
			note("%s", line);
		printf("BENCH {\"bench\":\"pool-ready\",\"when\":\"%s\",\"area_gib\":%llu,"
		       "\"ready_us\":%llu,\"mapping_us\":%llu,\"metadata_kib\":%llu}\n", when,
		       (unsigned long long)(size[i] >> 30), (unsigned long long)us[i],
		       (unsigned long long)map[i], (unsigned long long)(meta[i] >> 10));
	}
	if (klog_has("extmem: pool of", line, sizeof(line)))
		note("%s", line);
	result(a[0] >= 0 && a[1] >= 0 && size[1] >= 500 * size[0], "%s-two-areas # %llu and %llu GiB",
	       when, (unsigned long long)(size[0] >> 30), (unsigned long long)(size[1] >> 30));
	result(meta[1] > 500 * meta[0] / 2, "%s-metadata-sizes # %llu KiB and %llu KiB", when,
	       (unsigned long long)(meta[0] >> 10), (unsigned long long)(meta[1] >> 10));
	result(map[0] != ~0ULL && map[1] != ~0ULL, "%s-areas-mapped-after-ready # %llu us and %llu us",
	       when, (unsigned long long)map[0], (unsigned long long)map[1]);
	printf("BENCH {\"bench\":\"pool-ready-ratio\",\"when\":\"%s\",\"small_us\":%llu,"
	       "\"large_us\":%llu,\"ratio\":%.2f,\"limit\":%.2f}\n",
	       when, (unsigned long long)us[0], (unsigned long long)us[1],
	       us[0] ? (double)us[1] / (double)us[0] : 0.0, limit);
	result(us[0] != ~0ULL && us[1] != ~0ULL &&
	       (double)us[1] <= limit * (double)(us[0] ? us[0] : 1),
	       "%s-ready-independent-of-size # %llu us for %llu GiB, %llu us for %llu GiB (%.2fx, limit %.2fx)",
	       when, (unsigned long long)us[0], (unsigned long long)(size[0] >> 30),
	       (unsigned long long)us[1], (unsigned long long)(size[1] >> 30),
	       us[0] ? (double)us[1] / (double)us[0] : 0.0, limit);
}

/* @n allocations of 4 KiB in the area of @node, each aligned to EXTMEM_SCALE_ALIGN. */
static int scale_preserve(int s, int node, uint64_t n, uint64_t token0)
{
	uint64_t align = env_u64("EXTMEM_SCALE_ALIGN", 8192), i, ok = 0;

	for (i = 0; i < n; i++) {
		struct extmem_alloc_args a = {
			.size = sizeof(a), .length = SZ_4K, .alignment = align, .node = node,
		};
		int fd;

		snprintf(a.label, sizeof(a.label), "scale-%d-%llu", node, (unsigned long long)i);
		fd = ioctl(dev_fd(), EXTMEM_IOC_ALLOC, &a);
		if (fd < 0)
			break;
		if (preserve(s, fd, token0 + i))
			break;
		/* The session holds the file. */
		close(fd);
		ok++;
	}
	result(ok == n, "preserve-%llu-allocations-on-node%d # %llu preserved, aligned to %llu KiB",
	       (unsigned long long)n, node, (unsigned long long)ok,
	       (unsigned long long)(align >> 10));
	return ok == n;
}

static void scale(void)
{
	uint64_t n = env_u64("EXTMEM_SCALE_N", 1000);
	int nodes[2] = { (int)env_u64("EXTMEM_SCALE_SMALL", 0),
			 (int)env_u64("EXTMEM_SCALE_LARGE", 1) };
	int s, i, node;

	if (stage == 1) {
		scale_ready("fresh");
		s = session_create("extmem-scale");
		result(s >= 0, "create-session # %s", s < 0 ? strerror(-s) : "ok");
		for (i = 0; i < 2; i++)
			if (!scale_preserve(s, nodes[i], n, 1 + i * n))
				return;
		kexec_next(s);
		return;
	}
	scale_ready("after-kexec");
	for (i = 0; i < 2; i++) {
		int a = area_of(nodes[i]);

		node = nodes[i];

		result(sysfs_u64(a, "free_bytes") == sysfs_u64(a, "size") - n * SZ_4K,
		       "node%d-holds-the-%llu-preserved-allocations", node, (unsigned long long)n);
	}
	s = session_retrieve("extmem-scale");
	result(s >= 0, "retrieve-session # %s", s < 0 ? strerror(-s) : "ok");
	node = s >= 0 ? retrieve(s, 2 * n) : -1;
	result(node >= 0, "retrieve-the-last-one # %s", node < 0 ? strerror(-node) : "ok");
}

#define MEMFD_LEN	(64ULL << 20)
#define MEMFD_TOKEN	7

static uint64_t memfd_word(uint64_t i)
{
	return (i * 0x9e3779b97f4a7c15ULL) ^ 0x6d656d66642d7631ULL;
}

/* The 128 MiB window holding most of the pages mapped at @p, and its node. */
static int memfd_window(const uint64_t *p, uint64_t *window)
{
	static uint32_t count[1 << 12];
	int pm = open("/proc/self/pagemap", O_RDONLY), nid = -1;
	uint64_t i, best = 0, e, w;
	char path[128];

	if (pm < 0)
		return -1;
	for (i = 0; i < MEMFD_LEN / SZ_4K; i++) {
		if (pread(pm, &e, 8, ((uintptr_t)p / SZ_4K + i) * 8) != 8 || !(e >> 63))
			continue;
		w = ((e & ((1ULL << 55) - 1)) * SZ_4K) >> 27;
		/* Window 0 holds the firmware's first page: never memory. */
		if (w && w < (1 << 12) && ++count[w] > count[best])
			best = w;
	}
	close(pm);
	if (!count[best])
		return -1;
	note("memfd: %u of its pages in [%#llx, +128M)", count[best],
	     (unsigned long long)(best << 27));
	*window = best << 27;
	/* The memory block of the window names its node. */
	for (i = 0; i < 8 && nid < 0; i++) {
		uint64_t bs = 0;
		FILE *f = fopen("/sys/devices/system/memory/block_size_bytes", "r");

		if (f) {
			if (fscanf(f, "%llx", (unsigned long long *)&bs) != 1)
				bs = 0;
			fclose(f);
		}
		if (!bs)
			break;
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%llu/memory%llu",
			 (unsigned long long)i, (unsigned long long)(*window / bs));
		if (!access(path, F_OK))
			nid = i;
	}
	return nid;
}

/* A memfd preserved by a kernel without extmem= survives an overlapping extmem=. */
static void memfd(void)
{
	char line[300] = "";
	uint64_t *p, i, bad = 0, window = 0;
	unsigned long node1 = 2;
	int s, fd, nid;

	if (stage == 1) {
		s = session_create("extmem-memfd");
		result(s >= 0, "create-session # %s", s < 0 ? strerror(-s) : "ok");
		/* On node 1, away from the low memory the firmware and kernel use. */
		result(syscall(SYS_set_mempolicy, MPOL_BIND, &node1, 8 * sizeof(node1)) == 0,
		       "bind-to-node1 # %s", strerror(errno));
		fd = memfd_create("extmem-memfd", 0);
		result(fd >= 0 && ftruncate(fd, MEMFD_LEN) == 0, "memfd-64MiB");
		p = mmap(NULL, MEMFD_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		result(p != MAP_FAILED, "map-memfd");
		if (p == MAP_FAILED)
			return;
		for (i = 0; i < MEMFD_LEN / 8; i++)
			p[i] = memfd_word(i);
		result(preserve(s, fd, MEMFD_TOKEN) == 0, "preserve-memfd");
		/* After preserving: LUO migrates the pages out of CMA (KHO scratch). */
		nid = memfd_window(p, &window);
		result(nid >= 0, "memfd-window-and-node # node %d", nid);
		snprintf(cmdline + strlen(cmdline), sizeof(cmdline) - strlen(cmdline),
			 " extmem=%d:128M@%#llx", nid < 0 ? 0 : nid, (unsigned long long)window);
		note("next kernel: extmem=%d:128M@%#llx", nid, (unsigned long long)window);
		kexec_next(s);
		return;
	}
	result(klog_has("holds memory the previous kernel preserved", line, sizeof(line)),
	       "overlapping-entry-refused-with-a-reason # %s", line);
	result(!klog_has("(fixed)", NULL, 0), "no-area-carved");
	s = session_retrieve("extmem-memfd");
	result(s >= 0, "retrieve-session # %s", s < 0 ? strerror(-s) : "ok");
	fd = s >= 0 ? retrieve(s, MEMFD_TOKEN) : -1;
	result(fd >= 0, "retrieve-memfd # %s", fd < 0 ? strerror(-fd) : "ok");
	if (fd < 0)
		return;
	p = mmap(NULL, MEMFD_LEN, PROT_READ, MAP_SHARED, fd, 0);
	result(p != MAP_FAILED, "map-retrieved-memfd");
	if (p == MAP_FAILED)
		return;
	for (i = 0; i < MEMFD_LEN / 8; i++)
		bad += p[i] != memfd_word(i);
	result(bad == 0, "memfd-intact # %llu of %llu words differ", (unsigned long long)bad,
	       (unsigned long long)(MEMFD_LEN / 8));
	result(finish(s) == 0, "finish-session");
}

int main(void)
{
	const char *mode = getenv("EXTMEM_KEXEC_MODE");

	stage = kernel_stage(cmdline, sizeof(cmdline));
	ktap.prefix = "kexec";
	ktap.stage = stage;
	if (stage < 0)
		return 1;
	ktap.demo = mode && !strcmp(mode, "demo");
	if (!ktap.demo) {
		printf("TAP version 13\n");
		note("extmem kexec test, mode %s, stage %d", mode ? mode : "hops", stage);
	}
	if (mode && !strcmp(mode, "memfd")) {
		printf("TAP version 13\n");
		note("extmem kexec test, mode memfd, stage %d", stage);
		if (luo_fd() < 0)
			result(0, "open-dev-liveupdate # %s", strerror(errno));
		else
			memfd();
		printf("1..%d\n", ktap.n);
		return ktap.failed ? 1 : 0;
	}
	if (dev_fd() < 0 || luo_fd() < 0) {
		/*
		 * Run by hand, a kernel without extmem or live update is a
		 * skip. A run that asked for a mode booted with kho=on
		 * liveupdate=on: no devices there means KHO or LUO failed to
		 * start (e.g. no room for the KHO scratch areas), a failure.
		 */
		if (!mode) {
			printf("ok 1 kexec-stage%d # SKIP no /dev/extmem or /dev/liveupdate\n",
			       stage);
			return 4;
		}
		printf("not ok 1 kexec-stage%d # no /dev/extmem or /dev/liveupdate%s\n", stage,
		       klog_has("KHO: Failed", NULL, 0) ? " (the log says KHO failed)" : "");
		return 1;
	}
	if (mode && !strcmp(mode, "corrupt")) {
		corrupt();
	} else if (mode && !strcmp(mode, "scale")) {
		struct rlimit r = { 4096, 4096 };

		setrlimit(RLIMIT_NOFILE, &r);
		scale();
	} else {
		hops(ktap.demo ? 2 : 3);
	}
	if (!ktap.demo)
		printf("1..%d\n", ktap.n);
	return ktap.failed ? 1 : 0;
}
