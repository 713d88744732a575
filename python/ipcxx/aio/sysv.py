"""asyncio methods of sysv_ipc.Semaphore and sysv_ipc.MessageQueue."""

from __future__ import annotations

from typing import Any

from .methods import attach


def install(
    semaphore_class: type,
    queue_class: type,
    busy_error: type[Exception],
    existential_error: type[Exception],
) -> None:
    """Adds acquire_async to `semaphore_class` and receive_async/send_async to `queue_class`;
    sysv_ipc calls it at import with its own classes and exceptions."""

    async def acquire_async(self: Any, timeout: float | None = None, delta: int = 1) -> None:
        """Like acquire(timeout, delta), awaited: waits without blocking the event loop.

        The wait runs in ipcxx.aio's pool (at most POOL_THREADS threads for any number of
        waits), so a value raised while every pool thread is busy on other waits is noticed up
        to SLICE_SECONDS late. BusyError when the timeout expires, or at once if the value is
        too low and block is False (read when the call starts). A cancelled acquire_async never
        keeps the delta: one taken for it after the cancellation is added back at once, with
        the undo setting it was taken with; so is one taken for a loop closed without running
        again (docs/guide.md)."""
        from .waits import deadline, in_pool  # asyncio loads on first use, not on import

        until = deadline(timeout)
        try:
            self.acquire(0, delta)
            return
        except busy_error as error:
            if timeout == 0 or not self.block:
                raise
            busy = error

        def attempt(seconds: float) -> bool:
            undo = bool(self.undo)
            self.acquire(seconds, delta)
            return undo

        def give_back(undo: bool) -> None:
            try:
                _release(self, delta, undo)
            except existential_error:  # removed meanwhile: nothing to return the delta to
                pass

        await in_pool(attempt, give_back, busy, until)

    async def receive_async(self: Any, type: int = 0) -> tuple[bytes, int]:
        """Like receive(True, type), awaited: waits without blocking the event loop.

        msgrcv cannot wait with a timeout, so a thread blocked in it could be stuck forever:
        instead the awaiting task retries a non-blocking receive, pausing 1 ms at first and
        doubling up to ipcxx.aio.waits.POLL_MAX_SECONDS (50 ms), the most latency this adds. A
        cancelled receive_async never takes a message, so the queue's order is kept."""
        from .waits import polled

        return await polled(lambda: self.receive(False, type), busy_error)

    async def send_async(self: Any, message: Any, type: int = 1) -> None:
        """Like send(message, True, type), awaited: retries a non-blocking send from the
        awaiting task with the same backoff as receive_async. A send_async that returns has
        sent exactly once; one that raises CancelledError has not sent. A mutable buffer is
        read when it is sent."""
        from .waits import polled

        await polled(lambda: self.send(message, False, type), busy_error)

    attach(semaphore_class, acquire_async)
    attach(queue_class, receive_async)
    attach(queue_class, send_async)


def _release(semaphore: Any, delta: int, undo: bool) -> None:
    """Adds `delta` back with the undo setting it was taken with, so that the kernel's undo
    adjustment for this process nets out exactly as if the acquire had never happened."""
    if bool(semaphore.undo) == undo:
        semaphore.release(delta)
        return
    semaphore.undo = undo
    try:
        semaphore.release(delta)
    finally:
        semaphore.undo = not undo
