#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Mutation check of the allocator's shortcuts: builds the host tests once per deliberately
# broken shortcut (EXTMEM_MUTANT=N, see MUTANT in extmem/bitalloc/lazy.rs) and runs the
# property and lazy-metadata tests against the oracle. Fails unless every mutant is caught
# (a failing or hanging test run). Takes a few minutes (one rebuild per mutant), so it is
# not part of scripts/host-test.sh.
#
# Usage: scripts/mutation.sh [N...]   (default: every mutant)
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/mutation"
mutants=("$@")
if [ ${#mutants[@]} -eq 0 ]; then
    mutants=(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18)
fi
escaped=()
for m in "${mutants[@]}"; do
    start=$(date +%s)
    if EXTMEM_MUTANT="$m" timeout 600 cargo test --release --quiet \
        --test alloc_prop --test alloc_lazy --test alloc_unit >/tmp/extmem-mutant-"$m".log 2>&1; then
        echo "mutant $m: NOT caught ($(( $(date +%s) - start )) s)"
        escaped+=("$m")
    else
        echo "mutant $m: caught ($(grep -m1 -E 'panicked|FAILED|failed' /tmp/extmem-mutant-"$m".log | cut -c1-100); $(( $(date +%s) - start )) s)"
    fi
done
# The unmutated build must pass the same tests.
if ! cargo test --release --quiet --test alloc_prop --test alloc_lazy --test alloc_unit \
    >/tmp/extmem-mutant-0.log 2>&1; then
    echo "mutation: the unmutated build fails its tests (see /tmp/extmem-mutant-0.log)"
    exit 1
fi
if [ ${#escaped[@]} -ne 0 ]; then
    echo "mutation: FAILED, not caught: ${escaped[*]}"
    exit 1
fi
echo "mutation: all ${#mutants[@]} mutants caught"
