"""The kernel objects behind one queue, created or opened together by one base name: the ring
(an ipcxx.Channel named `base`) and POSIX semaphores `base.items` (objects put and not yet taken:
qsize), `base.slots` (bounded queues: free places of maxsize) and `base.tasks` (JoinableQueue:
unfinished tasks)."""

from __future__ import annotations

import os
import secrets

import posix_ipc

from .._ipcxx import Channel
from . import _segments, _tracking


class Shared:
    """One process's handles on a queue's kernel objects."""

    __slots__ = (
        "name",
        "channel",
        "items",
        "slots",
        "tasks",
        "tracked",
        "_side_mode",
        "__weakref__",
    )

    def __init__(
        self,
        name: str,
        channel: Channel,
        items: posix_ipc.Semaphore,
        slots: posix_ipc.Semaphore | None,
        tasks: posix_ipc.Semaphore | None,
        tracked: bool,
    ) -> None:
        self.name = name
        self.channel = channel
        self.items = items
        self.slots = slots
        self._side_mode: int | None = None
        self.tasks = tasks
        self.tracked = tracked

    @property
    def side_mode(self) -> int:
        """The permission bits of the ring, which the side segments get too: whoever may use
        the queue may take its large objects."""
        if self._side_mode is None:
            try:
                self._side_mode = os.stat("/dev/shm" + self.name).st_mode & 0o777
            except OSError:
                self._side_mode = 0o600
        return self._side_mode

    @staticmethod
    def semaphore_names(name: str) -> tuple[str, str, str]:
        return f"{name}.items", f"{name}.slots", f"{name}.tasks"

    @classmethod
    def create(
        cls, name: str | None, maxsize: int, joinable: bool, capacity: int, mode: int
    ) -> Shared:
        """Creates every object (never opens an existing one: FileExistsError). An anonymous
        queue (`name` None) gets a random name and is registered with the resource tracker."""
        tracked = name is None
        if name is None:
            name = "/ipcxx_q_" + secrets.token_hex(8)
        else:
            name = _checked_name(name)
        if maxsize > posix_ipc.SEMAPHORE_VALUE_MAX:
            # OverflowError, as multiprocessing's (its semaphore's value is a C int)
            raise OverflowError(f"maxsize must be at most {posix_ipc.SEMAPHORE_VALUE_MAX}")
        items_name, slots_name, tasks_name = cls.semaphore_names(name)
        made: list[posix_ipc.Semaphore] = []
        try:
            # The semaphores first: an opener that finds the ring finds them too.
            for sem_name, wanted, initial in (
                (items_name, True, 0),
                (slots_name, maxsize > 0, maxsize),
                (tasks_name, joinable, 0),
            ):
                if wanted:
                    try:
                        made.append(posix_ipc.Semaphore(sem_name, posix_ipc.O_CREX, mode, initial))
                    except posix_ipc.ExistentialError:
                        raise FileExistsError(f"queue {name!r} already exists") from None
                    if tracked:
                        _tracking.register_semaphore(sem_name)
            channel = Channel(name, create=True, capacity=capacity, mode=mode, exclusive=True)
            if tracked:
                _tracking.register_memory(name)
        except BaseException:
            for semaphore in made:
                semaphore.unlink()
                semaphore.close()
                if tracked:
                    _tracking.unregister_semaphore(semaphore.name)
            raise
        items = made[0]
        slots = made[1] if maxsize > 0 else None
        tasks = made[-1] if joinable else None
        return cls(name, channel, items, slots, tasks, tracked)

    @classmethod
    def open(cls, name: str, joinable: bool, tracked: bool) -> Shared:
        """Opens an existing queue's objects (FileNotFoundError when the ring is gone)."""
        name = _checked_name(name)
        channel = Channel(name)
        items_name, slots_name, tasks_name = cls.semaphore_names(name)
        try:
            items = posix_ipc.Semaphore(items_name)
            try:
                slots: posix_ipc.Semaphore | None = posix_ipc.Semaphore(slots_name)
            except posix_ipc.ExistentialError:
                slots = None  # unbounded
            tasks = None
            if joinable:
                try:
                    tasks = posix_ipc.Semaphore(tasks_name)
                except posix_ipc.ExistentialError:
                    raise ValueError(f"queue {name!r} is not a JoinableQueue") from None
        except posix_ipc.ExistentialError:
            channel.close()
            raise FileNotFoundError(f"queue {name!r} does not exist") from None
        return cls(name, channel, items, slots, tasks, tracked)

    def close(self) -> None:
        self.channel.close()
        for semaphore in (self.items, self.slots, self.tasks):
            if semaphore is not None:
                semaphore.close()


def unlink(name: str, tracked: bool, side_segments: bool = True) -> None:
    """Removes a queue's ring, semaphores and (unless `side_segments` is False) side segments by
    name (those already gone are skipped); processes that have them open keep using them."""
    try:
        posix_ipc.unlink_shared_memory(name)
        if tracked:
            _tracking.unregister_memory(name)
    except posix_ipc.ExistentialError:
        pass
    for sem_name in Shared.semaphore_names(name):
        try:
            posix_ipc.unlink_semaphore(sem_name)
            if tracked:
                _tracking.unregister_semaphore(sem_name)
        except posix_ipc.ExistentialError:
            pass
    if side_segments:
        _segments.remove_all(name, tracked)


def _checked_name(name: str) -> str:
    """A queue name with its leading slash. glibc keeps a semaphore `/x` as /dev/shm/sem.x, so a
    queue named `sem.x` would share its ring file with the semaphore `/x`: refused."""
    if not isinstance(name, str):
        raise TypeError(f"a queue name must be a str or None, not {type(name).__name__}")
    if not name.startswith("/"):
        name = "/" + name
    if name.startswith("/sem."):
        raise ValueError("a queue name must not start with 'sem.' (the POSIX semaphores' files)")
    return name
