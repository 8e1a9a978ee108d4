#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The VM boots of make check, each with its own extmem= line and the
# expectations its tests check. Appends tally lines to $1.
set -uo pipefail

T=$1
. "$(dirname "$0")/vm-lib.sh"
cd "$ROOT"

TESTS=EXTMEM_TESTS=extmem_boot_test

# 1. No extmem=: the baseline each node's MemTotal is compared against.
boot baseline "" "$TESTS" "EXTMEM_EXPECT="
boots_wait
B=$(sed -n 's/^### memtotal \([0-9]*\) \([0-9]*\)$/\1:\2/p' "$CACHE/vm/${VM_RUN_PREFIX:-}baseline.results" 2>/dev/null | paste -sd,)
selected baseline && echo "[vm] baseline MemTotal (node:kB): ${B:-none}"

# 2. One area per node, placed by the kernel.
boot valid "extmem=0:256M,1:256M" "$TESTS" "EXTMEM_EXPECT=0:256,1:256" "EXTMEM_BASELINE=$B"

# 3. A fixed address.
boot fixed "extmem=1:256M@0x50000000" "$TESTS" "EXTMEM_EXPECT=1:256@50000000" \
	"EXTMEM_BASELINE=$B"

# 4. Bad entries mixed with one good one: each bad one is logged, the good
#    one exists, nothing else changes (node 0 keeps its MemTotal).
boot invalid "extmem=7:256M,0:0,0:1Q,1:256M@0x50000000,1:128M@0x58000000,0:2G" "$TESTS" \
	"EXTMEM_EXPECT=1:256@50000000" "EXTMEM_BASELINE=$B" \
	"EXTMEM_EXPECT_LOG=extmem: entry 0: node 7 is not online|extmem: entry 1 '0:0': size is zero|extmem: entry 2 '0:1Q': unexpected characters after a number|extmem: entry 4 '1:128M@0x58000000': fixed range overlaps entry 3|extmem: entry 5: no free 2048 MiB range on node 0"

# 5. /dev/extmem and allocation fds: 2 nodes of 3 GiB, a 1 GiB area on each;
#    regions (kselftests, then extmemctl as an operator uses it).
VM_MEM_NODES="3G 3G" boot devif "extmem=0:1G,1:1G" \
	"EXTMEM_TESTS=extmem_boot_test extmem_devif_test extmem_region_test extmem-region-cli" \
	"EXTMEM_EXPECT=0:1024,1:1024"

# 6. Allocations survive kexec (KHO + LUO): three kernels, two kexecs. A
#    sticky region survives both with its contents, name, owner and mode; a
#    plain one is gone after the first, its memory free (extmem_region_test
#    runs first in each kernel; the kexec test starts the next one).
VM_MEM_NODES="3G 3G" VM_KEXEC_DEPTH=2 VM_TIMEOUT=${VM_TIMEOUT:-180} boot kexec "kho=on liveupdate=on extmem=0:1G,1:1G" \
	"EXTMEM_TESTS=extmem_region_test extmem_kexec_test" "EXTMEM_KEXEC_MODE=hops" \
	"EXTMEM_REGION_MODE=kexec"

# 7. QEMU in the VM boots a guest whose RAM is a region (with KVM, nested
#    SVM): QEMU, its libraries and firmware and the guest in an extra
#    initramfs (scripts/vm-qemu.sh).
if selected qemu; then
	if bash scripts/vm-qemu.sh cpio; then
		VM_MEM_NODES="2G 1G" VM_EXTRA_CPIO=$CACHE/vm/qemu.cpio VM_TIMEOUT=${VM_TIMEOUT:-600} \
			boot qemu "extmem=0:512M" "EXTMEM_TESTS=extmem-qemu-test"
	else
		echo "FAIL vm/${VM_RUN_PREFIX:-}qemu/pack-the-qemu-initramfs" >>"$T"
	fi
fi

# 8. A damaged handover: the next kernel quarantines that area.
VM_MEM_NODES="3G 3G" VM_KEXEC_DEPTH=1 VM_TIMEOUT=${VM_TIMEOUT:-180} boot kexec-corrupt "kho=on liveupdate=on extmem=0:1G,1:1G" \
	"EXTMEM_TESTS=extmem_kexec_test" "EXTMEM_KEXEC_MODE=corrupt"

# 9. HugeTLB conversion: 2 nodes of 3 GiB, a 2 GiB area on each (node 0
#    keeps 1 GiB for the kernel): 1 GiB pages on node 1, 2 MiB on node 0.
VM_MEM_NODES="3G 3G" VM_TIMEOUT=${VM_TIMEOUT:-600} boot hugetlb "extmem=0:2G,1:2G" \
	"EXTMEM_TESTS=extmem_boot_test extmem_hugetlb_test" "EXTMEM_EXPECT=0:2048,1:2048"
boots_wait
