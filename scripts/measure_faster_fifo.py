"""Objects per second through ipcxx.compat.faster_fifo.Queue, and through faster-fifo itself when
a folder holding it is given: one producer process and one consumer process, small objects
(a tuple of 3 ints), put/get and put_many/get_many batches of 64.

Usage: measure_faster_fifo.py [--faster-fifo FOLDER] [--count N]
(FOLDER: where `pip install --target FOLDER faster-fifo` put it.) Prints one line per case.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from typing import Any

BATCH = 64


def produce(queue: Any, count: int, batched: bool, start: Any) -> None:
    item = (1, 2, 3)
    start.wait()
    if batched:
        batch = [item] * BATCH
        for _ in range(count // BATCH):
            queue.put_many(batch, timeout=60)
    else:
        for _ in range(count):
            queue.put(item, timeout=60)


def run(queue_class: Any, count: int, batched: bool) -> float:
    """Objects per second from the producer's start to the consumer's last get."""
    context = multiprocessing.get_context("fork")
    queue = queue_class(1000 * 1000)
    start = context.Event()
    producer = context.Process(target=produce, args=(queue, count, batched, start))
    producer.start()
    expected = count // BATCH * BATCH if batched else count
    received = 0
    began = time.perf_counter()
    start.set()
    while received < expected:
        if batched:
            received += len(queue.get_many(timeout=60, max_messages_to_get=BATCH))
        else:
            queue.get(timeout=60)
            received += 1
    elapsed = time.perf_counter() - began
    producer.join()
    return expected / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faster-fifo", help="a folder holding the faster_fifo package")
    parser.add_argument("--count", type=int, default=200_000)
    options = parser.parse_args()
    from ipcxx.compat.faster_fifo import Queue as Compatible

    sides: list[tuple[str, Any]] = [("ipcxx.compat.faster_fifo", Compatible)]
    if options.faster_fifo:
        sys.path.insert(0, options.faster_fifo)
        from faster_fifo import Queue as Original

        sides.append(("faster_fifo", Original))
    for batched in (False, True):
        case = f"put_many/get_many of {BATCH}" if batched else "put/get"
        for label, queue_class in sides:
            best = max(run(queue_class, options.count, batched) for _ in range(3))
            print(f"{label:26} {case:26} {best / 1e3:8.0f} k objects/s (best of 3)", flush=True)


if __name__ == "__main__":
    main()
