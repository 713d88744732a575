"""Instructions per ipcxx.Queue put+get of a small object under callgrind, split into pickling
(dumps + loads alone), the ring (Channel send + receive of the same bytes) and the rest (the
queue's Python code and semaphores). Run: python scripts/callgrind_queue.py (needs valgrind);
each figure is the difference between 41 000 and 1 000 iterations divided by 40 000."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

OBJECTS = {"tuple of 3 ints": "(1, 2, 3)", "5-key dict": "dict(a=1, b=2.0, c='x', d=None, e=True)"}
LOOPS = {
    "queue put+get": "put(obj); get()",
    "queue put+get (nowait)": "put_nowait(obj); get_nowait()",
    "dumps+loads": "loads(dumps(obj, 5))",
    "channel send+receive": "send(data); receive()",
    "channel send+receive+loads": "send(data); loads(receive())",
    "channel send+peek+loads": "send(data); peek_loads()",
}

CHILD = """
import sys, pickle, ipcxx
obj = {obj}
q = ipcxx.Queue()
ch = ipcxx.Channel(None, create=True, capacity=1 << 16)
put, get, put_nowait, get_nowait = q.put, q.get, q.put_nowait, q.get_nowait
send, receive = ch.send, ch.receive
dumps, loads = pickle.dumps, pickle.loads
data = dumps(obj, 5)
peek = ch.peek
def peek_loads():
    with peek() as view:
        return loads(view)
n = int(sys.argv[1])
for _ in range(n):
    {body}
ch.unlink(); ch.close(); q.close(); q.unlink()
"""


def instructions(obj: str, body: str, count: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cg.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                CHILD.format(obj=obj, body=body),
                str(count),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        report = subprocess.run(
            ["callgrind_annotate", "--inclusive=no", "--threshold=100", out],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    totals = re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", report, re.M)
    assert totals, report[:2000]
    return int(totals[1].replace(",", ""))


def main() -> None:
    only = sys.argv[1:]  # loop names to run (default: all)
    for name, obj in OBJECTS.items():
        figures = {}
        for loop, body in LOOPS.items():
            if only and loop not in only:
                continue
            small = instructions(obj, body, 1_000)
            large = instructions(obj, body, 41_000)
            figures[loop] = (large - small) / 40_000
        print(name + ": " + ", ".join(f"{k} {v:,.0f}" for k, v in figures.items()))
        if only:
            continue
        rest = figures["queue put+get"] - figures["dumps+loads"] - figures["channel send+receive"]
        print(f"  queue overhead beyond pickling and the ring: {rest:,.0f} instructions")


if __name__ == "__main__":
    main()
