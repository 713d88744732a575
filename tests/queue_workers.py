"""Functions that the queue tests (tests/test_queue_*.py) run in other processes; top-level, so
that spawn and forkserver children import them by name."""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from typing import Any

import ipcxx

START_METHODS = [
    m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()
]


def produce(queue: ipcxx.Queue[Any], producer: int, count: int) -> None:
    """Puts (producer, i) for i in range(count), then closes and flushes."""
    for number in range(count):
        queue.put((producer, number))
    queue.close()
    queue.join_thread()


def consume(queue: ipcxx.Queue[Any], count: int, results: Connection) -> None:
    """Gets `count` objects (10 s each at most) and sends them back as one list."""
    got = [queue.get(timeout=30) for _ in range(count)]
    results.send(got)


def consume_until_end(queue: ipcxx.Queue[Any], results: Connection) -> None:
    """Gets objects until the end of the stream, then sends them back."""
    got = []
    while True:
        try:
            got.append(queue.get(timeout=30))
        except ipcxx.EndOfStream:
            break
    results.send(got)


def produce_forever(queue: ipcxx.Queue[Any], producer: int, ready: Connection) -> None:
    """Puts (producer, i) for ever (until killed); says when the first 100 are in."""
    number = 0
    while True:
        queue.put((producer, number, b"x" * (number % 300)))
        number += 1
        if number == 100:
            ready.send(True)


def consume_forever(queue: ipcxx.Queue[Any], ready: Connection) -> None:
    """Gets until killed; says when it got its first object."""
    queue.get(timeout=30)
    ready.send(True)
    while True:
        queue.get(timeout=30)


def die_while_writing(queue: ipcxx.Queue[Any], ready: Connection) -> None:
    """Reserves a message in the ring as a large put would, writes half of it, then waits to be
    killed (a half-written object)."""
    import pickle

    data = pickle.dumps(("half", b"y" * 5000), 5)
    view = queue._channel.reserve(len(data)).__enter__()
    view[: len(data) // 2] = data[: len(data) // 2]
    ready.send(True)
    signal.pause()


def task_worker(queue: ipcxx.JoinableQueue[Any], results: Connection) -> None:
    """Takes objects until None, marking each done; sends back the sum."""
    total = 0
    while True:
        item = queue.get(timeout=30)
        if item is None:
            queue.task_done()
            break
        total += item
        queue.task_done()
    results.send(total)


def put_one(queue: ipcxx.Queue[Any], obj: Any) -> int:
    """A Pool task whose argument is a queue: puts `obj` and returns the worker's pid."""
    queue.put(obj)
    return os.getpid()


def echo_pid(queue: ipcxx.Queue[Any]) -> None:
    queue.put(os.getpid())
