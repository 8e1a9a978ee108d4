# SPDX-License-Identifier: GPL-2.0
#
# extmem developer entry points (the kernel build uses Kbuild, not this file).
#   make demo         build everything, boot a VM with extmem=, show what it did
#   make check        every test: host, kernel build, VM boots (KUnit + kselftests),
#                     the reduced debug set (scripts/check-debug.sh --reduced)
#   make check-upstream  the kernel's own mm and live-update kselftests with
#                     HugeTLB pages from extmem and from the buddy allocator;
#                     fails on any difference (scripts/vm-upstream.sh)
#   make check-debug  every VM boot on a KASAN/lockdep/kmemleak kernel, fuzz and stress
#   make bench        allocator benchmarks against the CMA-style reference, and
#                     /dev/extmem vs HugeTLB vs anonymous memory in the VM
#   make fuzz         fuzz the allocator core (FUZZ_SECONDS, default 60)
#   make mutation     every deliberately broken allocator shortcut must be caught
#   make host-test    cargo test of the pure core and extmemctl only
#   make kernel       build the test kernel only
# Logs and VM results live in .cache/ (EXTMEM_CACHE overrides); downloads,
# the kernel tree and builds in the machine cache, /var/cache/extmem
# (EXTMEM_MACHINE_CACHE overrides; scripts/cache.sh).

.PHONY: demo check check-upstream check-debug bench fuzz mutation host-test kernel setup clean

demo:
	bash scripts/demo.sh

check:
	bash scripts/check.sh

check-upstream: kernel
	bash scripts/vm-upstream.sh all

check-debug:
	bash scripts/check-debug.sh

bench:
	bash scripts/bench.sh
	bash scripts/vm-bench.sh

fuzz:
	bash scripts/fuzz.sh $${FUZZ_SECONDS:-60}

mutation:
	bash scripts/mutation.sh

host-test:
	cargo test --release --workspace

kernel: setup
	bash scripts/build-kernel.sh

setup:
	bash scripts/setup.sh

clean:
	rm -rf target .cache/vm .cache/check .cache/check-debug
