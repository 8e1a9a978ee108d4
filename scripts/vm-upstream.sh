#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel's own mm and live-update kselftests (tools/testing/selftests/mm
# and liveupdate of the Linux tree) in the test VM, with the HugeTLB pages
# they use made by extmem (column "extmem") or by the buddy allocator
# (column "buddy"). The tests and the pool each gets are in
# selftests/upstream/tests.list; selftests/upstream/run-upstream runs them
# in the VM. Documentation/mm/extmem-hugetlb.rst, "The kernel's own tests".
#
#   scripts/vm-upstream.sh [all] [TALLY]
#       make check-upstream: every test, both columns (one boot each, with
#       one kexec for the two-stage live-update tests); compares them,
#       prints the table and appends "PASS|FAIL upstream/NAME" lines (and
#       the boots' own) to TALLY (default .cache/check/upstream.tally),
#       then its summary line. Fails on any difference.
#   scripts/vm-upstream.sh ci TALLY
#       make check's stage: the tests marked ci, extmem column only,
#       compared with the buddy column's recorded verdicts,
#       selftests/upstream/baseline-verdicts.txt.
#   scripts/vm-upstream.sh record
#       the buddy column over every test, written to baseline-verdicts.txt.
#   scripts/vm-upstream.sh build
#       only build the tests and their initramfs part.
#
# Environment: KERNEL, VM_TIMEOUT as for scripts/vm.sh; VM_ONLY as for
# scripts/vm-lib.sh (boot names upstream-extmem, upstream-buddy).
set -uo pipefail

MODE=${1:-all}
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"
UP=$CACHE/upstream
LIST=$ROOT/selftests/upstream/tests.list
BASELINE=$ROOT/selftests/upstream/baseline-verdicts.txt
EXTRA=$CACHE/vm/upstream.cpio

die() { printf '[upstream] FAILED: %s\n' "$*" >&2; exit 1; }

# The kernel's UAPI headers (make headers, out of tree, in this clone's
# cache), made again when the patch series in the machine's tree changes.
headers() {
	local stamp
	stamp=$(cat "$SRC/.extmem-series" 2>/dev/null || echo none)
	if [ -f "$UP/kobj/usr/include/linux/liveupdate.h" ] &&
		[ "$(cat "$UP/headers.stamp" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	# The shared tree must not change while it is read: take its lock in a
	# subshell, so that it is released right after.
	(
		kcache_lock
		make -s -C "$SRC" O="$UP/kobj" ARCH=x86 headers
	) || die "make headers"
	echo "$stamp" >"$UP/headers.stamp"
}

# Copies what the tests need out of the shared tree (read-only) and builds
# every program tests.list names, statically (the VM has busybox only).
build() {
	local sel=$SRC/tools/testing/selftests w=$UP/src st=$UP/stage hdr prog cmd extra libs
	mkdir -p "$UP"
	headers
	hdr=$UP/kobj/usr/include
	rm -rf "$w" "$st"
	mkdir -p "$w/tools/testing/selftests" "$w/tools/include" "$w/mm" "$st/bin" "$st/etc"
	cp -r "$sel"/{mm,liveupdate,kselftest,kselftest.h,kselftest_harness.h} \
		"$w/tools/testing/selftests/"
	cp -r "$SRC/tools/include/uapi" "$w/tools/include/"
	cp "$SRC/mm/gup_test.h" "$w/mm/"
	# No liburing in the VM (and no CONFIG_IO_URING): as check_config.sh
	# records it when the library is missing.
	echo "// No liburing support found" >"$w/tools/testing/selftests/mm/local_config.h_gen"
	local cflags=(-static -s -O2 -Wall -D_GNU_SOURCE= -U_FORTIFY_SOURCE -no-pie)
	for prog in $(grep -v '^#' "$LIST" | awk 'NF >= 6 { print $6 }' | sort -u); do
		if [ -f "$w/tools/testing/selftests/mm/$prog.c" ]; then
			extra=() libs=(-lrt -lpthread -lm)
			case $prog in uffd-*) extra=(uffd-common.c) ;; esac
			case $prog in migration | rmap | ksm_tests) libs+=(-lnuma) ;; esac
			(cd "$w/tools/testing/selftests/mm" &&
				gcc "${cflags[@]}" -I "$w" -isystem "$hdr" -isystem "$w/tools/include/uapi" \
					-I .. -o "$st/bin/$prog" "$prog.c" vm_util.c hugepage_settings.c \
					"${extra[@]}" "${libs[@]}") || die "compiling mm/$prog"
		elif [ -f "$w/tools/testing/selftests/liveupdate/$prog.c" ]; then
			(cd "$w/tools/testing/selftests/liveupdate" &&
				gcc "${cflags[@]}" -Wno-unused-function -isystem "$hdr" -I lib/include -I .. \
					-o "$st/bin/$prog" "$prog.c" lib/lu_utils.c) ||
				die "compiling liveupdate/$prog"
		else
			die "no selftest source for $prog"
		fi
	done 2> >(grep -vE 'in statically linked applications|libnuma.a\(affinity.o\)' >&2)
	gcc -static -s -O2 -Wall -Werror -o "$st/bin/upstream-kexec" \
		"$ROOT/selftests/upstream/upstream-kexec.c" || die "compiling upstream-kexec"
	install -m 0755 "$ROOT/selftests/upstream/run-upstream" "$st/bin/upstream-run"
	cp "$LIST" "$st/etc/upstream.list"
	mkdir -p "$CACHE/vm"
	(cd "$st" && find . | cpio -o -H newc --quiet) >"$EXTRA"
	echo "[upstream] built $(ls "$st/bin" | wc -l) programs ($(du -sh "$EXTRA" | cut -f1) of initramfs)"
}

# column NAME SET SECONDS: starts one boot of the column (extmem or buddy)
# over SET (ci or all), with one kexec for the live-update tests' second
# stage, given up after SECONDS (VM_TIMEOUT overrides). Boots run side by
# side (scripts/vm-lib.sh); verdicts NAME... waits for them and writes
# $CACHE/vm/upstream-NAME.verdicts.
column() {
	local col=$1 set=$2 secs=$3 args="kho=on liveupdate=on kunit.enable=0"
	# 2 NUMA nodes of 2 and 7 GiB (node 1 has room for thuge-gen's four
	# 1 GiB pages from the buddy allocator). The extmem column gives node 0
	# 512 MiB and node 1 4.5 GiB: four 1 GiB units and 2 MiB pages beside.
	[ "$col" = extmem ] && args="$args extmem=0:512M,1:4608M"
	VM_MEM_NODES="2G 7G" VM_SMP=3 VM_KEXEC_DEPTH=1 VM_EXTRA_CPIO=$EXTRA \
		VM_TIMEOUT=${VM_TIMEOUT:-$secs} VM_RETRY_HANG=0 \
		boot "upstream-$col" "$args" EXTMEM_TESTS=upstream-run \
		"UPSTREAM_COLUMN=$col" "UPSTREAM_SET=$set"
}

verdicts() {
	local col
	boots_wait
	for col in "$@"; do
		python3 scripts/upstream.py verdicts "$CACHE/vm/${VM_RUN_PREFIX:-}upstream-$col.results" \
			>"$CACHE/vm/upstream-$col.verdicts"
	done
}

[ -f "$CACHE/vm/base.cpio" ] || bash scripts/vm.sh build || die "scripts/vm.sh build"
case $MODE in
build)
	build
	;;
all)
	T=${2:-$CACHE/check/upstream.tally}
	mkdir -p "$(dirname "$T")" && : >"$T"
	build
	start=$(date +%s)
	# Side by side only if the host has room for both guests (9 GiB each).
	[ "$(awk '/^MemAvailable:/ { print int($2 / 1048576) }' /proc/meminfo)" -ge 20 ] || VM_JOBS=1
	column extmem all 3600
	column buddy all 3600
	verdicts extmem buddy
	python3 scripts/upstream.py compare "$LIST" all "$CACHE/vm/upstream-extmem.verdicts" \
		"$CACHE/vm/upstream-buddy.verdicts" >>"$T"
	echo "[upstream] both columns: $(($(date +%s) - start)) s of VM time"
	python3 scripts/tally.py sum "$T"
	;;
ci)
	T=${2:?usage: $0 ci TALLY}
	build
	start=$(date +%s)
	column extmem ci 600
	verdicts extmem
	python3 scripts/upstream.py compare "$LIST" ci "$CACHE/vm/upstream-extmem.verdicts" \
		"$BASELINE" extmem buddy-recorded >>"$T"
	echo "[upstream] extmem column (ci set): $(($(date +%s) - start)) s of VM time"
	;;
record)
	T=$CACHE/check/upstream.tally
	mkdir -p "$(dirname "$T")" && : >"$T"
	build
	column buddy all 3600
	verdicts buddy
	{
		echo "# Verdicts of the buddy column (scripts/vm-upstream.sh record):"
		echo "# NAME VERDICT OK FAIL SKIP SECONDS; see scripts/upstream.py."
		cat "$CACHE/vm/upstream-buddy.verdicts"
	} >"$BASELINE"
	echo "[upstream] recorded $(grep -vc '^#' "$BASELINE") verdicts in $BASELINE"
	python3 scripts/tally.py sum "$T"
	;;
*)
	echo "usage: $0 [all [TALLY] | ci TALLY | record | build]" >&2
	exit 2
	;;
esac
