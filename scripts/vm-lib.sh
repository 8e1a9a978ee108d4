# SPDX-License-Identifier: GPL-2.0
#
# Sourced by scripts/vm-suites.sh and scripts/vm-suites-reliability.sh:
# boot NAME CMDLINE [K=V...] runs one VM (scripts/vm.sh run) and appends its
# tally lines to $T.
#
# Environment:
#   VM_ONLY="a b"     run only the boots with these names (default: all)
#   VM_JOBS=N         boots side by side (default 2 with 2+ CPUs; 1 = in turn)
#   VM_RUN_PREFIX=p-  name the runs p-NAME (files in .cache/vm/, tally
#                     lines vm/p-NAME/...), so the same boots on another
#                     kernel keep their own results

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/cache.sh"

# True if the boot NAME is selected by VM_ONLY.
selected() {
	[ -z "${VM_ONLY:-}" ] && return 0
	case " $VM_ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

# Boots run VM_JOBS at a time (default 2 on a machine with 2 or more CPUs,
# else 1): a TCG guest keeps about one host CPU busy, so two boots side by
# side take about the time of one. Tally lines and the one-line summaries are
# collected in the order the boots were started, by boots_wait (which a
# suite calls before it reads a boot's results, and at its end).
VM_JOBS=${VM_JOBS:-$(( $(nproc) >= 2 ? 2 : 1 ))}
BOOTS=()

_boot_once() {
	local name=$1
	shift
	bash "$ROOT/scripts/vm.sh" run "$name" "$@" >"$CACHE/vm/$name.out" 2>&1
	python3 "$ROOT/scripts/tally.py" vm "$name" "$CACHE/vm/$name.results" \
		"$CACHE/vm/$name.log" >"$CACHE/vm/$name.tally" 2>>"$CACHE/vm/$name.out"
}

# VM_RETRY=1 on a boot line: the boot's checks include timings under TCG (a
# ratio of two microsecond figures, which an interrupt in the window can
# spoil), so a boot with a failure runs once more and the second run's tally
# counts. The first run's failures are printed, and kept in NAME.tally.first.
_boot_run() {
	local name=$1
	shift
	_boot_once "$name" "$@"
	if [ "${VM_RETRY:-0}" = 1 ] && grep -q '^FAIL' "$CACHE/vm/$name.tally" 2>/dev/null; then
		cp "$CACHE/vm/$name.tally" "$CACHE/vm/$name.tally.first"
		_boot_once "$name" "$@"
		grep '^FAIL' "$CACHE/vm/$name.tally.first" |
			sed "s|^FAIL|[vm] $name: failed in a first run, so ran again:|" >>"$CACHE/vm/$name.out"
	fi
}

_boot_collect() {
	local name=$1
	cat "$CACHE/vm/$name.out" 2>/dev/null
	cat "$CACHE/vm/$name.tally" >>"$T" 2>/dev/null ||
		echo "FAIL vm/$name/boot-and-finish" >>"$T"
	printf '[vm] %-16s %5ss  %s\n' "$name" "$(cat "$CACHE/vm/$name.seconds" 2>/dev/null)" \
		"$(grep -c "^PASS vm/$name/" "$T") passed, $(grep -c "^FAIL vm/$name/" "$T") failed"
	grep "^FAIL vm/$name/" "$T" | sed 's/^/    /'
}

boot() {
	selected "$1" || return 0
	local name=${VM_RUN_PREFIX:-}$1
	shift
	mkdir -p "$CACHE/vm"
	rm -f "$CACHE/vm/$name.tally" "$CACHE/vm/$name.out"
	if [ "$VM_JOBS" -le 1 ]; then
		_boot_run "$name" "$@"
		_boot_collect "$name"
		return 0
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$VM_JOBS" ]; do
		wait -n 2>/dev/null || true
	done
	# Variables set on the boot line (VM_MEM_NODES=... boot ...) are in
	# this function's environment, so the background job inherits them.
	_boot_run "$name" "$@" &
	BOOTS+=("$name")
}

# Waits for every boot started so far and appends their tallies to $T.
boots_wait() {
	wait
	local name
	for name in "${BOOTS[@]}"; do
		_boot_collect "$name"
	done
	BOOTS=()
}
