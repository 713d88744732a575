"""Child process of tests/test_robust_lock.py: contends for a RobustLock and reports each step.

Usage: python robust_lock_workers.py NAME COUNTER_FILE
Writes one line per step to stdout: "acquiring", "died PID" (acquire raised OwnerDiedError:
this process holds the lock, and PID is the holder recorded in the shared slot, 0 when the dead
holder died before recording itself), "holding", "releasing", "released", and on a normal exit
"finished SECONDS" (its longest wait in acquire()). The slot (8 bytes of COUNTER_FILE, written
only while holding the lock) names the holder, 0 between holders.
Stops after the iteration in which stdin reaches end of file. Exit code 3: mutual exclusion
was violated; 4: a normal acquire found a holder recorded (a death went unreported).
SIGUSR1 dumps every thread's Python stack to stack-PID.txt beside COUNTER_FILE (the parent's
diagnosis of a worker that does not finish).
"""

from __future__ import annotations

import faulthandler
import mmap
import os
import random
import select
import signal
import sys
import time
from pathlib import Path

from ipcxx import OwnerDiedError, RobustLock


def main() -> int:
    name, counter_path = sys.argv[1], sys.argv[2]
    dump = open(Path(counter_path).with_name(f"stack-{os.getpid()}.txt"), "w")
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True)
    lock = RobustLock(name)
    with open(counter_path, "r+b") as file:
        slot = mmap.mmap(file.fileno(), 8)
    me = os.getpid().to_bytes(8, "little")
    out = sys.stdout
    stopping = False
    longest_wait = 0.0
    while not stopping:
        out.write("acquiring\n")
        out.flush()
        started = time.monotonic()
        try:
            lock.acquire()
            longest_wait = max(longest_wait, time.monotonic() - started)
            if slot[:8] != bytes(8):
                return 4
            slot[:8] = me
        except OwnerDiedError:
            longest_wait = max(longest_wait, time.monotonic() - started)
            dead = int.from_bytes(slot[:8], "little")
            slot[:8] = me  # before the report: a report is never repeated by the next owner
            out.write(f"died {dead}\n")
            out.flush()
            lock.make_consistent()
        out.write("holding\n")
        out.flush()
        # Long enough (up to ~1 ms) that a kill sent on "holding" lands inside it.
        for _ in range(random.randrange(20000)):
            pass
        # "releasing" before the slot is cleared: a process killed with "holding" as its last
        # line still names itself in the slot, so its death is reported with its pid.
        out.write("releasing\n")
        out.flush()
        if slot[:8] != me:
            return 3
        slot[:8] = bytes(8)
        lock.release()
        out.write("released\n")
        out.flush()
        stopping = bool(select.select([sys.stdin], [], [], 0)[0]) and not sys.stdin.read(1)
    lock.close()
    out.write(f"finished {longest_wait:.3f}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
