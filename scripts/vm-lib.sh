# SPDX-License-Identifier: GPL-2.0
#
# Sourced by scripts/vm-suites.sh and scripts/vm-suites-reliability.sh:
# boot NAME CMDLINE [K=V...] runs one VM (scripts/vm.sh run) and appends its
# tally lines to $T.
#
# Environment:
#   VM_ONLY="a b"     run only the boots with these names (default: all)
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

boot() {
	selected "$1" || return 0
	local name=${VM_RUN_PREFIX:-}$1
	shift
	bash "$ROOT/scripts/vm.sh" run "$name" "$@"
	python3 "$ROOT/scripts/tally.py" vm "$name" "$CACHE/vm/$name.results" \
		"$CACHE/vm/$name.log" >>"$T"
	printf '[vm] %-16s %5ss  %s\n' "$name" "$(cat "$CACHE/vm/$name.seconds" 2>/dev/null)" \
		"$(grep -c "^PASS vm/$name/" "$T") passed, $(grep -c "^FAIL vm/$name/" "$T") failed"
	grep "^FAIL vm/$name/" "$T" | sed 's/^/    /'
}
