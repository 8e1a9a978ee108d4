#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The in-VM benchmark of /dev/extmem (part of make bench): ALLOC of 1 GiB
# with a clean pool versus with synchronous zeroing, and the background
# zeroer's bandwidth (extmem_zero_bench); allocate + map +
# touch 1 GiB through extmem, versus a 1 GiB HugeTLB page, versus anonymous
# 4 KiB memory with THP off, in one boot (2 nodes of 3 GiB, a 1 GiB extmem
# area per node, one 1 GiB HugeTLB page); a KVM guest touching 1 GiB backed
# by the same three; the blackout of a KVM guest across a kexec for two sizes
# of guest RAM. Prints the tables and BENCH lines.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
cd "$ROOT"
bash scripts/setup.sh >/dev/null
bash scripts/build-kernel.sh
bash scripts/vm.sh build
VM_MEM_NODES="3G 3G" VM_TIMEOUT=900 bash scripts/vm.sh run bench \
	"extmem=0:1G,1:1G hugepagesz=1G hugepages=1" "EXTMEM_TESTS=extmem_zero_bench extmem_map_bench extmem_kvm_bench"
for t in extmem_zero_bench extmem_map_bench extmem_kvm_bench; do
	sed -n "/^### test $t\$/,/^### exit/p" "$CACHE/vm/bench.results" | sed '1d;$d'
done

# The blackout of a KVM guest across a host kexec (pause, preserve, kexec
# and boot, retrieve, rebuild), for two sizes of guest RAM: the VMM kexecs
# itself, so nothing else runs in between.
for mib in 256 1024; do
	VM_MEM_NODES="3G 4G" VM_KEXEC_DEPTH=1 VM_TIMEOUT=300 bash scripts/vm.sh run "bench-blackout-$mib" \
		"kunit.enable=0 kho=on liveupdate=on extmem=0:1G,1:2G" "EXTMEM_TESTS=extmem_kvm_kexec" \
		"EXTMEM_KVM_MODE=solo" "EXTMEM_KVM_STAGES=2" "EXTMEM_KVM_RAM=$((mib << 20))"
	grep -h '^BENCH {"bench":"kvm-blackout"' "$CACHE/vm/bench-blackout-$mib.results" ||
		echo "[bench] no blackout result for $mib MiB (see $CACHE/vm/bench-blackout-$mib.log)"
done
