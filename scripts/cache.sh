# SPDX-License-Identifier: GPL-2.0
#
# Sourced by every script: where things are kept.
#
#   CACHE   this clone's outputs: VM logs and results, check tallies, the CI
#           log. EXTMEM_CACHE overrides; default <clone>/.cache (gitignored).
#   KCACHE  the machine-wide cache, shared by every clone on the machine:
#           downloaded packages (apt), bindgen (cargo install), the extracted
#           and patched Linux tree, the configured build directories of the
#           test and debug kernels, ccache's store and cargo's target
#           directory (the debug kernel has its own tree, linux-7.3-debug, so
#           that the two kernels build independently). EXTMEM_MACHINE_CACHE
#           overrides; default
#           /var/cache/extmem. A clone syncs its files into the tree and
#           rebuilds only what changed, so a second clone (or CI on a fresh
#           clone) builds incrementally. Users take <tree>.lock in turn
#           (kcache_lock), so two clones never build in a tree at once.
#
# Wiping KCACHE costs one cold build; nothing in it is state.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CACHE=${EXTMEM_CACHE:-$ROOT/.cache}
KCACHE=${EXTMEM_MACHINE_CACHE:-/var/cache/extmem}
SRC=$KCACHE/linux-7.3
mkdir -p "$CACHE" "$KCACHE"

# Holds the lock of a tree of the machine cache (fd 9; default the test
# kernel's tree, $SRC) until the calling shell exits.
kcache_lock() {
	local tree=${1:-$SRC}
	exec 9>"$tree.lock"
	if ! flock -n 9; then
		printf '[cache] waiting for another user of %s\n' "$tree" >&2
		flock 9
	fi
}
