#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of extmem's pure core (parser, allocator, handover) and extmemctl: unit,
# property and oracle tests, and a check that the deliberately broken dirty set and magazine
# are caught.
# Usage: scripts/host-test.sh   (from anywhere; exits non-zero on failure)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace "$@"
# The deliberately broken dirty-set shortcut (cargo feature broken-dirty) must be caught.
if cargo test --release --features broken-dirty --test dirty_prop >/dev/null 2>&1; then
	echo "host-test: the broken dirty set (--features broken-dirty) was NOT caught" >&2
	exit 1
fi
echo "host-test: the broken dirty set (--features broken-dirty) is caught"
# A deliberately broken version (cargo feature broken-$1) must make the tests of
# host/tests/$1.rs fail. (Through a file: with pipefail, cargo's own failure would make a
# pipe into grep -q fail.)
caught() {
	local log
	log=$(mktemp)
	cargo test --release --features "broken-$1" --test "$1" >"$log" 2>&1 || true
	if ! grep -q '^test result: FAILED' "$log"; then
		rm -f "$log"
		echo "host-test: the broken $2 (--features broken-$1) was NOT caught" >&2
		exit 1
	fi
	rm -f "$log"
	echo "host-test: the broken $2 (--features broken-$1) is caught"
}
caught magazine "magazine pop"
caught magpool "magpool refill (every block marked clean)"
