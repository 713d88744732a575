"""ipcxx's own segments among the files of /dev/shm: Channel and RobustLock, read by the core's
read-only inspection (ipcxx._ipcxx.inspect_segment), which never joins, locks or writes them."""

from __future__ import annotations

import os

# The kind a segment gets from the inspection's kind; any other segment stays "shm".
KIND_OF = {"channel": "channel", "lock": "lock"}


def inspect_file(path: bytes) -> dict | None:
    """The inspection of the segment file at `path`: a dict with kind ('channel', 'lock' or
    None), problem, size, channel and lock (docs/guide.md). The file is opened here (read-only,
    not following a symlink, never blocking) and its descriptor handed to the core, so that
    every name the directory can hold is read, also those shm_open refuses. Raises OSError when
    the file cannot be opened or read; None when the extension module is not available (then
    every segment is a plain one)."""
    try:
        from ipcxx._ipcxx import inspect_segment
    except ImportError:
        return None
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        return inspect_segment(fd)
    finally:
        os.close(fd)
