"""Instructions per operation of the single-process hot paths under callgrind, for one or more
builds side by side: the stable figure when timings are noisy (a loaded or shared machine).

Run: python scripts/callgrind_hot_paths.py [--python LABEL=PATH ...] [--case NAME ...]
Each case runs 1 000 and 11 000 iterations in a fresh interpreter; the difference divided by
10 000 is the cost of one iteration (interpreter loop included). Needs valgrind."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

# name: (setup, loop body, teardown). Names are uniquified with the pid so that two runs never
# meet; every case removes what it creates.
CASES: dict[str, tuple[str, str, str]] = {
    "posix_sem_acquire_release": (
        "import posix_ipc; s = posix_ipc.Semaphore(None, posix_ipc.O_CREX, initial_value=1); "
        "a, r = s.acquire, s.release",
        "a(); r()",
        "s.unlink(); s.close()",
    ),
    "posix_sem_acquire0_busy": (
        "import posix_ipc; s = posix_ipc.Semaphore(None, posix_ipc.O_CREX, initial_value=0)\n"
        "def busy():\n    try:\n        s.acquire(0)\n"
        "    except posix_ipc.BusyError:\n        pass",
        "busy()",
        "s.unlink(); s.close()",
    ),
    "robust_lock_acquire_release": (
        "import ipcxx; k = ipcxx.RobustLock(None, create=True); a, r = k.acquire, k.release",
        "a(); r()",
        "k.unlink(); k.close()",
    ),
    "posix_mq_send_receive_16B": (
        "import posix_ipc; q = posix_ipc.MessageQueue(None, posix_ipc.O_CREX); "
        "p = b'x' * 16; s, r = q.send, q.receive",
        "s(p); r()",
        "q.unlink(); q.close()",
    ),
    "posix_mq_send_receive_1KiB": (
        "import posix_ipc; q = posix_ipc.MessageQueue(None, posix_ipc.O_CREX); "
        "p = b'x' * 1024; s, r = q.send, q.receive",
        "s(p); r()",
        "q.unlink(); q.close()",
    ),
    "sysv_sem_acquire_release": (
        "import sysv_ipc; s = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=1); "
        "a, r = s.acquire, s.release",
        "a(); r()",
        "s.remove()",
    ),
    "sysv_sem_acquire_timeout0_busy": (
        "import sysv_ipc; s = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=0)\n"
        "def busy():\n    try:\n        s.acquire(0)\n"
        "    except sysv_ipc.BusyError:\n        pass",
        "busy()",
        "s.remove()",
    ),
    "sysv_mq_send_receive_16B": (
        "import sysv_ipc; q = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX); "
        "p = b'x' * 16; s, r = q.send, q.receive",
        "s(p); r()",
        "q.remove()",
    ),
    "channel_send_receive_16B": (
        "import ipcxx; c = ipcxx.Channel(None, create=True, capacity=1 << 16); "
        "p = b'x' * 16; s, r = c.send, c.receive",
        "s(p); r()",
        "c.unlink(); c.close()",
    ),
    "channel_reserve_peek_32B": (
        "import ipcxx; c = ipcxx.Channel(None, create=True, capacity=1 << 16); p = b'x' * 32\n"
        "def rp():\n    with c.reserve(32) as v:\n        v[:] = p\n    with c.peek() as v:\n"
        "        pass",
        "rp()",
        "c.unlink(); c.close()",
    ),
}

CHILD = """
import sys
{setup}
for _ in range(int(sys.argv[1])):
    {body}
{teardown}
"""


def instructions(python: str, case: str, count: int) -> int:
    """Total instructions of one run of `case` with `count` iterations."""
    setup, body, teardown = CASES[case]
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cg.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, "-c"]
            + [CHILD.format(setup=setup, body=body, teardown=teardown), str(count)],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        report = subprocess.run(
            ["callgrind_annotate", "--threshold=100", out],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    totals = re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", report, re.M)
    assert totals, report[:2000]
    return int(totals[1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", metavar="LABEL=PATH")
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    args = parser.parse_args()
    builds = [item.split("=", 1) for item in args.python or [f"this={sys.executable}"]]
    print("| case | " + " | ".join(label for label, _ in builds) + " |")
    print("|---|" + "---|" * len(builds))
    for case in args.case or list(CASES):
        row = []
        for _, python in builds:
            small = instructions(python, case, 1_000)
            large = instructions(python, case, 11_000)
            row.append(f"{(large - small) / 10_000:.0f}")
        print(f"| {case} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
