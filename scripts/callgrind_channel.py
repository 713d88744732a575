"""Instructions per Channel operation under callgrind: send + receive (32 B) and reserve(32) +
peek, each in a with block. Run: python scripts/callgrind_channel.py (needs valgrind); prints the
difference between 41 000 and 1 000 iterations divided by 40 000, in total and in the extension."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

LOOPS = {
    "send+receive 32 B": "send(payload); receive()",
    "reserve(32)+peek (with blocks)": "reserve_peek()",
}

CHILD = """
import sys, ipcxx
ch = ipcxx.Channel(None, create=True, capacity=1 << 16)
payload = b"x" * 32
send, receive, reserve, peek = ch.send, ch.receive, ch.reserve, ch.peek
def reserve_peek():
    with reserve(32) as view:
        view[:] = payload
    with peek() as view:
        pass
n = int(sys.argv[1])
for _ in range(n):
    {body}
ch.unlink()
ch.close()
"""


def instructions(body: str, count: int) -> tuple[int, int]:
    """(total, in the extension) instructions of one run with `count` iterations."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cg.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                CHILD.format(body=body),
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
    total = int(totals[1].replace(",", ""))
    extension = 0
    for line in report.splitlines():
        match = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+.*\[(.*)\]$", line)
        if match and "/_ipcxx." in match[2]:
            extension += int(match[1].replace(",", ""))
    return total, extension


def main() -> None:
    for name, body in LOOPS.items():
        small = instructions(body, 1_000)
        large = instructions(body, 41_000)
        print(
            f"{name}: {(large[0] - small[0]) / 40_000:.1f} instructions per iteration, "
            f"{(large[1] - small[1]) / 40_000:.1f} in the extension"
        )


if __name__ == "__main__":
    main()
