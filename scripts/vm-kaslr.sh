#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the test VM N times (default 20) with a random kernel base (KASLR)
# and extmem=0:1G,1:1G on two nodes of 3 GiB, and prints, per boot, where
# the kernel image and node 0's area went and whether every area of 1 GiB
# is 1 GiB-aligned (selftests/extmem/boot_test.c), then the count.
# KERNEL= picks the kernel (default: the test kernel in the machine cache).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
cd "$ROOT"
N=${1:-20}
[ -f "$CACHE/vm/base.cpio" ] || bash scripts/vm.sh build
bad=0
for i in $(seq 1 "$N"); do
	VM_KASLR=1 VM_MEM_NODES="3G 3G" VM_TIMEOUT=120 bash scripts/vm.sh run "kaslr-loop-$i" \
		"kunit.enable=0 extmem=0:1G,1:1G" "EXTMEM_TESTS=extmem_boot_test" \
		"EXTMEM_EXPECT=0:1024,1:1024" "EXTMEM_EXPECT_ALIGN=1G" >/dev/null 2>&1
	area=$(grep -ao 'area 0: node 0, 1024 MiB at \[mem 0x[0-9a-f]*' "$CACHE/vm/kaslr-loop-$i.log" |
		awk '{ print $NF }')
	kernel=$(grep -ao 'kernel code at 0x[0-9a-f]*' "$CACHE/vm/kaslr-loop-$i.results" | awk '{ print $NF }')
	if grep -q '^ok 2 global.large_areas_are_aligned' "$CACHE/vm/kaslr-loop-$i.results"; then
		ok=aligned
	else
		ok=NOT-ALIGNED
		bad=$((bad + 1))
	fi
	printf 'boot %2d: kernel code at %-12s node 0 area at %s: %s\n' "$i" "${kernel:-?}" \
		"${area#\[mem }" "$ok"
done
echo "$((N - bad)) of $N boots had every 1 GiB area 1 GiB-aligned"
[ "$bad" = 0 ]
