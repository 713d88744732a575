"""Notification latency of posix_ipc callbacks: send() to the first statement of the callback.

    python bench/notification_latency.py [COUNT]

One queue, COUNT rounds (1000 by default, after 50 warm-up rounds): request a callback, take
the time, send, wait for the callback, which takes the time first. Prints the median and the
10th and 90th percentiles in microseconds, for whichever posix_ipc is first on sys.path (run it
with PYTHONPATH pointing at another build to compare). A benchmark reports; it never asserts.
The queue's name has this run's own prefix, and the queue is removed at the end.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import threading
import time

import posix_ipc


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    name = f"/ipcxx_bench_latency_{os.getpid()}_{secrets.token_hex(4)}"
    queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREX)
    ran = threading.Event()
    started = [0]

    def callback(_: object) -> None:
        started[0] = time.perf_counter_ns()
        ran.set()

    samples: list[int] = []
    try:
        for round_number in range(count + 50):
            ran.clear()
            queue.request_notification((callback, None))
            sent = time.perf_counter_ns()
            queue.send(b"x")
            if not ran.wait(10):
                raise SystemExit("no callback within 10 s")
            if round_number >= 50:
                samples.append(started[0] - sent)
            queue.receive()
    finally:
        queue.close()
        queue.unlink()
    samples.sort()
    print(
        f"{posix_ipc.__file__}: median {statistics.median(samples) / 1000:.1f} us, "
        f"p10 {samples[len(samples) // 10] / 1000:.1f} us, "
        f"p90 {samples[9 * len(samples) // 10] / 1000:.1f} us ({count} callbacks)"
    )


if __name__ == "__main__":
    main()
