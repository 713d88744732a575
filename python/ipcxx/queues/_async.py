"""Queue.get_async and Queue.put_async: awaited get/put that cancel exactly (a cancelled
get_async takes nothing, a cancelled put_async puts nothing), built on the Channel's readiness
wait and posix_ipc's acquire_async, which take nothing for a waiter that is gone."""

from __future__ import annotations

from queue import Empty, Full
from typing import Any

import posix_ipc

from ..aio.channel import _expired, _until, _wait_until_ready, check_timeout


async def get_async(queue: Any, timeout: float | None) -> Any:
    seconds = check_timeout(timeout)
    until = _until(seconds)
    while True:
        try:
            return queue.get(False)  # in the awaiting task: nothing is taken for a cancelled one
        except Empty:
            if seconds == 0 or _expired(until):
                raise
        try:
            await _wait_until_ready(queue._channel._wait_readable, TimeoutError(), until)
        except TimeoutError:
            raise Empty from None


async def put_async(queue: Any, obj: Any, timeout: float | None) -> None:
    seconds = check_timeout(timeout)
    slots = queue._slots
    if slots is None:
        queue.put(obj)  # an unbounded queue never waits
        return
    until = _until(seconds)
    while True:
        try:
            queue.put(obj, False)
            return
        except Full:
            if seconds == 0 or _expired(until):
                raise
        remaining = None if until is None else max(until - _now(), 0)
        try:
            await slots.acquire_async(remaining)  # a cancelled one keeps no place
        except posix_ipc.BusyError:
            raise Full from None
        # Give the place back and take it in put(): another producer may win it meanwhile (then
        # this one waits again); no await in between, so a cancellation cannot fall there.
        slots.release()


def _now() -> float:
    import asyncio

    return asyncio.get_running_loop().time()
