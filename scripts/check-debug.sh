#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-debug: the VM suites on the debug kernel (configs/debug.config:
# KASAN, KFENCE, lockdep, DEBUG_VM, DEBUG_LIST, kmemleak, Rust overflow
# checks and debug assertions).
#   1. build build-debug/ in the machine cache (scripts/build-kernel.sh
#      extmem.config debug.config: the debug fragment on top of the test kernel's)
#   2. scripts/vm-suites.sh and scripts/vm-suites-reliability.sh on a copy
#      of that bzImage in this clone's cache (or on EXTMEM_DEBUG_KERNEL, and
#      nothing is built); selftests/vm/init
#      scans kmemleak after each boot's tests
# Any kernel splat (KASAN, lockdep, WARN, BUG, Oops, Rust panic, ...) or
# kmemleak report fails the boot it happened in (scripts/tally.py prints
# it). Ends with "N passed, N failed, N skipped"; exits non-zero if anything
# failed. The runs are named debug-<boot> (.cache/vm/, tally lines
# vm/debug-<boot>/...), apart from make check's.
#
# Usage: scripts/check-debug.sh [--reduced]
#   --reduced  the set make check runs (Documentation/mm/extmem-reliability.rst):
#              only the devif, kexec, kexec-corrupt, hugetlb, vfio and fuzz boots,
#              with a 30 s fuzzer and a 15 s stress run. The boot-parameter
#              boots stay on the test kernel.
#
# Environment: JOBS (build, default 2), VM_TIMEOUT (per boot, default 900),
# RELIABILITY_FUZZ_SECONDS / RELIABILITY_STRESS_SECONDS (default 60 / 30),
# EXTMEM_CHECK_OUT (where the tally goes, default .cache/check-debug).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
OUT=${EXTMEM_CHECK_OUT:-$CACHE/check-debug}
REDUCED=0
case "${1:-}" in
--reduced) REDUCED=1 ;;
"") ;;
*) echo "usage: $0 [--reduced]" >&2; exit 2 ;;
esac
rm -rf "$OUT" && mkdir -p "$OUT"
T=$OUT/tally
: >"$T"
cd "$ROOT"

note() { printf '\n==== %s\n' "$*"; }
fail_step() { echo "FAIL $1" >>"$T"; echo "[check-debug] FAILED: $1" >&2; }
start=$(date +%s)

note "set-up"
bash scripts/setup.sh || { fail_step debug/setup; python3 scripts/tally.py sum "$T"; exit 1; }

note "debug kernel build"
# As scripts/check.sh does for the test kernel: boot a copy of this clone's
# own build, taken under the tree's lock.
# EXTMEM_DEBUG_KERNEL=<bzImage>: boot that debug kernel, built already
# (a branch's own), and build nothing.
DEBUG_KERNEL=${EXTMEM_DEBUG_KERNEL:-$CACHE/bzImage-debug}
if [ -n "${EXTMEM_DEBUG_KERNEL:-}" ]; then
	[ -f "$DEBUG_KERNEL" ] || { fail_step "debug/kernel $DEBUG_KERNEL"; python3 scripts/tally.py sum "$T"; exit 1; }
	echo "[debug] booting $DEBUG_KERNEL; nothing built"
elif JOBS=${JOBS:-2} EXTMEM_KERNEL_COPY=$DEBUG_KERNEL bash scripts/build-kernel.sh extmem.config debug.config; then
	echo "PASS debug/kernel-build-zero-warnings" >>"$T"
else
	fail_step "debug/kernel-build"; python3 scripts/tally.py sum "$T"; exit 1
fi
built=$(date +%s)

note "VM runs on the debug kernel"
bash scripts/vm.sh build || { fail_step "debug/initramfs"; python3 scripts/tally.py sum "$T"; exit 1; }
export KERNEL=$DEBUG_KERNEL
export VM_TIMEOUT=${VM_TIMEOUT:-900}
export VM_RUN_PREFIX=debug-
# 4-level paging: with LA57 (QEMU's -cpu max has it) the KASAN kernel
# reports a wild access when an interrupt hits during identify_cpu(), a
# window of x86 early boot, not extmem. no5lvl must be on the boot loader's
# command line: the decompressor picks the paging mode before the built-in
# command line is merged.
#
# kho_scratch: KHO sizes its scratch areas as 200% of the memblock memory the
# kernel reserved, and the debug kernel reserves much more (KASAN's shadow is
# an eighth of RAM): the low scratch area no longer fits below 4 GiB beside
# node 0's extmem area, KHO disables itself and live update with it. Fixed
# sizes, enough for a debug kernel to boot from scratch memory alone.
export VM_APPEND="no5lvl kho_scratch=128M,512M,512M"
# The kexec boot without KASLR here: node 0 has 3 GiB, 1 GiB of it extmem's,
# and KHO needs 512 MiB in one piece of it for node 0's scratch area. With a
# random kernel base, the debug kernel's image and its early allocations
# (KASAN's shadow) sometimes leave no such piece: "KHO: Failed to reserve nid
# 0 scratch buffer", live update off, the boot's tests fail (one CI run in
# four). The test kernel's kexec boot keeps KASLR.
export VM_KEXEC_KASLR=0
if [ "$REDUCED" = 1 ]; then
	export VM_ONLY="devif kexec kexec-corrupt hugetlb vfio fuzz"
	export RELIABILITY_FUZZ_SECONDS=${RELIABILITY_FUZZ_SECONDS:-30}
	export RELIABILITY_STRESS_SECONDS=${RELIABILITY_STRESS_SECONDS:-15}
fi
bash scripts/vm-suites.sh "$T"
bash scripts/vm-suites-reliability.sh "$T"

note "summary"
echo "[check-debug] $([ "$REDUCED" = 1 ] && echo "reduced set: ")kernel build $((built - start)) s, VM runs $(($(date +%s) - built)) s," \
	"total $(($(date +%s) - start)) s"
python3 scripts/tally.py sum "$T"
