"""Queues of Python objects between processes on an ipcxx.Channel: drop-ins for
multiprocessing's Queue, SimpleQueue and JoinableQueue (docs/queue.md)."""

from . import _shared
from .joinable import JoinableQueue as JoinableQueue
from .queue import Queue as Queue
from .simple import SimpleQueue as SimpleQueue

__all__ = ["JoinableQueue", "Queue", "SimpleQueue", "unlink_queue"]


def unlink_queue(name: str) -> None:
    """Removes the queue `name`: its ring, semaphores and side segments (those gone are
    skipped). Processes that have it open keep using it."""
    _shared.unlink(name if name.startswith("/") else "/" + name, False)
