"""Functions that tests/test_faster_fifo_compat.py runs in other processes; top-level, so that
spawn and forkserver children import them by name."""

from __future__ import annotations

from typing import Any

from ipcxx.compat.faster_fifo import Queue


def echo_doubled(requests: Queue, replies: Queue, count: int) -> None:
    """Takes `count` numbers (one get, then get_many batches) and puts each doubled."""
    taken = [requests.get(timeout=30)]
    while len(taken) < count:
        taken += requests.get_many(timeout=30, max_messages_to_get=count - len(taken))
    replies.put_many([number * 2 for number in taken], timeout=30)


def put_range(queue: Queue, first: int, count: int) -> int:
    """A Pool task whose argument is the queue itself (multiprocessing.Queue forbids this)."""
    for number in range(first, first + count):
        queue.put(number, timeout=30)
    return count


def report_state(queue: Queue, replies: Any) -> None:
    """Sends what this process sees of the queue through a multiprocessing connection."""
    replies.send((queue.is_closed(), queue.qsize(), queue.data_size(), type(queue).__name__))
    replies.close()


def int_loads(message: memoryview) -> tuple[str, int]:
    """A custom deserializer that records the type it received."""
    return type(message).__name__, int.from_bytes(message, "big")


def int_dumps(number: int) -> bytes:
    return number.to_bytes(4, "big")


class Tagged(Queue):
    """A subclass with an attribute of its own: it pickles as itself, attribute included."""

    tag = "class default"
