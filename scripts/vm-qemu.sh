#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# QEMU as the client of extmem regions, inside the test VM.
#
#   scripts/vm-qemu.sh cpio
#       pack $CACHE/vm/qemu.cpio, an extra initramfs for the test VM
#       (VM_EXTRA_CPIO of scripts/vm.sh): Debian's qemu-system-x86_64 with
#       the libraries ldd names and the firmware it loads for "-machine pc
#       -kernel" (SeaBIOS, linuxboot_dma.bin, kvmvapic.bin), and the guest:
#       the test kernel (KERNEL) and a tiny initramfs whose /init is
#       selftests/vm/qemu-guest/init.c
#
# The "qemu" boot of scripts/vm-suites.sh boots the test VM with it and runs
# selftests/vm/tools/extmem-qemu-test.
#
# Environment: KERNEL as for scripts/vm.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
KERNEL=${KERNEL:-$KCACHE/build-extmem/arch/x86/boot/bzImage}
OUT=$CACHE/vm/qemu.cpio
QEMU=/usr/bin/qemu-system-x86_64

die() { printf '[vm-qemu] FAILED: %s\n' "$*" >&2; exit 1; }

cpio_() {
	local st=$CACHE/vm/qemu-stage g=$CACHE/vm/qemu-guest f lib
	[ -x "$QEMU" ] || die "$QEMU missing (scripts/setup.sh installs qemu-system-x86)"
	[ -f "$KERNEL" ] || die "no kernel at $KERNEL"
	rm -rf "$st" "$g"
	mkdir -p "$st/usr/bin" "$st/guest" "$g"
	install -m 0755 "$QEMU" "$st/usr/bin/"
	# The shared libraries and the dynamic loader, at the paths ldd names.
	for lib in $(ldd "$QEMU" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		mkdir -p "$st$(dirname "$lib")"
		cp -L "$lib" "$st$lib"
	done
	# Firmware: Debian's QEMU searches /usr/share/qemu, then /usr/share/seabios.
	mkdir -p "$st/usr/share/qemu" "$st/usr/share/seabios"
	for f in linuxboot_dma.bin linuxboot.bin kvmvapic.bin pvh.bin; do
		cp -L "/usr/share/qemu/$f" "$st/usr/share/qemu/"
	done
	for f in bios-256k.bin bios.bin; do
		cp -L "/usr/share/seabios/$f" "$st/usr/share/seabios/"
	done
	# The guest: the test kernel and its one-program initramfs.
	cp "$KERNEL" "$st/guest/bzImage"
	gcc -static -O2 -Wall -Werror -o "$g/init" "$ROOT/selftests/vm/qemu-guest/init.c" ||
		die "compiling the guest's init"
	(cd "$g" && echo init | cpio -o -H newc --quiet) >"$st/guest/initrd.cpio"
	(cd "$st" && find . | cpio -o -H newc --quiet) >"$OUT"
	rm -rf "$st" "$g"
}

case "${1:-}" in
cpio) cpio_ ;;
*) echo "usage: $0 cpio" >&2; exit 2 ;;
esac
