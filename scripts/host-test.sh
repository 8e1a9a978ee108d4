#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of extmem's pure core (parser, allocator, handover) and extmemctl: unit,
# property and oracle tests.
# Usage: scripts/host-test.sh   (from anywhere; exits non-zero on failure)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace "$@"
