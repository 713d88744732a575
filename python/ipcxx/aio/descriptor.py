"""Waits until a descriptor is readable or writable, for any number of tasks on one loop."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque


class _Waiters:
    """The tasks of one loop waiting on one descriptor in one direction.

    asyncio keeps one callback per descriptor and direction, so the waiters share it. Each time
    the descriptor is ready the callback wakes the oldest waiter only (waking all would cost
    N wakes per message); it stays registered while any remain, and readiness is
    level-triggered, so a woken waiter that is cancelled before it runs, or that finds the
    message already taken, only delays the next wake by one loop iteration.

    It refers to its loop and to the waiters' futures (which refer to the loop) only weakly: the
    registry's entry would otherwise keep a loop closed with waits pending, and their tasks,
    alive for ever (a WeakKeyDictionary's value must not refer to its key)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, writable: bool) -> None:
        self.loop = weakref.ref(loop)
        self.fd = fd
        self.writable = writable
        self.futures: deque[weakref.ref[asyncio.Future[None]]] = deque()
        if writable:
            loop.add_writer(fd, self._wake_one)
        else:
            loop.add_reader(fd, self._wake_one)

    def _wake_one(self) -> None:
        while self.futures:
            future = self.futures.popleft()()
            if future is not None and not future.done():
                future.set_result(None)
                return
        self.close()

    def close(self) -> None:
        """Unregisters the callback and forgets this entry."""
        loop = self.loop()
        if loop is None:  # collected: its registrations and its entry went with it
            return
        _registry.get(loop, {}).pop((self.fd, self.writable), None)
        if self.writable:
            loop.remove_writer(self.fd)
        else:
            loop.remove_reader(self.fd)


_registry: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[int, bool], _Waiters]
] = weakref.WeakKeyDictionary()


async def wait_ready(fd: int, writable: bool, deadline: float | None) -> None:
    """Returns once `fd` is readable (writable) or the loop time reaches `deadline` (None:
    never), whichever comes first. It consumes nothing, so a cancellation loses nothing."""
    loop = asyncio.get_running_loop()
    entries = _registry.setdefault(loop, {})
    waiters = entries.get((fd, writable))
    if waiters is None:
        waiters = entries[(fd, writable)] = _Waiters(loop, fd, writable)
    future: asyncio.Future[None] = loop.create_future()
    waiters.futures.append(weakref.ref(future))
    timer = None
    if deadline is not None:
        timer = loop.call_at(deadline, _wake, future)
    try:
        await future
    finally:
        if timer is not None:
            timer.cancel()
        try:
            waiters.futures.remove(weakref.ref(future))  # equal while the future lives
        except ValueError:  # already taken by a wake
            pass
        if not waiters.futures and entries.get((fd, writable)) is waiters:
            waiters.close()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
