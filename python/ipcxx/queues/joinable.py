"""ipcxx.JoinableQueue: a Queue that counts unfinished tasks (task_done() and join())."""

from __future__ import annotations

import posix_ipc

from ._base import T
from .queue import Queue


class JoinableQueue(Queue[T]):
    """multiprocessing.JoinableQueue on an ipcxx ring: each put() adds an unfinished task,
    task_done() finishes one, join() waits until none is left. The count is a POSIX semaphore
    shared by every process of the queue."""

    _joinable = True
    # multiprocessing.JoinableQueue overrides put: its argument errors say JoinableQueue.put().
    _put_slow = Queue._renamed(Queue._put_slow, "JoinableQueue.put")

    def task_done(self) -> None:
        """Marks one task done; ValueError if more calls than put()s."""
        assert self._tasks is not None
        try:
            self._tasks.acquire(0)
        except posix_ipc.BusyError:
            raise ValueError("task_done() called too many times") from None

    def join(self, timeout: float | None = None) -> bool:
        """Waits until every object put has been task_done() (at most `timeout` seconds, an
        extension: returns False when it expired; NaN raises ValueError, as in put and get). It
        polls the count, pausing up to 5 ms."""
        tasks = self._tasks
        assert tasks is not None
        return self._wait_until(lambda: tasks.value == 0, timeout)
