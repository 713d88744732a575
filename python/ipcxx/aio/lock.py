"""asyncio for ipcxx.RobustLock: acquire_async and `async with`, owned by the awaiting task.

A robust pthread mutex belongs to a thread: only that thread may release it or repair it, and
the kernel reports the death of that thread. So the event loop's thread takes the lock, by a
non-blocking acquire inside the awaiting task; a pool thread only waits for the lock to be free
(RobustLock._wait_free, which never keeps it and leaves a dead holder for the next acquire to
report) and the task then tries again. Several tasks of one loop share that thread, so ipcxx
records which task holds the lock and refuses a release or make_consistent() from any other
(RobustLock._set_holder_check), as pthread refuses one from another thread.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from .channel import check_timeout
from .methods import attach

# (thread, lock name) -> the task of that thread's loop that holds the lock through
# acquire_async. Read only to tell "another task of this thread holds it" (wait) from "this
# thread holds it outside any task" (an error, as for acquire()). Weak: a task collected while
# holding is reported, not kept alive.
_holders: dict[tuple[int, str], weakref.ref[Any]] = {}


class _StillHeld(Exception):
    """A pool attempt found the lock held for its whole slice."""


def _forget_holders_in_child() -> None:
    # A fork child's threads hold nothing of the parent's (pthread owners are threads).
    _holders.clear()


os.register_at_fork(after_in_child=_forget_holders_in_child)


def install(lock_class: type, owner_died_error: type[BaseException]) -> None:
    """Adds acquire_async, __aenter__ and __aexit__ to `lock_class` (ipcxx calls it at import)."""

    async def acquire_async(self: Any, timeout: float | None = None) -> bool:
        """Like acquire(timeout), awaited: True once this task holds the lock, False when the
        timeout expired. The lock then belongs to this task: release() and make_consistent()
        from it work, from any other task (or thread) raise RuntimeError.

        The lock is taken by the event loop's thread, inside this task; while it is held
        elsewhere, ipcxx.aio's pool waits for it to be free without keeping it. So a cancelled
        acquire_async never holds the lock. When the previous holder died holding it, this task
        holds it and OwnerDiedError is raised: repair, make_consistent(), release()."""
        import asyncio

        seconds = check_timeout(timeout)
        loop = asyncio.get_running_loop()
        until = None if seconds is None else loop.time() + seconds
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("acquire_async() must be awaited in an asyncio task")
        key = (threading.get_ident(), self.name)
        while True:
            holder = _holders.get(key)
            held_by = None if holder is None else holder()
            if held_by is task:
                raise RuntimeError("this task already holds the lock")
            if held_by is None or held_by.done():  # no live task of this thread holds it
                try:
                    taken = self.acquire(0)
                except owner_died_error:
                    _hold(self, key, task)
                    raise
                except RuntimeError as error:
                    if holder is None or type(error) is not RuntimeError:
                        raise  # held outside any task, as acquire() says; or not recoverable
                    # Only the loop's thread could release it, and only that task may.
                    raise RuntimeError(
                        "a task of this thread that has ended still holds the lock; it can "
                        "never be released on this thread"
                    ) from None
                if taken:
                    _hold(self, key, task)
                    return True
            # Held by another process, another thread, or another task of this loop.
            from .waits import expired, in_pool  # only when waiting: a relative import costs µs

            if seconds == 0 or expired(until):
                return False

            def attempt(limit: float) -> None:
                if not self._wait_free(limit):
                    raise _StillHeld

            try:
                await in_pool(attempt, None, _StillHeld(), until)
            except _StillHeld:
                return False

    async def __aenter__(self: Any) -> Any:
        """`async with lock:` acquire_async() (without limit), then the block; returns the lock.
        OwnerDiedError is raised here, holding the lock, and __aexit__ does not run."""
        await acquire_async(self)
        return self

    async def __aexit__(self: Any, exc_type: object, exc: object, traceback: object) -> None:
        """Releases the lock (this task holds it)."""
        self.release()

    for method in (acquire_async, __aenter__, __aexit__):
        attach(lock_class, method)


def _hold(lock: Any, key: tuple[int, str], task: Any) -> None:
    """Records `task` as the holder and installs the check that release() and
    make_consistent() run while it holds the lock."""
    holder = weakref.ref(task)
    _holders[key] = holder

    def check(releasing: bool) -> None:
        import asyncio

        try:
            current = asyncio.current_task()
        except RuntimeError:  # no loop running on this thread
            current = None
        if current is not holder() or current is None:
            raise RuntimeError(
                "this task does not hold the lock (another asyncio task acquired it)"
            )
        if releasing and _holders.get(key) is holder:
            del _holders[key]

    lock._set_holder_check(check)
