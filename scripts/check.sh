#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: every test extmem has, from fast to real.
#   1. host: cargo test of the pure core (unit + property tests) and extmemctl, bounded fuzzing
#   2. the test kernel (scripts/build-kernel.sh)
#   3. VM boots with different extmem= lines: KUnit suites + kselftests,
#      kexec handover runs, the kernel's own mm and live-update kselftests
#      on HugeTLB pages from extmem (scripts/vm-upstream.sh ci), and the
#      reliability boots (fuzzer, stress)
#   4. the debug kernel (KASAN, lockdep, kmemleak, ...) and the reduced
#      debug set on it: scripts/check-debug.sh --reduced
# Ends with "N passed, N failed, N skipped" over all of them; exits non-zero
# if anything failed.
#
# EXTMEM_CHECK_DEBUG=0 leaves out step 4 (1 955 s in CI on 2 cores, most of
# it the first debug kernel build) for a quick local loop; CI never does.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cache.sh"
OUT=$CACHE/check
rm -rf "$OUT" && mkdir -p "$OUT"
T=$OUT/tally
: >"$T"
cd "$ROOT"
# cargo's build directory is machine-wide too: a fresh clone rebuilds only
# the extmem crates, not their dependencies.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$KCACHE/cargo-target}

# Each stage's wall time, printed when the next one starts and as a table at
# the end (before the closing tally line).
STAGES=$OUT/stages
: >"$STAGES"
stage_name=""
stage_start=$(date +%s)
check_start=$stage_start
end_stage() {
	[ -n "$stage_name" ] || return 0
	local s=$(($(date +%s) - stage_start))
	printf '%6d s  %s\n' "$s" "$stage_name" >>"$STAGES"
	printf '[check] %s: %d s\n' "$stage_name" "$s"
}
note() {
	end_stage
	stage_name=$*
	stage_start=$(date +%s)
	printf '\n==== %s\n' "$*"
}
fail_step() { echo "FAIL $1" >>"$T"; echo "[check] FAILED: $1" >&2; }

note "set-up"
bash scripts/setup.sh || { fail_step setup; python3 scripts/tally.py sum "$T"; exit 1; }

note "host tests (cargo test)"
if cargo test --release --locked --workspace 2>&1 | tee "$OUT/cargo.log" | grep -E '^test result|FAILED|panicked'; then :; fi
python3 scripts/tally.py cargo "$OUT/cargo.log" >>"$T"
grep -q '^test result' "$OUT/cargo.log" || fail_step "host/cargo-test-build"
grep -q '^test result: FAILED' "$OUT/cargo.log" && ! grep -q '^FAIL' "$T" && fail_step "host/cargo-test"

# Deliberately broken allocator shortcuts (scripts/mutation.sh; EXTMEM_MUTANT=N): two of
# them here, each must make the oracle tests fail; the whole set is make mutation.
note "mutants (broken shortcuts must be caught)"
# shellcheck disable=SC2086
bash scripts/mutation.sh ${EXTMEM_CI_MUTANTS:-1 5} >"$OUT/mutation.log" 2>&1 || true
sed -n 's/^mutant \([0-9]*\): caught.*/PASS host\/mutant-\1-caught/p; s/^mutant \([0-9]*\): NOT caught.*/FAIL host\/mutant-\1-caught/p' \
	"$OUT/mutation.log" >>"$T"
grep -q '^mutation: all' "$OUT/mutation.log" || { tail -5 "$OUT/mutation.log"; fail_step "host/mutation"; }
# A deliberately broken version (cargo feature broken-NAME) must make the tests of
# host/tests/NAME.rs fail: tally line host/broken-NAME-caught.
broken_caught() {
	CARGO_TARGET_DIR=$CARGO_TARGET_DIR/broken timeout 600 cargo test --release --locked \
		--features "broken-$1" --test "$1" >"$OUT/broken-$1.log" 2>&1
	if grep -q '^test result: FAILED' "$OUT/broken-$1.log"; then
		echo "PASS host/broken-$1-caught" >>"$T"
	else
		echo "FAIL host/broken-$1-caught" >>"$T"
	fi
}
# The per-CPU magazines' pop with a load and a store instead of a compare-exchange (the
# threaded tests), and the wired magazines' refill that marks every block clean (the
# property test of the pool's side).
broken_caught magazine
broken_caught magpool

if [ -x scripts/fuzz.sh ]; then
	note "fuzzing (bounded)"
	if bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}" >"$OUT/fuzz.log" 2>&1; then
		echo "PASS host/fuzz" >>"$T"
	else
		tail -20 "$OUT/fuzz.log"; fail_step "host/fuzz"
	fi
	tail -3 "$OUT/fuzz.log"
fi

note "kernel build"
# The VM runs boot this clone's copy of the bzImage, taken while the build
# still held the machine tree's lock: another clone building in the shared
# tree meanwhile cannot change the kernel these tests boot.
export KERNEL=$CACHE/bzImage-test
if EXTMEM_KERNEL_COPY=$KERNEL bash scripts/build-kernel.sh; then
	echo "PASS build/kernel-zero-warnings" >>"$T"
else
	fail_step "build/kernel"; python3 scripts/tally.py sum "$T"; exit 1
fi

note "VM runs"
bash scripts/vm.sh build || { fail_step "vm/initramfs"; python3 scripts/tally.py sum "$T"; exit 1; }
bash scripts/vm-suites.sh "$T"

note "VM runs: the kernel's own mm and live-update kselftests, extmem column"
# Against the buddy column's recorded verdicts (make check-upstream runs
# both columns and every test): one boot and one kexec.
bash scripts/vm-upstream.sh ci "$T"

note "VM runs: reliability (extmem= at its worst, ioctl fuzzer, concurrency stress)"
bash scripts/vm-suites-reliability.sh "$T"

note "debug kernel: the reduced set (make check-debug runs them all)"
if [ "${EXTMEM_CHECK_DEBUG:-1}" = 0 ] && [ "${CI:-}" != true ]; then
	echo "SKIP debug/reduced-set" >>"$T"
	echo "[check] EXTMEM_CHECK_DEBUG=0: the debug kernel runs are left out"
else
	EXTMEM_CHECK_OUT=$OUT/debug bash scripts/check-debug.sh --reduced
	cat "$OUT/debug/tally" >>"$T" 2>/dev/null || fail_step "debug/tally"
fi

end_stage
stage_name=""
printf '\n==== stage times\n'
cat "$STAGES"
printf '%6d s  total\n' "$(($(date +%s) - check_start))"

hung=$(cd "$CACHE/vm" 2>/dev/null && ls -- *.log.hung 2>/dev/null | sed 's/\.log\.hung$//' | paste -sd' ')
if [ -n "$hung" ]; then
	echo "[check] boots that hung once and were booted again (first log kept as .cache/vm/NAME.log.hung): $hung"
fi

note "summary"
python3 scripts/tally.py sum "$T"
