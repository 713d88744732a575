"""The kernel objects behind one faster-fifo compatible queue, created or opened by one base name:
the ring (an ipcxx.Channel named `base`), its accounting words (a 4 KiB segment `base.meta`)
guarded by an ipcxx.RobustLock (`base.lock`), and a POSIX semaphore (`base.space`) on which
producers sleep while the queue is full by faster-fifo's measure."""

from __future__ import annotations

import mmap
import os
import secrets
from multiprocessing import resource_tracker

import posix_ipc

from .._ipcxx import Channel, OwnerDiedError, RobustLock

# Words of the accounting segment (unsigned 64-bit). faster-fifo keeps the same numbers in the
# mutex-guarded struct beside its ring; here they are guarded by the robust lock.
CLOSED, COUNT, BYTES, WAITERS, MAX_SIZE_BYTES, MAXSIZE = range(6)
META_SIZE = 4096
# faster-fifo frames each message with its size (a size_t): its byte accounting counts it.
FRAME = 8


def ring_capacity(max_size_bytes: int) -> int:
    """The Channel capacity for a faster-fifo queue of `max_size_bytes`: the ring must hold any
    single message faster-fifo accepts (`max_size_bytes - 8` bytes; a Channel message is at most
    capacity / 2 - 16) and, for messages of the usual sizes, at least as many messages as
    faster-fifo's byte budget allows (each record costs 16 bytes of header and padding to 16)."""
    wanted = 2 * max_size_bytes + 16
    return max(4096, 1 << (wanted - 1).bit_length())


def _names(base: str) -> tuple[str, str, str]:
    return f"{base}.meta", f"{base}.lock", f"{base}.space"


class Shared:
    """One process's handles on a queue's kernel objects."""

    __slots__ = (
        "name",
        "channel",
        "lock",
        "space",
        "words",
        "max_size_bytes",
        "maxsize",
        "_mapping",
        "__weakref__",
    )

    def __init__(
        self,
        name: str,
        channel: Channel,
        lock: RobustLock,
        space: posix_ipc.Semaphore,
        mapping: mmap.mmap,
    ) -> None:
        self.name = name
        self.channel = channel
        self.lock = lock
        self.space = space
        self._mapping = mapping
        self.words = memoryview(mapping).cast("Q")
        # Fixed at creation; every process checks the same limits.
        self.max_size_bytes = int(self.words[MAX_SIZE_BYTES])
        self.maxsize = int(self.words[MAXSIZE])

    @classmethod
    def create(cls, max_size_bytes: int, maxsize: int) -> Shared:
        """Creates the objects of a new anonymous queue under a random name, registered with
        multiprocessing's resource tracker (which removes them if every process of the tree dies
        before the creator's Queue object removes them)."""
        base = "/ipcxx_ff_" + secrets.token_hex(8)
        meta_name, lock_name, space_name = _names(base)
        made: list[tuple[str, str]] = []  # (name, tracker type), to undo on failure
        try:
            memory = posix_ipc.SharedMemory(meta_name, posix_ipc.O_CREX, 0o600)
            made.append((meta_name, "shared_memory"))
            resource_tracker.register(meta_name, "shared_memory")
            try:
                # Reserved before use: a full /dev/shm is ENOSPC here, never SIGBUS later.
                os.posix_fallocate(memory.fd, 0, META_SIZE)
                mapping = mmap.mmap(memory.fd, META_SIZE)
            finally:
                memory.close_fd()
            words = memoryview(mapping).cast("Q")
            words[MAX_SIZE_BYTES] = max_size_bytes
            words[MAXSIZE] = maxsize
            words.release()
            lock = RobustLock(lock_name, create=True, exclusive=True)
            made.append((lock_name, "shared_memory"))
            resource_tracker.register(lock_name, "shared_memory")
            space = posix_ipc.Semaphore(space_name, posix_ipc.O_CREX, 0o600, 0)
            made.append((space_name, "semaphore"))
            resource_tracker.register(space_name, "semaphore")
            # The ring last: an opener that finds it finds everything else.
            channel = Channel(
                base, create=True, capacity=ring_capacity(max_size_bytes), exclusive=True
            )
            made.append((base, "shared_memory"))
            resource_tracker.register(base, "shared_memory")
        except BaseException:
            for name, kind in made:
                _unlink(name, kind)
            raise
        return cls(base, channel, lock, space, mapping)

    @classmethod
    def open(cls, base: str) -> Shared:
        """Opens an existing queue's objects (FileNotFoundError once they are removed)."""
        meta_name, lock_name, space_name = _names(base)
        channel = Channel(base)
        try:
            lock = RobustLock(lock_name)
            try:
                space = posix_ipc.Semaphore(space_name)
                memory = posix_ipc.SharedMemory(meta_name)
            except posix_ipc.ExistentialError:
                raise FileNotFoundError(f"the queue {base!r} was removed") from None
            try:
                mapping = mmap.mmap(memory.fd, META_SIZE)
            finally:
                memory.close_fd()
        except BaseException:
            channel.close()
            raise
        return cls(base, channel, lock, space, mapping)

    def acquire(self) -> None:
        """Takes the accounting lock. A holder killed inside (a few Python statements) may have
        left the counters half-updated: they are used as they are (docs/guide.md)."""
        try:
            self.lock.acquire()
        except OwnerDiedError:
            self.lock.make_consistent()

    def remove(self) -> None:
        """Removes every name of the queue (processes that have it open keep using it)."""
        for name, kind in zip((self.name, *_names(self.name)), _KINDS, strict=True):
            _unlink(name, kind)


_KINDS = ("shared_memory", "shared_memory", "shared_memory", "semaphore")


def _unlink(name: str, kind: str) -> None:
    try:
        if kind == "semaphore":
            posix_ipc.unlink_semaphore(name)
        else:
            posix_ipc.unlink_shared_memory(name)
    except posix_ipc.ExistentialError:
        pass
    resource_tracker.unregister(name, kind)
