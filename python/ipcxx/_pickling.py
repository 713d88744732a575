"""Pickling of ipcxx's own objects by name, so that they pass to processes of every start method.

A `Channel` or `RobustLock` pickles as its class, its name and the settings that belong to the
object rather than to the kernel object (a Channel's fixed `spin`); unpickling opens the same
kernel object again, never creating it. So they can be `multiprocessing.Process` arguments under
fork, spawn and forkserver, `Pool`/`ProcessPoolExecutor` initializer arguments, and even task
arguments. The name must still exist when the receiving process unpickles: unlinking it first
makes the unpickling raise FileNotFoundError. What is per object stays behind: a RobustLock held
by the sender is not held by the copy, and views and waits are not carried.
"""

from __future__ import annotations

from typing import Any

from ._ipcxx import Channel, RobustLock


def _reduce_channel(channel: Channel) -> tuple[Any, ...]:
    if channel.closed:
        raise ValueError("cannot pickle a closed Channel")
    spin = channel.spin
    if spin is None:  # adaptive: what a freshly opened channel does
        return (type(channel), (channel.name,))
    return (type(channel), (channel.name,), (None, {"spin": spin}))


def _reduce_robust_lock(lock: RobustLock) -> tuple[Any, ...]:
    if lock.closed:
        raise ValueError("cannot pickle a closed RobustLock")
    return (type(lock), (lock.name,))


def install() -> None:
    """Gives Channel and RobustLock (and so their subclasses) their __reduce__."""
    for cls, reduce in ((Channel, _reduce_channel), (RobustLock, _reduce_robust_lock)):
        reduce.__name__ = "__reduce__"
        reduce.__qualname__ = f"{cls.__name__}.__reduce__"
        reduce.__doc__ = "Pickles by name: unpickling reopens the same object (never creates it)."
        cls.__reduce__ = reduce  # type: ignore[method-assign,assignment]
