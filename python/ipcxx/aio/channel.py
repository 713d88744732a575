"""asyncio methods of ipcxx.Channel: receive_async, receive_many_async, send_async, async for.

The ring is FIFO: a message taken for a waiter that is gone could not be put back at its front.
So nothing is taken in a thread: ipcxx.aio's pool only waits for readiness (Channel's
_wait_readable/_wait_writable, which take nothing), and the awaiting task itself then sends or
receives without blocking, in the step in which the method returns. Another consumer may win the
race for the message: the task then waits again.
"""

from __future__ import annotations

import math
from typing import Any

from .._timeouts import NO_LIMIT, refuse_non_number
from .methods import attach


def check_timeout(timeout: object) -> float | None:
    """`timeout` in seconds (None: without limit), refused with the exception and message of
    the synchronous ipcxx methods (TypeError for what is not a number, ValueError for a
    negative number or NaN)."""
    if timeout is None:
        return None
    refuse_non_number(timeout)
    seconds = float(timeout)  # type: ignore[arg-type]
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("timeout must be None or a non-negative number")
    return None if seconds >= NO_LIMIT else seconds


async def _wait_until_ready(wait: Any, busy: TimeoutError, until: float | None) -> None:
    """Waits in the pool until `wait(seconds)` (a readiness wait that takes nothing) says ready,
    or has blocked for one whole slice (so that the task tries again as often as the synchronous
    methods do: a dead peer's recovery or another change may have made it ready unannounced);
    raises a copy of `busy` at loop time `until`."""
    from .waits import in_pool

    def attempt(seconds: float) -> None:
        if not wait(seconds) and seconds == 0:
            raise TimeoutError  # not ready: the pool keeps the job pending
        return None

    await in_pool(attempt, None, busy, until)


def install(channel_class: type) -> None:
    """Adds the asyncio methods to `channel_class` (ipcxx calls it at import)."""

    async def receive_async(self: Any, timeout: float | None = None) -> bytes:
        """Like receive(timeout), awaited: the next message as bytes, without blocking the loop.

        Waits for a message in ipcxx.aio's pool, which takes nothing; the message is received
        inside the awaiting task, in the step in which receive_async returns. So a cancelled
        receive_async never takes a message: it stays queued, in order, for another receiver.
        TimeoutError when the timeout expires (0: at once if there is none)."""
        seconds = check_timeout(timeout)
        until = _until(seconds)
        while True:
            try:
                return self.receive(0)  # type: ignore[no-any-return]
            except TimeoutError as error:
                if seconds == 0 or _expired(until):
                    raise
                busy = error
            await _wait_until_ready(self._wait_readable, busy, until)

    async def receive_many_async(
        self: Any, max_count: int, timeout: float | None = None
    ) -> list[bytes]:
        """Like receive_many(max_count, timeout), awaited: waits for the first message, then
        takes up to max_count that are there, inside the awaiting task (so a cancelled call
        takes none). TimeoutError when the timeout expires."""
        seconds = check_timeout(timeout)
        until = _until(seconds)
        while True:
            try:
                return self.receive_many(max_count, 0)  # type: ignore[no-any-return]
            except TimeoutError as error:
                if seconds == 0 or _expired(until):
                    raise
                busy = error
            await _wait_until_ready(self._wait_readable, busy, until)

    async def send_async(self: Any, data: Any, timeout: float | None = None) -> None:
        """Like send(data, timeout), awaited: waits for space in ipcxx.aio's pool (reserving
        none), then sends inside the awaiting task. A send_async that returns has sent the
        message once, whole; one that raises (CancelledError, TimeoutError) has sent nothing.
        A mutable buffer is read when it is sent."""
        seconds = check_timeout(timeout)
        until = _until(seconds)
        size = -1
        while True:
            try:
                self.send(data, 0)
                return
            except TimeoutError as error:
                if seconds == 0 or _expired(until):
                    raise
                busy = error
            if size < 0:
                with memoryview(data) as view:
                    size = view.nbytes

            def wait(limit: float, size: int = size) -> bool:
                return self._wait_writable(size, limit)  # type: ignore[no-any-return]

            await _wait_until_ready(wait, busy, until)

    def __aiter__(self: Any) -> Any:
        """`async for message in channel`: receive_async() until the stream ends."""
        return self

    async def __anext__(self: Any) -> bytes:
        """The next message (receive_async()); the end of the stream (an EOFError from the
        receive, such as ipcxx.EndOfStream) ends the iteration."""
        try:
            return await receive_async(self)
        except EOFError:
            raise StopAsyncIteration from None

    for method in (receive_async, receive_many_async, send_async, __aiter__, __anext__):
        attach(channel_class, method)


def _expired(until: float | None) -> bool:
    from .waits import expired  # only once a wait is needed: a relative import costs µs

    return expired(until)


def _until(seconds: float | None) -> float | None:
    import asyncio

    return None if seconds is None else asyncio.get_running_loop().time() + seconds
