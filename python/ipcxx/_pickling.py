"""Pickling of ipcxx's own objects by name, so that they pass to processes of every start method.

A `Channel` or `RobustLock` pickles as its class, its name and the settings that belong to the
object rather than to the kernel object (a Channel's fixed `spin`, a subclass's attributes);
unpickling opens the same kernel object again with the base class's own open (never creating
it, whatever a subclass's __init__ does). So they can be `multiprocessing.Process` arguments under
fork, spawn and forkserver, `Pool`/`ProcessPoolExecutor` initializer arguments, and even task
arguments. The name must still exist when the receiving process unpickles: unlinking it first
makes the unpickling raise FileNotFoundError. What is per object stays behind: a RobustLock held
by the sender is not held by the copy, and views and waits are not carried.
"""

from __future__ import annotations

from typing import Any

from ._ipcxx import Channel, RobustLock


def _reopen(cls: type, base: type, name: str) -> Any:
    """An instance of `cls` on the existing object `name`, opened by `base`'s own __init__ (a
    subclass's __init__ could create, or take other arguments)."""
    made = cls.__new__(cls)
    base.__init__(made, name)
    return made


def _state(obj: Any, settings: dict[str, Any]) -> tuple[Any, ...]:
    """The pickle state: a subclass's own attributes and the object's settings, or nothing."""
    attributes = dict(getattr(obj, "__dict__", None) or {})
    if not settings:
        return (attributes,) if attributes else ()
    return ((attributes or None, settings),)  # pickle setattr()s the settings


def _reduce_channel(channel: Channel) -> tuple[Any, ...]:
    if channel.closed:
        raise ValueError("cannot pickle a closed Channel")
    spin = channel.spin  # None (adaptive) is what a freshly opened channel does
    settings = {} if spin is None else {"spin": spin}
    return (_reopen, (type(channel), Channel, channel.name), *_state(channel, settings))


def _reduce_robust_lock(lock: RobustLock) -> tuple[Any, ...]:
    if lock.closed:
        raise ValueError("cannot pickle a closed RobustLock")
    return (_reopen, (type(lock), RobustLock, lock.name), *_state(lock, {}))


def install() -> None:
    """Gives Channel and RobustLock (and so their subclasses) their __reduce__."""
    for cls, reduce in ((Channel, _reduce_channel), (RobustLock, _reduce_robust_lock)):
        reduce.__name__ = "__reduce__"
        reduce.__qualname__ = f"{cls.__name__}.__reduce__"
        reduce.__doc__ = "Pickles by name: unpickling reopens the same object (never creates it)."
        cls.__reduce__ = reduce  # type: ignore[method-assign,assignment]
