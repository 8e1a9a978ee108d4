// SPDX-License-Identifier: GPL-2.0
/*
 * /init of the guest that QEMU boots inside the test VM with its RAM in an
 * extmem region (selftests/vm/tools/extmem-qemu-test). It prints a marker
 * on the serial console, fills 64 MiB of its own memory page by page with a
 * pattern (a magic line at the start and at the end of every 4 KiB page)
 * and reboots, which ends QEMU (-no-reboot). The host then counts the
 * pattern's pages through the region: the guest's RAM really was extmem.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC	"EXTMEM-QEMU-GUEST-PATTERN-v1\n"
#define LEN	(64UL << 20)
#define PAGE	4096UL

int main(void)
{
	size_t m = strlen(MAGIC), o, pages = 0;
	char *p;
	int fd;

	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	fd = open("/dev/ttyS0", O_RDWR | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	printf("EXTMEM-GUEST: hello from the guest, its RAM is an extmem region\n");
	fflush(stdout);
	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		 -1, 0);
	if (p != MAP_FAILED) {
		for (o = 0; o < LEN; o += PAGE, pages++) {
			memcpy(p + o, MAGIC, m);
			memcpy(p + o + PAGE - m, MAGIC, m);
		}
	}
	printf("EXTMEM-GUEST: wrote the pattern into %zu pages\n", pages);
	fflush(stdout);
	sync();
	reboot(RB_AUTOBOOT);
	return 0;
}
