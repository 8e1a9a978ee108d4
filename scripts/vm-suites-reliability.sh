#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The reliability boots (issue 7), shaped like scripts/vm-suites.sh: appends
# tally lines to $1. Runs on whatever kernel KERNEL names (the test kernel by
# default; scripts/check-debug.sh points it at the debug kernel).
#
#  params   the nastiest extmem= strings the host fuzzer found, spread over
#           four extmem= parameters (one empty) with 18 entries in all: the
#           kernel boots, logs each rejection with its reason and carves the
#           three accepted entries.
#  fuzz     extmem_ioctl_fuzz (RELIABILITY_FUZZ_SECONDS, default 60) then
#           extmem_stress (RELIABILITY_STRESS_SECONDS, default 30) on two
#           3 GiB nodes with a 1 GiB area each; both end by checking that the
#           pool is exactly as free as at the start.
# RELIABILITY_FUZZ_SEED / RELIABILITY_STRESS_SEED replay a printed seed.
set -uo pipefail

T=$1
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

# 1. extmem= at its worst. host/tests/param_fuzz.rs (the_nasty_boot_strings)
#    checks the same 16 entries against the parser on the host. Entries
#    16 and 17 are past the limit of 16. Node 0 is 0-2 GiB, so the fixed
#    range at 0x48000000 is memory of node 0.
P1="0:128M,0:0x8000000@0x48000000,1:18446744073709551616,1:16777216T"
P2="0:128M@0xfffffffff8000000,64:128M,4294967296:128M,,,0:128M@0x48000000"
P3="1:128MiB,1:0x0,1:134217729,1:00000000000000000000128m,1:128M@,1:1G@0x1,1:128M,0:256M"
LOG="extmem: extmem= needs <node>:<size>[@<phys>][,...]"
LOG+="|extmem: entry 2 '1:18446744073709551616': number too large"
LOG+="|extmem: entry 3 '1:16777216T': number too large"
LOG+="|extmem: entry 4 '0:128M@0xfffffffff8000000': number too large"
LOG+="|extmem: entry 5 '64:128M': node id out of range"
LOG+="|extmem: entry 6 '4294967296:128M': node id out of range"
LOG+="|extmem: entry 7 '': empty entry"
LOG+="|extmem: entry 8 '': empty entry"
LOG+="|extmem: entry 9 '0:128M@0x48000000': fixed range overlaps entry 1"
LOG+="|extmem: entry 10 '1:128MiB': unexpected characters after a number"
LOG+="|extmem: entry 11 '1:0x0': size is zero"
LOG+="|extmem: entry 12 '1:134217729': size is not a multiple of the granule (128 MiB)"
LOG+="|extmem: entry 14 '1:128M@': address after '@' is not a number"
LOG+="|extmem: entry 15 '1:1G@0x1': address is not a multiple of the granule (128 MiB)"
LOG+="|extmem: too many entries (at most 16): ignoring '1:128M,0:256M'"
# With KASLR: the decompressor parses the same lines (patches/0006).
VM_KASLR=1 VM_MEM_NODES="2G 2G" boot params "extmem=$P1 extmem= extmem=$P2 extmem=$P3" \
	EXTMEM_TESTS=extmem_boot_test "EXTMEM_EXPECT=0:128@48000000,0:128,1:128" \
	"EXTMEM_EXPECT_LOG=$LOG"

# 2. The ioctl fuzzer and the concurrency stress.
VM_MEM_NODES="3G 3G" boot fuzz "extmem=0:1G,1:1G" \
	"EXTMEM_TESTS=extmem_ioctl_fuzz extmem_stress" \
	"EXTMEM_FUZZ_SECONDS=${RELIABILITY_FUZZ_SECONDS:-60}" \
	"EXTMEM_FUZZ_SEED=${RELIABILITY_FUZZ_SEED:-0}" \
	"EXTMEM_STRESS_SECONDS=${RELIABILITY_STRESS_SECONDS:-30}" \
	"EXTMEM_STRESS_SEED=${RELIABILITY_STRESS_SEED:-0}"
boots_wait
# The figures, per program.
selected fuzz && awk '/^### test /{t=$3} /^# (seed|operations|bad inputs|bytes not returned|overlaps|run time)/{print "[vm] fuzz: " t ": " substr($0, 3)}' \
	"$CACHE/vm/${VM_RUN_PREFIX:-}fuzz.results" 2>/dev/null
