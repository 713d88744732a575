"""Functions that the pickling tests (tests/test_pickling.py) run in other processes; top-level,
so that spawn and forkserver children import them by name."""

from __future__ import annotations

import os

import ipcxx

_initialised: ipcxx.Channel | None = None


def report(channel: ipcxx.Channel, lock: ipcxx.RobustLock) -> None:
    """Sends, through the unpickled channel while holding the unpickled lock, what this process
    sees: its pid, the channel's spin, and whether the lock was free for it."""
    acquired = lock.acquire(timeout=10)
    try:
        channel.send(f"{os.getpid()} {channel.spin} {acquired}".encode())
    finally:
        if acquired:
            lock.release()
    channel.close()
    lock.close()


def initialise(channel: ipcxx.Channel) -> None:
    """A Pool / ProcessPoolExecutor initializer: keeps the channel for the tasks."""
    global _initialised
    _initialised = channel


def send_through_initialised(number: int) -> int:
    assert _initialised is not None
    _initialised.send(number.to_bytes(4, "little"))
    return os.getpid()


def send_through_argument(channel: ipcxx.Channel, number: int) -> int:
    """A task whose argument is the channel itself (multiprocessing.Queue forbids this)."""
    channel.send(number.to_bytes(4, "little"))
    channel.close()
    return os.getpid()
