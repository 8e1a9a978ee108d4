#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything extmem's build and tests need, idempotently:
# Debian packages for the kernel toolchain and the VM, bindgen-cli from
# `cargo install`, and linux-source-7.3 fetched with apt-get download and
# extracted into the machine cache (scripts/cache.sh).
#
# Usage: scripts/setup.sh            (from the repository root, as root)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
SERIES=7.3
BINDGEN_VERSION=0.71.1

step() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] FAILED: %s\n' "$*" >&2; exit 1; }

PKGS=(rustc-web rust-web-src libstd-rust-web-dev rust-web-clippy
      clang-19 lld-19 llvm-19 libclang-19-dev
      flex bison bc libelf-dev libssl-dev cpio xz-utils make gcc libc6-dev
      qemu-system-x86 busybox-static python3 kmod ccache util-linux
      libnuma-dev)
# libnuma-dev: the static libnuma.a the kernel's mm selftests "migration"
# links against (scripts/vm-upstream.sh builds them with -static).

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	step "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update (looking for the machine's Debian sources)"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install of: ${missing[*]}"
else
	step "Debian packages already installed"
fi

# bindgen-cli at the version the kernel was verified with.
BINDGEN=$KCACHE/tools/bin/bindgen
if [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
	step "bindgen $BINDGEN_VERSION already installed"
else
	step "installing bindgen-cli $BINDGEN_VERSION with cargo install into $KCACHE/tools"
	command -v cargo >/dev/null || die "cargo not found (needed to install bindgen-cli)"
	LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install --quiet --locked \
		--root "$KCACHE/tools" bindgen-cli --version "$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli $BINDGEN_VERSION"
fi

# Linux 7.3 from Debian's trixie-backports, through a private apt configuration.
if [ -f "$SRC/Makefile" ] && [ -f "$SRC/mm/mm_init.c" ]; then
	step "Linux $SERIES source already extracted in $SRC"
	exit 0
fi

mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	mirror=$(awk '
		/^URIs:/ { uri = $2 }
		/^Suites:/ { if ($0 ~ /bookworm( |$)/ && uri != "") { print uri; exit } }
		/^$/ { uri = "" }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
	mirror=$(awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++)
		if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || die "no Debian mirror found: looked for a 'bookworm' entry in /etc/apt/sources.list.d/debian.sources and /etc/apt/sources.list"

APT=$KCACHE/apt
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/deb"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie-backports main" \
	>"$APT/sources.list"
aptopts=(-o Dir::Etc::sourcelist="$APT/sources.list" -o Dir::Etc::sourceparts=/dev/null
	 -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache"
	 -o APT::Sandbox::User=root)
deb=$(ls "$APT"/deb/linux-source-"$SERIES"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
	step "fetching the trixie-backports package index"
	apt-get "${aptopts[@]}" update -qq ||
		die "apt-get update of trixie-backports (private config in $APT)"
	step "downloading linux-source-$SERIES"
	(cd "$APT/deb" && apt-get "${aptopts[@]}" download "linux-source-$SERIES") ||
		die "package linux-source-$SERIES not found in trixie-backports"
	deb=$(ls "$APT"/deb/linux-source-"$SERIES"_*.deb 2>/dev/null | head -n1 || true)
	[ -n "$deb" ] || die "download of linux-source-$SERIES produced no .deb"
fi
step "extracting $(basename "$deb")"
tmp=$KCACHE/src-tmp
rm -rf "$tmp" && mkdir -p "$tmp"
dpkg-deb -x "$deb" "$tmp" || die "dpkg-deb -x $deb"
tarball=$(ls "$tmp"/usr/src/linux-source-"$SERIES".tar.* 2>/dev/null | head -n1)
[ -n "$tarball" ] || die "no linux-source-$SERIES.tar.* inside $deb"
tar -C "$tmp" -xf "$tarball" || die "tar xf $tarball"
rm -rf "$SRC"
mv "$tmp/linux-source-$SERIES" "$SRC"
rm -rf "$tmp"
step "Linux $SERIES source ready in $SRC"
