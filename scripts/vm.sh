#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The extmem test VM.
#
#   scripts/vm.sh build
#       compile the test programs and extmemctl (static) and pack the base
#       initramfs
#   scripts/vm.sh run NAME CMDLINE [ENV-LINE...]
#       boot the test kernel in QEMU (TCG, -cpu max, 2 NUMA nodes of 1 GiB)
#       with CMDLINE appended, ENV-LINEs (K=V) in /etc/run.env, and write
#       .cache/vm/NAME.log (the console) and .cache/vm/NAME.results (what
#       selftests/vm/init printed between its markers). Exits non-zero if
#       the VM did not reach the end of its run.
#
# Environment: KERNEL (bzImage), VM_TIMEOUT (seconds, default 300),
# VM_MEM_NODES (default "1G 1G"), VM_SMP (vCPUs, default 2), VM_KASLR (1:
# a randomised kernel base, as distributions boot; default nokaslr), VM_APPEND
# (more kernel parameters, put before CMDLINE), VM_EXTRA_CPIO (an archive
# of more files, unpacked over the base initramfs), VM_MACHINE (QEMU's
# -machine, default pc), VM_QEMU_ARGS (more QEMU arguments, split on
# blanks: devices such as an IOMMU), VM_MONITOR (1: QEMU's human monitor on
# the unix socket .cache/vm/NAME.mon, for a helper on the host that
# injects events such as machine checks while the tests run), VM_MCE (1:
# the monitor, and scripts/vm-mce.py injecting the machine checks the tests
# ask for on the console; its log is .cache/vm/NAME.mce).
# For a big VM: VM_MEM_NODES sizes may end in G or T, VM_MEM_RESERVE=off
# backs the nodes with memory QEMU does not reserve up front (only what
# the guest touches is ever resident: a 1 TiB node on a small host),
# VM_CPU (QEMU's -cpu, default max; a 1 TiB guest needs max,phys-bits=46),
# and VM_RSS=1 samples QEMU's resident memory (VmRSS) every 0.2 s and
# writes its peak in KiB to .cache/vm/NAME.rss.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
VM=$CACHE/vm
KERNEL=${KERNEL:-$KCACHE/build-extmem/arch/x86/boot/bzImage}
TIMEOUT=${VM_TIMEOUT:-300}
mkdir -p "$VM"

die() { printf '[vm] FAILED: %s\n' "$*" >&2; exit 1; }

build() {
	local stage=$VM/stage bin
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,tmp,root}
	cp /bin/busybox "$stage/bin/busybox" || die "busybox-static not installed"
	cp "$ROOT/selftests/vm/init" "$stage/init"
	for f in "$ROOT"/selftests/vm/tools/*; do
		case "$f" in *.c) continue ;; esac
		[ -f "$f" ] && install -m 0755 "$f" "$stage/bin/"
	done
	for c in "$ROOT"/selftests/vm/tools/*.c; do
		gcc -static -O2 -Wall -Werror -I "$ROOT/include/uapi" \
			-o "$stage/bin/$(basename "$c" .c)" "$c" || die "compiling $c"
	done
	# The kernel's own UAPI headers the tests use beyond extmem's.
	mkdir -p "$VM/uapi/linux" "$VM/uapi/asm"
	cp "$SRC/include/uapi/linux/liveupdate.h" "$VM/uapi/linux/"
	# KVM's, cleaned the way scripts/headers_install.sh cleans them
	# (Debian 12's linux-libc-dev is 6.1: no KVM_SET_USER_MEMORY_REGION2,
	# no linux/bits.h). __KERNEL__ blocks stay; nothing defines it.
	for h in linux/kvm.h linux/bits.h linux/const.h linux/stddef.h \
		 ../../arch/x86/include/uapi/asm/kvm.h; do
		sed -E -e 's/([[:space:](])(__user|__force|__iomem)[[:space:]]/\1/g' \
			-e 's@^#include <linux/compiler.h>@@' \
			-e 's@#(ifndef|define|endif[[:space:]]*/[*])[[:space:]]*_UAPI@#\1 @' \
			"$SRC/include/uapi/$h" >"$VM/uapi/${h#../../arch/x86/include/uapi/}"
	done
	for c in "$ROOT"/selftests/extmem/*.c; do
		bin=$(basename "$c" .c)
		gcc -static -O2 -Wall -Werror -pthread \
			-I "$SRC/tools/testing/selftests" -I "$ROOT/include/uapi" -I "$VM/uapi" \
			-o "$stage/bin/extmem_$bin" "$c" ||
			die "compiling $c"
	done
	# extmemctl (host/extmemctl), linked statically (glibc's crt-static) so
	# that it runs in the VM without the host's libraries.
	local target=${CARGO_TARGET_DIR:-$KCACHE/cargo-target}
	RUSTFLAGS="-Ctarget-feature=+crt-static" CARGO_TARGET_DIR=$target \
		cargo build --quiet --release --locked -p extmemctl \
		--target x86_64-unknown-linux-gnu --manifest-path "$ROOT/Cargo.toml" ||
		die "building extmemctl"
	install -s -m 0755 "$target/x86_64-unknown-linux-gnu/release/extmemctl" "$stage/bin/"
	(cd "$stage" && find . | cpio -o -H newc --quiet) >"$VM/base.cpio"
}

run() {
	local name=$1 cmdline=$2
	shift 2
	local env=$VM/env-$name log=$VM/$name.log res=$VM/$name.results
	[ -f "$VM/base.cpio" ] || die "no initramfs: run 'scripts/vm.sh build' first"
	[ -f "$KERNEL" ] || die "no kernel at $KERNEL"
	rm -rf "$env" && mkdir -p "$env/etc"
	printf '%s\n' "$@" | sed 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\(.*\)$/export \1="\2"/' \
		>"$env/etc/run.env"
	(cd "$env" && find . | cpio -o -H newc --quiet) |
		cat "$VM/base.cpio" ${VM_EXTRA_CPIO:+"$VM_EXTRA_CPIO"} - >"$VM/initramfs-$name.cpio"
	# VM_KEXEC_DEPTH=N: each kernel can kexec into the next, N times: the
	# image carries /kernel and, as /initrd.img, the image one level down.
	local depth=${VM_KEXEC_DEPTH:-0} d flat=$VM/initramfs-$name.cpio
	# How many kernels must each print a result block (scripts/tally.py).
	echo $((depth + 1)) >"$VM/$name.kernels"
	if [ "$depth" -gt 0 ]; then
		local nest=$VM/nest-$name cur=$VM/level-$name.cpio
		cp "$flat" "$cur"
		for ((d = 0; d < depth; d++)); do
			rm -rf "$nest" && mkdir -p "$nest"
			cp "$KERNEL" "$nest/kernel"
			mv "$cur" "$nest/initrd.img"
			(cd "$nest" && find . | cpio -o -H newc --quiet) | cat "$flat" - >"$cur"
		done
		rm -rf "$nest"
		mv "$cur" "$flat"
	fi
	local nodes=(${VM_MEM_NODES:-1G 1G}) numa=() total=0 i=0 reserve=
	[ "${VM_MEM_RESERVE:-on}" = off ] && reserve=,reserve=off
	for n in "${nodes[@]}"; do
		numa+=(-object "memory-backend-ram,id=m$i,size=$n$reserve"
		       -numa "node,nodeid=$i,memdev=m$i")
		case "$n" in
		*T) total=$((total + ${n%T} * 1024)) ;;
		*) total=$((total + ${n%G})) ;;
		esac
		i=$((i + 1))
	done
	local start=$(date +%s.%N) rc=0 attempt kaslr=nokaslr
	local monitor=(-monitor none) extra=(${VM_QEMU_ARGS:-})
	[ "${VM_MONITOR:-0}" = 1 ] || [ "${VM_MCE:-0}" = 1 ] &&
		monitor=(-monitor "unix:$VM/$name.mon,server=on,wait=off")
	[ "${VM_KASLR:-0}" = 1 ] && kaslr=kaslr
	rm -f "$log.hung" "$VM/$name.mce"
	for attempt in 1 2; do
	rc=0
	local mce_pid=
	if [ "${VM_MCE:-0}" = 1 ]; then
		rm -f "$log"
		python3 "$ROOT/scripts/vm-mce.py" "$log" "$VM/$name.mon" 2>>"$VM/$name.mce" &
		mce_pid=$!
	fi
	timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu "${VM_CPU:-max}" -smp "${VM_SMP:-2}" \
		-machine "${VM_MACHINE:-pc}" -m "${total}G" "${numa[@]}" "${extra[@]}" \
		-kernel "$KERNEL" -initrd "$VM/initramfs-$name.cpio" \
		-append "console=ttyS0 panic=-1 $kaslr rdinit=/init ${VM_APPEND:+$VM_APPEND }$cmdline" \
		-display none "${monitor[@]}" -serial "file:$log" -no-reboot \
		</dev/null >"$VM/$name.qemu" 2>&1 &
	local qpid=$! peak=0 rss qemu_pid
	if [ "${VM_RSS:-0}" = 1 ]; then
		# QEMU is the child of timeout; its VmRSS until it exits.
		while kill -0 "$qpid" 2>/dev/null; do
			qemu_pid=$(pgrep -P "$qpid" | head -n1 || true)
			rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${qemu_pid:-0}/status" 2>/dev/null || true)
			[ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
			sleep 0.2
		done
		echo "$peak" >"$VM/$name.rss"
	fi
	wait "$qpid" || rc=$?
	[ -z "$mce_pid" ] || wait "$mce_pid" || true
	# A boot that hangs (no results at all before the timeout) is retried
	# once; the first console log is kept as NAME.log.hung and the retry is
	# reported, so a real hang still shows up as two timeouts.
	[ $rc = 124 ] && [ "$attempt" = 1 ] && [ "${VM_RETRY_HANG:-1}" = 1 ] || break
	echo "[vm] $name: no progress after $TIMEOUT s (log kept in $log.hung); booting it once more" >&2
	mv "$log" "$log.hung"
	done
	local secs=$(echo "$(date +%s.%N) - $start" | bc)
	printf '%.1f\n' "$secs" >"$VM/$name.seconds"
	# From the first BEGIN to the last END: a run that kexecs prints one
	# BEGIN per kernel and one END at the very end.
	tr -d '\r' <"$log" | awk '/=== EXTMEM RESULTS BEGIN ===/ { on = 1 }
		on { buf = buf $0 "\n" }
		/=== EXTMEM RESULTS END ===/ { printf "%s", buf; buf = "" }' >"$res"
	[ $rc = 124 ] && { echo "[vm] $name: timed out after $TIMEOUT s" >&2; return 1; }
	grep -q '=== EXTMEM RESULTS END ===' "$res" || { echo "[vm] $name: no results (see $log)" >&2; return 1; }
	return 0
}

case "${1:-}" in
build) build ;;
run) shift; run "$@" ;;
*) echo "usage: $0 build | run NAME CMDLINE [K=V...]" >&2; exit 2 ;;
esac
