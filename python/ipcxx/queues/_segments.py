"""Side segments: one POSIX shared memory segment per object too large for the ring, created and
written by the producer, read and removed by the consumer that receives its name."""

from __future__ import annotations

import itertools
import mmap
import os
import re
from typing import Any

import posix_ipc

from . import _tracking
from ._framing import Frame

_counter = itertools.count()


def prefix(base: str) -> str:
    """The name prefix of every side segment of the queue `base` (a name with its slash)."""
    return f"{base}.L"


def own_name(base: str) -> re.Pattern[str]:
    """Matches (fullmatch) the names, without their slash, of the queue `base`'s side segments:
    exactly `<base>.L<pid>.<n>` (a prefix match would also take the ring of another queue whose
    name starts with `<base>.L`)."""
    return re.compile(re.escape(prefix(base)[1:]) + r"\d+\.\d+")


def write(base: str, frame: Frame | bytes, tracked: bool, mode: int = 0o600) -> str:
    """Creates a side segment holding `frame`, reserved in /dev/shm before it is written (a full
    /dev/shm raises OSError(ENOSPC) here, never SIGBUS later), and returns its name."""
    size = frame.size if isinstance(frame, Frame) else len(frame)
    while True:
        name = f"{prefix(base)}{os.getpid()}.{next(_counter)}"
        try:
            memory = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, 0o600)
            break
        except posix_ipc.ExistentialError:  # a dead process of the same pid left one
            continue
    # Registered before a byte is reserved: a producer killed while it writes a large object
    # leaves nothing behind once the tracker runs.
    if tracked:
        _tracking.register_memory(name)
    try:
        os.fchmod(memory.fd, mode)  # exactly the ring's bits (the umask narrowed the creation)
        os.posix_fallocate(memory.fd, 0, size)
        with mmap.mmap(memory.fd, size) as mapped, memoryview(mapped) as view:
            if isinstance(frame, Frame):
                frame.write(view)
            else:
                view[:] = frame
    except BaseException:
        memory.close_fd()
        memory.unlink()
        if tracked:
            _tracking.unregister_memory(name)
        raise
    memory.close_fd()
    return name


def take(name: str, tracked: bool) -> tuple[memoryview, Any]:
    """Opens and removes the side segment `name`: returns a writable view of its bytes, which
    belong to the caller alone from now on (no other process can open it), and the mapping."""
    memory = posix_ipc.SharedMemory(name)
    try:
        # Private: reads are the segment's pages (no copy), a write copies its page, so after a
        # fork() the parent's and the child's objects are independent, as ordinary memory is.
        mapped = mmap.mmap(
            memory.fd, memory.size, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE
        )
    finally:
        memory.close_fd()
        memory.unlink()
        if tracked:
            _tracking.unregister_memory(name)
    return memoryview(mapped), mapped


def remove_all(base: str, tracked: bool) -> None:
    """Removes every side segment of the queue `base` (its unlink(), or its creator's exit)."""
    own = own_name(base)
    try:
        entries = os.listdir("/dev/shm")
    except OSError:
        return
    for entry in entries:
        # A queue named like a side segment has its own `items` semaphore; a side segment never.
        if own.fullmatch(entry) and f"sem.{entry}.items" not in entries:
            try:
                posix_ipc.unlink_shared_memory("/" + entry)
            except posix_ipc.ExistentialError:
                continue
            if tracked:
                _tracking.unregister_memory("/" + entry)
