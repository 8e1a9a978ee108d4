#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz the allocator core for a bounded time: random action sequences replayed against a
# bool-per-unit oracle, each ending with free-everything and a whole-pool allocation.
# Needs only the stable toolchain (no cargo-fuzz, no nightly). A failure prints its seed;
# replay it with: cargo run --release --bin extmem-fuzz -- --seed N
#
# Usage: scripts/fuzz.sh [SECONDS]   (default 30; exits non-zero on failure)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
cargo build --release --quiet --bin extmem-fuzz
exec "${CARGO_TARGET_DIR:-target}"/release/extmem-fuzz --seconds "$secs" ${FUZZ_SEED:+--start "$FUZZ_SEED"}
