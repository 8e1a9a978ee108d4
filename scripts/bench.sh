#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Allocator benchmarks: extmem's summary-tree allocator against a port of CMA's
# bitmap_find_next_zero_area_off(), on 64 GiB/4 KiB, 1 TiB/4 KiB and 1 TiB/2 MiB pools.
# Prints a table, one "BENCH {json}" line per case, the targets and a fragmentation report.
# Takes a few minutes on 2 cores; --quick runs the 64 GiB pool only with short budgets.
#
# Usage: scripts/bench.sh [--quick] [--pool 64G/4K|1T/4K|1T/2M]...
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin extmem-bench
exec "${CARGO_TARGET_DIR:-target}"/release/extmem-bench "$@"
