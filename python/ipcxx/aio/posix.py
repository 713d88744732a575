"""asyncio methods of posix_ipc.Semaphore and posix_ipc.MessageQueue."""

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
    posix_ipc calls it at import with its own classes and exceptions."""

    async def acquire_async(self: Any, timeout: float | None = None) -> None:
        """Like acquire(timeout), awaited: waits without blocking the event loop.

        The wait runs in ipcxx.aio's pool (at most POOL_THREADS threads for any number of
        waits), so a unit released while every pool thread is busy on other waits is noticed up
        to SLICE_SECONDS late. BusyError when the timeout expires. A cancelled acquire_async
        never keeps a unit: one taken for it after the cancellation is released at once, and so
        is one taken for a loop closed without running again (docs/guide.md)."""
        from .waits import deadline, in_pool  # asyncio loads on first use, not on import

        until = deadline(timeout)
        try:
            self.acquire(0)
            return
        except busy_error as error:
            if timeout == 0:
                raise
            busy = error

        def give_back(_: None) -> None:
            try:
                self.release()
            except existential_error:  # closed meanwhile: there is nothing to return it to
                pass

        await in_pool(self.acquire, give_back, busy, until)

    async def receive_async(self: Any, timeout: float | None = None) -> tuple[bytes, int]:
        """Like receive(timeout), awaited: waits on the queue's descriptor in the event loop.

        No thread is involved: the message is received inside the awaiting task once the
        descriptor is readable, so a cancelled receive_async never takes a message. BusyError
        when the timeout expires, or at once if the queue is empty and block is False."""
        from .descriptor import wait_ready
        from .waits import deadline, expired

        until = deadline(timeout)
        while True:
            try:
                return self.receive(0)  # type: ignore[no-any-return]
            except busy_error:
                if timeout == 0 or expired(until) or not self.block:
                    raise
            await wait_ready(self.mqd, False, until)

    async def send_async(
        self: Any, message: Any, timeout: float | None = None, priority: int = 0
    ) -> None:
        """Like send(message, timeout, priority), awaited: waits on the queue's descriptor.

        The message is sent inside the awaiting task once the descriptor is writable: a
        send_async that returns has sent exactly once, one that raises CancelledError has not
        sent. A mutable buffer is read when it is sent. BusyError when the timeout expires, or
        at once if the queue is full and block is False."""
        from .descriptor import wait_ready
        from .waits import deadline, expired

        until = deadline(timeout)
        while True:
            try:
                self.send(message, 0, priority)
                return
            except busy_error:
                if timeout == 0 or expired(until) or not self.block:
                    raise
            await wait_ready(self.mqd, True, until)

    attach(semaphore_class, acquire_async)
    attach(queue_class, receive_async)
    attach(queue_class, send_async)
