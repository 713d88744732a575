"""The bounded, fork-safe thread pool that runs blocking semaphore waits for asyncio tasks."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)

POOL_THREADS = 4
"""The most threads the pool ever runs, however many waits are pending."""

SLICE_SECONDS = 0.05
"""How long one blocking attempt lasts: the longest a pending wait can go without a retry (when
every thread is blocked on another wait) and the longest a thread stays on a cancelled one."""


class Job:
    """One pending wait: `attempt(timeout)` performs the blocking call (0 = non-blocking) and
    returns a value, or raises `busy` when it could not complete in time; `give_back(value)`
    undoes a completed attempt whose waiter is gone (None: an attempt that takes nothing, such
    as a readiness wait, has nothing to undo). `future` belongs to `loop`."""

    __slots__ = ("loop", "future", "attempt", "_give_back", "busy", "abandoned", "_pool")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        attempt: Callable[[float], Any],
        give_back: Callable[[Any], None] | None,
        busy: type[BaseException],
        pool: WaitPool,
    ) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.attempt = attempt
        self._give_back = give_back
        self._pool = pool
        self.busy = busy
        # Written on the loop thread when the future completes for any reason, read by the
        # workers: a plain flag, because asyncio futures may only be touched on their loop.
        self.abandoned = False
        self.future.add_done_callback(self._abandon)

    def _abandon(self, _future: asyncio.Future[Any]) -> None:
        self.abandoned = True

    def give_back(self, value: Any) -> None:
        """Undoes a completed attempt whose waiter is gone (counted in WaitPool.given_back)."""
        if self._give_back is None:  # it took nothing
            return
        self._give_back(value)
        self._pool.count_give_back()

    def give_back_logged(self, value: Any) -> None:
        """give_back() where nobody could be told of an error (a worker, a finalizer): logged."""
        try:
            self.give_back(value)
        except Exception:
            _log.exception("ipcxx.aio: could not give back what a wait whose waiter is gone took")


def _settle(job: Job, value: Any) -> None:
    """On the loop thread: hands `value` to the waiter, or gives it back if the waiter is gone
    (cancelled or timed out after the worker's last look, or its coroutine closed). Both happen
    on the thread that cancels, so no unit can fall between them."""
    if job.future.done() or job.abandoned:
        job.give_back(value)
    else:
        job.future.set_result(value)


class _Delivery:
    """A completed attempt's value on its way to the loop thread, as the callback posted there.

    Run, it settles the job. Never run, it gives the value back when it is dropped: closing a
    loop discards the callbacks queued in it (so does collecting a loop that was never closed),
    and a unit taken for a task of a loop that was stopped and then closed without running again
    would otherwise be lost with them. Exactly one of the two happens."""

    __slots__ = ("_job", "_value", "_pending")

    def __init__(self, job: Job, value: Any) -> None:
        self._job = job
        self._value = value
        self._pending = True

    def __call__(self) -> None:
        if self._pending:
            self._pending = False
            try:
                _settle(self._job, self._value)
            finally:
                self._job._pool.count_landed()

    def discard(self) -> None:
        """Gives the value back now (the loop refused the callback, or the waiter is gone)."""
        if self._pending:
            self._pending = False
            try:
                self._job.give_back_logged(self._value)
            finally:
                self._job._pool.count_landed()

    def __del__(self) -> None:
        # Runs on whichever thread drops the last reference: the one closing the loop, or the
        # collector's. give_back takes no lock that such a thread could be holding.
        self.discard()


def _fail(job: Job, error: BaseException) -> None:
    """On the loop thread: the attempt raised something other than `busy`."""
    if not job.future.done():
        job.future.set_exception(error)


class WaitPool:
    """At most `threads` daemon threads serving any number of pending jobs.

    A worker takes every unclaimed job, tries each without blocking (a sweep, about a
    microsecond per job), hands the rest back but one, and blocks on that one for `slice_seconds`.
    So each worker blocks on a different job, and every pending job is tried at least once per
    slice by whichever worker finishes its slice first. Thread-safe; one per process."""

    def __init__(self, threads: int = POOL_THREADS, slice_seconds: float = SLICE_SECONDS) -> None:
        self._size = threads
        self._slice = slice_seconds
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # workers wait here for jobs
        self._quiet = threading.Condition(lock)  # wait_idle waits here for none outstanding
        self._pending: deque[Job] = deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._outstanding = 0  # submitted and not yet finished by a worker
        # Re-entrant: counts change in finalizers (_Delivery.__del__), which run on whichever
        # thread drops the last reference, holding any lock, this one included.
        self._count_lock = threading.RLock()
        self._landed = threading.Condition(self._count_lock)  # wait_delivered waits here
        self._in_flight = 0  # deliveries posted to a loop, neither run nor given back yet
        self.given_back = 0
        """How many completed attempts were given back because their waiter was gone."""

    @property
    def thread_count(self) -> int:
        """How many worker threads this pool has started so far."""
        with self._ready:
            return len(self._threads)

    def count_give_back(self) -> None:
        """Counts one give-back (any thread). Its own re-entrant lock: a give-back can run in a
        finalizer (_Delivery.__del__) on a thread that holds any other lock, this one included."""
        with self._count_lock:
            self.given_back += 1

    def count_landed(self) -> None:
        """A posted delivery ran on its loop or was given back (any thread, finalizers too)."""
        with self._landed:
            self._in_flight -= 1
            if not self._in_flight:
                self._landed.notify_all()

    def wait_delivered(self, timeout: float | None = None) -> bool:
        """Blocks until every delivery posted to a loop has run there or been given back (a
        loop closed or collected without running again gives back what was posted to it);
        False if `timeout` passed first. For tests and orderly shutdown."""
        with self._landed:
            return self._landed.wait_for(lambda: self._in_flight == 0, timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Blocks until every submitted job is finished (delivered, failed, or dropped and given
        back); False if `timeout` passed first. Deliveries posted to a loop may still be queued
        there: let it run once more before counting. For tests and orderly shutdown."""
        with self._quiet:
            return self._quiet.wait_for(lambda: self._outstanding == 0, timeout)

    def submit(
        self,
        attempt: Callable[[float], Any],
        give_back: Callable[[Any], None] | None,
        busy: type[BaseException],
    ) -> Job:
        """Queues a job for the running loop; its future gets the first completed attempt's value
        (or the first other exception). Starts a worker when the pending jobs outnumber the idle
        workers and fewer than the maximum exist."""
        job = Job(asyncio.get_running_loop(), attempt, give_back, busy, self)
        start = None
        with self._ready:
            self._pending.append(job)
            self._outstanding += 1
            if self._idle:
                self._ready.notify()
            # More jobs than idle workers (the count lags while woken workers wait for the GIL):
            # each worker blocks on one job, so another thread helps, up to the maximum.
            if len(self._pending) > self._idle and len(self._threads) < self._size:
                start = threading.Thread(
                    target=self._work, name=f"ipcxx-aio-{len(self._threads)}", daemon=True
                )
                self._threads.append(start)
        if start is not None:
            start.start()
        return job

    def _claim(self) -> list[Job]:
        with self._ready:
            while not self._pending:
                self._idle += 1
                # While deliveries are out, an idle worker returns to Python code once a slice.
                # On a free-threaded build an object is freed by the thread that made it: a
                # delivery (and the loop callback holding it) that a loop's close() drops is
                # freed, and its value given back, only when the worker that posted it next
                # runs Python code, never if it waited here for good.
                self._ready.wait(self._slice if self._in_flight else None)
                self._idle -= 1
            batch = list(self._pending)
            self._pending.clear()
        return batch

    def _hand_back(self, jobs: list[Job]) -> None:
        if jobs:
            with self._ready:
                self._pending.extend(jobs)
                if self._idle:
                    self._ready.notify()

    def _work(self) -> None:
        # Process-directed signals go to another thread: their Python handlers run on the main
        # thread anyway, and an EINTR here would only cut a slice short.
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while True:
            # In a call of its own, so that no local refers to a finished job (its future, its
            # task) while this thread waits for the next: a task that can never run again is
            # collected, and gives back what it holds, as soon as nothing else refers to it.
            self._serve(self._claim())

    def _serve(self, batch: list[Job]) -> None:
        waiting = [job for job in batch if not self._try(job, 0.0)]
        self._finished(len(batch) - len(waiting))
        if not waiting:
            return
        # Round robin: the job blocked on now goes to the back of the queue if it fails.
        self._hand_back(waiting[1:])
        started = time.monotonic()
        if self._try(waiting[0], self._slice):
            self._finished(1)
        else:
            # An attempt that refused to block (the object changed under it) must not turn
            # this loop into a spin.
            rest = self._slice - (time.monotonic() - started)
            if rest > self._slice / 2:
                time.sleep(rest)
            self._hand_back(waiting[:1])

    def _finished(self, count: int) -> None:
        if count:
            with self._quiet:
                self._outstanding -= count
                if not self._outstanding:
                    self._quiet.notify_all()

    def _try(self, job: Job, timeout: float) -> bool:
        """One attempt; True when the job is finished (delivered, failed or abandoned)."""
        if job.abandoned or job.loop.is_closed():
            return True
        try:
            value = job.attempt(timeout)
        except job.busy:
            return False
        except Exception as error:
            self._post(job, _fail, job, error)
            return True
        delivery = _Delivery(job, value)
        with self._count_lock:
            self._in_flight += 1
        if job.abandoned or not self._post(job, delivery):
            delivery.discard()  # logs an error: a worker must survive anything
        return True

    @staticmethod
    def _post(job: Job, callback: Callable[..., None], *arguments: Any) -> bool:
        try:
            job.loop.call_soon_threadsafe(callback, *arguments)
        except RuntimeError:  # the loop was closed meanwhile
            return False
        return True


_pool: WaitPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WaitPool:
    """This process's pool, created on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WaitPool()
        return _pool


def _forget_pool_in_child() -> None:
    # The child has none of the parent's threads, and a lock a worker held at fork() would stay
    # locked forever: start again from nothing. The parent's jobs belong to the parent's loops.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)
