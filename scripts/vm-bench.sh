#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The in-VM benchmark of /dev/extmem (part of make bench): allocate + map +
# touch 1 GiB through extmem, versus a 1 GiB HugeTLB page, versus anonymous
# 4 KiB memory with THP off, in one boot (2 nodes of 3 GiB, a 1 GiB extmem
# area per node, one 1 GiB HugeTLB page). Prints the table and BENCH lines.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
cd "$ROOT"
bash scripts/setup.sh >/dev/null
bash scripts/build-kernel.sh
bash scripts/vm.sh build
VM_MEM_NODES="3G 3G" VM_TIMEOUT=900 bash scripts/vm.sh run bench \
	"extmem=0:1G,1:1G hugepagesz=1G hugepages=1" "EXTMEM_TESTS=extmem_map_bench"
sed -n '/^### test extmem_map_bench/,/^### exit/p' "$CACHE/vm/bench.results" | sed '1d;$d'
