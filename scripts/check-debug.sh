#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-debug: the VM suites on the debug kernel (configs/debug.config:
# KASAN, KFENCE, lockdep, DEBUG_VM, DEBUG_LIST, kmemleak, Rust overflow
# checks and debug assertions).
#   1. build .cache/build-debug/ (scripts/build-kernel.sh debug.config)
#   2. scripts/vm-suites.sh and scripts/vm-suites-reliability.sh with
#      KERNEL=.cache/build-debug/arch/x86/boot/bzImage; selftests/vm/init
#      scans kmemleak after each boot's tests
# Any kernel splat (KASAN, lockdep, WARN, BUG, Oops, Rust panic, ...) or
# kmemleak report fails the boot it happened in (scripts/tally.py prints
# it). Ends with "N passed, N failed, N skipped"; exits non-zero if anything
# failed. Uses the same .cache/vm/ run names as make check: do not run both
# at once.
#
# Environment: JOBS (build, default 2), VM_TIMEOUT (per boot, default 900),
# RELIABILITY_FUZZ_SECONDS / RELIABILITY_STRESS_SECONDS (default 60 / 30).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${EXTMEM_CACHE:-$ROOT/.cache}
OUT=$CACHE/check-debug
rm -rf "$OUT" && mkdir -p "$OUT"
T=$OUT/tally
: >"$T"
cd "$ROOT"

note() { printf '\n==== %s\n' "$*"; }
fail_step() { echo "FAIL $1" >>"$T"; echo "[check-debug] FAILED: $1" >&2; }
start=$(date +%s)

note "debug kernel build"
# configs/debug.config repeats configs/extmem.config: it must not fall behind.
missing=$(grep '^CONFIG_' configs/extmem.config | grep -vxFf <(grep '^CONFIG_' configs/debug.config))
if [ -n "$missing" ]; then
	echo "[check-debug] configs/debug.config lacks these lines of configs/extmem.config:" >&2
	echo "$missing" | sed 's/^/    /' >&2
	fail_step "build/debug-config-in-step"; python3 scripts/tally.py sum "$T"; exit 1
fi
if JOBS=${JOBS:-2} bash scripts/build-kernel.sh debug.config; then
	echo "PASS build/debug-kernel-zero-warnings" >>"$T"
else
	fail_step "build/debug-kernel"; python3 scripts/tally.py sum "$T"; exit 1
fi
built=$(date +%s)

note "VM runs on the debug kernel"
bash scripts/vm.sh build || { fail_step "vm/initramfs"; python3 scripts/tally.py sum "$T"; exit 1; }
export KERNEL=$CACHE/build-debug/arch/x86/boot/bzImage
export VM_TIMEOUT=${VM_TIMEOUT:-900}
bash scripts/vm-suites.sh "$T"
bash scripts/vm-suites-reliability.sh "$T"

note "summary"
echo "[check-debug] kernel build $((built - start)) s, VM runs $(($(date +%s) - built)) s," \
	"total $(($(date +%s) - start)) s"
python3 scripts/tally.py sum "$T"
