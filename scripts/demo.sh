#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: build everything and boot a VM (NUMA nodes of 2 and 3 GiB) with
# extmem=0:512M,1:1G, then show what extmem did, as an operator sees it:
# areas per node, allocations by a VMM, HugeTLB pages made from extmem and
# given back, regions, a memory failure fenced; then a second VM shows
# allocations and a KVM guest surviving a kexec.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build-kernel.sh
bash scripts/vm.sh build
CMDLINE=${DEMO_CMDLINE:-extmem=0:512M,1:1G}
export VM_MEM_NODES=${DEMO_MEM_NODES:-2G 3G}
echo "[demo] booting QEMU (TCG, 2 NUMA nodes) with: $CMDLINE"
bash scripts/vm.sh run demo "$CMDLINE" "EXTMEM_TESTS=" "EXTMEM_SHOW=extmem-demo"
# What the VM's demo scripts printed (in every kernel of a kexec run),
# without the kernel's own console lines and the test results.
show() {
	tr -d '\r' <"$1" | awk '
		/=== EXTMEM DEMO BEGIN ===/ { on = 1; next }
		/=== EXTMEM DEMO END ===|=== EXTMEM RESULTS BEGIN ===/ { on = 0; next }
		on && !/^\[ *[0-9]+\.[0-9]+\]/'
}
echo
show "$CACHE/vm/demo.log"

echo
echo "[demo] live update: booting a VM (NUMA nodes of 3 and 4 GiB) with kho=on liveupdate=on"
echo "[demo] extmem=0:1G,1:2G, preserving guest memory and a running KVM guest across a kexec"
VM_KASLR=1 VM_MEM_NODES="3G 4G" VM_KEXEC_DEPTH=1 bash scripts/vm.sh run demo-kexec \
	"kho=on liveupdate=on extmem=0:1G,1:2G" "EXTMEM_TESTS=" "EXTMEM_SHOW=extmem-demo-kexec"
echo
show "$CACHE/vm/demo-kexec.log"
