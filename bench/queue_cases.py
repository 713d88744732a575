"""The ipcxx.Queue rows of the benchmark (issue 18's "Performance" table): ipcxx.Queue against
faster-fifo, multiprocessing.Queue, the pickling floor and a memcpy, each alternative one row.

ROWS is what bench/run.py adds to its CASES and COMPARED_WITH; register() adds the workers to
bench/cases.py's CASES. This module imports nothing beyond the standard library at the top, so
run.py (which never imports ipcxx, numpy or faster-fifo) can read ROWS.

Both sides of every row run against ipcxx (cases.py's SIDE says which one a worker measures);
faster-fifo comes from bench/.alternatives, multiprocessing and pickle from the standard library.
Two-process rows time the producer (parent, first core) putting n objects until the consumer (a
forked child on the second core) has taken all n, as the Channel rows do: nanoseconds per
object. Queues of both kinds have the same ring size (ipcxx.Queue's default, 4 MiB).
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

MIB = 1 << 20
RING_BYTES = 4 * MIB  # ipcxx.Queue's default capacity; faster-fifo gets the same
BATCH = 64

# The small objects (as scripts/measure_queue.py).
SMALL: dict[str, Any] = {
    "tuple3": (1, 2, 3),
    "dict5": {"a": 1, "b": 2.0, "c": "three", "d": None, "e": True},
}

FASTER_FIFO = "faster_fifo.Queue put/get (4 MiB)"
FASTER_FIFO_BATCHED = "faster_fifo.Queue put_many/get_many of 64 (4 MiB)"
MP_QUEUE = "multiprocessing.Queue put/get (fork context)"
PICKLE_FLOOR = "pickling floor: the slower of pickle.dumps(obj, 5) and pickle.loads, one process"

# (case, target as a time ratio ipcxx / other, what the other side is, the ALTERNATIVE_PINS
# package it needs or None). "≥ 4× faster-fifo" is ≤ 0.25; "within 1.3× of the floor" ≤ 1.3.
ROWS: list[tuple[str, float | None, str, str | None]] = []
for _label in SMALL:
    ROWS += [
        (f"queue_2proc_{_label}_vs_faster_fifo", 0.25, FASTER_FIFO, "faster_fifo"),
        (f"queue_2proc_{_label}_vs_mp_queue", 0.125, MP_QUEUE, None),
        (f"queue_2proc_{_label}_vs_pickle_floor", 1.3, PICKLE_FLOOR, None),
    ]
for _label in SMALL:
    # Both sides batch: ipcxx.Queue's put_many/get_many (an extension; multiprocessing has
    # none) against faster-fifo's; the floor is per object, as above.
    ROWS += [
        (f"queue_2proc_batch64_{_label}_vs_faster_fifo", 0.333, FASTER_FIFO_BATCHED, "faster_fifo"),
        (f"queue_2proc_batch64_{_label}_vs_pickle_floor", 1.2, PICKLE_FLOOR, None),
    ]
ROWS += [
    ("queue_2proc_numpy_1MiB_vs_mp_queue", 0.1, MP_QUEUE, None),
    ("queue_2proc_numpy_1MiB_vs_faster_fifo", 0.333, FASTER_FIFO, "faster_fifo"),
    (
        "queue_2proc_numpy_1MiB_vs_memcpy",
        2.0,
        "one 1 MiB copy, one process (memoryview slice assignment)",
        None,
    ),
    (
        "queue_pingpong_one_way_tuple3_vs_faster_fifo",
        0.5,
        "faster_fifo.Queue ping-pong (2 queues, 4 MiB)",
        "faster_fifo",
    ),
    # ipcxx.compat.faster_fifo.Queue (faster-fifo's API on a Channel) against the real one, both
    # batched (no target in the issue).
    (
        "queue_compat_faster_fifo_batch64_tuple3_vs_faster_fifo",
        None,
        FASTER_FIFO_BATCHED,
        "faster_fifo",
    ),
]


def _nothing() -> None:
    pass


# ---- the queues, each as put/get/put_many/get_many ------------------------------------------


class Ends(NamedTuple):
    """One queue as the rows use it."""

    put: Callable[[Any], None]
    get: Callable[[], Any]
    put_many: Callable[[list], None]
    get_many: Callable[[int], list]  # at most that many, at least one
    close: Callable[[], None]  # after the last object was taken


def _one_by_one(put: Callable[[Any], None], get: Callable[[], Any]):
    def put_many(objects: list) -> None:
        for obj in objects:
            put(obj)

    def get_many(at_most: int) -> list:
        return [get()]

    return put_many, get_many


def ipcxx_queue(own_name: Callable[[], str]) -> Ends:
    """ipcxx.Queue(), named with the run's prefix (so run.py removes what a crashed worker left)
    and removed at the end. Its batches are put_many/get_many when the installed ipcxx has them
    (from 2026-12-07 on), else put/get loops (an older build, for bench/compare_builds)."""
    import ipcxx

    queue: Any = ipcxx.Queue(name=own_name())

    def close() -> None:
        queue.close()
        queue.join_thread()
        queue.unlink()

    if not hasattr(queue, "get_many"):
        return Ends(queue.put, queue.get, *_one_by_one(queue.put, queue.get), close)
    return _batching(queue, close)


def _batching(queue: Any, close: Callable[[], None]) -> Ends:
    """The ends of a queue with faster-fifo's put_many/get_many(max_messages_to_get=)."""
    get_many = queue.get_many
    return Ends(
        queue.put,
        queue.get,
        queue.put_many,
        lambda at_most: get_many(max_messages_to_get=at_most),
        close,
    )


def faster_fifo_queue() -> Ends:
    import faster_fifo

    queue = faster_fifo.Queue(max_size_bytes=RING_BYTES)
    return _batching(queue, queue.close)


def compat_faster_fifo_queue() -> Ends:
    """ipcxx.compat.faster_fifo.Queue, sized as faster_fifo_queue(). It is anonymous (it takes
    no name): its creator removes it at exit, the resource tracker after a crash."""
    from ipcxx.compat import faster_fifo

    queue = faster_fifo.Queue(max_size_bytes=RING_BYTES)
    return _batching(queue, queue.close)


def mp_queue() -> Ends:
    import multiprocessing

    queue = multiprocessing.get_context("fork").Queue()

    def close() -> None:
        queue.close()
        queue.join_thread()

    return Ends(queue.put, queue.get, *_one_by_one(queue.put, queue.get), close)


# ---- the workers ---------------------------------------------------------------------------


def queue_stream(cases: Any, make: Callable[[], Ends], obj: Any, batches: bool):
    """cases.stream() of one queue: the parent puts n objects (put_many of BATCH with
    `batches`), the child takes them (get_many(at most BATCH))."""

    def transport():
        ends = make()

        def producer():
            if not batches:
                put = ends.put

                def produce(n: int) -> None:
                    for _ in range(n):
                        put(obj)

                return produce, _nothing
            put_many, batch = ends.put_many, [obj] * BATCH

            def produce_batches(n: int) -> None:
                full, rest = divmod(n, BATCH)
                for _ in range(full):
                    put_many(batch)
                if rest:
                    put_many(batch[:rest])

            return produce_batches, _nothing

        def consumer():
            if not batches:
                get = ends.get

                def consume(n: int) -> None:
                    for _ in range(n):
                        get()

                return consume, _nothing
            get_many = ends.get_many

            def consume_batches(n: int) -> None:
                while n > 0:
                    n -= len(get_many(min(n, BATCH)))

            return consume_batches, _nothing

        return producer, consumer, ends.close

    return cases.stream(transport)


def queue_round_trips(cases: Any, make: Callable[[], Ends], obj: Any, serve_get=None):
    """cases.round_trips() over two queues: the parent puts obj on the first and gets the answer
    from the second; the child gets from the first and puts what it got on the second.
    serve_get(ends) -> get: the child's get (default ends.get)."""

    def transport():
        requests, answers = make(), make()

        def server():
            get = (serve_get or (lambda ends: ends.get))(requests)
            put = answers.put

            def serve() -> None:
                while True:
                    put(get())

            return serve, _nothing

        def requester():
            put, get = requests.put, answers.get

            def request() -> None:
                put(obj)
                get()

            return request, _nothing

        def cleanup() -> None:
            requests.close()
            answers.close()

        return requester, server, cleanup

    return cases.round_trips(transport)


def faster_fifo_serving_get(ends: Ends) -> Callable[[], Any]:
    """The child's get for faster-fifo: a 0.1 s timeout, retried. Its wait (a condition
    variable) is not interrupted by a signal, so with the default (10 s) the child would see
    run.py's SIGTERM only after 10 s; the timeout changes nothing while objects flow."""
    from queue import Empty

    get = ends.get

    def serving_get() -> Any:
        while True:
            try:
                return get(True, 0.1)
            except Empty:
                pass

    return serving_get


def pickle_floor(obj: Any):
    """One process: the slower of pickle.dumps(obj, 5) and pickle.loads of its bytes, chosen by
    a short timing of both here, then timed alone (one producer and one consumer in parallel
    cannot beat the slower of the two)."""
    dumps, loads, data = pickle.dumps, pickle.loads, pickle.dumps(obj, 5)

    def dump(n: int) -> None:
        for _ in range(n):
            dumps(obj, 5)

    def load(n: int) -> None:
        for _ in range(n):
            loads(data)

    def per_call(step: Callable[[int], None]) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter_ns()
            step(2000)
            best = min(best, (time.perf_counter_ns() - started) / 2000)
        return best

    slower = dump if per_call(dump) >= per_call(load) else load
    print(f"pickling floor: {slower.__name__}s is the slower", file=sys.stderr)
    return slower, _nothing


def numpy_1mib() -> Any:
    import numpy

    return numpy.ones(MIB // 4, dtype=numpy.float32)


def register(cases: Any) -> None:
    """Adds a worker for every row to cases.CASES (cases: the bench/cases.py module)."""
    own_name = cases.own_name

    def ipcxx_ends() -> Ends:
        return ipcxx_queue(own_name)

    def add(name: str, ipcxx_side, other_side) -> None:
        cases.case(name)(cases.against(ipcxx_side, other_side))

    for label, obj in SMALL.items():
        for batches in (False, True):
            prefix = f"queue_2proc_{'batch64_' if batches else ''}{label}"

            def ours(obj=obj, batches=batches):
                return queue_stream(cases, ipcxx_ends, obj, batches)

            def faster(obj=obj, batches=batches):
                return queue_stream(cases, faster_fifo_queue, obj, batches)

            add(f"{prefix}_vs_faster_fifo", ours, faster)
            add(f"{prefix}_vs_pickle_floor", ours, lambda obj=obj: pickle_floor(obj))
            if not batches:
                add(
                    f"{prefix}_vs_mp_queue",
                    ours,
                    lambda obj=obj: queue_stream(cases, mp_queue, obj, False),
                )

    def ours_numpy():
        return queue_stream(cases, ipcxx_ends, numpy_1mib(), False)

    add(
        "queue_2proc_numpy_1MiB_vs_mp_queue",
        ours_numpy,
        lambda: queue_stream(cases, mp_queue, numpy_1mib(), False),
    )
    add(
        "queue_2proc_numpy_1MiB_vs_faster_fifo",
        ours_numpy,
        lambda: queue_stream(cases, faster_fifo_queue, numpy_1mib(), False),
    )
    add("queue_2proc_numpy_1MiB_vs_memcpy", ours_numpy, cases.memcpy_1mib)
    add(
        "queue_compat_faster_fifo_batch64_tuple3_vs_faster_fifo",
        lambda: queue_stream(cases, compat_faster_fifo_queue, SMALL["tuple3"], True),
        lambda: queue_stream(cases, faster_fifo_queue, SMALL["tuple3"], True),
    )
    add(
        "queue_pingpong_one_way_tuple3_vs_faster_fifo",
        lambda: queue_round_trips(cases, ipcxx_ends, SMALL["tuple3"]),
        lambda: queue_round_trips(
            cases, faster_fifo_queue, SMALL["tuple3"], faster_fifo_serving_get
        ),
    )
