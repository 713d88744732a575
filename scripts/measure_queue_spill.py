"""How often ipcxx.Queue.put spills (the ring was full, so the pickled object went to the
producer's buffer and its feeder thread) while a consumer takes objects as fast as it can, and
what it costs: the same stream through an unbounded Queue (spills allowed) and a Queue whose
maxsize keeps the objects in flight below the ring's capacity (it never spills; put waits for a
place instead), and the unbounded Queue with a consumer that starts only after the producer has
put a ring's worth and more (a late or paused consumer: the spill buffer holds a backlog while
the stream runs). Two processes pinned to two cores as in bench/cases.py's stream rows.

Run: python scripts/measure_queue_spill.py [objects-per-case] (run it under `chrt -f 50` on a
loaded machine). Prints per case: microseconds per object (median of 5 runs) and the spills
counted in the producer (a wrapper around the queue's spill push, set by this script only);
first, for the 1 MiB array in one process: put alone, get alone, pickling, and a 1 MiB memcpy.
"""

from __future__ import annotations

import os
import pickle
import statistics
import sys
import time
from typing import Any

import numpy

import ipcxx

CASES: dict[str, tuple[Any, int, int]] = {
    # (object, a maxsize that keeps the objects in flight inside the 4 MiB ring, a head start
    # that fills the ring and spills more)
    "1 MiB float32 array": (numpy.ones(1 << 18, dtype=numpy.float32), 3, 8),
    "tuple of 3 ints": ((1, 2, 3), 50_000, 100_000),
}


def pin(index: int) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[index]})


def stream(obj: Any, count: int, maxsize: int, head_start: int = 0) -> tuple[float, int]:
    """(seconds per object, spills) for `count` objects from this process to a forked child,
    which starts taking them after the first `head_start` were put."""
    queue: Any = ipcxx.Queue(maxsize, name=f"/ipcxx_spill_{os.getpid()}")
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    allowed = os.sched_getaffinity(0)
    child = os.fork()
    if child == 0:
        try:
            pin(1)
            get = queue.get
            os.write(ready_write, b"r")
            if head_start:
                os.read(go_read, 1)
            for _ in range(count):
                get()
            os.write(ready_write, b"d")
        finally:
            os._exit(0)
    pin(0)
    spills = [0]
    push = queue._spill.push

    def counting_push(frame: Any) -> None:
        spills[0] += 1
        push(frame)

    queue._spill.push = counting_push
    os.read(ready_read, 1)
    put = queue.put
    started = time.perf_counter()
    for number in range(count):
        if number == head_start:
            os.write(go_write, b"g")
        put(obj)
    os.read(ready_read, 1)
    elapsed = time.perf_counter() - started
    os.waitpid(child, 0)
    os.sched_setaffinity(0, allowed)
    for end in (ready_read, ready_write, go_read, go_write):
        os.close(end)
    queue.close()
    queue.join_thread()
    queue.unlink()
    return elapsed / count, spills[0]


def one_process() -> None:
    """Best-of-200 microseconds of each step of a 1 MiB array's trip, in this process."""
    array = CASES["1 MiB float32 array"][0]
    queue: Any = ipcxx.Queue(name=f"/ipcxx_spill_{os.getpid()}")
    source, target = bytes(1 << 20), memoryview(bytearray(1 << 20))
    buffers: list[Any] = []
    data = pickle.dumps(array, 5, buffer_callback=buffers.append)
    copies = [bytearray(b.raw()) for b in buffers]
    best = {"put": 1.0, "get": 1.0, "dumps(5)": 1.0, "loads": 1.0, "memcpy 1 MiB": 1.0}
    for _ in range(200):
        started = time.perf_counter()
        queue.put(array)
        between = time.perf_counter()
        queue.get()
        done = time.perf_counter()
        pickle.dumps(array, 5, buffer_callback=[].append)
        pickled = time.perf_counter()
        pickle.loads(data, buffers=copies)
        loaded = time.perf_counter()
        target[:] = source
        copied = time.perf_counter()
        for key, value in zip(
            best,
            (between - started, done - between, pickled - done, loaded - pickled, copied - loaded),
            strict=True,
        ):
            best[key] = min(best[key], value)
    queue.close()
    queue.unlink()
    print("1 MiB array, one process, best of 200: "
          + ", ".join(f"{k} {v * 1e6:.1f} µs" for k, v in best.items()))  # fmt: skip


def main() -> None:
    one_process()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    for name, (obj, bounded, head_start) in CASES.items():
        n = count or (400 if isinstance(obj, numpy.ndarray) else 200_000)
        for label, maxsize, head in (
            ("unbounded (may spill)", 0, 0),
            (f"maxsize={bounded}", bounded, 0),
            (f"unbounded, the consumer starts after {head_start} puts", 0, head_start),
        ):
            runs = [stream(obj, n, maxsize, head) for _ in range(5)]
            per = statistics.median(r[0] for r in runs) * 1e6
            spilled = statistics.median(r[1] for r in runs)
            each = ", ".join(f"{r[0] * 1e6:.2f}" for r in runs)
            print(f"{name}, {label}: {per:.2f} µs per object ({n} objects; "
                  f"median spills {spilled:.0f}; runs {each})")  # fmt: skip


if __name__ == "__main__":
    main()
