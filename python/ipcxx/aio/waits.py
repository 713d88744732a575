"""The two ways an *_async method waits without a descriptor: in the pool, or by polling."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, TypeVar

from .pool import get_pool

T = TypeVar("T")

TIMEOUT_ERROR = "The timeout must be None or a non-negative number"

POLL_FIRST_SECONDS = 0.001
"""The first pause of a polled wait; each later pause doubles, up to POLL_MAX_SECONDS."""

POLL_MAX_SECONDS = 0.05
"""The longest pause between two attempts of a polled wait: its worst-case extra latency."""


def deadline(timeout: object) -> float | None:
    """The running loop's time at which a wait of `timeout` seconds ends (None: never). Refuses
    what the synchronous methods refuse, with their exception and message."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or math.isnan(timeout) or timeout < 0:
        raise TypeError(TIMEOUT_ERROR)
    return asyncio.get_running_loop().time() + timeout


def expired(until: float | None) -> bool:
    """Whether the running loop's time has reached `until` (never when None)."""
    return until is not None and asyncio.get_running_loop().time() >= until


async def in_pool(
    attempt: Callable[[float], T],
    give_back: Callable[[T], None] | None,
    busy: BaseException,
    until: float | None,
) -> T:
    """Runs `attempt(seconds)` in the pool until it returns, raising a copy of `busy` at loop
    time `until`. Whatever an attempt obtains after this wait has ended (cancelled or timed
    out) goes to `give_back`, on the loop thread, so nothing is kept for a waiter that is gone;
    so does what one obtains for a loop closed without running again (pool._Delivery), and
    what was delivered to this coroutine if it is closed without resuming (below). An attempt
    that takes nothing (a readiness wait) passes None."""
    loop = asyncio.get_running_loop()
    job = get_pool().submit(attempt, give_back, type(busy))
    future: asyncio.Future[T] = job.future
    timer = None if until is None else loop.call_at(until, _expire, future, busy)
    try:
        return await future
    except asyncio.CancelledError:
        # Either the cancellation cancelled the future (a later result is given back when it is
        # delivered), or it arrived after the result was set and before this task resumed.
        future.cancel()
        if not future.cancelled() and future.exception() is None:
            job.give_back(future.result())
        raise
    except GeneratorExit:
        # Closed without resuming: its task was collected, never to run again (its loop was
        # stopped after the result arrived and before the task resumed, then closed). Touch no
        # loop (it may be closed, so no future.cancel()): stop the pool trying for a waiter that
        # is gone, and give back what was delivered and never seen.
        job.abandoned = True
        if future.done() and not future.cancelled() and future.exception() is None:
            job.give_back_logged(future.result())
        raise
    finally:
        if timer is not None:
            timer.cancel()


def _expire(future: asyncio.Future[Any], busy: BaseException) -> None:
    if not future.done():
        future.set_exception(type(busy)(*busy.args))


async def polled(operation: Callable[[], T], busy: type[BaseException]) -> T:
    """Calls the non-blocking `operation()` until it stops raising `busy`, pausing between
    attempts (POLL_FIRST_SECONDS doubling to POLL_MAX_SECONDS). It runs inside the awaiting task,
    so a cancellation (always at a pause) finds nothing half done."""
    pause = POLL_FIRST_SECONDS
    while True:
        try:
            return operation()
        except busy:
            pass
        await asyncio.sleep(pause)
        pause = min(pause * 2, POLL_MAX_SECONDS)
