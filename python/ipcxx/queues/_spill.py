"""The producer-side spill buffer of an unbounded or bounded Queue: messages that found the ring
full wait here, in order, and a feeder thread (started at the first spill, as multiprocessing's
is at the first put) moves them into the ring as space frees."""

from __future__ import annotations

import collections
import sys
import threading
import traceback
import weakref
from multiprocessing import util
from typing import Any

from .._ipcxx import Channel

# How long the feeder waits for ring space before it looks at its flags again.
_SLICE = 0.5


class Spill:
    """Messages not yet in the ring, oldest first, and the thread that feeds them in.

    Thread safety: every method may be called from any thread; `pending` is appended under
    `condition` and popped only by the feeder after its message is in the ring, so a producer
    that finds it empty knows no older message of this process is still on its way."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.pending: collections.deque[Any] = collections.deque()
        # Re-entrant: a __del__ or GC callback that puts can run inside push() on this thread.
        self.condition = threading.Condition(threading.RLock())
        self.thread: threading.Thread | None = None
        self.stopping = False  # close() or exit: finish after the last pending message
        self.cancelled = False  # cancel_join_thread(): the exit does not wait for the flush
        self.close_channel = False  # close() was called: the feeder closes the ring when done
        self.joiner: util.Finalize | None = None

    def push(self, message: Any) -> None:
        """Queues `message` behind the others and makes sure the feeder runs."""
        with self.condition:
            self.pending.append(message)
            if self.thread is None:
                self._start()
            self.condition.notify()

    def _start(self) -> None:
        thread = threading.Thread(target=self._feed, name="QueueFeederThread", daemon=True)
        self.thread = thread
        thread.start()
        if not self.cancelled:
            # multiprocessing's order at exit: close (priority 10), then join the feeder (-5).
            self.joiner = util.Finalize(thread, Spill._join, [weakref.ref(thread)], exitpriority=-5)

    @staticmethod
    def _join(thread_ref: weakref.ref[threading.Thread]) -> None:
        thread = thread_ref()
        if thread is not None:
            thread.join()

    def stop(self, close_channel: bool) -> bool:
        """Lets the feeder end once the pending messages are in the ring; returns whether a
        feeder runs (then it closes the ring itself when `close_channel`)."""
        with self.condition:
            self.stopping = True
            self.close_channel = self.close_channel or close_channel
            self.condition.notify()
            return self.thread is not None and self.thread.is_alive()

    def join(self) -> None:
        if self.joiner is not None:
            self.joiner()

    def cancel(self) -> None:
        self.cancelled = True
        if self.joiner is not None:
            self.joiner.cancel()

    def _feed(self) -> None:
        pending = self.pending
        condition = self.condition
        send = self.channel.send
        while True:
            with condition:
                while not pending and not self.stopping:
                    condition.wait()
                if not pending:
                    break
                message = pending[0]
            try:
                while True:
                    try:
                        send(message, _SLICE)
                        break
                    except TimeoutError:
                        if self.cancelled and self.stopping:
                            return  # nobody waits for these any more
            except Exception:  # the ring was closed or is broken: report, as multiprocessing
                if util.is_exiting():
                    return
                traceback.print_exc(file=sys.stderr)
            pending.popleft()
        if self.close_channel:
            self.channel.close()
