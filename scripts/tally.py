#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn test output into tally lines ("PASS name", "FAIL name", "SKIP name").

  tally.py vm RUN RESULTS LOG   a VM run: KUnit cases, kselftest cases, and
                                two checks of the console log (the run
                                finished; no kernel splat), plus no kmemleak
                                report when the run scanned for leaks
  tally.py cargo LOG            cargo test output
  tally.py sum TALLY...         print failures and the closing line
"""
import re
import sys

SPLAT = re.compile(r"(BUG:|Oops|WARNING:|Kernel panic|kernel BUG|"
                   r"rust_panic|Call Trace:|UBSAN:|KASAN:|general protection)")
RESULT = re.compile(r"^(\s*)(not ok|ok) (\d+) (?:- )?([^#]*?)\s*(#.*)?$")


def emit(status, name):
    print(f"{status} {name}")


def vm(run, results_path, log_path):
    try:
        lines = open(results_path, errors="replace").read().splitlines()
    except OSError:
        lines = []
    finished = any("=== EXTMEM RESULTS END ===" in l for l in lines)
    # A run that kexecs prints one BEGIN per kernel (scripts/vm.sh writes
    # how many kernels the run has): a block the console lost, or a kernel
    # that never ran its tests, fails the run instead of passing unseen.
    begins = sum(1 for l in lines if l == "=== EXTMEM RESULTS BEGIN ===")
    try:
        kernels = int(open(re.sub(r"\.results$", ".kernels", results_path)).read())
    except (OSError, ValueError):
        kernels = 1
    if finished and begins != kernels:
        print(f"# {run}: {begins} result blocks for {kernels} kernels",
              file=sys.stderr)
        finished = False
    emit("PASS" if finished else "FAIL", f"vm/{run}/boot-and-finish")
    try:
        log = open(log_path, errors="replace").read()
    except OSError:
        log = ""
    splats = [l for l in log.splitlines() if SPLAT.search(l)]
    for l in splats[:20]:
        print(f"# {run}: {l.strip()}", file=sys.stderr)
    emit("FAIL" if splats else "PASS", f"vm/{run}/no-kernel-splat")

    # kmemleak, when selftests/vm/init scanned: "### kmemleak N" (unreferenced
    # objects) or "### kmemleak unavailable"; anything but 0 fails the run.
    for line in lines:
        m = re.match(r"^### kmemleak (\S+)", line)
        if m:
            leaks = m.group(1)
            if leaks != "0":
                for l in [l for l in lines if l.startswith("# kmemleak: ")][:40]:
                    print(f"# {run}: {l[12:]}", file=sys.stderr)
            emit("PASS" if leaks == "0" else "FAIL", f"vm/{run}/no-kmemleak")

    section, kind, exits = None, None, {}
    seen = {}
    for line in lines:
        m = re.match(r"^### (kunit|test) (\S+)", line)
        if m:
            kind, section = m.group(1), m.group(2)
            continue
        m = re.match(r"^### exit (\S+) (\d+)", line)
        if m:
            exits[m.group(1)] = int(m.group(2))
            continue
        m = RESULT.match(line)
        if not m or section is None:
            continue
        indent, ok, _, name, directive = m.groups()
        # KUnit: count the cases (indented), not the suite line.
        if kind == "kunit" and not indent:
            continue
        if kind == "test" and indent:
            continue
        directive = directive or ""
        status = "SKIP" if "SKIP" in directive.upper() else (
            "PASS" if ok == "ok" else "FAIL")
        full = f"vm/{run}/{kind}/{section}/{name}"
        seen[section] = seen.get(section, 0) + 1
        emit(status, full)
    for test, code in exits.items():
        # kselftest exits 0 on success and 4 when everything skipped.
        if code not in (0, 4) and seen.get(test, 0) == 0:
            emit("FAIL", f"vm/{run}/test/{test}/exit-{code}")


def cargo(log_path):
    for line in open(log_path, errors="replace"):
        m = re.match(r"^test (\S+) \.\.\. (ok|FAILED|ignored)", line)
        if m:
            emit({"ok": "PASS", "FAILED": "FAIL", "ignored": "SKIP"}[m.group(2)],
                 f"host/{m.group(1)}")


def summary(paths):
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for p in paths:
        for line in open(p):
            status, _, name = line.strip().partition(" ")
            if status in counts:
                counts[status] += 1
                if status == "FAIL":
                    print(f"FAILED: {name}")
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] or counts["PASS"] == 0 else 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "vm":
        vm(*args)
    elif cmd == "cargo":
        cargo(*args)
    elif cmd == "sum":
        sys.exit(summary(args))
    else:
        sys.exit(f"unknown command {cmd}")
