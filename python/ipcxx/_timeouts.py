"""Timeout arguments of ipcxx's Python-level methods, checked as the extension's methods check
them (same exception types and messages)."""

from __future__ import annotations

# The extension's threshold: a timeout of this many seconds or more waits without limit.
NO_LIMIT = 9.0e9


def refuse_non_number(timeout: object) -> None:
    """TypeError unless `timeout` is a number (bool is not one), as the extension says it."""
    kind = type(timeout)
    if isinstance(timeout, bool) or not any(
        hasattr(kind, method) for method in ("__float__", "__index__", "__int__")
    ):
        raise TypeError(f"timeout must be None or a number, not {kind.__name__:.50}")
