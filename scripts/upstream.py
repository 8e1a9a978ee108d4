#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Verdicts of the kernel's own kselftests in the two columns (scripts/vm-upstream.sh).

  upstream.py verdicts RESULTS           the verdict lines of one VM run
                                         (selftests/upstream/run-upstream)
  upstream.py compare LIST SET A B [LABEL-A LABEL-B]
                                         compare verdict files A and B over the
                                         tests of LIST (tests.list) in SET (ci or
                                         all): a table on stderr, tally lines
                                         "PASS|FAIL upstream/NAME" on stdout

A verdict file has one line per test: NAME VERDICT OK FAIL SKIP SECS, where
VERDICT is PASS, FAIL, SKIP (from the exit code) or NOPOOL (the pool could
not be made), and OK/FAIL/SKIP count the test's TAP lines; and one line
NAME/all-extmem PASS|FAIL per extmem-column test (every page of the pool
came from extmem). Two columns agree on a test if VERDICT, OK, FAIL and
SKIP are equal; SECS is information only.

selftests/upstream/known-differences.txt (next to LIST) names tests whose
extmem column is known to differ, each with the reason: such a test is
tallied SKIP while it still differs (the table says why), and FAIL once the
difference is gone, so that the entry is removed and the test counts again.
"""
import os
import re
import sys


def verdicts(results_path):
    out = []
    for line in open(results_path, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^upstream-verdict (\S+) (\S+) exit=(\S+) ok=(\d+) fail=(\d+) "
                     r"skip=(\d+) secs=(\S+)$", line)
        if m:
            name, v, _, ok, fail, skip, secs = m.groups()
            out.append(f"{name} {v} {ok} {fail} {skip} {secs}")
            continue
        m = re.match(r"^upstream-check (\S+) (\S+) (PASS|FAIL)$", line)
        if m:
            out.append(f"{m.group(1)}/{m.group(2)} {m.group(3)}")
    for line in out:
        print(line)


def read_verdicts(path):
    v = {}
    try:
        for line in open(path):
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            v[f[0]] = f[1:]
    except OSError:
        pass
    return v


def expected(list_path, test_set):
    names = []
    for line in open(list_path):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        sets = f[1].split(",")
        if test_set == "ci" and "ci" not in sets:
            continue
        if "kexec" in sets:
            names += [f"{f[0]}/stage1", f"{f[0]}/stage2"]
        else:
            names.append(f[0])
    return names


def show(v):
    if not v:
        return "missing"
    if len(v) < 4:
        return v[0]
    return f"{v[0]} {v[1]}/{v[2]}/{v[3]}"


def known_differences(list_path):
    known = {}
    path = os.path.join(os.path.dirname(list_path), "known-differences.txt")
    try:
        for line in open(path):
            f = line.split(None, 1)
            if f and not f[0].startswith("#"):
                known[f[0]] = f[1].strip() if len(f) > 1 else "known difference"
    except OSError:
        pass
    return known


def compare(list_path, test_set, a_path, b_path, la="extmem", lb="buddy"):
    a, b = read_verdicts(a_path), read_verdicts(b_path)
    known = known_differences(list_path)
    rows = []
    bad = 0
    xfail = 0
    for name in expected(list_path, test_set):
        va, vb = a.get(name), b.get(name)
        same = va is not None and vb is not None and va[:4] == vb[:4]
        check = a.get(f"{name}/all-extmem")
        notes = [] if same else ["DIFFERENT"]
        if check is not None and check[0] != "PASS":
            notes.append("pages not all from extmem")
        if va is not None and va[0] == "NOPOOL":
            notes.append("pool not made")
        ok = not notes
        if name in known:
            if ok:
                print(f"FAIL upstream/{name}")
                notes = ["known difference gone: remove it from known-differences.txt"]
                bad += 1
            else:
                print(f"SKIP upstream/{name}")
                notes.append("known: " + known[name])
                xfail += 1
            rows.append((name, show(va), show(vb),
                         va[4] if va and len(va) > 4 else "-",
                         vb[4] if vb and len(vb) > 4 else "-", "; ".join(notes)))
            continue
        print(f"{'PASS' if ok else 'FAIL'} upstream/{name}")
        if not ok:
            bad += 1
        rows.append((name, show(va), show(vb),
                     va[4] if va and len(va) > 4 else "-",
                     vb[4] if vb and len(vb) > 4 else "-",
                     "same" if ok else "; ".join(notes)))
    hdr = ("test", la + " (ok/fail/skip)", lb + " (ok/fail/skip)", "s " + la, "s " + lb)
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(5)]
    e = sys.stderr
    print("", file=e)
    for r in [hdr] + rows:
        print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]:>{w[3]}}  "
              f"{r[4]:>{w[4]}}  {r[5] if len(r) > 5 else ''}".rstrip(), file=e)
    print(f"[upstream] {len(rows) - bad - xfail} of {len(rows)} verdicts the same in both "
          f"columns, {xfail} known difference(s)", file=e)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "verdicts":
        verdicts(*args)
    elif cmd == "compare":
        compare(*args)
    else:
        sys.exit(f"unknown command {cmd}")
