// SPDX-License-Identifier: GPL-2.0
/*
 * upstream-kexec WORD: kexec into /kernel with /initrd.img (the image one
 * level down, packed by scripts/vm.sh with VM_KEXEC_DEPTH=1) and this
 * kernel's command line plus WORD, the way the live-update selftests'
 * init.c does between their two stages. Returns only on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char cmdline[4096];
	int fd, kfd, ifd;
	ssize_t len;

	if (argc != 2) {
		fprintf(stderr, "usage: %s WORD\n", argv[0]);
		return 2;
	}
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0) {
		perror("upstream-kexec: /proc/cmdline");
		return 1;
	}
	len = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (len < 0) {
		perror("upstream-kexec: read /proc/cmdline");
		return 1;
	}
	cmdline[len] = '\0';
	cmdline[strcspn(cmdline, "\n")] = '\0';
	if (strlen(cmdline) + strlen(argv[1]) + 2 > sizeof(cmdline)) {
		fprintf(stderr, "upstream-kexec: command line too long\n");
		return 1;
	}
	strcat(cmdline, " ");
	strcat(cmdline, argv[1]);

	kfd = open("/kernel", O_RDONLY);
	ifd = open("/initrd.img", O_RDONLY);
	if (kfd < 0 || ifd < 0) {
		perror("upstream-kexec: /kernel or /initrd.img");
		return 1;
	}
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(cmdline) + 1, cmdline, 0UL)) {
		perror("upstream-kexec: kexec_file_load");
		return 1;
	}
	printf("# upstream-kexec: loaded; kexec with \"%s\"\n", cmdline);
	fflush(stdout);
	sync();
	reboot(LINUX_REBOOT_CMD_KEXEC);
	perror("upstream-kexec: reboot");
	return 1;
}
