"""Attaches a coroutine function to an extension class as a method that help() documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def attach(cls: type, function: Callable[..., Any]) -> None:
    """Sets `cls.<name>` to `function`, named and placed as if it had been defined there."""
    function.__qualname__ = f"{cls.__name__}.{function.__name__}"
    function.__module__ = cls.__module__
    setattr(cls, function.__name__, function)
