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

# 2. One area per node, placed by the kernel. Area 1's write-back mapping is
#    made to fail (extmem.test_fail_map, a test-kernel knob): it must be
#    quarantined with the reason and hand nothing out; area 0 works.
boot valid "extmem=0:256M,1:256M extmem.test_fail_map=1" "$TESTS" "EXTMEM_EXPECT=0:256,1:256" \
	"EXTMEM_BASELINE=$B" "EXTMEM_EXPECT_UNMAPPED=1" \
	"EXTMEM_EXPECT_LOG=extmem: area 1: cannot map it write-back; nothing of it is handed out"

# 3. A fixed address. extmem.test_fail_map= (a test-kernel knob) gets values
#    the kernel's parameter parser refuses (logged), then an area index the
#    boot does not have: nothing may be quarantined.
boot fixed "extmem=1:256M@0x50000000 extmem.test_fail_map=banana extmem.test_fail_map=18446744073709551616 extmem.test_fail_map=-2147483649 extmem.test_fail_map=7" \
	"$TESTS" "EXTMEM_EXPECT=1:256@50000000" "EXTMEM_BASELINE=$B" "EXTMEM_EXPECT_FAIL_MAP=7" \
	"EXTMEM_EXPECT_LOG=banana' invalid for parameter|18446744073709551616' invalid for parameter|-2147483649' invalid for parameter"

# 4. Bad entries mixed with one good one: each bad one is logged, the good
#    one exists, nothing else changes (node 0 keeps its MemTotal). A bad
#    extmem.prezero= is logged and leaves background zeroing on.
boot invalid "extmem=7:256M,0:0,0:1Q,1:256M@0x50000000,1:128M@0x58000000,0:2G extmem.prezero=banana" "$TESTS" \
	"EXTMEM_EXPECT=1:256@50000000" "EXTMEM_BASELINE=$B" "EXTMEM_EXPECT_PREZERO=Y" \
	"EXTMEM_EXPECT_LOG=extmem: prezero: 'banana' is not 0, 1, n, y, no, yes, off or on; left at 1|extmem: entry 0: node 7 is not online|extmem: entry 1 '0:0': size is zero|extmem: entry 2 '0:1Q': unexpected characters after a number|extmem: entry 4 '1:128M@0x58000000': fixed range overlaps entry 3|extmem: entry 5: no free 2048 MiB range on node 0"

# 5. /dev/extmem and allocation fds, regions (kselftests, then extmemctl as
#    an operator uses it), then KVM guests, then guest_memfd over extmem
#    (a protected VM's private memory): 2 nodes of 3 GiB, a 1 GiB area on
#    each. A randomised kernel base (KASLR), as distributions boot: node
#    0 has one free 1 GiB-aligned range, which the area must get whatever
#    KASLR did (extmem_boot_test checks the alignment, extmem_kvm_test maps
#    the area with one 1 GiB entry). Last, machine checks from QEMU's
#    monitor (VM_MCE=1, scripts/vm-mce.py) at a mapped and a free unit of
#    node 1 (extmem_poison_test): the poisoned units stay held, so nothing
#    after it may need all of node 1's area.
VM_KASLR=1 VM_MEM_NODES="3G 3G" VM_MCE=1 boot devif "extmem=0:1G,1:1G" \
	"EXTMEM_TESTS=extmem_boot_test extmem_devif_test extmem_region_test extmem-region-cli extmem_kvm_test extmem_gmem_test extmem_poison_test" \
	"EXTMEM_EXPECT=0:1024,1:1024" "EXTMEM_EXPECT_ALIGN=1G" "EXTMEM_MCE=1"

# 6. Allocations survive kexec (KHO + LUO): three kernels, two kexecs.
#    - A sticky region survives both with its contents, name, owner and
#      mode; a plain one is gone after the first, its memory free
#      (extmem_region_test runs first in each kernel).
#    - A KVM guest with 1 GiB of RAM on node 1 runs in every kernel: its VMM
#      pauses it and preserves its memory, the next VMM resumes it.
#    - A protected VM's private memory (guest_memfd over a 4 MiB allocation
#      on node 1) is preserved by the first kernel; the second's new VM
#      sees it intact, then frees it (extmem_gmem_kexec).
#    - extmem_kexec_test preserves allocations of its own and kexecs. Node
#      1's 2 GiB area holds all of them; it leaves the regions (from sysfs),
#      the guest's 1 GiB + 4 KiB, in the first kernel the 4 MiB of private
#      memory (extmem_gmem_kexec) and the poisoned unit
#      (EXTMEM_KEXEC_NODE1_OTHERS, per kernel) out of its free-byte checks.
#    - A machine check from QEMU's monitor poisons a free unit of node 1 in
#      the first kernel; the others start with it fenced
#      (extmem_poison_test; the 4 KiB are in EXTMEM_KEXEC_NODE1_OTHERS).
VM_KASLR=${VM_KEXEC_KASLR:-1} VM_MEM_NODES="3G 4G" VM_KEXEC_DEPTH=2 VM_MCE=1 VM_TIMEOUT=${VM_TIMEOUT:-240} boot kexec \
	"kho=on liveupdate=on extmem=0:1G,1:2G" \
	"EXTMEM_TESTS=extmem_region_test extmem_kvm_kexec extmem_gmem_kexec extmem_poison_test extmem_kexec_test" \
	"EXTMEM_KEXEC_MODE=hops" "EXTMEM_REGION_MODE=kexec" \
	"EXTMEM_KVM_MODE=background" "EXTMEM_KVM_STAGES=3" \
	"EXTMEM_MCE=1" "EXTMEM_POISON_KEXEC=1" \
	"EXTMEM_KEXEC_NODE1_OTHERS=1077944320 1073750016 4096"

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

# 8. A damaged handover: the next kernel quarantines that area (node 0's,
#    2 GiB: extmem_kexec_test's 1 GiB and a KVM guest's 1 GiB, whose VMM
#    must say why it cannot resume; its 4 KiB vCPU state goes to node 1, so
#    that node 0 keeps two whole GiB). Node 0 has 7 GiB so that a 1 GiB-
#    aligned 2 GiB range is free above 4 GiB: its NODE_DATA sits at its top,
#    and on the debug kernel KASAN's shadow below that. Stage 2 then damages
#    the whole state's header: stage 3 must carve both areas from the area
#    record and quarantine them (the KVM guest's run ends at stage 2).
VM_KASLR=1 VM_MEM_NODES="7G 3G" VM_KEXEC_DEPTH=2 VM_TIMEOUT=${VM_TIMEOUT:-300} boot kexec-corrupt \
	"kho=on liveupdate=on extmem=0:2G,1:1G" \
	"EXTMEM_TESTS=extmem_kvm_kexec extmem_kexec_test" "EXTMEM_KEXEC_MODE=corrupt" \
	"EXTMEM_KVM_MODE=refused" "EXTMEM_KVM_NODE=0" "EXTMEM_KVM_STATE_NODE=1" \
	"EXTMEM_KVM_STAGES=2"

# 8a. A kernel without extmem= preserves a 64 MiB memfd through LUO and
#     kexecs into one whose extmem=<node>:128M@<phys> (chosen by the test)
#     holds some of its pages: the entry is refused with a reason, the memfd
#     comes back intact (it used to panic in kho_preserved_memory_reserve).
VM_MEM_NODES="2G 2G" VM_KEXEC_DEPTH=1 VM_TIMEOUT=${VM_TIMEOUT:-180} boot kexec-memfd \
	"kho=on liveupdate=on" "EXTMEM_TESTS=extmem_kexec_test" "EXTMEM_KEXEC_MODE=memfd"

# 8b. KASLR, repeated: four more boots with a random kernel base and only
#     the carve-out's checks (KUnit off): node 0's area is 1 GiB-aligned in
#     each (patches/0006 keeps the image out of node 0's one free range).
for i in 1 2 3 4; do
	VM_KASLR=1 VM_MEM_NODES="3G 3G" VM_TIMEOUT=${VM_TIMEOUT:-120} boot "kaslr-$i" \
		"kunit.enable=0 extmem=0:1G,1:1G" "$TESTS" "EXTMEM_EXPECT=0:1024,1:1024" \
		"EXTMEM_EXPECT_ALIGN=1G"
done

# 8c. Device DMA into extmem through VFIO type1: q35 with an emulated
#     IOMMU and QEMU's edu device (a DMA engine), bound to vfio-pci. A
#     device reaches an allocation while it is owned; freed by its owner
#     while DMA-mapped, the memory stays allocated until the unmap, so the
#     next owner never shares it with the device (patches/: pfnmap_hold).
#     No interrupt remapping: type1 needs allow_unsafe_interrupts.
VM_MACHINE=q35 VM_QEMU_ARGS="-device intel-iommu,intremap=off -device edu" \
	VM_MEM_NODES="1G 1G" VM_TIMEOUT=${VM_TIMEOUT:-180} boot vfio \
	"kunit.enable=0 intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1 extmem=0:128M" \
	"EXTMEM_TESTS=extmem_vfio_test" "EXTMEM_VFIO_REQUIRE=1"

# 8d. Scale and blackout: a 1 GiB area on node 1 and a 1000 GiB one on a
#     1 TiB node 2 that QEMU backs only where the guest touches it
#     (VM_MEM_RESERVE=off; 46 physical address bits). Each area must be
#     ready in about the same time (areaN/ready_us, whole readiness; the
#     write-back mapping, one PUD per GiB, is made after it by the area's
#     zeroer thread and reported as map_us), on the fresh boot and after a kexec
#     with the same 1000 preserved allocations in each (extmem_kexec_test,
#     mode scale; extmem.prezero=0 keeps a background zeroer off the
#     1000 GiB). Node 0's 256 MiB area is built first and takes the costs
#     of code running for the first time under TCG. QEMU's peak resident
#     memory (VM_RSS=1) must stay far below the pool: its memory is never
#     touched beyond the allocations.
#     Its ratio is of two figures of about 35 us, where one interrupt in the
#     window can add 200 us: a failed run is run once more (VM_RETRY=1,
#     both runs' failures are printed).
VM_RETRY=1 VM_MEM_NODES="1G 2G 1T" VM_MEM_RESERVE=off VM_CPU=max,phys-bits=46 VM_RSS=1 VM_KEXEC_DEPTH=1 \
	VM_QEMU_ARGS="-icount shift=0" VM_TIMEOUT=${VM_TIMEOUT:-240} boot scale \
	"kho=on liveupdate=on kunit.enable=0 extmem.prezero=0 extmem=0:256M,1:1G,2:1000G" \
	"EXTMEM_TESTS=extmem_kexec_test" "EXTMEM_KEXEC_MODE=scale" \
	"EXTMEM_SCALE_SMALL=1" "EXTMEM_SCALE_LARGE=2"

# 9. HugeTLB conversion: 2 nodes of 3 GiB, a 2 GiB area on each (node 0
#    keeps 1 GiB for the kernel): 1 GiB pages on node 1, 2 MiB on node 0.
VM_MEM_NODES="3G 3G" VM_TIMEOUT=${VM_TIMEOUT:-600} boot hugetlb "extmem=0:2G,1:2G" \
	"EXTMEM_TESTS=extmem_boot_test extmem_hugetlb_test" "EXTMEM_EXPECT=0:2048,1:2048"
boots_wait

# The scale boot's resident memory: at most SCALE_RSS_MIB (default 2048) of a
# VM whose pool is 1001 GiB; touching even 0.2% of the pool would exceed it.
if selected scale; then
	n=${VM_RUN_PREFIX:-}scale
	rss=$(cat "$CACHE/vm/$n.rss" 2>/dev/null || echo 0)
	lim=$(( ${SCALE_RSS_MIB:-2048} * 1024 ))
	echo "BENCH {\"bench\":\"pool-ready-rss\",\"pool_gib\":1001,\"qemu_rss_peak_mib\":$((rss / 1024)),\"limit_mib\":$((lim / 1024))}"
	if [ "$rss" -gt 0 ] && [ "$rss" -le "$lim" ]; then
		echo "PASS vm/$n/qemu-rss-pool-untouched" >>"$T"
	else
		echo "FAIL vm/$n/qemu-rss-pool-untouched" >>"$T"
		echo "    vm/$n: QEMU peak RSS $((rss / 1024)) MiB, limit $((lim / 1024)) MiB"
	fi
fi
