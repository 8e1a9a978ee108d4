#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Machine checks on request of a test in the VM (scripts/vm.sh starts it for
# a boot with VM_MCE=1, which implies VM_MONITOR=1).
#
#   vm-mce.py LOG MONITOR-SOCKET
#
# Follows the VM's console log LOG and, for each line
#
#   # EXTMEM-MCE <id> <cpu> <bank> <status> <mcg_status> <addr> <misc>
#
# sends QEMU's human monitor (on the unix socket) the command
# "mce <cpu> <bank> <status> <mcg_status> <addr> <misc>" once per <id>.
# The test chooses the bits (selftests/extmem/poison_test.c says which and
# why); this only checks that they are numbers and forwards them. Each
# injection and QEMU's answer go to stderr. Ends when QEMU closes the
# monitor.
import os
import re
import select
import socket
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LINE = re.compile(r"EXTMEM-MCE ([0-9A-Za-z]+) (\d+) (\d+) (0x[0-9a-fA-F]+) (0x[0-9a-fA-F]+) "
                  r"(0x[0-9a-fA-F]+) (0x[0-9a-fA-F]+)\s*$")


def log(msg):
    print(f"[mce] {msg}", file=sys.stderr, flush=True)


def connect(path, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            time.sleep(0.2)
    return None


def drain(s, wait=0.5):
    """Reads what the monitor says until it is quiet for @wait seconds."""
    out = b""
    while True:
        r, _, _ = select.select([s], [], [], wait)
        if not r:
            return out, True
        data = s.recv(4096)
        if not data:
            return out, False
        out += data


def main():
    logpath, monpath = sys.argv[1], sys.argv[2]
    mon = connect(monpath)
    if mon is None:
        log(f"no monitor at {monpath}")
        return 1
    drain(mon)
    done, pos, partial = set(), 0, b""
    while True:
        # QEMU gone: the monitor socket is closed.
        r, _, _ = select.select([mon], [], [], 0.1)
        if r:
            _, alive = drain(mon, 0)
            if not alive:
                return 0
        try:
            with open(logpath, "rb") as f:
                if os.fstat(f.fileno()).st_size < pos:
                    pos = 0
                f.seek(pos)
                data = f.read()
                pos += len(data)
        except FileNotFoundError:
            continue
        partial += data
        *lines, partial = partial.split(b"\n")
        for raw in lines:
            m = LINE.search(raw.decode("utf-8", "replace").replace("\r", ""))
            if not m or m.group(1) in done:
                continue
            done.add(m.group(1))
            cmd = "mce " + " ".join(m.groups()[1:])
            mon.sendall(cmd.encode() + b"\n")
            answer, alive = drain(mon)
            # The monitor echoes the line as typed; keep what it said after it.
            said = [l.strip() for l in ANSI.sub("", answer.decode("utf-8", "replace")).split("\n")]
            said = [l for l in said[1:] if l and l != "(qemu)"]
            log(f"{cmd}: {'; '.join(said) or 'ok'}")
            if not alive:
                return 0


if __name__ == "__main__":
    sys.exit(main())
