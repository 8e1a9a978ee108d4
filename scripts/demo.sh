#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: build everything and boot a VM (2 NUMA nodes of 1 GiB) with
# extmem=0:256M,1:256M, then show what extmem did, as an operator sees it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${EXTMEM_CACHE:-$ROOT/.cache}
cd "$ROOT"
bash scripts/setup.sh
bash scripts/build-kernel.sh
bash scripts/vm.sh build
CMDLINE=${DEMO_CMDLINE:-extmem=0:256M,1:256M}
echo "[demo] booting QEMU (TCG, 2 NUMA nodes) with: $CMDLINE"
bash scripts/vm.sh run demo "$CMDLINE" "EXTMEM_TESTS=" "EXTMEM_SHOW=extmem-demo"
echo
sed -n '/=== EXTMEM DEMO BEGIN ===/,/=== EXTMEM DEMO END ===/p' "$CACHE/vm/demo.log" |
	tr -d '\r' | sed '1d;$d'
