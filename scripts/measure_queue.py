"""Two-process throughput of ipcxx.Queue against multiprocessing.Queue and the pickling floor
(the slower of pickle.dumps and pickle.loads of the same object, timed in the same run).
Run: python scripts/measure_queue.py [seconds-per-case]. Prints objects/s (and MB/s for arrays)."""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import time
from typing import Any

import numpy

import ipcxx

CASES: dict[str, Any] = {
    "tuple of 3 ints": (1, 2, 3),
    "5-key dict": {"a": 1, "b": 2.0, "c": "three", "d": None, "e": True},
    "list of 64 3-int tuples (a batch)": [(i, i + 1, i + 2) for i in range(64)],
    "1 MiB float32 array": numpy.ones(1 << 18, dtype=numpy.float32),
}


def _producer(queue: Any, obj: Any, count: int) -> None:
    put = queue.put
    for _ in range(count):
        put(obj)
    if hasattr(queue, "join_thread"):
        queue.close()
        queue.join_thread()


def _floor(obj: Any, seconds: float) -> float:
    """Objects/s of the slower of dumps and loads (protocol 5, as the queue pickles)."""
    data = pickle.dumps(obj, 5)
    rates = []
    for function, argument in ((pickle.dumps, obj), (pickle.loads, data)):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 4:
            for _ in range(100):
                function(argument) if function is pickle.loads else function(argument, 5)
            count += 100
        rates.append(count / (time.perf_counter() - started))
    return min(rates)


def _rate(queue: Any, obj: Any, count: int) -> float:
    context = multiprocessing.get_context("fork")
    producer = context.Process(target=_producer, args=(queue, obj, count))
    get = queue.get
    producer.start()
    get()  # the producer is running
    started = time.perf_counter()
    for _ in range(count - 1):
        get()
    elapsed = time.perf_counter() - started
    producer.join()
    return (count - 1) / elapsed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    for name, obj in CASES.items():
        floor = _floor(obj, seconds)
        count = max(int(floor * seconds / 2), 200)
        queue: Any = ipcxx.Queue()
        try:
            ours = _rate(queue, obj, count)
        finally:
            queue.close()
            queue.unlink()
        theirs = _rate(multiprocessing.get_context("fork").Queue(), obj, min(count, 200_000))
        size = len(pickle.dumps(obj, 5))
        extra = ""
        if size > 100_000:
            extra = f" ({ours * size / 1e6:.0f} MB/s vs multiprocessing {theirs * size / 1e6:.0f})"
        print(
            f"{name}: ipcxx.Queue {ours:,.0f}/s, multiprocessing.Queue {theirs:,.0f}/s "
            f"({ours / theirs:.1f}x), pickling floor {floor:,.0f}/s "
            f"(ipcxx at {floor / ours:.2f}x of the floor){extra}"
        )


if __name__ == "__main__":
    main()
