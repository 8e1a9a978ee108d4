#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the extmem test kernel: put this repository at mm/extmem/ of the
# Linux 7.3 tree that scripts/setup.sh extracted, apply patches/ with
# git am, merge configs/<fragment> onto tinyconfig and build bzImage out of
# tree with LLVM=-19, Debian's rustc and CLIPPY=1. Incremental: files are
# copied only when they changed, and the patch series is re-applied only
# when patches/ changed.
#
# Usage: scripts/build-kernel.sh [fragment...]   (default: extmem.config)
#   Fragments from configs/ are merged in order onto tinyconfig, a later
#   one overriding an earlier one: the debug kernel is
#   "extmem.config debug.config".
# Output: $KCACHE/build-<last fragment>/arch/x86/boot/bzImage, in the
# machine-wide cache (scripts/cache.sh). C objects go through ccache.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
FRAGS=("${@:-extmem.config}")
LAST=${FRAGS[$((${#FRAGS[@]} - 1))]}
OUT=$KCACHE/build-${LAST%.config}
# The test kernel builds in the tree setup.sh extracted; any other kernel in
# a clone of it, so that each tree holds one kernel's files at a time.
PRISTINE=$SRC
[ "$LAST" = extmem.config ] || SRC=$KCACHE/linux-7.3-${LAST%.config}
JOBS=${JOBS:-$(($(nproc) + 1))}

step() { printf '[build] %s\n' "$*"; }
die() { printf '[build] FAILED: %s\n' "$*" >&2; exit 1; }

[ -f "$PRISTINE/Makefile" ] || die "no kernel source in $PRISTINE (run scripts/setup.sh)"
for frag in "${FRAGS[@]}"; do
	[ -f "$ROOT/configs/$frag" ] || die "no config fragment configs/$frag"
done
# One user of this tree at a time (scripts/cache.sh).
kcache_lock "$SRC"
G=(git -C "$SRC" -c user.name=extmem -c user.email=extmem@localhost
   -c advice.addIgnoredFile=false)

# A git repository of the pristine tree, so the series applies with git am.
# Another kernel's tree is a clone of that repository (its extmem-base tag
# never changes, so reading it while the test kernel builds is safe).
if [ "$SRC" != "$PRISTINE" ] && ! [ -f "$SRC/Makefile" ]; then
	git -C "$PRISTINE" rev-parse -q --verify extmem-base >/dev/null 2>&1 ||
		die "$PRISTINE has no extmem-base tag yet (build the test kernel first)"
	step "cloning the pristine tree into $SRC"
	rm -rf "$SRC"
	git clone -q --no-checkout "$PRISTINE" "$SRC" || die "git clone $PRISTINE"
	"${G[@]}" checkout -q -f -B extmem extmem-base || die "checkout extmem-base in $SRC"
fi
if ! "${G[@]}" rev-parse -q --verify extmem-base >/dev/null 2>&1; then
	step "recording the pristine tree as git tag extmem-base"
	rm -rf "$SRC/.git"
	"${G[@]}" init -q
	"${G[@]}" add -Af
	"${G[@]}" commit -q -m "Linux 7.3 (Debian linux-source-7.3)"
	"${G[@]}" tag extmem-base
fi

stamp=$(cat "$ROOT"/patches/*.patch | sha256sum | cut -c1-16)
if [ "$(cat "$SRC/.extmem-series" 2>/dev/null)" != "$stamp" ]; then
	step "applying patches/ ($(ls "$ROOT"/patches/*.patch | wc -l) patches)"
	"${G[@]}" am --abort >/dev/null 2>&1 || true
	"${G[@]}" checkout -q -f extmem-base 2>/dev/null || "${G[@]}" checkout -q -f -B extmem extmem-base
	"${G[@]}" checkout -q -f -B extmem extmem-base
	"${G[@]}" am -q "$ROOT"/patches/*.patch || die "git am patches/*.patch"
	echo "$stamp" >"$SRC/.extmem-series"
fi

# The component: the repository's kernel files at mm/extmem/ and its
# headers under include/. Copy only what changed, keeping timestamps
# of the rest so that the build stays incremental.
sync_file() {
	local from=$1 to=$2
	if ! cmp -s "$from" "$to"; then
		mkdir -p "$(dirname "$to")"
		cp "$from" "$to"
	fi
}
cd "$ROOT"
want=$(mktemp)
{
	git ls-files -co --exclude-standard -- Kconfig Kbuild '*.rs' '*.c' '*.h' |
		grep -Ev '^(host|fuzz|selftests|scripts|target|include)/' || true
} >"$want"
# EXTMEM_PIN="a.rs b.c": take these files as committed (HEAD) rather than
# from the work tree, to build while someone else is editing them.
pinned=$(mktemp -d)
for f in ${EXTMEM_PIN:-}; do
	mkdir -p "$pinned/$(dirname "$f")"
	git show "HEAD:$f" >"$pinned/$f"
done
while read -r f; do
	if [ -f "$pinned/$f" ]; then
		sync_file "$pinned/$f" "$SRC/mm/extmem/$f"
	elif [ -f "$f" ]; then
		sync_file "$f" "$SRC/mm/extmem/$f"
	fi
done <"$want"
rm -rf "$pinned"
# Drop files that left the repository.
(cd "$SRC/mm/extmem" && find . -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' -o -name Kconfig -o -name Kbuild \) |
	sed 's|^\./||') | while read -r f; do
	grep -qxF "$f" "$want" || rm -f "$SRC/mm/extmem/$f"
done
rm -f "$want"
# New headers of the component outside mm/extmem/: the UAPI and the KHO ABI.
if [ -d include ]; then
	for f in $(git ls-files -co --exclude-standard -- include); do
		sync_file "$f" "$SRC/$f"
	done
fi

export PATH=/usr/bin:$PATH
MK=(make -C "$SRC" O="$OUT" LLVM=-19 RUSTC=/usr/bin/rustc
    BINDGEN="$KCACHE/tools/bin/bindgen" CLIPPY=1 -j"$JOBS")
if command -v ccache >/dev/null; then
	export CCACHE_DIR=$KCACHE/ccache CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
	# CC only: HOSTCC is also the linker rustc is given for host programs.
	MK+=(CC="ccache clang-19")
fi
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

merged=$(mktemp)
for frag in "${FRAGS[@]}"; do cat "$ROOT/configs/$frag"; done >"$merged"
cfgstamp=$( (echo "${FRAGS[*]}"; cat "$merged") | sha256sum | cut -c1-16)
if [ "$(cat "$OUT/.extmem-config" 2>/dev/null)" != "$cfgstamp" ] || [ ! -f "$OUT/.config" ]; then
	step "configuring: tinyconfig + ${FRAGS[*]}"
	mkdir -p "$OUT"
	"${MK[@]}" -s tinyconfig >/dev/null
	"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" \
		"${FRAGS[@]/#/$ROOT/configs/}" >/dev/null
	"${MK[@]}" -s olddefconfig >/dev/null
	# Every line must stick; where fragments disagree the last one wins.
	bad=0
	declare -A want=()
	while read -r line; do
		case "$line" in CONFIG_*) want[${line%%=*}]=${line#*=} ;; esac
	done <"$merged"
	for key in "${!want[@]}"; do
		val=${want[$key]}
		if [ "$val" = n ]; then
			! grep -q "^$key=[ym]" "$OUT/.config" || { echo "  $key=n did not stick"; bad=1; }
		else
			grep -qxF "$key=$val" "$OUT/.config" || {
				echo "  $key=$val did not stick (got: $(grep "^$key=\|# $key is" "$OUT/.config" || echo unset))"
				bad=1
			}
		fi
	done
	[ $bad = 0 ] || die "config fragments ${FRAGS[*]} not fully applied"
	"${MK[@]}" -s rustavailable >/dev/null || die "make rustavailable (Rust toolchain not usable)"
	echo "$cfgstamp" >"$OUT/.extmem-config"
fi
rm -f "$merged"

step "building bzImage in $OUT (-j$JOBS)"
log=$OUT/build.log
start=$(date +%s)
if ! "${MK[@]}" bzImage >"$log" 2>&1; then
	grep -E 'error|Error' -A5 "$log" | head -60 >&2
	die "kernel build (full log: $log)"
fi
step "built in $(($(date +%s) - start)) s: $OUT/arch/x86/boot/bzImage"
# The kernel, extmem included, builds with zero warnings (compiler, clippy,
# modpost); print each with its context.
if grep -qE '(^|: )warning[:\[]' "$log"; then
	grep -nE -A6 '(^|: )warning[:\[]' "$log" | head -80 >&2
	die "the build has warnings (full log: $log)"
fi
# EXTMEM_KERNEL_COPY=path: copy the bzImage there while this clone still
# holds the tree's lock, so that a second clone building right after cannot
# swap in its own kernel first.
if [ -n "${EXTMEM_KERNEL_COPY:-}" ]; then
	cp "$OUT/arch/x86/boot/bzImage" "$EXTMEM_KERNEL_COPY"
	step "copied to $EXTMEM_KERNEL_COPY"
fi
