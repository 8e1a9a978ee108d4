#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The in-VM benchmark of the HugeTLB conversion (not part of make check):
# the time to add N x 1 GiB and N x 2 MiB HugeTLB pages to node 1 through
# extmem (/sys/kernel/mm/extmem/node1/hugetlb_*) and to give them back,
# versus growing and shrinking node 1's nr_hugepages from the buddy
# allocator, in one boot (nodes of 4 and 6 GiB, a 2 GiB extmem area on node 1,
# so node 1 keeps 4 GiB for the buddy allocator). Prints the table and
# BENCH lines. EXTMEM_BENCH_N1G, EXTMEM_BENCH_N2M, EXTMEM_BENCH_RUNS
# override the defaults (2, 512, 3); EXTMEM_BENCH_HVO=1 turns HugeTLB's
# vmemmap optimisation on for both paths. KERNEL=bzImage boots that kernel
# instead of building one (the build then is skipped).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
cd "$ROOT"
bash scripts/setup.sh >/dev/null
[ -n "${KERNEL:-}" ] || bash scripts/build-kernel.sh
bash scripts/vm.sh build
VM_MEM_NODES="4G 6G" VM_TIMEOUT=900 bash scripts/vm.sh run bench-hugetlb \
	"extmem=1:2G" "EXTMEM_TESTS=extmem_hugetlb_bench" \
	"EXTMEM_BENCH_NODE=1" "EXTMEM_BENCH_N1G=${EXTMEM_BENCH_N1G:-2}" \
	"EXTMEM_BENCH_N2M=${EXTMEM_BENCH_N2M:-512}" "EXTMEM_BENCH_RUNS=${EXTMEM_BENCH_RUNS:-3}" \
	"EXTMEM_BENCH_HVO=${EXTMEM_BENCH_HVO:--1}"
sed -n '/^### test extmem_hugetlb_bench/,/^### exit/p' "$CACHE/vm/bench-hugetlb.results" | sed '1d;$d'
