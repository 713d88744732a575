"""The producer-side spill buffer of an unbounded or bounded Queue: messages that found the ring
full wait here, in order, and a feeder thread (started at the first spill, as multiprocessing's
is at the first put) moves them into the ring as space frees. A producer that spills moves what
fits first: the feeder needs the GIL for every move, and a producer busy in Python code hands it
over only every switch interval (5 ms), so a feeder alone moved one large message per interval
while the producer spilled everything behind it (measured: 1 MiB arrays at 1.1 ms each)."""

from __future__ import annotations

import collections
import itertools
import sys
import threading
import traceback
import weakref
from multiprocessing import util
from typing import Any

from .._ipcxx import Channel

# How long the feeder waits for ring space before it looks at its flags again.
_SLICE = 0.5
# Spilled frames of at least this many bytes are written into buffers the feeder gives back
# once it has sent them: a fresh allocation of a megabyte page-faults on every page written
# (measured: a spilled 1 MiB array cost about 1 ms and 256 page faults; recycled, none).
RECYCLE_MIN = 65536
# The sent buffers kept for reuse, in bytes, at most.
_RECYCLE_MAX = 8 << 20
# Pending messages sent by one send_many() call, at most.
_BATCH = 64


class Spill:
    """Messages not yet in the ring, oldest first, and the thread that feeds them in.

    Thread safety: every method may be called from any thread; `pending` is appended under
    `condition` and popped only under `sending` (by the feeder or a producer's drain()) after
    its message is in the ring, so a producer that finds it empty knows no older message of
    this process is still on its way, and one message never goes twice."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.pending: collections.deque[Any] = collections.deque()
        # Re-entrant: a __del__ or GC callback that puts can run inside push() on this thread.
        self.condition = threading.Condition(threading.RLock())
        # Held while pending messages go into the ring (never while waiting for space).
        self.sending = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stopping = False  # close() or exit: finish after the last pending message
        self.cancelled = False  # cancel_join_thread(): the exit does not wait for the flush
        self.close_channel = False  # close() was called: the feeder closes the ring when done
        self.joiner: util.Finalize | None = None
        self.free: dict[int, list[bytearray]] = {}  # sent buffers by size, for buffer()
        self.free_bytes = 0

    def buffer(self, size: int) -> bytearray:
        """A bytearray of `size` bytes to spill a frame in (its bytes are not zeroed): one the
        feeder has sent, when one of that size is free."""
        if size >= RECYCLE_MIN:
            with self.condition:
                free = self.free.get(size)
                if free:
                    self.free_bytes -= size
                    return free.pop()
        return bytearray(size)

    def _recycle(self, message: Any) -> None:
        """Keeps a sent buffer for buffer(), within _RECYCLE_MAX bytes."""
        size = len(message)
        if type(message) is not bytearray or size < RECYCLE_MIN:
            return
        with self.condition:
            if self.free_bytes + size <= _RECYCLE_MAX:
                self.free.setdefault(size, []).append(message)
                self.free_bytes += size

    def drain(self) -> None:
        """Moves the pending messages that fit now into the ring, oldest first, unless another
        thread is moving them (a producer's step before it spills; never waits)."""
        held: list[bool] = []
        try:
            # Take the lock and note it in one C call: an exception a signal handler raises on
            # this (main) thread between a bare acquire() and the next line would leave the
            # lock held and the feeder waiting for it forever. A with statement has that gap
            # too on CPython 3.14, where __enter__ is a call of its own.
            held.extend(itertools.compress((True,), map(self.sending.acquire, (False,))))
            if held:
                self._move()
        except Exception:  # a closed or broken ring: the feeder reports it (multiprocessing)
            pass
        finally:
            if held:
                self.sending.release()

    def _move(self) -> bool:
        """Sends pending messages, oldest first, while they fit without waiting; True when none
        is left. The caller holds `sending`."""
        pending = self.pending
        while pending:
            # By index, not with an iterator: a gc callback or __del__ that puts (on this thread,
            # or on another one in the free-threaded build) can append meanwhile, which fails a
            # deque's iterator; the first ones stay where they are (only `sending` pops).
            batch = list(map(pending.__getitem__, range(min(len(pending), _BATCH))))
            try:
                # The send and the pops of what it sent run in one C call, with no bytecode in
                # between: on the main thread, a signal handler's exception raised after
                # send_many() returned would otherwise leave sent messages here to go again.
                # Read inside out: send_many(batch, 0) -> n sent; repeat((), n) -> n empty
                # argument tuples; starmap(popleft) pops once for each; list() drives it all.
                sent = list(
                    itertools.starmap(
                        pending.popleft,
                        itertools.chain.from_iterable(
                            map(
                                itertools.repeat, ((),), map(self.channel.send_many, (batch,), (0,))
                            )
                        ),
                    )
                )
            except TimeoutError:
                return False
            except BaseException as error:
                self._pop(getattr(error, "sent", 0))
                raise
            for message in sent:
                self._recycle(message)
            if len(sent) < len(batch):
                return False
        return True

    def _pop(self, count: int) -> None:
        """Drops the `count` oldest pending messages (sent before an error)."""
        collections.deque(itertools.starmap(self.pending.popleft, itertools.repeat((), count)), 0)

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
        wait_writable = self.channel._wait_writable
        while True:
            with condition:
                while not pending and not self.stopping:
                    condition.wait()
                if not pending:
                    break
            try:
                with self.sending:
                    if self._move():
                        continue
                    size = len(pending[0])  # the first that did not fit
                # Wait for space without `sending`: a producer may move messages meanwhile.
                if not wait_writable(size, _SLICE) and self.cancelled and self.stopping:
                    return  # nobody waits for these any more
            except Exception:  # the ring was closed or is broken: report, as multiprocessing
                if util.is_exiting():
                    return
                traceback.print_exc(file=sys.stderr)
                with self.sending:
                    if pending:
                        pending.popleft()  # the message that failed
        with condition:
            self.free.clear()  # the feeder is done: give the memory back
            self.free_bytes = 0
        if self.close_channel:
            self.channel.close()
